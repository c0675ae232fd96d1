"""The gallery under load and through crashes: concurrent writer processes lose nothing, and an import
killed with SIGKILL leaves a gallery that opens, agrees with its files and index, and can be finished.

Faces are real: a few faces from faces_small are embedded once (hog + dlib-keras), and every stored
face is one of them perturbed slightly, with its own tiny JPEG so every image has its own content hash.
Worker processes use the spawn start method and open their own ``Gallery`` (no connection crosses a
fork); they never load the models.
"""

from __future__ import annotations

import io
import multiprocessing
import os
import signal
import sqlite3
import time
import traceback
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from facecore.config import PipelineConfig
from facecore.gallery import Gallery, GalleryError, open_gallery
from facecore.gallery.database import is_busy
from facecore.pipeline import FacePipeline
from facecore.types import EmbeddedFace, Face

WRITERS = 4
FACES_PER_WRITER = 500
IMPORT_SIZE = 600
# Kill the importer once this many of its faces are committed: at once (between two faces, usually just
# after a commit), or at the next moment it holds the write lock (its image file written, its row not).
KILLS = ((80, "after a commit"), (250, "inside a write"), (420, "inside a write"))
SOURCE_FACES = [("obama", 0), ("biden", 0), ("rose_leslie", 0), ("kit_harington", 1)]
NOISE = 0.005  # per dimension: the perturbed copies stay far closer to their source than to other people


# ----------------------------------------------------------------------------- helpers (run in children too)


def unique_jpeg(worker: int, i: int) -> bytes:
    """A real 24x24 JPEG whose pixels (hence content hash) encode ``(worker, i)``."""
    pixels = np.full((24, 24, 3), 128, np.uint8)
    bits = np.array([(i >> bit) & 1 for bit in range(12)] + [(worker >> bit) & 1 for bit in range(4)])
    pixels[:8, :16] = (bits * 255)[None, :, None]  # 16 columns of 8-px-tall black/white bars
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, "JPEG", quality=95)
    return buffer.getvalue()


def stored_face(worker: int, i: int, vector: np.ndarray, chip: np.ndarray) -> EmbeddedFace:
    return EmbeddedFace(Face((i % 50, worker, 100, 100), 1.0, None, "hog"), vector, chip)


def _writer(url: str, worker: int, person_id: int, vectors, chip, model: str, barrier, results) -> None:
    """One of the concurrent writers: add its faces as fast as it can, searching now and then."""
    try:
        gallery = open_gallery(url)
        barrier.wait(timeout=120)  # start together, after the imports
        for i, vector in enumerate(vectors):
            gallery.add_face(person_id, unique_jpeg(worker, i), stored_face(worker, i, vector, chip), model)
            if i % 50 == 49:
                gallery.search(vector, k=3, model_version=model)  # readers interleave with the writers
        results.put((worker, "ok"))
    except BaseException as exc:  # report everything: the parent asserts on it
        results.put((worker, f"{type(exc).__name__}: {exc}\n{traceback.format_exc()}"))


def import_faces(url: str, person_id: int, vectors, chip, model: str) -> int:
    """An import that can be re-run: faces already stored are skipped. Returns how many it added."""
    gallery = open_gallery(url)
    added = 0
    for i, vector in enumerate(vectors):
        try:
            gallery.add_face(person_id, unique_jpeg(0, i), stored_face(0, i, vector, chip), model)
        except GalleryError as exc:
            if "already in the gallery" not in str(exc):
                raise
            continue
        added += 1
        if i % 40 == 39:
            gallery.search(vector, k=1, model_version=model)  # also saves the index file: kill that too
    return added


def _importer(url: str, person_id: int, vectors, chip, model: str) -> None:
    import_faces(url, person_id, vectors, chip, model)


# ----------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def sources(faces_small: dict[str, list[Path]]) -> tuple[list[EmbeddedFace], str]:
    """Real faces (hog + dlib-keras) to perturb, and the model version they were embedded with."""
    pipeline = FacePipeline(PipelineConfig(detector="hog"))
    faces = []
    for person, index in SOURCE_FACES:
        found = pipeline.process_bytes(faces_small[person][index].read_bytes())
        assert found, f"no face in {person}/{index + 1}"
        faces.append(found[0])
    return faces, pipeline.embedder.version


def perturbed(face: EmbeddedFace, count: int, seed: int) -> np.ndarray:
    noise = np.random.default_rng(seed).normal(0, NOISE, (count, 128)).astype(np.float32)
    return face.embedding[None, :] + noise


def spawn():
    return multiprocessing.get_context("spawn")


def db_rows(root: Path, sql: str) -> list[tuple]:
    """Read the database directly (read-only), as a check independent of the Gallery class."""
    with sqlite3.connect(f"file:{root / 'gallery.sqlite'}?mode=ro", uri=True) as db:
        return db.execute(sql).fetchall()


def assert_consistent(root: Path, model: str) -> Gallery:
    """Rows, files and the FAISS index agree: every row's files exist and the index holds every row."""
    assert db_rows(root, "PRAGMA integrity_check") == [("ok",)]
    assert db_rows(root, "PRAGMA foreign_key_check") == []
    gallery = Gallery(root)
    faces = gallery.faces()
    images = {p.stem for p in (root / "faces").iterdir() if not p.name.startswith(".tmp-")}
    assert {f.image_sha256 for f in faces} <= images  # files are written before their row commits
    assert all(f.chip_path.is_file() for f in faces)
    ids = {f.id for f in faces}
    assert gallery.index_size(model) == len(ids)
    if ids:
        matches = gallery.search(gallery.embeddings(model)[2][0], k=len(ids), model_version=model)
        assert {m.face_id for m in matches} == ids  # the index holds exactly the rows, by face id
    return gallery


# ----------------------------------------------------------------------------- concurrent writers


def test_four_processes_adding_500_faces_each_lose_nothing(tmp_path: Path, sources) -> None:
    faces, model = sources
    gallery = Gallery(tmp_path)
    people = [gallery.create_person(f"Writer {w}") for w in range(WRITERS)]
    assert gallery.index_size(model) == 0  # built before the writes: it must catch up with them
    context = spawn()
    barrier, results = context.Barrier(WRITERS), context.Queue()
    workers = [
        context.Process(
            target=_writer,
            args=(
                f"sqlite://{tmp_path}",
                w,
                people[w].id,
                perturbed(faces[w], FACES_PER_WRITER, seed=w),
                faces[w].chip,
                model,
                barrier,
                results,
            ),
        )
        for w in range(WRITERS)
    ]
    for worker in workers:
        worker.start()
    outcomes = dict(results.get(timeout=600) for _ in workers)
    for worker in workers:
        worker.join(timeout=60)
    assert outcomes == {w: "ok" for w in range(WRITERS)}

    total = WRITERS * FACES_PER_WRITER
    assert [gallery.person(p.id).face_count for p in people] == [FACES_PER_WRITER] * WRITERS
    assert db_rows(tmp_path, "SELECT COUNT(*), COUNT(DISTINCT image_sha256) FROM faces") == [(total, total)]
    assert len([p for p in (tmp_path / "faces").iterdir() if not p.name.startswith(".tmp-")]) == total
    assert_consistent(tmp_path, model)
    assert Gallery(tmp_path).index_size(model) == total  # a fresh instance (saved index or rebuilt) agrees
    # Each writer's faces are nearest their own source face: the vectors were stored as written.
    for w, face in enumerate(faces):
        matches = gallery.search(face.embedding, k=FACES_PER_WRITER, model_version=model)
        assert {m.person_name for m in matches} == {f"Writer {w}"}
    assert gallery.revision() >= total


# ----------------------------------------------------------------------------- SIGKILL during an import


def _committed(root: Path, person_id: int) -> int:
    try:
        return db_rows(root, f"SELECT COUNT(*) FROM faces WHERE person_id = {person_id}")[0][0]
    except sqlite3.OperationalError:  # locked for a moment by the importer: ask again
        return -1


def _someone_is_writing(root: Path) -> bool:
    """True while another connection holds the database's write lock (a transaction in progress)."""
    db = sqlite3.connect(root / "gallery.sqlite", timeout=0, isolation_level=None)
    try:
        db.execute("BEGIN IMMEDIATE")
        db.execute("ROLLBACK")
        return False
    except sqlite3.OperationalError as exc:
        if not is_busy(exc):  # busy, locked, or the WAL index being rebuilt after a kill
            raise
        return True
    finally:
        db.close()


def _freeze(process) -> None:
    os.kill(process.pid, signal.SIGSTOP)
    os.waitpid(process.pid, os.WUNTRACED)  # returns once it is really stopped


def _kill_when(root: Path, process, person_id: int, count: int, moment: str) -> int:
    """SIGKILL ``process`` once ``count`` of its faces are committed, at ``moment``; returns the count seen.

    "inside a write": the importer is frozen (SIGSTOP) at a random instruction and killed only if it is
    then holding the write lock, i.e. between BEGIN IMMEDIATE and the end of COMMIT; else it runs on.
    """
    deadline = time.monotonic() + 300
    while True:
        assert process.is_alive(), f"the importer ended early (exit code {process.exitcode})"
        assert time.monotonic() < deadline, "the importer never reached the moment to kill it"
        seen = _committed(root, person_id)
        if seen < count:
            continue
        if moment == "inside a write":
            _freeze(process)
            if not _someone_is_writing(root):
                os.kill(process.pid, signal.SIGCONT)
                continue
        os.kill(process.pid, signal.SIGKILL)
        process.join(timeout=30)
        assert process.exitcode == -signal.SIGKILL
        return seen


def test_an_import_killed_mid_write_leaves_a_consistent_gallery_and_can_be_finished(
    tmp_path: Path, sources
) -> None:
    faces, model = sources
    person = Gallery(tmp_path).create_person("Imported")
    vectors = perturbed(faces[0], IMPORT_SIZE, seed=10)
    chip = faces[0].chip
    context = spawn()
    for target, moment in KILLS:
        importer = context.Process(target=_importer, args=(f"sqlite://{tmp_path}", person.id, vectors, chip, model))
        importer.start()
        seen = _kill_when(tmp_path, importer, person.id, target, moment)
        assert target <= seen < IMPORT_SIZE  # killed in the middle, not after the end
        assert_consistent(tmp_path, model)  # opens, rows point at files, the index holds the rows

    # The last kill came inside a write: that face's image file is on disk, its row is not (earlier such
    # files were adopted by the next run, which stored the same bytes). repair() removes it. Temp files
    # (``.tmp-<random>-<name>``, from atomic_write) are removed once an hour old, and kept while younger
    # (a writer that might still be running): the kills' own temp files, if any, and one orphan of each
    # age made here are aged with os.utime, as an hour passing would.
    gallery = Gallery(tmp_path)
    referenced = {f.image_sha256 for f in gallery.faces()}
    folders = [tmp_path / name for name in ("faces", "chips", "index")]
    orphans = [p for p in (tmp_path / "faces").iterdir() if not p.name.startswith(".tmp-") and p.stem not in referenced]
    young = tmp_path / "faces" / f".tmp-{'1' * 16}-{'a' * 64}.jpg"
    old = tmp_path / "faces" / f".tmp-{'2' * 16}-{'b' * 64}.jpg"
    young.write_bytes(b"part of a live writer's image")
    old.write_bytes(b"part of a dead writer's image")
    two_hours_ago = time.time() - 7200
    stale = [p for folder in folders for p in folder.iterdir() if p.name.startswith(".tmp-") and p != young]
    for path in stale:
        os.utime(path, (two_hours_ago, two_hours_ago))
    assert len(orphans) == 1 and old in stale  # measured: 1 orphan image, 1 temp file left by the kills
    report = gallery.repair()
    assert report.faces_removed == 0  # no row ever pointed at a missing file
    assert report.files_removed == len(orphans) + len(stale)
    assert not any(p.exists() for p in [*orphans, *stale])
    chips = {Path(f.chip_path).name for f in gallery.faces()}
    assert [p for p in (tmp_path / "faces").iterdir() if p.stem not in referenced] == [young]
    assert {p.name for p in (tmp_path / "chips").iterdir()} == chips
    young.unlink()

    # Re-running the import finishes it: nothing lost, nothing twice.
    already = len(gallery.faces(person.id))
    added = import_faces(f"sqlite://{tmp_path}", person.id, vectors, chip, model)
    assert added == IMPORT_SIZE - already
    gallery = assert_consistent(tmp_path, model)
    assert gallery.person(person.id).face_count == IMPORT_SIZE
    stored = db_rows(tmp_path, "SELECT COUNT(DISTINCT image_sha256) FROM faces")[0][0]
    assert stored == IMPORT_SIZE
    _, _, kept = gallery.embeddings(model)
    np.testing.assert_array_equal(np.sort(kept, axis=0), np.sort(vectors, axis=0))  # bit for bit
