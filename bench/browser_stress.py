"""Stress the Verify flow the browser test uses: both photos chosen at once, many times, looking for a hang.

    python bench/browser_stress.py --runs 100 [--timeout 60] [--out /tmp/browser-stress] [--photos samples]
    python bench/browser_stress.py --runs 2 --grace 5                          # a quick run

Starts one ``streamlit run app.py`` on a free loopback port (empty temporary gallery and embedding cache,
as ``tests/test_e2e_browser.py`` does) and drives it with headless Chromium (Debian's ``chromium``,
through Playwright). Each run opens a fresh browser context (so a fresh Streamlit session) on Verify,
waits until both photo uploaders are on the page and its first run is over, chooses photo A and photo B at once
(``set_input_files`` on the two ``st.file_uploader`` inputs, back to back, as the test does) and waits
up to ``--timeout`` seconds for "Same person" or "Different people".

Pairs alternate between two photos of one person and photos of two people from ``faces_small/`` in
``--photos`` (by default the demo pack in ``samples/``); every run uses copies with a run-specific
trailer after the image data (decoders ignore it), so no cache (Streamlit's, the embedding cache) has
seen the bytes.

Every run records what goes over the wire: the upload requests, and each WebSocket message both
ways, decoded with Streamlit's protobufs (reruns with the uploaders' values, upload-URL requests and
replies, run starts and ends). A run that gets no decision in time is a hang. For each hang the
script saves, under ``--out``, a screenshot, the page's text and HTML, that trace and the server
log's tail, and records the state the page was in: the script state Streamlit's front end shows,
which uploaders show a file, whether "Choose two photos" is on the page, whether the file inputs
are the ones chosen into (not remounted), and whether the decision came in a further grace period.

Prints one JSON summary: runs, hangs (with their states), answer time p50/p95/max in seconds (the
first answer, which loads the models, apart), wrong answers, upload-URL requests and replies over all
runs, and the load average before and after. The hang this found, and its fix, are described in
``ui/streamlit_fixes.py`` and docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import _data
import _repo_path  # noqa: F401  (puts the repo root on sys.path)
import numpy as np

from facecore.evaluation.datasets import image_folder

REPO_ROOT = _repo_path.REPO_ROOT
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
APP = '[data-testid="stApp"]'
IDLE = f'{APP}[data-test-script-state="notRunning"]'
DECISION = "text=/Same person|Different people/"
UPLOADED = '[data-testid="stFileChip"]'
_LOCAL = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(work: Path, log: Path, debug: bool) -> tuple[subprocess.Popen, str]:
    """``streamlit run app.py`` as the browser test starts it; its output goes to ``log``."""
    port = free_port()
    env = {**os.environ, "FACECORE_GALLERY_DIR": str(work / "gallery"), "FACECORE_CACHE_DIR": str(work / "cache")}
    command = [
        sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless", "true",
        "--server.address", "127.0.0.1", "--server.port", str(port),
        "--server.fileWatcherType", "none", "--browser.gatherUsageStats", "false",
    ]  # fmt: skip
    if debug:
        command += ["--logger.level", "debug"]
    with log.open("w") as out:
        server = subprocess.Popen(command, cwd=REPO_ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"streamlit exited with {server.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with _LOCAL.open(f"{url}/_stcore/health", timeout=2):
                return server, url
        except OSError:
            time.sleep(0.2)
    server.terminate()
    raise SystemExit(f"streamlit did not become healthy in 120 s:\n{log.read_text()[-3000:]}")


def photo_pairs(photos: Path) -> itertools.cycle:
    """Endless pairs, alternating same person / two people, from ``photos/faces_small``."""
    people = {name: sorted(paths) for name, paths in image_folder(photos / "faces_small").items()}
    names = sorted(n for n, paths in people.items() if len(paths) >= 2)
    same = [(people[n][i], people[n][i + 1]) for n in names for i in range(len(people[n]) - 1)]
    different = [(people[a][0], people[b][-1]) for a, b in zip(names, names[1:] + names[:1], strict=True)]
    different = list(itertools.islice(itertools.cycle(different), len(same)))
    return itertools.cycle([p for pair in zip(same, different, strict=True) for p in pair])


def unseen_copy(photo: Path, folder: Path, run: int) -> Path:
    """The photo with a run-specific trailer after its end: new bytes, so no cache knows them."""
    copy = folder / f"run{run:04d}-{photo.parent.name}-{photo.name}"
    copy.write_bytes(photo.read_bytes() + b"\0" + f"stress run {run}".encode())
    return copy


def page_state(page) -> dict[str, object]:
    """What the page shows now: script state, uploaded file names per uploader, the prompt, errors."""
    app = page.locator(APP)
    uploaders = page.locator('[data-testid="stFileUploader"]')
    return {
        "script_state": app.first.get_attribute("data-test-script-state") if app.count() else None,
        "uploaders": uploaders.count(),
        "files_shown": [uploaders.nth(i).locator(UPLOADED).all_inner_texts() for i in range(uploaders.count())],
        "choose_two_photos_shown": page.get_by_text("Choose two photos").count() > 0,
        "spinner_shown": page.locator('[data-testid="stSpinner"]').count() > 0,
        "exceptions": page.locator('[data-testid="stException"]').all_inner_texts(),
        "errors": page.locator('[data-testid="stAlertContentError"]').all_inner_texts(),
        "connection": page.locator('[data-testid="stStatusWidget"]').all_inner_texts(),
    }


def record_hang(page, run: int, out: Path, log: Path, grace_s: float, trace) -> dict[str, object]:
    state = page_state(page)
    state["inputs_kept_since_chosen"] = [mark != 0 for mark in page.evaluate(READ_MARKS)]
    folder = out / f"hang-run{run:04d}"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "trace.txt").write_text("\n".join(trace.events))
    page.screenshot(path=str(folder / "screenshot.png"), full_page=True)
    (folder / "page.txt").write_text(page.inner_text("body"))
    (folder / "page.html").write_text(page.content())
    (folder / "server-log-tail.txt").write_text(log.read_text(errors="replace")[-20_000:])
    started = time.perf_counter()
    try:
        page.locator(DECISION).first.wait_for(timeout=grace_s * 1000)
        state["answered_after_grace_s"] = round(time.perf_counter() - started, 1)
    except Exception:
        state["answered_after_grace_s"] = None
    state["state_after_grace"] = page_state(page)
    (folder / "state.json").write_text(json.dumps(state, indent=2))
    state["run"] = run
    state["saved"] = str(folder)
    return state


class Trace:
    """What went over the wire in one run: upload requests, and the WebSocket messages both ways, decoded."""

    def __init__(self, page) -> None:
        self.started = time.perf_counter()
        self.events: list[str] = []
        page.on("request", lambda r: self._http("->", r) if "upload_file" in r.url else None)
        page.on("requestfinished", lambda r: self._http("<-", r) if "upload_file" in r.url else None)
        page.on("requestfailed", lambda r: self._http("FAILED", r) if "upload_file" in r.url else None)
        page.on("console", lambda m: self.note(f"console {m.type}: {m.text[:300]}"))
        page.on("websocket", self._websocket)

    def note(self, text: str) -> None:
        self.events.append(f"{time.perf_counter() - self.started:8.3f} {text}")

    def _http(self, way: str, request) -> None:
        self.note(f"http {way} {request.method} {request.url.rsplit('/', 1)[-1][:8]}")

    def _websocket(self, ws) -> None:
        ws.on("framesent", lambda payload: self.note("ws -> " + _back_msg(payload)))
        ws.on("framereceived", lambda payload: self.note("ws <- " + _forward_msg(payload)))


def _widget_value(state) -> str:
    kind = state.WhichOneof("value")
    if kind == "file_uploader_state_value":
        return "files=" + ",".join(f.name for f in state.file_uploader_state_value.uploaded_file_info)
    return f"{kind}={str(getattr(state, kind))[:40]!r}" if kind else "unset"


def _back_msg(payload: bytes | str) -> str:
    from streamlit.proto.BackMsg_pb2 import BackMsg

    if isinstance(payload, str):
        return f"text {payload[:80]!r}"
    msg = BackMsg.FromString(payload)
    kind = msg.WhichOneof("type")
    if kind == "rerun_script":
        widgets = msg.rerun_script.widget_states.widgets
        uploads = [f"{w.id.split('-')[-1]}:{_widget_value(w)}" for w in widgets if "upload" in w.id]
        return f"rerun_script page={msg.rerun_script.page_name!r} uploaders={uploads}"
    if kind == "file_urls_request":
        return f"file_urls_request {msg.file_urls_request.request_id[:8]} {list(msg.file_urls_request.file_names)}"
    return str(kind)


def _forward_msg(payload: bytes | str) -> str:
    from streamlit.proto.ForwardMsg_pb2 import ForwardMsg

    if isinstance(payload, str):
        return f"text {payload[:80]!r}"
    msg = ForwardMsg.FromString(payload)
    kind = msg.WhichOneof("type")
    if kind == "script_finished":
        return f"script_finished {ForwardMsg.ScriptFinishedStatus.Name(msg.script_finished)}"
    if kind == "session_status_changed":
        return f"session_status script_is_running={msg.session_status_changed.script_is_running}"
    if kind == "delta":
        return f"delta {list(msg.metadata.delta_path)} {msg.delta.WhichOneof('type')} page={msg.metadata.active_script_hash[:8]}"
    if kind == "file_urls_response":
        return f"file_urls_response {msg.file_urls_response.response_id[:8]}"
    if kind == "new_session":
        new = msg.new_session
        return f"new_session page={new.page_script_hash[:8]} main={new.main_script_hash[:8]}"
    return str(kind)


MARK_INPUTS = "() => document.querySelectorAll('input[type=file]').forEach((e, i) => { e.__stressMark = i + 1; })"
READ_MARKS = "() => Array.from(document.querySelectorAll('input[type=file]')).map(e => e.__stressMark ?? 0)"


def verify_once(browser, url: str, a: Path, b: Path, timeout_s: float) -> tuple[object, Trace, float | None, str]:
    """A fresh session on Verify, both photos chosen at once: (page, trace, seconds to the decision or None, decision)."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    trace = Trace(page)
    page.goto(f"{url}/verify")
    uploads = page.locator('input[type="file"]')
    uploads.nth(1).wait_for(state="attached", timeout=120_000)
    page.locator(IDLE).wait_for(timeout=120_000)
    page.evaluate(MARK_INPUTS)  # a hang report says whether the inputs were replaced since
    started = time.perf_counter()
    trace.note("choosing photo A")
    uploads.nth(0).set_input_files(str(a))
    trace.note("choosing photo B")
    uploads.nth(1).set_input_files(str(b))
    trace.note("both chosen")
    answer = page.locator(DECISION).first
    try:
        answer.wait_for(timeout=timeout_s * 1000)
    except Exception:
        return page, trace, None, ""
    return page, trace, time.perf_counter() - started, answer.inner_text().split(":")[0]


def stress(runs: int, timeout_s: float, grace_s: float, out: Path, debug: bool, photos_dir: Path) -> dict[str, object]:
    from playwright.sync_api import sync_playwright

    out.mkdir(parents=True, exist_ok=True)
    log = out / "streamlit.log"
    load_before = os.getloadavg()
    times, hangs, wrong = [], [], []
    url_requests = url_replies = 0
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        photos = work / "photos"
        photos.mkdir()
        server, url = start_server(work, log, debug)
        try:
            with sync_playwright() as pw:
                browser = pw.chromium.launch(
                    executable_path=CHROMIUM,
                    headless=True,
                    args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking"],
                )
                pairs = photo_pairs(photos_dir)
                for run in range(runs):
                    a, b = next(pairs)
                    copy_a, copy_b = unseen_copy(a, photos, run), unseen_copy(b, photos, run)
                    page, trace, seconds, said = verify_once(browser, url, copy_a, copy_b, timeout_s)
                    if seconds is None:
                        hangs.append(record_hang(page, run, out, log, grace_s, trace))
                        print(f"run {run}: HANG {json.dumps(hangs[-1])}", file=sys.stderr, flush=True)
                    else:
                        times.append(seconds)
                        truth = "Same person" if a.parent == b.parent else "Different people"
                        if said != truth:
                            wrong.append({"run": run, "a": str(a), "b": str(b), "said": said})
                        print(f"run {run}: {said} in {seconds:.2f} s", file=sys.stderr, flush=True)
                    url_requests += sum("file_urls_request" in e for e in trace.events)
                    url_replies += sum("file_urls_response" in e for e in trace.events)
                    page.context.close()
                browser.close()
        finally:
            server.terminate()
            try:
                server.wait(timeout=20)
            except subprocess.TimeoutExpired:
                server.kill()
    first, warm = (times[0], times[1:]) if times else (None, [])
    return {
        "runs": runs,
        "hangs": len(hangs),
        "hang_details": hangs,
        "timeout_s": timeout_s,
        "first_answer_s_models_loading": round(first, 2) if first is not None else None,
        "answer_s_p50": round(float(np.percentile(warm, 50)), 2) if warm else None,
        "answer_s_p95": round(float(np.percentile(warm, 95)), 2) if warm else None,
        "answer_s_max": round(max(warm), 2) if warm else None,
        "wrong_answers": wrong,
        "upload_url_requests": url_requests,
        "upload_url_replies": url_replies,
        "load_average_before": [round(x, 2) for x in load_before],
        "load_average_after": [round(x, 2) for x in os.getloadavg()],
        "cpu_count": os.cpu_count(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=100)
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds to wait for the decision")
    parser.add_argument("--grace", type=float, default=30.0, help="further seconds to watch a hung page")
    parser.add_argument("--out", type=Path, default=Path(tempfile.gettempdir()) / "browser-stress")
    parser.add_argument("--debug-log", action="store_true", help="run streamlit with --logger.level debug")
    parser.add_argument("--photos", type=Path, default=None, help=_data.PHOTOS_HELP)
    args = parser.parse_args()
    photos = _data.photos_dir(args.photos)
    print(json.dumps(stress(args.runs, args.timeout, args.grace, args.out, args.debug_log, photos)))


if __name__ == "__main__":
    main()
