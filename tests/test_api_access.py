"""Who may call the API: keys and roles per route, the loopback-only mode, the launcher, rate limits,
CORS, the audit log, and the face routes that came with them (move, embedding). Real models, real
photos, real galleries; the live-server and schemathesis runs are in ``tests/test_api_live_access.py``."""

from __future__ import annotations

import concurrent.futures
import logging
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest
from fastapi.testclient import TestClient

from api.access import NO_KEY_CALLER, ROUTE_ROLES
from api.config import ApiConfig
from api.main import create_app
from facecore.config import PipelineConfig
from facecore.gallery import Gallery
from facecore.gallery.audit import entries
from facecore.gallery.keys import ROLES, create_key, list_keys, revoke_key
from facecore.images import read_bytes
from facecore.pipeline import FacePipeline, build_pipeline

REPO_ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


@pytest.fixture(scope="module")
def pipeline() -> FacePipeline:
    return build_pipeline(PipelineConfig.interactive())


@pytest.fixture(scope="module")
def photos(faces_small: dict[str, list[Path]]) -> dict[str, bytes]:
    return {
        "obama1": read_bytes(faces_small["obama"][0]),
        "obama2": read_bytes(faces_small["obama"][1]),
        "biden": read_bytes(faces_small["biden"][1]),
    }


def upload(data: bytes) -> tuple[str, bytes, str]:
    return ("photo.jpg", data, "image/jpeg")


def keyed(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


def make_keys(root: Path) -> dict[str, str]:
    """One key per role in the gallery at ``root``: role -> secret."""
    with Gallery(root) as gallery:
        return {role: create_key(gallery.database, f"{role}-key", role)[1] for role in ROLES}


@pytest.fixture(scope="module")
def keyed_api(
    tmp_path_factory: pytest.TempPathFactory, pipeline: FacePipeline, photos: dict[str, bytes]
) -> Iterator[tuple[TestClient, dict[str, str], dict[str, int]]]:
    """An API whose gallery has one key per role, one person with one face; no rate limit."""
    root = tmp_path_factory.mktemp("keyed") / "gallery"
    secrets = make_keys(root)
    config = ApiConfig(gallery_root=root, rate_per_minute=0)
    with TestClient(create_app(config, pipeline)) as client:
        person = client.post("/people", json={"name": "Barack Obama"}, headers=keyed(secrets["enrol"]))
        assert person.status_code == 201, person.text
        face = client.post(
            f"/people/{person.json()['id']}/faces",
            files={"image": upload(photos["obama1"])},
            headers=keyed(secrets["enrol"]),
        )
        assert face.status_code == 201, face.text
        yield client, secrets, {"person_id": person.json()["id"], "face_id": face.json()["id"]}


def request_for(method: str, path: str, ids: dict[str, int]) -> dict:
    """A request on the route that costs no model run: bodies that are well-formed but refused later."""
    url = path.format(person_id=ids["person_id"], face_id=ids["face_id"])
    if method == "DELETE":  # deleting an unknown id: allowed (404) without changing the fixture's gallery
        url = path.format(person_id=999_999, face_id=999_999)
    kwargs: dict = {"method": method, "url": url}
    if path in ("/people", "/people/{person_id}") and method in ("POST", "PATCH"):
        kwargs["json"] = {"name": ""}  # 422 after the role check
    elif path == "/faces/{face_id}" and method == "PATCH":
        kwargs["json"] = {"person_id": ids["person_id"]}
    elif method == "POST":
        fields = {"/verify": ("image_a", "image_b"), "/people/import": ("archive",)}.get(path, ("image",))
        kwargs["files"] = {name: ("x.jpg", b"not an image", "image/jpeg") for name in fields}
    return kwargs


def test_every_route_of_the_app_has_a_role() -> None:
    app = create_app(ApiConfig(gallery_root=Path("unused")), pipeline=None)
    served = {(method.upper(), path) for path, item in app.openapi()["paths"].items() for method in item}
    assert served == set(ROUTE_ROLES)


@pytest.mark.parametrize(("method", "path"), sorted(ROUTE_ROLES))
def test_each_route_allows_its_role_and_refuses_a_lower_one_or_no_key(keyed_api, method: str, path: str) -> None:
    client, secrets, ids = keyed_api
    needed = ROUTE_ROLES[(method, path)]
    missing = client.request(**request_for(method, path, ids))
    assert missing.status_code == 401 and "API key" in missing.json()["detail"]
    assert missing.headers["www-authenticate"] == "Bearer"
    for role in ROLES:
        answer = client.request(**request_for(method, path, ids), headers=keyed(secrets[role]))
        if ROLES.index(role) < ROLES.index(needed):
            assert answer.status_code == 403, (role, answer.text)
            assert f"'{needed}'" in answer.json()["detail"] and f"'{role}'" in answer.json()["detail"]
        else:
            assert answer.status_code not in (401, 403, 429), (role, answer.text)
            assert answer.status_code in (200, 201, 204, 404, 422), (role, answer.text)


def counted_upload(sent: list[int]):
    """A 10 MB broken multipart body in 100 chunks, each counted in ``sent`` as the server asks for it."""
    yield b"--x\r\nContent-Disposition: form-data; name=image\r\n\r\n"
    for _ in range(100):
        sent.append(1)
        yield b"\0" * 100_000


def test_a_key_without_the_role_is_refused_before_its_upload_is_read(keyed_api) -> None:
    """A broken multipart body would be a 400 or 422 once parsed: the 403 comes first, so a read key
    cannot make the server read (and spool) a large upload on an enrol route."""
    client, secrets, ids = keyed_api
    person = ids["person_id"]
    for method, path in (("POST", f"/people/{person}/faces"), ("POST", "/people/import")):
        sent: list[int] = []
        answer = client.request(
            method, path, content=counted_upload(sent),
            headers={**keyed(secrets["read"]), "Content-Type": "multipart/form-data; boundary=x"},
        )
        assert answer.status_code == 403 and "'enrol'" in answer.json()["detail"], answer.text
        assert len(sent) < 100, len(sent)  # the server answered without reading the 10 MB
    parsed = client.post(
        f"/people/{person}/faces", content=counted_upload([]),
        headers={**keyed(secrets["enrol"]), "Content-Type": "multipart/form-data; boundary=x"},
    )
    assert parsed.status_code in (400, 404, 422)  # the enrol key's request is read, and refused as broken


def test_keys_come_in_either_header_and_bad_ones_are_refused(keyed_api) -> None:
    client, secrets, _ = keyed_api
    assert client.get("/people", headers={"X-API-Key": secrets["read"]}).status_code == 200
    assert client.get("/people", headers=keyed(secrets["read"])).status_code == 200
    for wrong in ("fvl_" + "x" * 43, secrets["read"][:-1], "Basic abc"):
        answer = client.get("/people", headers={"X-API-Key": wrong})
        assert answer.status_code == 401 and "not valid" in answer.json()["detail"]
    assert client.get("/people", headers={"Authorization": "Basic dXNlcjpwYXNz"}).status_code == 401


def test_a_revoked_key_stops_working(tmp_path: Path, pipeline: FacePipeline) -> None:
    root = tmp_path / "gallery"
    secrets = make_keys(root)
    with TestClient(create_app(ApiConfig(gallery_root=root), pipeline)) as client:
        assert client.get("/people", headers=keyed(secrets["read"])).status_code == 200
        with Gallery(root) as gallery:
            revoke_key(gallery.database, "read-key")
            assert [k.name for k in list_keys(gallery.database) if not k.active] == ["read-key"]
        assert client.get("/people", headers=keyed(secrets["read"])).status_code == 401


def test_the_openapi_schema_shows_both_schemes(keyed_api) -> None:
    client, _, _ = keyed_api
    schema = client.get("/openapi.json").json()
    schemes = schema["components"]["securitySchemes"]
    assert schemes["HTTPBearer"]["scheme"] == "bearer"
    assert schemes["APIKeyHeader"] == {**schemes["APIKeyHeader"], "type": "apiKey", "in": "header", "name": "X-API-Key"}
    assert schema["paths"]["/verify"]["post"]["security"] == [{"HTTPBearer": []}, {"APIKeyHeader": []}]
    assert "401" in schema["paths"]["/verify"]["post"]["responses"]


def test_with_no_key_only_local_callers_are_answered(tmp_path: Path, pipeline: FacePipeline) -> None:
    config = ApiConfig(gallery_root=tmp_path / "gallery")
    app = create_app(config, pipeline)
    with TestClient(app) as local:  # Starlette's in-process client: loopback by definition
        assert local.get("/people").status_code == 200
    with TestClient(app, client=("127.0.0.1", 5000)) as loopback:
        assert loopback.get("/people").status_code == 200
    with TestClient(app, client=("203.0.113.7", 5000)) as remote:
        refused = remote.get("/people")
        assert refused.status_code == 401 and "this machine only" in refused.json()["detail"]
        assert "api-key create" in refused.json()["detail"]
    insecure = ApiConfig(gallery_root=tmp_path / "gallery", insecure=True)
    with TestClient(create_app(insecure, pipeline), client=("203.0.113.7", 5000)) as remote:
        assert remote.get("/people").status_code == 200


def test_the_launcher_refuses_a_public_address_without_a_key(tmp_path: Path) -> None:
    env = {**os.environ, "FACECORE_GALLERY_DIR": str(tmp_path / "gallery")}
    refused = subprocess.run(
        [sys.executable, "-m", "api", "--host", "0.0.0.0", "--port", "1"],
        cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=120,
    )
    assert refused.returncode == 2
    assert "No API key exists" in refused.stderr and "--insecure" in refused.stderr


def test_the_rate_limit_is_reached_and_recovers(tmp_path: Path, pipeline: FacePipeline) -> None:
    root = tmp_path / "gallery"
    secrets = make_keys(root)
    config = ApiConfig(gallery_root=root, rate_per_minute=60, rate_burst=3)  # 1 a second, 3 at once
    with TestClient(create_app(config, pipeline)) as client:
        answers = [client.get("/people", headers=keyed(secrets["read"])).status_code for _ in range(3)]
        assert answers == [200, 200, 200]
        limited = client.get("/people", headers=keyed(secrets["read"]))
        assert limited.status_code == 429 and "read-key" in limited.json()["detail"]
        assert int(limited.headers["retry-after"]) >= 1
        # Another key has its own bucket.
        assert client.get("/people", headers=keyed(secrets["admin"])).status_code == 200
        time.sleep(int(limited.headers["retry-after"]) + 0.1)
        assert client.get("/people", headers=keyed(secrets["read"])).status_code == 200


def test_cors_answers_preflights_for_configured_origins_only(tmp_path: Path, pipeline: FacePipeline) -> None:
    preflight = {
        "Origin": "https://kiosk.example.org",
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization",
    }
    with TestClient(create_app(ApiConfig(gallery_root=tmp_path / "a"), pipeline)) as default:
        answer = default.options("/verify", headers=preflight)
        assert "access-control-allow-origin" not in answer.headers
    config = ApiConfig(gallery_root=tmp_path / "b", cors_origins=("https://kiosk.example.org",))
    with TestClient(create_app(config, pipeline)) as client:
        answer = client.options("/verify", headers=preflight)
        assert answer.status_code == 200
        assert answer.headers["access-control-allow-origin"] == "https://kiosk.example.org"
        assert "authorization" in answer.headers["access-control-allow-headers"].lower()
        other = client.options("/verify", headers={**preflight, "Origin": "https://evil.example.com"})
        assert other.status_code == 400 and "access-control-allow-origin" not in other.headers
        simple = client.get("/people", headers={"Origin": "https://kiosk.example.org"})
        assert simple.headers["access-control-allow-origin"] == "https://kiosk.example.org"
        # A page on that origin may read what decided a batch and how long to wait after a 429.
        exposed = {h.strip().lower() for h in simple.headers["access-control-expose-headers"].split(",")}
        assert {"retry-after", "x-operating-point", "x-threshold", "x-threshold-source", "x-total-pairs"} <= exposed


def test_a_decision_made_through_the_api_is_in_the_audit_log_without_the_key(
    tmp_path: Path, pipeline: FacePipeline, photos: dict[str, bytes], caplog: pytest.LogCaptureFixture
) -> None:
    root = tmp_path / "gallery"
    secrets = make_keys(root)
    caplog.set_level(logging.DEBUG)
    with TestClient(create_app(ApiConfig(gallery_root=root), pipeline)) as client:
        verified = client.post(
            "/verify",
            files={"image_a": upload(photos["obama1"]), "image_b": upload(photos["obama2"])},
            headers={"X-API-Key": secrets["read"]},
        )
        assert verified.status_code == 200
        person = client.post("/people", json={"name": "Joe Biden"}, headers=keyed(secrets["enrol"])).json()
        refused = client.post("/people", json={"name": "Nobody"}, headers=keyed(secrets["read"]))
        assert refused.status_code == 403
    with Gallery(root) as gallery:
        log = entries(gallery.database)
        stored = b"".join(p.read_bytes() for p in root.glob("gallery.sqlite*"))
    assert [(e.key_name, e.route) for e in log] == [("enrol-key", "POST /people"), ("read-key", "POST /verify")]
    decision = log[1]
    assert decision.result["same_person"] is True
    assert decision.result["distance"] == pytest.approx(verified.json()["distance"])
    assert decision.threshold == pytest.approx(verified.json()["threshold"])
    assert decision.model_version == verified.json()["model_version"]
    assert log[0].ids == (person["id"],)
    for secret in secrets.values():
        assert secret.encode() not in stored
        assert secret not in caplog.text


def test_four_concurrent_clients_have_every_decision_logged_once(
    tmp_path: Path, pipeline: FacePipeline, photos: dict[str, bytes]
) -> None:
    root = tmp_path / "gallery"
    with TestClient(create_app(ApiConfig(gallery_root=root), pipeline)) as client:  # no key: loopback

        def decide(worker: int) -> list[float]:
            pair = {"image_a": upload(photos["obama1"]), "image_b": upload(photos["biden" if worker % 2 else "obama2"])}
            answers = [client.post("/verify", files=pair) for _ in range(3)]
            assert all(a.status_code == 200 for a in answers), [a.text for a in answers]
            return [a.json()["distance"] for a in answers]

        with concurrent.futures.ThreadPoolExecutor(4) as pool:
            distances = [d for found in pool.map(decide, range(4)) for d in found]
    with Gallery(root) as gallery:
        log = entries(gallery.database)
    assert len(log) == 12 and len({e.id for e in log}) == 12
    assert sorted(e.result["distance"] for e in log) == pytest.approx(sorted(distances))
    assert {e.key_name for e in log} == {NO_KEY_CALLER}


def test_a_face_moves_to_another_person_and_its_embedding_is_readable(
    keyed_api, pipeline: FacePipeline, photos: dict[str, bytes]
) -> None:
    client, secrets, ids = keyed_api
    other = client.post("/people", json={"name": "Moved To"}, headers=keyed(secrets["enrol"])).json()
    vector = client.get(f"/faces/{ids['face_id']}/embedding", headers=keyed(secrets["read"]))
    assert vector.status_code == 200
    expected = pipeline.process_bytes(photos["obama1"])[0].embedding
    assert vector.json()["dimension"] == 128
    np.testing.assert_allclose(vector.json()["embedding"], expected, atol=1e-6)
    moved = client.patch(
        f"/faces/{ids['face_id']}", json={"person_id": other["id"]}, headers=keyed(secrets["enrol"])
    )
    assert moved.status_code == 200 and moved.json()["person_name"] == "Moved To"
    assert client.get(f"/people/{other['id']}", headers=keyed(secrets["read"])).json()["face_count"] == 1
    back = client.patch(
        f"/faces/{ids['face_id']}", json={"person_id": ids["person_id"]}, headers=keyed(secrets["enrol"])
    )
    assert back.status_code == 200 and back.json()["person_name"] == "Barack Obama"
    missing = client.patch(f"/faces/{ids['face_id']}", json={"person_id": 999_999}, headers=keyed(secrets["enrol"]))
    assert missing.status_code == 404 and "999999" in missing.json()["detail"]
    assert client.get("/faces/999999/embedding", headers=keyed(secrets["read"])).status_code == 404


def test_names_with_bidi_or_zero_width_characters_are_refused(keyed_api) -> None:
    client, secrets, _ = keyed_api
    for name, words in (("Eve\u202eboB", "bidirectional"), ("Bo\u200bb", "zero-width")):
        answer = client.post("/people", json={"name": name}, headers=keyed(secrets["enrol"]))
        assert answer.status_code == 422 and words in answer.json()["detail"]


def test_loopback_mode_stays_open_to_a_real_local_client(tmp_path: Path) -> None:
    """The address check with a real socket: httpx against ``python -m api`` on 127.0.0.1 (no key)."""
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {**os.environ, "FACECORE_GALLERY_DIR": str(tmp_path / "gallery")}
    server = subprocess.Popen(
        [sys.executable, "-m", "api", "--host", "127.0.0.1", "--port", str(port)],
        cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    try:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline and server.poll() is None:
            try:
                answer = httpx.get(f"http://127.0.0.1:{port}/people", timeout=2)
                break
            except httpx.TransportError:
                time.sleep(0.5)
        else:
            pytest.fail(f"the server did not start: {server.stdout.read() if server.poll() is not None else ''}")
        assert answer.status_code == 200 and answer.json() == []
    finally:
        server.terminate()
        output = server.communicate(timeout=30)[0]
    assert "answering on loopback only" in output
