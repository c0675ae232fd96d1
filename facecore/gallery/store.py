"""The ``Gallery``: people and their faces in SQLite, their files on disk, searched through FAISS.

The package docstring (:mod:`facecore.gallery`) gives the layout and the guarantees. This module is
what a caller sees: people, faces, enrolment, search and identification, stats and repair, each write
one transaction of :mod:`~facecore.gallery.database` (schema, connections, retries). Names are
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

from facecore.gallery.database import BUMP_REVISION, Database, read_revision
from facecore.gallery.export import embeddings_frame, embeddings_npz
from facecore.gallery.files import (
    CHIPS_DIR,
    FACES_DIR,
    INDEX_DIR,
    atomic_write,
    chip_path,
    chip_png,
    image_path,
    is_temp,
    remove_strays,
)
from facecore.gallery.index import (
    SQL_CHUNK,
    ModelIndexes,
    as_embedding,
    vectors_from_blobs,
)
from facecore.gallery.names import clean_name, name_key
from facecore.gallery.records import (
    EmbeddedFaceLike,
    GalleryError,
    GalleryFace,
    Person,
    PipelineLike,
    RepairReport,
    as_box,
    as_bytes,
    as_id,
)
from facecore.images import ImageError, decode_image, image_hash
from facecore.types import Match
from facecore.verification.decisions import Identification, Rule, identify_decision

_PERSON_SELECT = (
    "SELECT p.id, p.name, p.created, (SELECT COUNT(*) FROM faces f WHERE f.person_id = p.id) FROM people p"
)
_FACE_SELECT = (
    "SELECT f.id, f.person_id, p.name, f.image_sha256, f.chip_path, f.box, f.score, f.detector, "
    "f.model_version, f.created FROM faces f JOIN people p ON p.id = f.person_id"
)

def default_gallery_dir() -> Path:
    """``$FACECORE_GALLERY_DIR``, else ``./gallery``."""
    return Path(os.environ.get("FACECORE_GALLERY_DIR") or "gallery").expanduser()


class Gallery:
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

    def __enter__(self) -> Gallery:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Close this thread's database connection (other threads' close when their thread ends)."""
        self._database.close()

    @property
    def location(self) -> str:
        """Where this gallery lives, for logs and messages."""
        return str(self.root)

    @property
    def database(self) -> Database:
        """``write(fn)`` / ``snapshot()`` for modules that keep their own tables in the gallery database."""
        return self._database

    def _db(self) -> sqlite3.Connection:
        return self._database.connection()  # this thread's

    def revision(self) -> int:
        """The write counter: it changes whenever any thread or process changed the gallery."""
        return read_revision(self._db())

    # ------------------------------------------------------------------ people

    def people(self) -> list[Person]:
        """Everyone, by name."""
        rows = self._db().execute(f"{_PERSON_SELECT} ORDER BY p.name COLLATE NOCASE, p.id").fetchall()
        return [Person(*row) for row in rows]

    def person(self, person_id: int) -> Person:
        row = self._db().execute(f"{_PERSON_SELECT} WHERE p.id = ?", (as_id(person_id),)).fetchone()
        if row is None:
            raise GalleryError(f"There is no person with id {person_id} in the gallery.")
        return Person(*row)

    def find_person(self, name: str) -> Person | None:
        """The person with this name (ignoring case and surrounding spaces), if any."""
        row = self._db().execute(f"{_PERSON_SELECT} WHERE p.name_key = ?", (name_key(name),)).fetchone()
        return None if row is None else Person(*row)

    def create_person(self, name: str) -> Person:
        cleaned = clean_name(name)

        def insert(db: sqlite3.Connection) -> int:
            self._check_name_free(db, cleaned, None)
            cursor = db.execute(
                "INSERT INTO people (name, name_key, created) VALUES (?, ?, ?)",
                (cleaned, name_key(cleaned), time.time()),
            )
            return int(cursor.lastrowid)

        return self.person(self._database.write(insert))

    def rename_person(self, person_id: int, new_name: str) -> Person:
        person_id = as_id(person_id)
        cleaned = clean_name(new_name)

        def rename(db: sqlite3.Connection) -> None:
            self._require_person(db, person_id)
            self._check_name_free(db, cleaned, person_id)
            db.execute(
                "UPDATE people SET name = ?, name_key = ? WHERE id = ?",
                (cleaned, name_key(cleaned), person_id),
            )

        self._database.write(rename)
        return self.person(person_id)

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

    @staticmethod
    def _require_person(db: sqlite3.Connection, person_id: int) -> str:
        row = db.execute("SELECT name FROM people WHERE id = ?", (person_id,)).fetchone()
        if row is None:
            raise GalleryError(f"There is no person with id {person_id} in the gallery.")
        return row[0]

    @staticmethod
    def _check_name_free(db: sqlite3.Connection, name: str, person_id: int | None) -> None:
        row = db.execute("SELECT id, name FROM people WHERE name_key = ?", (name_key(name),)).fetchone()
        if row is not None and row[0] != person_id:
            raise GalleryError(f"A person named '{row[1]}' already exists.")

    # ------------------------------------------------------------------ faces

    def add_face(
        self, person_id: int, image_bytes: bytes, face: EmbeddedFaceLike, model_version: str
    ) -> GalleryFace:
        """Store one embedded face of ``image_bytes`` for a person (the image and chip files first)."""
        person_id = as_id(person_id)
        data = as_bytes(image_bytes)
        vector = as_embedding(face.embedding)
        box = as_box(face.face.box)
        if not isinstance(model_version, str) or not model_version:
            raise ValueError("model_version must be a non-empty string")
        self.person(person_id)  # fail before writing files for nobody
        sha = image_hash(data)
        png = chip_png(face.chip)
        chip_rel = chip_path(png)
        files = {image_path(sha, data): data, chip_rel: png}
        self._ensure_files(files)
        box_json = json.dumps(list(box))

        def insert(db: sqlite3.Connection) -> int:
            name = self._require_person(db, person_id)
            duplicate = db.execute(
                "SELECT id FROM faces WHERE person_id = ? AND image_sha256 = ? AND box = ? AND model_version = ?",
                (person_id, sha, box_json, model_version),
            ).fetchone()
            if duplicate is not None:
                raise GalleryError(f"This face is already in the gallery for {name} (face #{duplicate[0]}).")
            stored = db.execute(
                "SELECT length(embedding) FROM faces WHERE model_version = ? LIMIT 1", (model_version,)
            ).fetchone()
            if stored is not None and stored[0] != vector.nbytes:
                raise GalleryError(
                    f"This model's faces in the gallery have {stored[0] // 4}-D embeddings, not {vector.size}-D."
                )
            # Again, under the write lock: a concurrent delete or repair may have removed a shared file.
            self._ensure_files(files)
            cursor = db.execute(
                "INSERT INTO faces (person_id, image_sha256, chip_path, box, score, detector, model_version, "
                "embedding, created) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    person_id,
                    sha,
                    chip_rel,
                    box_json,
                    None if face.face.score is None else float(face.face.score),
                    str(face.face.detector),
                    model_version,
                    vector.tobytes(),
                    time.time(),
                ),
            )
            return int(cursor.lastrowid)

        return self.face(self._database.write(insert))

    def enrol(self, person_id: int, image_bytes: bytes, pipeline: PipelineLike) -> GalleryFace:
        """Find the largest face in an uploaded image and add it to a person."""
        person = self.person(person_id)  # fail before the slow part
        data = as_bytes(image_bytes)
        try:
            image = decode_image(data)
        except ImageError as exc:
            raise GalleryError(str(exc)) from exc
        found = list(pipeline.process(image))
        if not found:
            raise GalleryError("No face found in this image.")
        largest = max(found, key=lambda f: f.face.area)
        return self.add_face(person.id, data, largest, pipeline.embedder.version)

    def face(self, face_id: int) -> GalleryFace:
        row = self._db().execute(f"{_FACE_SELECT} WHERE f.id = ?", (as_id(face_id),)).fetchone()
        if row is None:
            raise GalleryError(f"There is no face with id {face_id} in the gallery.")
        return self._gallery_face(row)

    def faces(self, person_id: int | None = None) -> list[GalleryFace]:
        """Every face (of one person when ``person_id`` is given), oldest first."""
        if person_id is None:
            rows = self._db().execute(f"{_FACE_SELECT} ORDER BY f.id").fetchall()
        else:
            self.person(person_id)
            rows = (
                self._db()
                .execute(f"{_FACE_SELECT} WHERE f.person_id = ? ORDER BY f.id", (as_id(person_id),))
                .fetchall()
            )
        return [self._gallery_face(row) for row in rows]

    def move_face(self, face_id: int, person_id: int) -> GalleryFace:
        """Give a stored face to another person (its vector and files stay as they are)."""
        face_id, person_id = as_id(face_id), as_id(person_id)

        def move(db: sqlite3.Connection) -> None:
            self._require_person(db, person_id)
            if db.execute("UPDATE faces SET person_id = ? WHERE id = ?", (person_id, face_id)).rowcount == 0:
                raise GalleryError(f"There is no face with id {face_id} in the gallery.")

        self._database.write(move)
        return self.face(face_id)

    def face_embedding(self, face_id: int) -> np.ndarray:
        """The stored float32 vector of one face."""
        row = self._db().execute("SELECT embedding FROM faces WHERE id = ?", (as_id(face_id),)).fetchone()
        if row is None:
            raise GalleryError(f"There is no face with id {face_id} in the gallery.")
        return vectors_from_blobs([row[0]])[0]

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
        rows = (
            self._db()
            .execute(
                "SELECT id, person_id, embedding FROM faces WHERE model_version = ? ORDER BY id",
                (model_version,),
            )
            .fetchall()
        )
        return (
            np.array([r[0] for r in rows], np.int64),
            np.array([r[1] for r in rows], np.int64),
            vectors_from_blobs([r[2] for r in rows]),
        )

    def model_versions(self) -> dict[str, int]:
        """Model version -> number of faces embedded with it."""
        rows = self._db().execute("SELECT model_version, COUNT(*) FROM faces GROUP BY model_version")
        return dict(rows.fetchall())

    def search(
        self, embedding: np.ndarray, k: int = 5, *, model_version: str, exact: bool = False
    ) -> list[Match]:
        """The ``k`` gallery faces nearest to ``embedding`` (euclidean), nearest first.

        Only faces embedded with ``model_version`` are searched: distances between two models mean nothing.
        Past :data:`facecore.gallery.faiss_hnsw.HNSW_MIN_FACES` faces the search is approximate (HNSW);
        ``exact=True`` scans every face instead.
        """
        query = as_embedding(embedding)[np.newaxis]
        k = as_id(k)
        if k < 1:
            raise ValueError(f"k must be at least 1, got {k}")
        squared, ids = self._indexes.search(query, k, model_version, exact=exact)
        return self._matches(ids, squared) if len(ids) else []

    def identify(
        self,
        embedding: np.ndarray,
        *,
        threshold: float,
        k: int = 5,
        model_version: str,
        rule: Rule | str = Rule.NEAREST,
    ) -> Identification:
        """Who ``embedding`` is among the ``k`` nearest faces, by ``rule`` (L2 ``threshold``; see
        :func:`facecore.verification.decisions.identify_decision`)."""
        threshold = float(threshold)
        if not math.isfinite(threshold) or threshold < 0:
            raise ValueError(f"threshold must be a finite distance >= 0, got {threshold}")
        return identify_decision(self.search(embedding, k, model_version=model_version), threshold=threshold, rule=rule)

    def index_size(self, model_version: str) -> int:
        """How many faces the (up to date) search index of ``model_version`` holds."""
        return self._indexes.size(model_version)

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
