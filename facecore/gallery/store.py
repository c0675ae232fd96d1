"""The ``Gallery``: people and their faces in SQLite, their files on disk, searched through FAISS.

The package docstring (:mod:`facecore.gallery`) gives the layout and the guarantees. The rules every
store shares (people, names, enrolment, the checks of search and identify) are in
:class:`~facecore.gallery.base.GalleryBase`; this module is SQLite's half: rows, files and the FAISS
search, each write one transaction of :mod:`~facecore.gallery.database` (schema, connections, retries). Names are
cleaned by :mod:`~facecore.gallery.names`, files written by :mod:`~facecore.gallery.files`, indexes
kept by :mod:`~facecore.gallery.index`, exports made by :mod:`~facecore.gallery.export`.
"""

from __future__ import annotations

import json
import math
import os
import sqlite3
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from facecore.gallery.base import GalleryBase, NewFace
from facecore.gallery.database import BUMP_REVISION, Database, read_revision
from facecore.gallery.export import embeddings_frame, embeddings_npz
from facecore.gallery.files import (
    CHIPS_DIR,
    FACES_DIR,
    INDEX_DIR,
    atomic_write,
    chip_path,
    image_path,
    is_temp,
    remove_strays,
)
from facecore.gallery.index import SQL_CHUNK, ModelIndexes, vectors_from_blobs
from facecore.gallery.records import EmbeddedFaceLike, GalleryError, GalleryFace, RepairReport, as_id
from facecore.types import Match


def default_gallery_dir() -> Path:
    """``$FACECORE_GALLERY_DIR``, else ``./gallery``."""
    return Path(os.environ.get("FACECORE_GALLERY_DIR") or "gallery").expanduser()


class Gallery(GalleryBase):
    """People and their faces in ``root`` (see :mod:`facecore.gallery` for the layout)."""

    def __init__(self, root: str | os.PathLike[str] | None = None) -> None:
        self.root = Path(root).expanduser() if root is not None else default_gallery_dir()
        self.root = self.root.resolve()
        self.db_path = self.root / "gallery.sqlite"
        self.faces_dir = self.root / FACES_DIR
        self.chips_dir = self.root / CHIPS_DIR
        self.index_dir = self.root / INDEX_DIR
        for folder in (self.root, self.faces_dir, self.chips_dir, self.index_dir):
            folder.mkdir(parents=True, exist_ok=True)
        try:
            self._database = Database(self.db_path)
        except sqlite3.DatabaseError as exc:
            raise GalleryError(f"{self.db_path} is not a usable gallery database ({exc}).") from exc
        self._indexes = ModelIndexes(self._database, self.index_dir)

    def __repr__(self) -> str:
        return f"Gallery({str(self.root)!r})"

    _PERSON_ORDER = "p.name COLLATE NOCASE, p.id"
    _CHIP_COLUMN = "chip_path"

    @property
    def location(self) -> str:
        """Where this gallery lives, for logs and messages."""
        return str(self.root)

    def _db(self) -> sqlite3.Connection:
        return self._database.connection()  # this thread's

    def _one(self, query: str, params: tuple[Any, ...] = ()) -> Any:
        return self._db().execute(query, params).fetchone()

    def _all(self, query: str, params: tuple[Any, ...] = ()) -> list[Any]:
        return self._db().execute(query, params).fetchall()

    @staticmethod
    def _vector_of(stored: bytes) -> np.ndarray:
        return vectors_from_blobs([stored])[0]

    def revision(self) -> int:
        """The write counter: it changes whenever any thread or process changed the gallery."""
        return read_revision(self._db())

    # ------------------------------------------------------------------ people

    def delete_person(self, person_id: int) -> None:
        """Delete a person and their faces; files no other face uses are removed after the commit."""
        person_id = as_id(person_id)

        def delete(db: sqlite3.Connection) -> list[tuple[str, str]]:
            self._require_person(db, person_id)
            files = db.execute(
                "SELECT image_sha256, chip_path FROM faces WHERE person_id = ?", (person_id,)
            ).fetchall()
            # Their faces go with them (ON DELETE CASCADE).
            db.execute("DELETE FROM people WHERE id = ?", (person_id,))
            return files

        self._remove_unreferenced(self._database.write(delete))

    # ------------------------------------------------------------------ faces

    def add_face(
        self, person_id: int, image_bytes: bytes, face: EmbeddedFaceLike, model_version: str
    ) -> GalleryFace:
        """Store one embedded face of ``image_bytes`` for a person (the image and chip files first)."""
        new = NewFace.of(person_id, image_bytes, face, model_version)
        self.person(new.person_id)  # fail before writing files for nobody
        chip_rel = chip_path(new.chip_png)
        files = {image_path(new.image_sha256, new.image): new.image, chip_rel: new.chip_png}
        self._ensure_files(files)

        def insert(db: sqlite3.Connection) -> int:
            new.duplicate_check(db, self._require_person(db, new.person_id))
            stored = db.execute(
                "SELECT length(embedding) FROM faces WHERE model_version = ? LIMIT 1", (model_version,)
            ).fetchone()
            new.dimension_check(None if stored is None else stored[0] // 4)
            # Again, under the write lock: a concurrent delete or repair may have removed a shared file.
            self._ensure_files(files)
            cursor = db.execute(
                "INSERT INTO faces (person_id, image_sha256, chip_path, box, score, detector, model_version, "
                "embedding, created) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (new.person_id, new.image_sha256, chip_rel, new.box_json, new.score, new.detector,
                 new.model_version, new.vector.tobytes(), time.time()),
            )
            return int(cursor.lastrowid)

        return self.face(self._database.write(insert))

    def delete_face(self, face_id: int) -> None:
        face_id = as_id(face_id)

        def delete(db: sqlite3.Connection) -> list[tuple[str, str]]:
            row = db.execute("SELECT image_sha256, chip_path FROM faces WHERE id = ?", (face_id,)).fetchone()
            if row is None:
                raise GalleryError(f"There is no face with id {face_id} in the gallery.")
            db.execute("DELETE FROM faces WHERE id = ?", (face_id,))
            return [row]

        self._remove_unreferenced(self._database.write(delete))

    def image_bytes(self, image_sha256: str) -> bytes:
        """The stored upload with this hash."""
        found = self._image_files(str(image_sha256)) if image_sha256.isalnum() else []
        if not found:
            raise GalleryError("That image is not in the gallery.")
        return found[0].read_bytes()

    def _gallery_face(self, row: Sequence[Any]) -> GalleryFace:
        face_id, person_id, name, sha, chip, box, score, detector, version, created = row
        return GalleryFace(
            id=face_id,
            person_id=person_id,
            person_name=name,
            image_sha256=sha,
            chip_path=self.root / chip,
            box=tuple(json.loads(box)),
            score=score,
            detector=detector,
            model_version=version,
            created=created,
        )

    # ------------------------------------------------------------------ files

    def _ensure_files(self, files: dict[str, bytes]) -> None:
        for rel, content in files.items():
            path = self.root / rel
            if not path.is_file():
                atomic_write(path, content)

    def _image_files(self, sha: str) -> list[Path]:
        return [p for p in self.faces_dir.glob(f"{sha}.*") if not is_temp(p)]

    def _remove_unreferenced(self, files: Iterable[tuple[str, str]]) -> int:
        """Delete these images and chips unless a face still uses them.

        Runs under the write lock, so an ``add_face`` racing with it either finds the file gone (and
        writes it again inside its own transaction) or has already committed the row that keeps it.
        """
        files = list(files)
        if not files:
            return 0

        def remove(db: sqlite3.Connection) -> int:
            doomed: list[Path] = []
            for sha in {sha for sha, _ in files}:
                if (
                    db.execute("SELECT 1 FROM faces WHERE image_sha256 = ? LIMIT 1", (sha,)).fetchone()
                    is None
                ):
                    doomed += self._image_files(sha)
            for chip in {chip for _, chip in files}:
                if db.execute("SELECT 1 FROM faces WHERE chip_path = ? LIMIT 1", (chip,)).fetchone() is None:
                    doomed.append(self.root / chip)
            for path in doomed:
                path.unlink(missing_ok=True)
            return len(doomed)

        return self._database.write(remove, bump=False)

    # ------------------------------------------------------------------ embeddings and search

    def embeddings(self, model_version: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(face_ids, person_ids, vectors (n, dim) float32)`` of one model version, by face id."""
        rows = self._all("SELECT id, person_id, embedding FROM faces WHERE model_version = ? ORDER BY id", (model_version,))
        return (
            np.array([r[0] for r in rows], np.int64),
            np.array([r[1] for r in rows], np.int64),
            vectors_from_blobs([r[2] for r in rows]),
        )

    def index_size(self, model_version: str) -> int:
        """How many faces the (up to date) search index of ``model_version`` holds."""
        return self._indexes.size(model_version)

    def _nearest(self, query: np.ndarray, k: int, model_version: str, exact: bool) -> list[Match]:
        # Past faiss_hnsw.HNSW_MIN_FACES faces the index is HNSW (approximate) unless ``exact``.
        squared, ids = self._indexes.search(query[np.newaxis], k, model_version, exact=exact)
        return self._matches(ids, squared) if len(ids) else []

    def _matches(self, ids: np.ndarray, squared: np.ndarray) -> list[Match]:
        found = [int(i) for i in ids if i >= 0]
        marks = ",".join("?" * len(found))
        rows = self._db().execute(
            f"SELECT f.id, f.person_id, p.name FROM faces f JOIN people p ON p.id = f.person_id "
            f"WHERE f.id IN ({marks})",
            found,
        )
        people = {face_id: (person_id, name) for face_id, person_id, name in rows}
        # FAISS gives squared L2; a face deleted since the index was synced is skipped.
        return [
            Match(face_id, *people[face_id], math.sqrt(max(float(d), 0.0)))
            for face_id, d in zip(found, squared, strict=False)
            if face_id in people
        ]

    # ------------------------------------------------------------------ export, stats, repair

    def export_embeddings(self, model_version: str | None = None) -> pd.DataFrame:
        """One row per face: ``face_id, person, model_version, e0..`` (for a CSV download).

        Models of different sizes in one export leave the shorter vectors' extra columns empty (NaN).
        """
        return embeddings_frame(self._db(), model_version)

    def export_npz_bytes(self, model_version: str | None = None) -> bytes:
        """An ``.npz`` with ``embeddings (n, dim)``, ``labels``, ``face_ids`` and ``model_versions``."""
        return embeddings_npz(self._db(), model_version)

    def stats(self) -> dict[str, Any]:
        """Counts for a settings or export panel."""
        with self._database.snapshot() as db:
            people = db.execute("SELECT COUNT(*) FROM people").fetchone()[0]
            empty = db.execute(
                "SELECT COUNT(*) FROM people p WHERE NOT EXISTS (SELECT 1 FROM faces f WHERE f.person_id = p.id)"
            ).fetchone()[0]
            faces, images = db.execute("SELECT COUNT(*), COUNT(DISTINCT image_sha256) FROM faces").fetchone()
            versions = dict(db.execute("SELECT model_version, COUNT(*) FROM faces GROUP BY model_version"))
            revision = read_revision(db)
        return {
            "root": str(self.root),
            "people": people,
            "people_without_faces": empty,
            "faces": faces,
            "images": images,
            "faces_by_model_version": versions,
            "revision": revision,
        }

    def repair(self) -> RepairReport:
        """Drop faces whose image file is gone, delete files nothing references, rebuild the indexes."""

        def fix(db: sqlite3.Connection) -> tuple[int, int, int]:
            rows = db.execute("SELECT id, image_sha256, chip_path FROM faces").fetchall()
            present = {p.stem for p in self.faces_dir.iterdir() if p.is_file() and not is_temp(p)}
            lost = [r[0] for r in rows if r[1] not in present]
            for start in range(0, len(lost), SQL_CHUNK):
                chunk = lost[start : start + SQL_CHUNK]
                db.execute(f"DELETE FROM faces WHERE id IN ({','.join('?' * len(chunk))})", chunk)
            if lost:
                db.execute(BUMP_REVISION)
            kept = [r for r in rows if r[1] in present]
            removed = remove_strays(self.root, {r[1] for r in kept}, {r[2] for r in kept})
            chips_missing = sum(1 for r in kept if not (self.root / r[2]).is_file())
            return len(lost), removed, chips_missing

        faces_removed, files_removed, chips_missing = self._database.write(fix, bump=False)
        return RepairReport(faces_removed, files_removed, chips_missing, self._indexes.rebuild())
