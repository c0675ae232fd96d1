"""On-disk cache of per-image results (faces and their embeddings), so a rerun is near-instant.

Keys combine the image's content hash with everything that changes the result: detector and
its options, alignment version, embedder version (including test-time augmentation) and the
face-selection mode. Values are small ``.npz`` blobs in one SQLite file (WAL, so concurrent
readers and writers from several processes are safe).

A field added to the payload later is optional, so the keys need not change for it: an entry written
before it reads back with the field's "unknown" value. ``faces_in_photo`` (how many faces the detector
found in the image, stored since batch verification reports it) is such a field: ``None`` in older
entries. A change to what an existing field holds (another face, another vector) changes the key.
"""

from __future__ import annotations

import io
import os
import sqlite3
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from facecore.types import Face

SCHEMA = "CREATE TABLE IF NOT EXISTS results (key TEXT PRIMARY KEY, payload BLOB NOT NULL)"


def default_cache_dir() -> Path:
    """``$FACECORE_CACHE_DIR``, else ``~/.cache/facecore``."""
    override = os.environ.get("FACECORE_CACHE_DIR")
    return Path(override) if override else Path.home() / ".cache" / "facecore"


@dataclass(frozen=True)
class CachedFaces:
    """What one image gave: its faces with embeddings; ``fallback`` when no face was detected.

    ``faces_in_photo``: how many faces the detector found in the image (the primary-face mode keeps
    one of them); ``None`` when unknown (entries written before it was stored).
    """

    faces: tuple[Face, ...]
    embeddings: np.ndarray  # (len(faces), dim) float32
    fallback: bool = False
    faces_in_photo: int | None = None

    def to_bytes(self) -> bytes:
        n = len(self.faces)
        landmarks = np.full((n, 5, 2), np.nan, np.float32)
        for i, face in enumerate(self.faces):
            if face.landmarks is not None:
                landmarks[i] = face.landmarks
        buffer = io.BytesIO()
        optional = {} if self.faces_in_photo is None else {"faces_in_photo": np.asarray(self.faces_in_photo, np.int64)}
        np.savez(
            buffer,
            boxes=np.asarray([f.box for f in self.faces], np.int64).reshape(n, 4),
            scores=np.asarray([f.score for f in self.faces], np.float64),
            landmarks=landmarks,
            detectors=np.asarray([f.detector for f in self.faces], dtype=str),
            embeddings=np.asarray(self.embeddings, np.float32),
            fallback=np.asarray(self.fallback),
            **optional,
        )
        return buffer.getvalue()

    @classmethod
    def from_bytes(cls, payload: bytes) -> CachedFaces:
        data = np.load(io.BytesIO(payload), allow_pickle=False)
        faces = tuple(
            Face(
                box=tuple(int(v) for v in box),
                score=float(score),
                landmarks=None if np.isnan(marks).any() else marks.astype(np.float32),
                detector=str(detector),
            )
            for box, score, marks, detector in zip(
                data["boxes"], data["scores"], data["landmarks"], data["detectors"], strict=True
            )
        )
        count = int(data["faces_in_photo"]) if "faces_in_photo" in data.files else None
        return cls(faces=faces, embeddings=data["embeddings"], fallback=bool(data["fallback"]), faces_in_photo=count)


class EmbeddingCache:
    """A key -> ``CachedFaces`` store in ``<directory>/embeddings.sqlite``."""

    def __init__(self, directory: str | Path | None = None) -> None:
        self.directory = Path(directory) if directory is not None else default_cache_dir()
        self.directory.mkdir(parents=True, exist_ok=True)
        self.path = self.directory / "embeddings.sqlite"
        self._local = threading.local()
        with self._connection() as db:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute(SCHEMA)

    def _connection(self) -> sqlite3.Connection:
        # One connection per thread: sqlite3 connections must not cross threads.
        db = getattr(self._local, "db", None)
        if db is None:
            db = sqlite3.connect(self.path, timeout=30)
            self._local.db = db
        return db

    def get_many(self, keys: Iterable[str]) -> dict[str, CachedFaces]:
        keys = list(keys)
        found: dict[str, CachedFaces] = {}
        db = self._connection()
        for start in range(0, len(keys), 500):  # stay under SQLite's bound-parameter limit
            chunk = keys[start : start + 500]
            marks = ",".join("?" * len(chunk))
            rows = db.execute(f"SELECT key, payload FROM results WHERE key IN ({marks})", chunk)
            found.update((key, CachedFaces.from_bytes(payload)) for key, payload in rows)
        return found

    def get(self, key: str) -> CachedFaces | None:
        return self.get_many([key]).get(key)

    def put_many(self, items: dict[str, CachedFaces]) -> None:
        with self._connection() as db:
            db.executemany(
                "INSERT OR REPLACE INTO results (key, payload) VALUES (?, ?)",
                [(key, value.to_bytes()) for key, value in items.items()],
            )

    def put(self, key: str, value: CachedFaces) -> None:
        self.put_many({key: value})

    def __len__(self) -> int:
        return self._connection().execute("SELECT COUNT(*) FROM results").fetchone()[0]

    def clear(self) -> None:
        with self._connection() as db:
            db.execute("DELETE FROM results")
