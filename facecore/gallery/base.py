"""What every gallery store does the same way, written once: the store-neutral half of a store.

:class:`GalleryBase` holds the methods whose rules do not depend on where rows live: reading people
and faces, creating and renaming people (names cleaned by :mod:`~facecore.gallery.names`, one person
per name), moving a face, checking what ``add_face`` is given, enrolment (the largest face of a
photo), the argument checks of ``search`` and ``identify``, and the decision itself
(:func:`facecore.verification.decisions.identify_decision`).

A store (:class:`~facecore.gallery.store.Gallery` for SQLite, :class:`~facecore.gallery.postgres.PostgresGallery`)
subclasses it and supplies the rest:

* ``_database``: an object with ``write(fn, bump=True)`` (one transaction, ``fn(connection)``) and
  ``snapshot()``; connections speak ``?`` placeholders;
* ``_one(query, params)`` / ``_all(query, params)``: one read, on a connection of the store's;
* ``_PERSON_ORDER`` (how people sort by name), ``_CHIP_COLUMN`` (the faces column that names the chip,
  the sixth of the ten columns ``_gallery_face(row)`` reads), ``_vector_of(stored)`` (a stored
  embedding as float32);
* ``_nearest(query, k, model_version, exact)``: the search itself, on checked arguments;
* the writes whose storage differs: ``add_face``, ``delete_person``, ``delete_face``, ``repair``.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from facecore.gallery.files import chip_png
from facecore.gallery.index import as_embedding
from facecore.gallery.names import clean_name, name_key
from facecore.gallery.records import (
    EmbeddedFaceLike,
    GalleryError,
    GalleryFace,
    Person,
    PipelineLike,
    as_box,
    as_bytes,
    as_id,
)
from facecore.images import ImageError, decode_image, image_hash
from facecore.types import Match
from facecore.verification.decisions import Identification, Rule, identify_decision

PERSON_SELECT = (
    "SELECT p.id, p.name, p.created, (SELECT COUNT(*) FROM faces f WHERE f.person_id = p.id) FROM people p"
)
FACE_SELECT = (
    "SELECT f.id, f.person_id, p.name, f.image_sha256, f.{chip}, f.box, f.score, f.detector, "
    "f.model_version, f.created FROM faces f JOIN people p ON p.id = f.person_id"
)


@dataclass(frozen=True)
class NewFace:
    """One face to store, checked: what ``add_face`` writes, whatever the store."""

    person_id: int
    image: bytes
    image_sha256: str
    chip_png: bytes
    vector: np.ndarray
    box_json: str
    score: float | None
    detector: str
    model_version: str

    @classmethod
    def of(cls, person_id: int, image_bytes: bytes, face: EmbeddedFaceLike, model_version: str) -> NewFace:
        """Check every argument (``ValueError`` / ``TypeError`` for a caller's mistake) and encode the chip."""
        person_id = as_id(person_id)
        data = as_bytes(image_bytes)
        vector = as_embedding(face.embedding)
        box = as_box(face.face.box)
        if not isinstance(model_version, str) or not model_version:
            raise ValueError("model_version must be a non-empty string")
        score = None if face.face.score is None else float(face.face.score)
        return cls(
            person_id, data, image_hash(data), chip_png(face.chip), vector, json.dumps(list(box)), score,
            str(face.face.detector), model_version,
        )

    def duplicate_check(self, db: Any, name: str) -> None:
        """Refuse the same face of the same photo twice for one person and model."""
        duplicate = db.execute(
            "SELECT id FROM faces WHERE person_id = ? AND image_sha256 = ? AND box = ? AND model_version = ?",
            (self.person_id, self.image_sha256, self.box_json, self.model_version),
        ).fetchone()
        if duplicate is not None:
            raise GalleryError(f"This face is already in the gallery for {name} (face #{duplicate[0]}).")

    def dimension_check(self, stored_dimension: int | None) -> None:
        """Refuse a vector whose size differs from the model's faces already stored."""
        if stored_dimension is not None and stored_dimension != self.vector.size:
            raise GalleryError(
                f"This model's faces in the gallery have {stored_dimension}-D embeddings, not {self.vector.size}-D."
            )


class GalleryBase:
    """The methods every store shares; see the module docstring for what a subclass supplies."""

    _PERSON_ORDER: ClassVar[str]
    _CHIP_COLUMN: ClassVar[str]
    _database: Any

    @property
    def _face_select(self) -> str:
        return FACE_SELECT.format(chip=self._CHIP_COLUMN)

    def __enter__(self) -> Any:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        self._database.close()

    @property
    def database(self) -> Any:
        """``write(fn)`` / ``snapshot()`` for modules that keep their own tables in the gallery database."""
        return self._database

    # ------------------------------------------------------------------ what a store supplies

    def _one(self, query: str, params: tuple[Any, ...] = ()) -> Any:
        raise NotImplementedError

    def _all(self, query: str, params: tuple[Any, ...] = ()) -> list[Any]:
        raise NotImplementedError

    def _gallery_face(self, row: Any) -> GalleryFace:
        raise NotImplementedError

    @staticmethod
    def _vector_of(stored: Any) -> np.ndarray:
        raise NotImplementedError

    def _nearest(self, query: np.ndarray, k: int, model_version: str, exact: bool) -> list[Match]:
        raise NotImplementedError

    def add_face(self, person_id: int, image_bytes: bytes, face: EmbeddedFaceLike, model_version: str) -> GalleryFace:
        raise NotImplementedError

    # ------------------------------------------------------------------ people

    def people(self) -> list[Person]:
        """Everyone, by name."""
        return [Person(*row) for row in self._all(f"{PERSON_SELECT} ORDER BY {self._PERSON_ORDER}")]

    def person(self, person_id: int) -> Person:
        row = self._one(f"{PERSON_SELECT} WHERE p.id = ?", (as_id(person_id),))
        if row is None:
            raise GalleryError(f"There is no person with id {person_id} in the gallery.")
        return Person(*row)

    def find_person(self, name: str) -> Person | None:
        """The person with this name (ignoring case and surrounding spaces), if any."""
        row = self._one(f"{PERSON_SELECT} WHERE p.name_key = ?", (name_key(name),))
        return None if row is None else Person(*row)

    def create_person(self, name: str) -> Person:
        cleaned = clean_name(name)
        key = name_key(cleaned)

        def insert(db: Any) -> int:
            self._check_name_free(db, cleaned, None)
            db.execute("INSERT INTO people (name, name_key, created) VALUES (?, ?, ?)", (cleaned, key, time.time()))
            return int(db.execute("SELECT id FROM people WHERE name_key = ?", (key,)).fetchone()[0])

        return self.person(self._database.write(insert))

    def rename_person(self, person_id: int, new_name: str) -> Person:
        person_id = as_id(person_id)
        cleaned = clean_name(new_name)

        def rename(db: Any) -> None:
            self._require_person(db, person_id)
            self._check_name_free(db, cleaned, person_id)
            db.execute("UPDATE people SET name = ?, name_key = ? WHERE id = ?", (cleaned, name_key(cleaned), person_id))

        self._database.write(rename)
        return self.person(person_id)

    @staticmethod
    def _require_person(db: Any, person_id: int) -> str:
        row = db.execute("SELECT name FROM people WHERE id = ?", (person_id,)).fetchone()
        if row is None:
            raise GalleryError(f"There is no person with id {person_id} in the gallery.")
        return row[0]

    @staticmethod
    def _check_name_free(db: Any, name: str, person_id: int | None) -> None:
        row = db.execute("SELECT id, name FROM people WHERE name_key = ?", (name_key(name),)).fetchone()
        if row is not None and row[0] != person_id:
            raise GalleryError(f"A person named '{row[1]}' already exists.")

    # ------------------------------------------------------------------ faces

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
        row = self._one(f"{self._face_select} WHERE f.id = ?", (as_id(face_id),))
        if row is None:
            raise GalleryError(f"There is no face with id {face_id} in the gallery.")
        return self._gallery_face(row)

    def faces(self, person_id: int | None = None) -> list[GalleryFace]:
        """Every face (of one person when ``person_id`` is given), oldest first."""
        if person_id is None:
            rows = self._all(f"{self._face_select} ORDER BY f.id")
        else:
            self.person(person_id)
            rows = self._all(f"{self._face_select} WHERE f.person_id = ? ORDER BY f.id", (as_id(person_id),))
        return [self._gallery_face(row) for row in rows]

    def move_face(self, face_id: int, person_id: int) -> GalleryFace:
        """Give a stored face to another person (its vector, image and chip stay as they are)."""
        face_id, person_id = as_id(face_id), as_id(person_id)

        def move(db: Any) -> None:
            self._require_person(db, person_id)
            if db.execute("SELECT 1 FROM faces WHERE id = ?", (face_id,)).fetchone() is None:
                raise GalleryError(f"There is no face with id {face_id} in the gallery.")
            db.execute("UPDATE faces SET person_id = ? WHERE id = ?", (person_id, face_id))

        self._database.write(move)
        return self.face(face_id)

    def face_embedding(self, face_id: int) -> np.ndarray:
        """The stored float32 vector of one face."""
        row = self._one("SELECT embedding FROM faces WHERE id = ?", (as_id(face_id),))
        if row is None:
            raise GalleryError(f"There is no face with id {face_id} in the gallery.")
        return self._vector_of(row[0])

    def model_versions(self) -> dict[str, int]:
        """Model version -> number of faces embedded with it."""
        return dict(self._all("SELECT model_version, COUNT(*) FROM faces GROUP BY model_version"))

    # ------------------------------------------------------------------ search and identify

    def search(self, embedding: np.ndarray, k: int = 5, *, model_version: str, exact: bool = False) -> list[Match]:
        """The ``k`` gallery faces nearest to ``embedding`` (euclidean), nearest first.

        Only faces embedded with ``model_version`` are searched: distances between two models mean
        nothing. Past the store's index size the search is approximate (HNSW); ``exact=True`` looks
        at every face instead.
        """
        query = as_embedding(embedding)
        k = as_id(k)
        if k < 1:
            raise ValueError(f"k must be at least 1, got {k}")
        return self._nearest(query, k, model_version, exact)

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
