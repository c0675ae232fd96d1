"""A live server with keys, fuzzed by schemathesis: with a valid key no 5xx and answers keep to the
schema; without a key only 401s; and no key ever appears in what the server printed.

The server is ``python -m api`` (the launcher) on a free loopback port, in its own process, over a
gallery with one key per role; the rate limit is off so the fuzzing is not throttled.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import positive_data_acceptance

from facecore.gallery import Gallery
from facecore.gallery.keys import ROLES, create_key
from tests.processes import stop_process

REPO_ROOT = Path(__file__).resolve().parents[1]
SETTINGS = settings(max_examples=15, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class LiveServer:
    def __init__(self, root: Path) -> None:
        with Gallery(root) as gallery:
            self.secrets = {role: create_key(gallery.database, f"{role}-fuzz", role)[1] for role in ROLES}
        self.base = f"http://127.0.0.1:{free_port()}"
        env = {**os.environ, "FACECORE_GALLERY_DIR": str(root), "FACECORE_API_RATE_PER_MINUTE": "0"}
        # A file, not a pipe: nobody reads a pipe while the fuzzing runs, and a full pipe blocks the server.
        self.log = root.parent / "server.log"
        self.process = subprocess.Popen(
            [sys.executable, "-m", "api", "--host", "127.0.0.1", "--port", self.base.rsplit(":", 1)[1]],
            cwd=REPO_ROOT,
            env=env,
            stdout=self.log.open("w"),
            stderr=subprocess.STDOUT,
        )

    def wait(self, patience_s: float = 180.0) -> None:
        deadline = time.monotonic() + patience_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                pytest.fail(f"the server exited with {self.process.returncode}:\n{self.log.read_text()}")
            try:
                answer = httpx.get(f"{self.base}/health", headers={"X-API-Key": self.secrets["read"]}, timeout=2)
                if answer.status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.5)
        pytest.fail("the server did not answer /health")

    def stop(self) -> str:
        stop_process(self.process)
        return self.log.read_text()


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    server = LiveServer(tmp_path_factory.mktemp("live") / "gallery")
    try:
        server.wait()
        yield server
    finally:
        output = server.stop()
        leaked = [role for role, secret in server.secrets.items() if secret in output]
        assert not leaked, f"the server printed the {leaked} key(s)"


@pytest.fixture(scope="module")
def live_schema(live: LiveServer):
    return schemathesis.openapi.from_url(f"{live.base}/openapi.json")


schema = schemathesis.pytest.from_fixture("live_schema")


@schema.parametrize()
@SETTINGS
def test_with_an_admin_key_no_server_error_and_answers_keep_to_the_schema(case, live: LiveServer) -> None:
    """Also runs schemathesis's ``ignored_auth`` check: the same request without the key must be refused."""
    response = case.call(headers={"Authorization": f"Bearer {live.secrets['admin']}"}, timeout=120)
    assert response.status_code < 500, f"{case.method} {case.formatted_path}: {response.text}"
    case.validate_response(response, excluded_checks=[positive_data_acceptance])


@schema.parametrize()
@SETTINGS
def test_without_a_key_every_answer_is_401(case) -> None:
    """Every request, malformed bodies and methods a path does not serve (e.g. TRACE) included, is
    refused with 401 before anything reads it."""
    response = case.call(timeout=120)
    assert response.status_code == 401, f"{case.method} {case.formatted_path}: {response.status_code} {response.text}"
    assert response.headers["www-authenticate"] == ["Bearer"]


def test_the_live_server_said_keys_are_required(live: LiveServer) -> None:
    answer = httpx.get(f"{live.base}/people", headers={"X-API-Key": live.secrets["read"]}, timeout=30)
    assert answer.status_code == 200
    assert httpx.get(f"{live.base}/people", timeout=30).status_code == 401
