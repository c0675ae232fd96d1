"""The gallery on PostgreSQL + pgvector: the same public methods as :class:`~facecore.gallery.store.Gallery`.

Everything lives in one database (``postgresql://user@host:port/db``), so several API servers on
several machines see one gallery: people, faces with their ``vector`` embeddings, and the uploaded
images and aligned chips as ``bytea`` (tables ``images`` and ``chips``, by content hash). A face and
its image and chip are written in one transaction, and deleting the last face of an image deletes
the image in the same transaction, so nothing is ever left dangling and ``repair()`` only rebuilds
the search indexes. Search is SQL (:mod:`~facecore.gallery.pg_search`).

``GalleryFace.chip_path`` is a file, as pages and the API expect: chips are copied from the database
to ``<temp dir>/facecore-chips/<database id>/`` when a face is handed out (by content hash, so once).
"""

from __future__ import annotations

import contextlib
import json
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

import facecore.gallery.pg_search as pg_search
from facecore.gallery.base import GalleryBase, NewFace
from facecore.gallery.export import frame_from_rows, npz_from_rows
from facecore.gallery.files import atomic_write
from facecore.gallery.pg_database import PgConnection, PostgresDatabase, read_revision
from facecore.gallery.pg_records import (
    drop_if_unused,
    drop_unreferenced,
    export_rows,
    gallery_counts,
    safe_url,
    vector_of,
)
from facecore.gallery.records import EmbeddedFaceLike, GalleryError, GalleryFace, RepairReport, as_id
from facecore.images import image_hash
from facecore.types import Match

_INDEX_CHECK_EVERY = 500  # adds between two checks whether a model version has grown past HNSW_MIN_FACES


class PostgresGallery(GalleryBase):
    """People and their faces in the PostgreSQL database at ``url``."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._database = PostgresDatabase(url)
        self.chips_dir = Path(tempfile.gettempdir()) / "facecore-chips" / self._database.database_id
        self.chips_dir.mkdir(parents=True, exist_ok=True)
        self._adds = 0
        self._counts: dict[str, tuple[int, int]] = {}  # model version -> (revision, faces): see index_size

    def __repr__(self) -> str:
        return f"PostgresGallery({safe_url(self.url)!r})"

    _PERSON_ORDER = "lower(p.name), p.id"
    _CHIP_COLUMN = "chip_sha256"

    @property
    def location(self) -> str:
        return safe_url(self.url)

    @contextlib.contextmanager
    def _db(self) -> Iterator[PgConnection]:
        with self._database.connection() as db:
            yield db

    def _one(self, query: str, params: tuple[Any, ...] = ()) -> Any:
        with self._db() as db:
            return db.execute(query, params).fetchone()

    def _all(self, query: str, params: tuple[Any, ...] = ()) -> list[Any]:
        with self._db() as db:
            return db.execute(query, params).fetchall()

    @staticmethod
    def _vector_of(stored: Any) -> np.ndarray:
        return vector_of(stored)

    def _with_db(self, read: Any, *args: Any) -> Any:
        with self._db() as db:
            return read(db, *args)

    def revision(self) -> int:
        with self._db() as db:
            return read_revision(db)

    # ------------------------------------------------------------------ people

    def delete_person(self, person_id: int) -> None:
        person_id = as_id(person_id)

        def delete(db: PgConnection) -> list[str]:
            self._require_person(db, person_id)
            files = db.execute("SELECT image_sha256, chip_sha256 FROM faces WHERE person_id = ?", (person_id,)).fetchall()
            db.execute("DELETE FROM people WHERE id = ?", (person_id,))
            return drop_if_unused(db, files)

        self._forget_chips(self._database.write(delete))

    # ------------------------------------------------------------------ faces

    def add_face(
        self, person_id: int, image_bytes: bytes, face: EmbeddedFaceLike, model_version: str
    ) -> GalleryFace:
        """Store one embedded face of ``image_bytes`` for a person: image, chip and row in one transaction."""
        new = NewFace.of(person_id, image_bytes, face, model_version)
        chip_sha = image_hash(new.chip_png)

        def insert(db: PgConnection) -> int:
            new.duplicate_check(db, self._require_person(db, new.person_id))
            new.dimension_check(pg_search.stored_dimension(db, model_version))
            db.execute("INSERT INTO images (sha256, data) VALUES (?, ?) ON CONFLICT DO NOTHING", (new.image_sha256, new.image))
            db.execute("INSERT INTO chips (sha256, png) VALUES (?, ?) ON CONFLICT DO NOTHING", (chip_sha, new.chip_png))
            return db.execute(
                "INSERT INTO faces (person_id, image_sha256, chip_sha256, box, score, detector, model_version, "
                "embedding, created) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
                (new.person_id, new.image_sha256, chip_sha, new.box_json, new.score, new.detector, model_version,
                 new.vector, time.time()),
            ).fetchone()[0]

        face_id = self._database.write(insert)
        self._adds += 1
        if self._adds % _INDEX_CHECK_EVERY == 1:
            with self._db() as db:
                pg_search.ensure_index(db, model_version)
        return self.face(face_id)

    def delete_face(self, face_id: int) -> None:
        face_id = as_id(face_id)

        def delete(db: PgConnection) -> list[str]:
            row = db.execute("DELETE FROM faces WHERE id = ? RETURNING image_sha256, chip_sha256", (face_id,)).fetchone()
            if row is None:
                raise GalleryError(f"There is no face with id {face_id} in the gallery.")
            return drop_if_unused(db, [row])

        self._forget_chips(self._database.write(delete))

    def _forget_chips(self, chips: list[str]) -> None:
        """Remove deleted chips from this process's chip folder (other processes' copies are harmless)."""
        for sha in chips:
            (self.chips_dir / f"{sha}.png").unlink(missing_ok=True)

    def image_bytes(self, image_sha256: str) -> bytes:
        """The stored upload with this hash."""
        row = self._one("SELECT data FROM images WHERE sha256 = ?", (image_sha256,))
        if row is None:
            raise GalleryError("That image is not in the gallery.")
        return bytes(row[0])

    def _gallery_face(self, row: Any) -> GalleryFace:
        face_id, person_id, name, sha, chip_sha, box, score, detector, version, created = row
        path = self.chips_dir / f"{chip_sha}.png"
        if not path.is_file():
            found = self._one("SELECT png FROM chips WHERE sha256 = ?", (chip_sha,))
            if found is not None:
                atomic_write(path, bytes(found[0]))
        return GalleryFace(face_id, person_id, name, sha, path, tuple(json.loads(box)), score, detector, version, created)

    # ------------------------------------------------------------------ embeddings and search

    def embeddings(self, model_version: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        rows = self._all(
            "SELECT id, person_id, embedding FROM faces WHERE model_version = ? ORDER BY id", (model_version,)
        )
        if not rows:
            return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros((0, 128), np.float32)
        return (
            np.array([r[0] for r in rows], np.int64),
            np.array([r[1] for r in rows], np.int64),
            np.stack([vector_of(r[2]) for r in rows]),
        )

    def _nearest(self, query: np.ndarray, k: int, model_version: str, exact: bool) -> list[Match]:
        with self._db() as db, db.raw.transaction():
            dim = pg_search.stored_dimension(db, model_version)
            if dim is None:
                return []
            if dim != query.size:
                raise ValueError(f"the gallery holds {dim}-D embeddings of this model, got {query.size}-D")
            rows = pg_search.nearest(db, query, k, model_version, dim, exact=exact)
        return [Match(face_id, person_id, name, distance) for face_id, person_id, name, distance in rows]

    def index_size(self, model_version: str) -> int:
        """How many faces a search of ``model_version`` looks through.

        Counting a million rows takes ~70 ms (bench/api_identify_scale.py), and every identify answer
        reports this number, so the count is kept per model version with the revision it was read at
        and read again only after a write (every write bumps the revision). A write that lands between
        the two reads makes the next call count again, never a stale count stay.
        """
        with self._db() as db:
            revision = read_revision(db)
            cached = self._counts.get(model_version)
            if cached is not None and cached[0] == revision:
                return cached[1]
            count = int(db.execute("SELECT COUNT(*) FROM faces WHERE model_version = ?", (model_version,)).fetchone()[0])
        self._counts[model_version] = (revision, count)
        return count

    # ------------------------------------------------------------------ export, stats, repair

    def export_embeddings(self, model_version: str | None = None) -> pd.DataFrame:
        return frame_from_rows(self._with_db(export_rows, model_version))

    def export_npz_bytes(self, model_version: str | None = None) -> bytes:
        return npz_from_rows(self._with_db(export_rows, model_version))

    def stats(self) -> dict[str, Any]:
        with self._database.snapshot() as db:
            return {"root": self.location, **gallery_counts(db)}

    def repair(self) -> RepairReport:
        """Nothing can dangle here (one transaction per write); drop unused images and chips and rebuild
        the HNSW indexes of the model versions past ``HNSW_MIN_FACES``."""
        removed = self._database.write(drop_unreferenced, bump=False)
        versions = list(self.model_versions())
        with self._db() as db:
            for version in versions:
                pg_search.drop_index(db, version)
                pg_search.ensure_index(db, version)
        return RepairReport(0, removed, 0, len(versions))
