"""Dashboard speed in a real browser: cold start to a usable first page, and a warm Verify answer.

    python bench/app_speed.py [--photos samples] [--pairs 8]
    python bench/app_speed.py --pairs 1                            # a quick run
    python bench/app_speed.py --detector scrfd --model arcface-keras   # SCRFD + ArcFace, chosen in the sidebar

Starts ``streamlit run app.py`` on a free port (empty temporary gallery) and drives it with headless
Chromium (Debian's ``chromium``, through Playwright), as a person would:

* ``cold_health_s``: server started -> ``/_stcore/health`` answers;
* ``cold_first_page_s``: server started -> the home page's title and navigation are drawn. The models
  are not loaded yet: they load on the first page that needs them, behind a spinner
  (``first_verify_loading_models_s`` is that first Verify, TensorFlow import included);
* ``verify_warm_ms``: on a new Verify session, both photos chosen -> the decision ("Same person" or
  "Different people") is on the screen: upload, decode, detect, align and embed both, distance,
  decision and charts. Every pair is new to the server, so no per-image cache answers. Median and
  max over ``--pairs`` disjoint pairs of ``faces_small`` photos (web photos up to 2,204 px, not
  250x250 crops); the app's detectors see a copy shrunk to 800 px (``PipelineConfig.interactive``, ``facecore.detection.INTERACTIVE_MAX_SIDE``).

* ``verify_second_photo_ms``: photo A already on the page, photo B chosen -> the decision on the
  screen (one upload, one page run; B's bytes are new to the server);
* ``engine_verify_ms``: the same pairs without the server and browser: both photos' bytes -> decode ->
  detect (at the dashboard's 800 px) -> align -> embed -> distance, through ``FacePipeline``. This is
  the work a Verify answer needs; the browser figure adds two uploads, two page runs (each chosen
  photo reruns the page), drawing and Chromium itself, which shares the same 2 cores here.

The photos are ``--photos`` (holding ``faces_small/``), by default the demo pack in ``samples/``.
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

import _data
import _repo_path  # noqa: F401  (puts the repo root on sys.path)

from facecore.evaluation.datasets import image_folder

REPO_ROOT = _repo_path.REPO_ROOT
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
IDLE = '[data-testid="stApp"][data-test-script-state="notRunning"]'
DECISION = "text=/Same person|Different people/"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(work: Path) -> tuple[subprocess.Popen, str, float]:
    """``streamlit run app.py`` on a free port: the process, its URL and the ``perf_counter`` start."""
    port = free_port()
    env = {**os.environ, "FACECORE_GALLERY_DIR": str(work / "gallery")}
    command = [
        sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless", "true",
        "--server.port", str(port), "--browser.gatherUsageStats", "false",
    ]  # fmt: skip
    started = time.perf_counter()
    server = subprocess.Popen(command, cwd=REPO_ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return server, f"http://127.0.0.1:{port}", started


def wait_healthy(url: str) -> None:
    while True:
        try:
            urllib.request.urlopen(f"{url}/_stcore/health", timeout=1)
            return
        except OSError:
            time.sleep(0.05)


def choose(page, label: str, option: str) -> None:
    """Pick ``option`` in the sidebar's selectbox ``label`` and wait for the page to settle."""
    box = page.locator('[data-testid="stSelectbox"]').filter(has_text=label)
    box.click()
    page.get_by_role("option", name=option, exact=True).click()
    page.wait_for_timeout(300)
    page.locator(IDLE).wait_for(timeout=120_000)


def open_verify(page, url: str, settings: dict[str, str]) -> None:
    """A new session on Verify with the sidebar set to ``settings`` (label -> option shown)."""
    page.goto(f"{url}/verify")
    page.locator(IDLE).wait_for(timeout=120_000)
    for label, option in settings.items():
        choose(page, label, option)


def verify_once(page, url: str, a: Path, b: Path, settings: dict[str, str]) -> tuple[float, str]:
    """A new session on Verify, both photos chosen: seconds until the decision is drawn, and the decision."""
    open_verify(page, url, settings)
    uploads = page.locator('input[type="file"]')
    uploads.nth(1).wait_for(state="attached", timeout=120_000)
    started = time.perf_counter()
    uploads.nth(0).set_input_files(str(a))
    uploads.nth(1).set_input_files(str(b))
    answer = page.locator(DECISION).first
    answer.wait_for(timeout=300_000)
    return time.perf_counter() - started, answer.inner_text().split(":")[0]


def engine_verify_ms(pairs: list[tuple[Path, Path]], detector: str, model: str) -> list[float]:
    from facecore.config import PipelineConfig
    from facecore.pipeline import FacePipeline
    from facecore.verification.metrics import paired_distances

    pipeline = FacePipeline(PipelineConfig.interactive(detector=detector, embedder=model))  # the dashboard's 800 px
    pipeline.process_bytes(pairs[0][0].read_bytes())  # load the models
    timings = []
    for a, b in pairs:
        data_a, data_b = a.read_bytes(), b.read_bytes()
        started = time.perf_counter()
        face_a, face_b = pipeline.process_bytes(data_a)[0], pipeline.process_bytes(data_b)[0]
        paired_distances(face_a.embedding[None], face_b.embedding[None])
        timings.append((time.perf_counter() - started) * 1000)
    return timings


def unseen_copy(photo: Path, work: Path) -> Path:
    """The photo with one byte after its end (decoders ignore it): new bytes, so no cache knows it."""
    copy = work / f"unseen-{photo.parent.name}-{photo.name}"
    copy.write_bytes(photo.read_bytes() + b"\0")
    return copy


def verify_second_photo(page, url: str, a: Path, b: Path, settings: dict[str, str]) -> float:
    """Photo A already shown; seconds from choosing photo B to the decision on the screen."""
    open_verify(page, url, settings)
    uploads = page.locator('input[type="file"]')
    uploads.nth(1).wait_for(state="attached", timeout=120_000)
    uploads.nth(0).set_input_files(str(a))
    page.get_by_text("Choose two photos").wait_for(timeout=120_000)
    page.wait_for_timeout(300)
    page.locator(IDLE).wait_for(timeout=120_000)
    started = time.perf_counter()
    uploads.nth(1).set_input_files(str(b))
    page.locator(DECISION).first.wait_for(timeout=300_000)
    return time.perf_counter() - started


def sidebar_settings(detector: str, model: str) -> dict[str, str]:
    """The sidebar choices (label -> option as shown) for a detector and model other than the defaults."""
    from facecore.config import DEFAULT_DETECTOR
    from facecore.embedding.base import DEFAULT_EMBEDDER
    from ui.settings import detector_label, model_label

    settings = {}
    if detector != DEFAULT_DETECTOR:
        settings["Face detector"] = detector_label(detector)
    if model != DEFAULT_EMBEDDER:
        settings["Embedding model"] = model_label(model)
    return settings


def measure(photos_dir: Path, n_pairs: int, work: Path, detector: str, model: str) -> dict[str, object]:
    from playwright.sync_api import sync_playwright

    people = image_folder(photos_dir / "faces_small")
    photos = [p for paths in people.values() for p in paths]
    pairs = list(zip(photos[0::2], photos[1::2], strict=False))[: n_pairs + 1]  # disjoint pairs

    settings = sidebar_settings(detector, model)
    server, url, started = start_server(work)
    try:
        wait_healthy(url)
        health = time.perf_counter() - started
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.goto(url)
            page.get_by_role("heading", name="Face Verification Lab").wait_for(timeout=120_000)
            page.get_by_role("link", name="Verify").first.wait_for(timeout=120_000)
            first_page = time.perf_counter() - started
            timings, answers, cold_verify = [], [], None
            for a, b in pairs:
                seconds, said = verify_once(page, url, a, b, settings)
                if cold_verify is None:
                    cold_verify = seconds  # this one imports TensorFlow and loads the models
                    continue
                timings.append(seconds * 1000)
                truth = "Same person" if a.parent == b.parent else "Different people"
                answers.append(f"{said} (truth: {truth})")
            second = [verify_second_photo(page, url, a, unseen_copy(b, work), settings) * 1000 for a, b in pairs[1:]]
            browser.close()
    finally:
        server.terminate()
        server.wait(timeout=30)
    engine = engine_verify_ms(pairs[1:], detector, model)
    return {
        "engine_verify_ms_median": round(statistics.median(engine), 1),
        "engine_verify_ms_max": round(max(engine), 1),
        "cold_health_s": round(health, 2),
        "cold_first_page_s": round(first_page, 2),
        "first_verify_loading_models_s": round(cold_verify, 2),
        "verify_warm_ms_median": round(statistics.median(timings), 1),
        "verify_warm_ms_max": round(max(timings), 1),
        "verify_pairs": len(timings),
        "verify_second_photo_ms_median": round(statistics.median(second), 1),
        "verify_second_photo_ms_max": round(max(second), 1),
        "verify_answers": answers,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--photos", type=Path, default=None, help=_data.PHOTOS_HELP)
    parser.add_argument("--pairs", type=int, default=8)
    parser.add_argument("--detector", default="hog", help="chosen in the sidebar (default: the app's default, hog)")
    parser.add_argument("--model", default="dlib-keras", help="chosen in the sidebar, e.g. arcface-keras")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        result = measure(_data.photos_dir(args.photos), args.pairs, Path(tmp), args.detector, args.model)
    result.update(detector=args.detector, model=args.model)
    result["cpu_count"] = os.cpu_count()
    print(
        f"cold start: health {result['cold_health_s']} s, first page {result['cold_first_page_s']} s, "
        f"first verify (models load) {result['first_verify_loading_models_s']} s | verify warm: median "
        f"{result['verify_warm_ms_median']} ms, max {result['verify_warm_ms_max']} ms over {result['verify_pairs']} pairs"
        f" | second photo -> decision: median {result['verify_second_photo_ms_median']} ms"
        f" | engine: median {result['engine_verify_ms_median']} ms, max {result['engine_verify_ms_max']} ms"
    )
    print(json.dumps(result))


if __name__ == "__main__":
    main()
