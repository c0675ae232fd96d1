"""One walk through the real app in a real headless Chromium (Debian's ``chromium``, driven by Playwright).

``streamlit run app.py`` is started on a free loopback port with an empty temporary gallery; the test
waits for ``/_stcore/health``, then, as a person would: compares two photos of one person on Verify
and sees "Same person", enrols that person on the Gallery page, and finds them on Identify with a
third photo. CI installs the browser (``.ci/run``) and sets ``FACECORE_REQUIRE_BROWSER=1`` so a missing
browser fails there instead of skipping.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.processes import stop_process

REPO_ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
STARTUP_TIMEOUT_S = 120
# The first Verify in a fresh server imports TensorFlow and loads the models.
ANSWER_TIMEOUT_MS = 180_000


def _browser_or_skip() -> None:
    missing = []
    if not Path(CHROMIUM).exists():
        missing.append("Debian's chromium (apt-get install chromium)")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        missing.append("playwright (pip install playwright)")
    if missing:
        reason = "browser test needs " + " and ".join(missing)
        if os.environ.get("FACECORE_REQUIRE_BROWSER") == "1":
            pytest.fail(reason)
        pytest.skip(reason)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# Loopback never goes through a proxy: urllib's shared opener keeps the proxies of the environment it
# was first built in (an offline-download test sets closed ones), so this check uses its own.
_LOCAL = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def _wait_healthy(url: str, server: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while time.monotonic() < deadline:
        if server.poll() is not None:
            pytest.fail(f"streamlit exited with {server.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with _LOCAL.open(f"{url}/_stcore/health", timeout=2) as answer:
                if answer.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    pytest.fail(f"streamlit did not become healthy in {STARTUP_TIMEOUT_S} s:\n{log.read_text()[-3000:]}")


@pytest.fixture(scope="module")
def app_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    _browser_or_skip()
    work = tmp_path_factory.mktemp("e2e")
    port = _free_port()
    env = {
        **os.environ,
        "FACECORE_GALLERY_DIR": str(work / "gallery"),
        "FACECORE_CACHE_DIR": str(work / "cache"),
    }
    log = work / "streamlit.log"
    with log.open("w") as out:
        server = subprocess.Popen(
            [
                sys.executable, "-m", "streamlit", "run", "app.py",
                "--server.headless", "true",
                "--server.address", "127.0.0.1",
                "--server.port", str(port),
                "--server.fileWatcherType", "none",
                "--browser.gatherUsageStats", "false",
            ],
            cwd=REPO_ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_healthy(url, server, log)
        yield url
    finally:
        stop_process(server, timeout_s=20)


@pytest.fixture(scope="module")
def browser_page(app_url: str):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking"],
        )
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        try:
            yield page
        finally:
            browser.close()


def _open(page, url: str, heading: str) -> None:
    page.goto(url)
    page.get_by_role("heading", name=heading).first.wait_for(timeout=60_000)


def _settle(page) -> None:
    """Wait until the script run the last widget change started has finished (a rerun redraws tabs)."""
    page.wait_for_timeout(300)  # let the change reach the server and the run start
    page.locator('[data-testid="stApp"][data-test-script-state="notRunning"]').wait_for(timeout=ANSWER_TIMEOUT_MS)


def _no_exception(page) -> None:
    assert page.locator('[data-testid="stException"]').count() == 0, page.locator(
        '[data-testid="stException"]'
    ).first.inner_text()


def test_verify_enrol_and_identify_in_a_real_browser(app_url: str, browser_page, faces_small) -> None:
    page = browser_page
    obama = sorted(faces_small["obama"])

    # Home: the shell renders with its links to every page.
    _open(page, app_url, "Face Verification Lab")
    _no_exception(page)

    # Verify: two photos of one person -> "Same person".
    _open(page, f"{app_url}/verify", "Verify")
    uploads = page.locator('input[type="file"]')
    uploads.nth(0).set_input_files(str(obama[0]))
    uploads.nth(1).set_input_files(str(obama[1]))
    page.get_by_text("Same person").first.wait_for(timeout=ANSWER_TIMEOUT_MS)
    _no_exception(page)

    # Gallery: create the person and enrol one photo.
    _open(page, f"{app_url}/gallery", "Gallery")
    page.get_by_placeholder("Name").fill("Barack Obama")
    page.get_by_placeholder("Name").press("Enter")
    page.get_by_role("button", name="Create person").click()
    page.get_by_text("Created Barack Obama").first.wait_for(timeout=30_000)
    _settle(page)
    page.get_by_role("tab", name="Add faces").click()
    page.locator('input[type="file"]').first.set_input_files(str(obama[0]))
    _settle(page)
    page.get_by_role("button", name="Enrol 1 photo(s)").click()
    page.get_by_text("enrolled a", exact=False).first.wait_for(timeout=ANSWER_TIMEOUT_MS)
    _no_exception(page)

    # Identify: another photo of him is found in the gallery, by name.
    _open(page, f"{app_url}/identify", "Identify")
    page.locator('input[type="file"]').first.set_input_files(str(obama[2]))
    answer = page.get_by_text("Face 1: Barack Obama", exact=False).first
    answer.wait_for(timeout=ANSWER_TIMEOUT_MS)
    assert "L2 distance" in answer.inner_text()
    _no_exception(page)
