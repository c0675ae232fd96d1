"""Dashboard speed: cold start of ``streamlit run`` to a usable first page, and a warm Verify answer.

    python bench/app_speed.py --data-home ../shared/data [--pairs 8]

* ``cold_health_s``: ``streamlit run app.py`` started -> ``/_stcore/health`` answers;
* ``cold_first_page_s``: started -> the home page's title and navigation are drawn in headless
  Chromium (Debian's ``chromium``; skipped with a note if it is absent). Models are not loaded yet:
  they load on the first page that needs them, behind a spinner;
* ``verify_warm_ms``: the Verify page's full script run for two newly uploaded photos (decode, detect,
  align and embed both, distance, decision, charts), measured around ``AppTest.run()`` after the
  models are loaded. Each pair is new to the page, so no per-image cache helps; median and max over
  ``--pairs`` disjoint pairs of ``faces_small`` photos (full-size web photos up to 2,204 px, not
  250x250 crops). The app's detectors see a copy shrunk to 800 px (``ui.common.DETECTION_MAX_SIDE``).

Identify against 10,000 faces is measured by ``bench/identify_speed.py``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import _repo_path  # noqa: F401  (puts the repo root on sys.path)

from facecore.datasets import image_folder

REPO_ROOT = _repo_path.REPO_ROOT
CHROMIUM = shutil.which("chromium")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cold_start(work: Path) -> dict[str, float | None]:
    port = free_port()
    env = {**os.environ, "FACECORE_GALLERY_DIR": str(work / "gallery")}
    command = [
        sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless", "true",
        "--server.port", str(port), "--browser.gatherUsageStats", "false",
    ]  # fmt: skip
    started = time.perf_counter()
    server = subprocess.Popen(command, cwd=REPO_ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        url = f"http://127.0.0.1:{port}"
        while True:
            try:
                urllib.request.urlopen(f"{url}/_stcore/health", timeout=1)
                break
            except OSError:
                time.sleep(0.05)
        health = time.perf_counter() - started
        first_page = None
        if CHROMIUM:
            from playwright.sync_api import sync_playwright

            with sync_playwright() as pw:
                browser = pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
                page = browser.new_page()
                page.goto(url)
                page.get_by_role("heading", name="Face Verification Lab").wait_for(timeout=120_000)
                page.get_by_role("link", name="Verify").first.wait_for(timeout=120_000)
                first_page = time.perf_counter() - started
                browser.close()
        return {"cold_health_s": round(health, 2), "cold_first_page_s": first_page and round(first_page, 2)}
    finally:
        server.terminate()
        server.wait(timeout=30)


def verify_warm(data_home: Path, n_pairs: int, work: Path) -> dict[str, object]:
    from streamlit.testing.v1 import AppTest

    os.environ["FACECORE_GALLERY_DIR"] = str(work / "gallery")
    people = image_folder(data_home / "faces_small")
    photos = [p for paths in people.values() for p in paths]
    # Disjoint pairs: every photo is new to the page, so the per-image cache never answers.
    pairs = list(zip(photos[0::2], photos[1::2], strict=False))[: n_pairs + 1]

    at = AppTest.from_file(str(REPO_ROOT / "app.py"), default_timeout=600)
    at.run()
    at.switch_page("app_pages/verify.py").run()
    timings, answers = [], []
    for i, (a, b) in enumerate(pairs):
        at.file_uploader(key="verify_a_upload").set_value((a.name, a.read_bytes(), "image/jpeg"))
        at.file_uploader(key="verify_b_upload").set_value((b.name, b.read_bytes(), "image/jpeg"))
        started = time.perf_counter()
        at.run()
        elapsed = time.perf_counter() - started
        if at.exception:
            raise RuntimeError(at.exception)
        decided = [m.value for m in [*at.success, *at.error] if m.value.startswith(("**Same", "**Different"))]
        if i == 0:
            continue  # the first pair loads the models: that is the cold cost, not the warm one
        timings.append(elapsed * 1000)
        truth = "Same person" if a.parent == b.parent else "Different people"
        answers.append(f"{decided[0].split(':')[0].strip('*') if decided else 'no decision'} (truth: {truth})")
    return {
        "verify_warm_ms_median": round(statistics.median(timings), 1),
        "verify_warm_ms_max": round(max(timings), 1),
        "verify_pairs": len(timings),
        "verify_answers": answers,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-home", type=Path, default=REPO_ROOT.parent / "shared" / "data")
    parser.add_argument("--pairs", type=int, default=8)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        result = {**cold_start(Path(tmp) / "cold"), **verify_warm(args.data_home, args.pairs, Path(tmp) / "warm")}
    result["cpu_count"] = os.cpu_count()
    print(
        f"cold start: health {result['cold_health_s']} s, first page {result['cold_first_page_s']} s | "
        f"verify warm: median {result['verify_warm_ms_median']} ms, max {result['verify_warm_ms_max']} ms "
        f"over {result['verify_pairs']} pairs"
    )
    print(json.dumps(result))


if __name__ == "__main__":
    main()
