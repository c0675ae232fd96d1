"""Growing and moving galleries: the embedded store's switch to HNSW past a size (recall measured
against exact search, deletions filtered, the saved index reloaded), and ``gallery copy`` between
SQLite and PostgreSQL in both directions, run twice (idempotent) and checked vector for vector.

Vectors are real faces (hog + dlib-keras, from ``tests/test_gallery_stress.py``'s ``sources``) with
small per-face noise, so the neighbourhoods look like a gallery's; the HNSW threshold is lowered for
the test (monkeypatch) so that a few thousand faces are enough.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from facecore.gallery import Gallery, GalleryError, faiss_hnsw, open_gallery
from facecore.gallery.copying import copy_gallery, verify_copy
from facecore.types import EmbeddedFace, Face
from tests.stores import PostgresServer, stored_images
from tests.test_gallery_stress import perturbed, sources, unique_jpeg

__all__ = ["sources"]
REPO_ROOT = Path(__file__).resolve().parents[1]


def bulk_insert(gallery: Gallery, person_id: int, vectors: np.ndarray, model: str) -> None:
    """Rows straight into SQLite in one transaction (thousands of faces in a second), through the
    ``database.write`` that other modules use; their image files are not needed for searching."""

    def insert(db) -> None:
        db.executemany(
            "INSERT INTO faces (person_id, image_sha256, chip_path, box, score, detector, model_version, "
            "embedding, created) VALUES (?, ?, ?, '[0, 0, 1, 1]', 1.0, 'hog', ?, ?, 0)",
            [(person_id, f"{i:064x}", "chips/none.png", model, v.tobytes()) for i, v in enumerate(vectors)],
        )

    gallery.database.write(insert)


def test_the_search_candidate_list_follows_the_vectors_size_unless_the_environment_sets_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import doctest

    assert doctest.testmod(faiss_hnsw).failed == 0  # ef_search(128) == 128, ef_search(512) == 256
    monkeypatch.setattr(faiss_hnsw, "EF_SEARCH", 16)  # what FACECORE_FAISS_EF_SEARCH=16 sets
    assert faiss_hnsw.ef_search(128) == faiss_hnsw.ef_search(512) == 16
    code = "from facecore.gallery import faiss_hnsw; print(faiss_hnsw.ef_search(512))"
    env = {**os.environ, "FACECORE_FAISS_EF_SEARCH": "40"}
    ran = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, env=env, capture_output=True, text=True, check=True)
    assert ran.stdout.strip() == "40"


def test_the_embedded_index_becomes_hnsw_past_its_size_and_keeps_recall(
    tmp_path: Path, sources, monkeypatch: pytest.MonkeyPatch
) -> None:
    faces, model = sources
    monkeypatch.setattr(faiss_hnsw, "HNSW_MIN_FACES", 2000)
    gallery = Gallery(tmp_path)
    person = gallery.create_person("Crowd")
    rng = np.random.default_rng(5)
    # 4 real faces x 600 noisy copies, spread wider than the probes' noise so neighbours differ.
    vectors = np.concatenate([perturbed(f, 600, seed=i) + rng.normal(0, 0.02, (600, 128)).astype(np.float32) for i, f in enumerate(faces)])
    bulk_insert(gallery, person.id, vectors[:1500], model)
    assert gallery.index_size(model) == 1500
    assert not faiss_hnsw.is_hnsw(gallery._indexes._current(model).index)  # exact below the size
    bulk_insert(gallery, person.id, vectors[1500:], model)
    assert gallery.index_size(model) == 2400
    assert faiss_hnsw.is_hnsw(gallery._indexes._current(model).index)  # switched when it grew past

    probes = vectors[rng.choice(len(vectors), 200, replace=False)] + rng.normal(0, 0.005, (200, 128)).astype(np.float32)
    at1 = at10 = 0
    for probe in probes:
        approximate = [m.face_id for m in gallery.search(probe, k=10, model_version=model)]
        exact = [m.face_id for m in gallery.search(probe, k=10, model_version=model, exact=True)]
        at1 += approximate[0] == exact[0]
        at10 += len(set(approximate) & set(exact))
    assert at1 / len(probes) >= 0.99 and at10 / (10 * len(probes)) >= 0.99  # the targets the docs publish

    nearest = gallery.search(probes[0], k=1, model_version=model)[0].face_id
    gallery.delete_face(nearest)  # a graph node cannot go: it is filtered out, exactly and approximately
    assert nearest not in {m.face_id for m in gallery.search(probes[0], k=10, model_version=model)}
    assert nearest not in {m.face_id for m in gallery.search(probes[0], k=10, model_version=model, exact=True)}
    reopened = Gallery(tmp_path)  # the saved index and its deletions load back
    assert reopened.index_size(model) == 2399
    assert nearest not in {m.face_id for m in reopened.search(probes[0], k=10, model_version=model)}


def _fill(gallery, faces, model: str) -> None:
    for i, face in enumerate(faces):
        person = gallery.create_person(["Barack Obama", "Joe Biden", "Rose Leslie", "Kit Harington"][i])
        for j, vector in enumerate(perturbed(face, 3, seed=40 + i)):
            stored = EmbeddedFace(Face((j, i, 90, 90), 0.9, None, "hog"), vector, face.chip)
            gallery.add_face(person.id, unique_jpeg(i, j), stored, model)
    gallery.create_person("Nobody Yet")


@pytest.mark.parametrize("direction", ["sqlite-to-postgresql", "postgresql-to-sqlite"])
def test_gallery_copy_moves_everything_is_idempotent_and_checks_vectors(
    tmp_path: Path, sources, postgres_server: PostgresServer, direction: str
) -> None:
    faces, model = sources
    sqlite_url = f"sqlite://{tmp_path / 'embedded'}"
    postgres_url = postgres_server.url_at(tmp_path)
    source_url, target_url = (sqlite_url, postgres_url) if direction.startswith("sqlite") else (postgres_url, sqlite_url)
    source = open_gallery(source_url)
    _fill(source, faces, model)

    command = [sys.executable, "-m", "facecore", "gallery", "copy", "--from", source_url, "--to", target_url]
    first = subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True, timeout=300)
    assert first.returncode == 0, first.stderr
    assert "Copied 12 face(s) (0 already there), created 5 person(s); 12 face(s) checked" in first.stdout
    assert "12/12" in first.stderr  # tqdm's progress
    again = subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr
    assert "Copied 0 face(s) (12 already there), created 0 person(s)" in again.stdout

    target = open_gallery(target_url)
    assert [(p.name, p.face_count) for p in target.people()] == [(p.name, p.face_count) for p in source.people()]
    assert stored_images(target) == 12 and target.model_versions() == {model: 12}
    for face in faces:
        assert [m.person_name for m in target.search(face.embedding, k=3, model_version=model)] == [
            m.person_name for m in source.search(face.embedding, k=3, model_version=model)
        ]
    copied = {(f.person_name, f.image_sha256): f for f in target.faces()}
    for face in source.faces():
        assert target.image_bytes(face.image_sha256) == source.image_bytes(face.image_sha256)
        assert copied[face.person_name, face.image_sha256].chip_path.read_bytes() == face.chip_path.read_bytes()

    # A damaged copy is caught: one face deleted from it behind the copy's back.
    changed = target.faces()[0]
    target.delete_face(changed.id)
    with pytest.raises(GalleryError, match="is missing from the copy"):
        verify_copy(source, target)
    assert copy_gallery(source, target).faces_copied == 1  # and running the copy again repairs it
