"""The PostgreSQL store under load, through crashes, with its HNSW index, and behind two API servers.

The store-neutral tests of ``tests/test_gallery.py`` already run against PostgreSQL; these are the
ones whose SQLite versions (``tests/test_gallery_stress.py``) look at SQLite's files and locks:
several writer processes at once, an import killed with SIGKILL (between two commits and inside an
open transaction) then finished, and two uvicorn processes, each with its own connection pool, over
one database. The server is the session's real PostgreSQL (``tests/stores.py``), whose log is
checked for SIGILL at the end of the session.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import numpy as np
import psycopg
import pytest

from facecore.gallery import open_gallery, pg_search
from facecore.gallery.pg_database import to_format
from facecore.gallery.postgres import PostgresGallery
from facecore.images import read_bytes
from facecore.types import EmbeddedFace, Face
from tests.processes import stop_process
from tests.stores import PostgresServer, stored_images
from tests.test_api import free_port, upload, wait_until_healthy
from tests.test_gallery_stress import _importer, _writer, import_faces, perturbed, sources, spawn, unique_jpeg

__all__ = ["sources"]  # the module-scoped fixture, shared with the SQLite stress tests

WRITERS = 3
FACES_PER_WRITER = 80
IMPORT_SIZE = 160
KILLS = ((30, "after a commit"), (90, "inside a write"))
REPO_ROOT = Path(__file__).resolve().parents[1]


def test_question_marks_become_format_placeholders_outside_quotes() -> None:
    assert to_format("SELECT a FROM t WHERE b = ? AND c LIKE '?%' AND d = ?") == (
        "SELECT a FROM t WHERE b = %s AND c LIKE '?%%' AND d = %s"
    )
    assert to_format('SELECT "odd?name" FROM t WHERE x % 2 = ?') == 'SELECT "odd?name" FROM t WHERE x %% 2 = %s'


def test_other_modules_tables_work_through_write_and_snapshot(postgres_server: PostgresServer, tmp_path) -> None:
    """What issues 16/17 do: their own table, ``?`` placeholders, written with ``write`` and read in a snapshot."""
    gallery = open_gallery(postgres_server.url_at(tmp_path))
    database = gallery.database
    revision = gallery.revision()
    database.write(lambda db: db.execute("CREATE TABLE IF NOT EXISTS notes (id BIGSERIAL PRIMARY KEY, text TEXT)"))
    new_id = database.write(lambda db: db.execute("INSERT INTO notes (text) VALUES (?) RETURNING id", ("100%",)).fetchone()[0])
    with database.snapshot() as db:
        assert db.execute("SELECT text FROM notes WHERE id = ?", (new_id,)).fetchall() == [("100%",)]
    assert gallery.revision() == revision + 2
    with pytest.raises(psycopg.errors.ReadOnlySqlTransaction), database.snapshot() as db:
        db.execute("INSERT INTO notes (text) VALUES (?)", ("no",))


def test_keys_audit_log_and_operating_points_live_in_postgresql(postgres_server: PostgresServer, tmp_path) -> None:
    """Issues 16 and 17's tables, through their own modules, unchanged, on the PostgreSQL store."""
    from facecore.config import PipelineConfig
    from facecore.gallery import audit, keys
    from facecore.gallery.operating_points import OperatingPoints
    from facecore.verification.operating_points import from_pairs

    url = postgres_server.url_at(tmp_path)
    database = open_gallery(url).database
    key, secret = keys.create_key(database, "kiosk", "enrol")
    assert keys.has_active_keys(database) and keys.authenticate(database, secret).name == "kiosk"
    assert keys.authenticate(database, secret + "x") is None
    entry_id = audit.record(database, audit.AuditEntry("kiosk", "POST /verify", {"distance": 0.31}, ids=[7], threshold=0.6))
    config = PipelineConfig(detector="hog")
    rng = np.random.default_rng(0)
    distances = np.concatenate([rng.normal(0.4, 0.05, 200), rng.normal(0.8, 0.05, 200)])
    point = from_pairs("cams", config, "euclidean", distances, np.arange(400) < 200,
                       target="EER", source="own set", set_name="cams.zip")
    OperatingPoints(database).save(point, activate=True)

    reopened = open_gallery(url).database  # another pool: what was written is in the database
    (logged,) = audit.entries(reopened, key_name="kiosk")
    assert (logged.id, logged.route, logged.ids, logged.threshold) == (entry_id, "POST /verify", (7,), 0.6)
    assert abs(logged.time - time.time()) < 600  # a double, not PostgreSQL's single-precision REAL
    active = OperatingPoints(reopened).active(config, "euclidean")
    assert active is not None and active.name == "cams" and active.threshold == point.threshold
    np.testing.assert_array_equal(active.impostor, point.impostor)
    assert keys.revoke_key(reopened, "kiosk").revoked is not None
    assert keys.authenticate(reopened, secret) is None and key.id == keys.list_keys(reopened)[0].id


def test_writer_processes_at_once_lose_nothing(postgres_server: PostgresServer, tmp_path, sources) -> None:
    faces, model = sources
    url = postgres_server.url_at(tmp_path)
    gallery = open_gallery(url)
    people = [gallery.create_person(f"Writer {w}") for w in range(WRITERS)]
    context = spawn()
    barrier, results = context.Barrier(WRITERS), context.Queue()
    vectors = [perturbed(faces[w], FACES_PER_WRITER, seed=w) for w in range(WRITERS)]
    workers = [
        context.Process(
            target=_writer, args=(url, w, people[w].id, vectors[w], faces[w].chip, model, barrier, results)
        )
        for w in range(WRITERS)
    ]
    for worker in workers:
        worker.start()
    outcomes = dict(results.get(timeout=300) for _ in workers)
    for worker in workers:
        worker.join(timeout=60)
    assert outcomes == {w: "ok" for w in range(WRITERS)}

    total = WRITERS * FACES_PER_WRITER
    assert [gallery.person(p.id).face_count for p in people] == [FACES_PER_WRITER] * WRITERS
    assert stored_images(gallery) == total and gallery.index_size(model) == total
    assert gallery.revision() >= total
    for w, face in enumerate(faces[:WRITERS]):
        matches = gallery.search(face.embedding, k=FACES_PER_WRITER, model_version=model)
        assert {m.person_name for m in matches} == {f"Writer {w}"}
        stored = gallery.embeddings(model)[2][[m.person_name == f"Writer {w}" for m in gallery.faces()]]
        np.testing.assert_array_equal(np.sort(stored, axis=0), np.sort(vectors[w], axis=0))  # bit for bit


def _in_transaction(url: str, pid_of_backend_user: str) -> bool:
    """Whether some other session of this database is inside a transaction right now."""
    with psycopg.connect(url, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE pid <> pg_backend_pid() AND datname = current_database() "
            "AND application_name = %s AND xact_start IS NOT NULL",
            (pid_of_backend_user,),
        ).fetchone()
    return rows[0] > 0


def test_an_import_killed_mid_write_loses_nothing_acknowledged_and_can_be_finished(
    postgres_server: PostgresServer, tmp_path, sources
) -> None:
    faces, model = sources
    tag = f"importer-{os.getpid()}"
    url = f"{postgres_server.url_at(tmp_path)}&application_name={tag}"
    gallery = open_gallery(url)
    person = gallery.create_person("Imported")
    vectors = perturbed(faces[0], IMPORT_SIZE, seed=10)
    context = spawn()
    for target, moment in KILLS:
        importer = context.Process(target=_importer, args=(url, person.id, vectors, faces[0].chip, model))
        importer.start()
        deadline = time.monotonic() + 300
        while True:
            assert importer.is_alive(), f"the importer ended early (exit code {importer.exitcode})"
            assert time.monotonic() < deadline, "the importer never reached the moment to kill it"
            if gallery.person(person.id).face_count < target:
                continue
            if moment == "inside a write":
                os.kill(importer.pid, signal.SIGSTOP)
                os.waitpid(importer.pid, os.WUNTRACED)
                if not _in_transaction(url, tag):
                    os.kill(importer.pid, signal.SIGCONT)
                    continue
            os.kill(importer.pid, signal.SIGKILL)
            importer.join(timeout=30)
            break
        seen = gallery.person(person.id).face_count
        assert target <= seen < IMPORT_SIZE
        # Every committed face is whole: its image, its chip, its vector; nothing half-written remains.
        assert stored_images(gallery) == seen == gallery.index_size(model)
        assert all(f.chip_path.is_file() for f in gallery.faces())

    assert gallery.repair().faces_removed == 0
    already = gallery.person(person.id).face_count
    added = import_faces(url, person.id, vectors, faces[0].chip, model)
    assert added == IMPORT_SIZE - already
    assert gallery.person(person.id).face_count == IMPORT_SIZE == stored_images(gallery)
    _, _, kept = gallery.embeddings(model)
    np.testing.assert_array_equal(np.sort(kept, axis=0), np.sort(vectors, axis=0))
    assert len({unique_jpeg(0, i) for i in range(IMPORT_SIZE)}) == IMPORT_SIZE


def test_enrolment_builds_the_index_by_itself_once_the_model_has_grown_past_the_size(
    postgres_server: PostgresServer, tmp_path, sources, monkeypatch: pytest.MonkeyPatch
) -> None:
    """add_face checks the size every _INDEX_CHECK_EVERY adds (1, 1 + every, ...); here every 2 adds and
    a size of 4, so the third add (3 faces) builds nothing and the fifth (5 faces) builds the index,
    whose build memory is not left on the pooled connection."""
    from facecore.gallery import postgres

    monkeypatch.setattr(postgres, "_INDEX_CHECK_EVERY", 2)
    monkeypatch.setattr(pg_search, "HNSW_MIN_FACES", 4)
    faces, model = sources
    gallery = open_gallery(postgres_server.url_at(tmp_path))
    person = gallery.create_person("Grows")
    with gallery.database.connection() as db:
        server_default = db.execute("SHOW maintenance_work_mem").fetchone()[0]
    built = []
    for j, vector in enumerate(perturbed(faces[0], 5, seed=7)):
        gallery.add_face(person.id, unique_jpeg(1, j), EmbeddedFace(Face((0, 0, 10, 10), 1.0, None, "hog"), vector, faces[0].chip), model)
        with gallery.database.connection() as db:
            built.append(pg_search.has_index(db, model))
            assert db.execute("SHOW maintenance_work_mem").fetchone()[0] == server_default
    assert built == [False, False, False, False, True]
    assert [m.face_id for m in gallery.search(faces[0].embedding, k=5, model_version=model)]


def test_an_hnsw_index_is_built_past_the_size_and_finds_what_exact_search_finds(
    postgres_server: PostgresServer, tmp_path, sources
) -> None:
    faces, model = sources
    gallery = open_gallery(postgres_server.url_at(tmp_path))
    assert isinstance(gallery, PostgresGallery)
    people = [gallery.create_person(f"Person {i}") for i in range(len(faces))]
    n = 400
    rows = []
    for i, (person, face) in enumerate(zip(people, faces, strict=True)):
        for j, vector in enumerate(perturbed(face, n // len(faces), seed=100 + i)):
            rows.append((person.id, unique_jpeg(i % 4, j % 50) + bytes([i, j % 256, j // 256]), vector, face))
    for person_id, data, vector, face in rows:
        gallery.add_face(person_id, data, EmbeddedFace(Face((0, 0, 10, 10), 1.0, None, "hog"), vector, face.chip), model)
    with gallery.database.connection() as db:
        assert not pg_search.has_index(db, model)  # far below HNSW_MIN_FACES
        assert pg_search.ensure_index(db, model, min_faces=n) and pg_search.has_index(db, model)
        definition = db.execute("SELECT indexdef FROM pg_indexes WHERE indexname = ?", (pg_search.index_name(model),))
        assert "m='16', ef_construction='64'" in definition.fetchone()[0]  # graph_settings(128): pgvector's defaults
    with gallery.database.connection() as db, db.raw.transaction():
        db.execute("SET LOCAL enable_sort = off")  # the shape of the query matches the index's
        plan = db.raw.execute(
            "EXPLAIN SELECT id FROM faces WHERE model_version = %s "
            "ORDER BY embedding::vector(128) <-> %s::vector(128) LIMIT 5",
            (model, str(faces[0].embedding.tolist())),
        ).fetchall()
    assert pg_search.index_name(model) in " ".join(r[0] for r in plan)  # the planner uses the index
    probes = perturbed(faces[1], 20, seed=999)
    for probe in probes:
        approximate = [m.face_id for m in gallery.search(probe, k=10, model_version=model)]
        exact = [m.face_id for m in gallery.search(probe, k=10, model_version=model, exact=True)]
        assert approximate[0] == exact[0] and len(set(approximate) & set(exact)) >= 9


def test_a_512_d_model_gets_the_denser_graph_its_recall_needs(postgres_server: PostgresServer, tmp_path, sources) -> None:
    """pg_search.graph_settings: 512-D vectors (ArcFace's size) are indexed with m 32, ef_construction 128."""
    import doctest

    assert doctest.testmod(pg_search).failed == 0
    faces, _ = sources
    gallery = open_gallery(postgres_server.url_at(tmp_path))
    person = gallery.create_person("Wide vectors")
    vectors = np.random.default_rng(5).normal(size=(40, 512)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    for i, vector in enumerate(vectors):
        face = EmbeddedFace(Face((0, 0, 10, 10), 1.0, None, "scrfd"), vector, faces[0].chip)
        gallery.add_face(person.id, unique_jpeg(3, i) + b"512", face, "wide-512")
    with gallery.database.connection() as db:
        assert pg_search.ensure_index(db, "wide-512", min_faces=40)
        definition = db.execute("SELECT indexdef FROM pg_indexes WHERE indexname = ?", (pg_search.index_name("wide-512"),))
        assert "vector(512)" in (text := definition.fetchone()[0]) and "m='32', ef_construction='128'" in text
    for vector in vectors[:5]:
        assert gallery.search(vector, k=1, model_version="wide-512")[0].distance == pytest.approx(0.0, abs=1e-5)


def test_two_api_servers_on_one_database_see_each_others_enrolments(
    postgres_server: PostgresServer, tmp_path, faces_small
) -> None:
    url = postgres_server.url_at(tmp_path)
    servers = []
    try:
        for _ in range(2):
            port = free_port()
            env = {**os.environ, "FACECORE_GALLERY_URL": url, "FACECORE_GALLERY_DIR": str(tmp_path / "unused")}
            process = subprocess.Popen(
                [sys.executable, "-m", "uvicorn", "api.main:app", "--host", "127.0.0.1", "--port", str(port)],
                cwd=REPO_ROOT,
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )
            servers.append((f"http://127.0.0.1:{port}", process))
        for base, process in servers:
            wait_until_healthy(base, process)
        (one, _), (other, _) = servers
        with httpx.Client(base_url=one, timeout=120) as a, httpx.Client(base_url=other, timeout=120) as b:
            kit = a.post("/people", json={"name": "Kit Harington"})
            assert kit.status_code == 201, kit.text
            photo = read_bytes(faces_small["kit_harington"][0])
            added = a.post(f"/people/{kit.json()['id']}/faces", files={"image": upload(photo)})
            assert added.status_code == 201, added.text
            probe = read_bytes(faces_small["kit_harington"][1])
            identified = b.post("/identify", files={"image": upload(probe)})
            assert identified.status_code == 200, identified.text
            assert [f["name"] for f in identified.json()["faces"]] == ["Kit Harington"]
            assert b.get("/health").json()["faces"] == 1
            chip = b.get(f"/faces/{added.json()['id']}/chip")
            assert chip.status_code == 200 and chip.content.startswith(b"\x89PNG")
            # A face moved on one server is the other person's on the other; its vector stays as stored.
            jon = b.post("/people", json={"name": "Jon Snow"}).json()
            moved = a.patch(f"/faces/{added.json()['id']}", json={"person_id": jon["id"]})
            assert moved.status_code == 200 and moved.json()["person_name"] == "Jon Snow", moved.text
            assert b.get(f"/people/{jon['id']}").json()["face_count"] == 1
            vector = b.get(f"/faces/{added.json()['id']}/embedding")
            assert vector.status_code == 200 and vector.json()["dimension"] == 128, vector.text
            assert [f["name"] for f in b.post("/identify", files={"image": upload(probe)}).json()["faces"]] == ["Jon Snow"]
    finally:
        for _, process in servers:
            stop_process(process)


def test_the_gallery_and_identify_pages_work_on_postgresql(
    postgres_server: PostgresServer, tmp_path, faces_small, monkeypatch: pytest.MonkeyPatch
) -> None:
    from streamlit.testing.v1 import AppTest

    from tests.test_app_pages import TIMEOUT, go, joined, jpeg

    url = postgres_server.url_at(tmp_path)
    monkeypatch.setenv("FACECORE_GALLERY_URL", url)
    monkeypatch.setenv("FACECORE_GALLERY_DIR", str(tmp_path / "not-used"))
    app = AppTest.from_file(str(REPO_ROOT / "app.py"), default_timeout=TIMEOUT)
    app.run()
    go(app, "gallery")
    shown = " ".join(c.value for c in app.caption)
    assert "postgresql://postgres:***@/postgres" in shown  # where the gallery is, password hidden
    app.text_input(key="new_person_name").input("Barack Obama")
    app.button(key="create_person").click().run()
    assert "Created Barack Obama" in joined(app.success)
    app.file_uploader(key="enrol_0_upload").set_value([jpeg(faces_small["obama"][0])])
    app.run()
    app.button(key="enrol_go").click().run()
    assert not app.exception and f"{faces_small['obama'][0].name}: enrolled" in joined(app.success)
    assert [(p.name, p.face_count) for p in open_gallery(url).people()] == [("Barack Obama", 1)]
    assert not (tmp_path / "not-used").exists()  # nothing went to the SQLite folder

    go(app, "identify")
    app.file_uploader(key="identify_probe_upload").set_value(jpeg(faces_small["obama"][1]))
    app.run()
    assert not app.exception and "Barack Obama" in joined(app.success)
