"""A persistent gallery of people and their faces, for 1:1 checks and 1:K identification.

Layout under the root folder (``$FACECORE_GALLERY_DIR``, else ``./gallery``):

* ``gallery.sqlite``: people, faces (box, score, detector, model version, float32 embedding) and a
  ``meta`` table whose ``revision`` goes up with every write. WAL mode, foreign keys on; every write is
  one ``BEGIN IMMEDIATE`` transaction, retried while another writer holds the lock.
* ``faces/<sha256>.<ext>``: each uploaded image once, by content hash (the extension follows the
  content: ``.jpg`` for JPEG); ``chips/<sha256>.png``: the aligned 150x150 chip, for thumbnails.
  Files are written atomically (temp file + ``os.replace``) *before* the row naming them is committed,
  so a row never points at a missing file; a crash can only leave unreferenced files, which
  ``repair()`` removes. File names come only from hashes, never from person names.
* ``index/<sha256(model version)[:16]>.npz``: the FAISS index of one model version together with the
  revision it was built at, in one file so that the vectors and their revision can never disagree.

Searches use an exact FAISS ``IndexFlatL2`` (in an ``IndexIDMap2`` keyed by face id) per model version,
so faces embedded by another model are never compared. Before each search the revision is read; when
another thread or process wrote since, the index is brought up to date by adding and removing face ids
(face ids are never reused, thanks to AUTOINCREMENT, so an id always means the same vector).

Thread and process safety: one SQLite connection per thread, writes serialised by SQLite's lock (also
across processes), the in-memory indexes guarded by a lock. Create a ``Gallery`` after forking (or use
the spawn start method): a connection must not cross a fork.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import math
import operator
import os
import random
import secrets
import sqlite3
import threading
import time
import unicodedata
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, TypeVar

import faiss
import numpy as np
import pandas as pd
from PIL import Image

from facecore.images import ImageError, decode_image, image_hash
from facecore.types import Face, Match
from facecore.verification.decisions import Identification, Rule, identify_decision

EMBEDDING_DIM = 128  # the pretrained model's; a kept .keras model may have another size
MAX_EMBEDDING_DIM = 4096
MAX_NAME_LENGTH = 100
SCHEMA_VERSION = 1

_BUSY_TIMEOUT_S = 30.0
_WRITE_ATTEMPTS = 8
_STALE_TEMP_S = 3600.0  # a temp file this old belongs to a writer that died
_SQL_CHUNK = 500  # stay well under SQLite's bound-parameter limit
# Control characters (NUL, tab, newline, DEL, C1), lone surrogates, line and paragraph separators.
_FORBIDDEN_NAME_CATEGORIES = frozenset({"Cc", "Cs", "Zl", "Zp"})
_IMAGE_MAGIC = (
    (b"\xff\xd8\xff", ".jpg"),
    (b"\x89PNG\r\n\x1a\n", ".png"),
    (b"GIF87a", ".gif"),
    (b"GIF89a", ".gif"),
    (b"BM", ".bmp"),
    (b"II*\x00", ".tif"),
    (b"MM\x00*", ".tif"),
)

_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value NOT NULL)",
    """CREATE TABLE IF NOT EXISTS people (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        name TEXT NOT NULL UNIQUE COLLATE NOCASE,
        name_key TEXT NOT NULL UNIQUE,  -- NFC + casefold: 'ÉLISE' and 'élise' are the same person
        created REAL NOT NULL
    )""",
    """CREATE TABLE IF NOT EXISTS faces (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        person_id INTEGER NOT NULL REFERENCES people(id) ON DELETE CASCADE,
        image_sha256 TEXT NOT NULL,
        chip_path TEXT NOT NULL,
        box TEXT NOT NULL,
        score REAL,
        detector TEXT NOT NULL,
        model_version TEXT NOT NULL,
        embedding BLOB NOT NULL,
        created REAL NOT NULL
    )""",
    "CREATE INDEX IF NOT EXISTS faces_person ON faces(person_id)",
    "CREATE INDEX IF NOT EXISTS faces_model ON faces(model_version)",
    "CREATE INDEX IF NOT EXISTS faces_image ON faces(image_sha256)",
    "CREATE INDEX IF NOT EXISTS faces_chip ON faces(chip_path)",
)
_BUMP_REVISION = "UPDATE meta SET value = value + 1 WHERE key = 'revision'"
_PERSON_SELECT = (
    "SELECT p.id, p.name, p.created, (SELECT COUNT(*) FROM faces f WHERE f.person_id = p.id) FROM people p"
)
_FACE_SELECT = (
    "SELECT f.id, f.person_id, p.name, f.image_sha256, f.chip_path, f.box, f.score, f.detector, "
    "f.model_version, f.created FROM faces f JOIN people p ON p.id = f.person_id"
)

T = TypeVar("T")


class GalleryError(ValueError):
    """A problem the person using the gallery can fix; ``str(error)`` is a sentence to show them."""


# ----------------------------------------------------------------------------- records


@dataclass(frozen=True)
class Person:
    id: int
    name: str
    created: float
    face_count: int


@dataclass(frozen=True)
class GalleryFace:
    id: int
    person_id: int
    person_name: str
    image_sha256: str
    chip_path: Path  # absolute path of the stored 150x150 chip (PNG)
    box: tuple[int, int, int, int]  # (x, y, w, h) in the original image
    score: float | None
    detector: str
    model_version: str
    created: float


@dataclass(frozen=True)
class RepairReport:
    faces_removed: int  # rows whose image file was missing
    files_removed: int  # images and chips no row referenced, and temp files left by dead writers
    chips_missing: int  # rows kept although their chip file is missing (the embedding is still valid)
    indexes_rebuilt: int


class EmbeddedFaceLike(Protocol):
    """What ``add_face`` needs of a face: ``facecore.pipeline.EmbeddedFace`` fits."""

    @property
    def face(self) -> Face: ...
    @property
    def embedding(self) -> np.ndarray: ...
    @property
    def chip(self) -> np.ndarray | None: ...


class PipelineLike(Protocol):
    """What ``enrol`` needs of a pipeline: ``facecore.pipeline.FacePipeline`` fits."""

    embedder: Any  # has .version, the model version string

    def process(self, image: np.ndarray) -> Sequence[Any]: ...


@dataclass
class _Index:
    """A FAISS index of one model version and the database revision it matches."""

    revision: int
    index: Any  # faiss.IndexIDMap2 over IndexFlatL2

    def ids(self) -> np.ndarray:
        return faiss.vector_to_array(self.index.id_map).astype(np.int64)


# ----------------------------------------------------------------------------- helpers


def default_gallery_dir() -> Path:
    """``$FACECORE_GALLERY_DIR``, else ``./gallery``."""
    return Path(os.environ.get("FACECORE_GALLERY_DIR") or "gallery").expanduser()


def clean_name(name: str) -> str:
    """The name as stored (NFC, trimmed), or ``GalleryError`` saying why it cannot be used."""
    if not isinstance(name, str):
        raise GalleryError("A name must be text.")
    cleaned = unicodedata.normalize("NFC", name).strip()
    if not cleaned:
        raise GalleryError("A name cannot be empty.")
    if len(cleaned) > MAX_NAME_LENGTH:
        raise GalleryError(
            f"A name can have at most {MAX_NAME_LENGTH} characters; this one has {len(cleaned)}."
        )
    bad = next((c for c in cleaned if unicodedata.category(c) in _FORBIDDEN_NAME_CATEGORIES), None)
    if bad is not None:
        raise GalleryError(
            f"A name cannot contain control characters such as NUL, tabs or line breaks (found U+{ord(bad):04X})."
        )
    return cleaned


def _name_key(name: str) -> str:
    if not isinstance(name, str):
        raise TypeError(f"a name must be a str, not {type(name).__name__}")
    # SQLite's NOCASE folds ASCII only; this key makes uniqueness case-insensitive for every script.
    return unicodedata.normalize("NFC", unicodedata.normalize("NFC", name).strip().casefold())


def _as_id(value: Any) -> int:
    return operator.index(value)  # accepts numpy integers, rejects floats and strings


def _as_bytes(data: Any) -> bytes:
    if not isinstance(data, bytes | bytearray | memoryview):
        raise TypeError(f"expected the image as bytes, not {type(data).__name__}")
    if not data:
        raise GalleryError("The image file is empty.")
    return bytes(data)


def _single_threaded_faiss() -> None:
    """One query over an exact index takes well under a millisecond on one thread, but FAISS's OpenMP
    threads spin and wait whenever the cores are busy (TensorFlow, other sessions): measured 34 ms per
    10,000-face search with 2 threads on a loaded 2-core machine, 0.05 ms with 1."""
    if faiss.omp_get_max_threads() != 1:
        faiss.omp_set_num_threads(1)


def _as_embedding(vector: Any) -> np.ndarray:
    """A 1-D float32 vector of any size up to ``MAX_EMBEDDING_DIM`` (each model version keeps one size)."""
    arr = np.asarray(vector, dtype=np.float32)
    if arr.ndim > 2 or (arr.ndim == 2 and arr.shape[0] != 1) or not 1 <= arr.size <= MAX_EMBEDDING_DIM:
        raise ValueError(f"expected one embedding vector (1 to {MAX_EMBEDDING_DIM} values), got shape {arr.shape}")
    arr = arr.reshape(-1)
    if not np.isfinite(arr).all():
        raise ValueError("the embedding contains NaN or infinite values")
    return np.ascontiguousarray(arr)


def _as_box(box: Sequence[Any]) -> tuple[int, int, int, int]:
    if len(box) != 4:
        raise ValueError(f"expected a face box (x, y, w, h), got {box!r}")
    x, y, w, h = (int(v) for v in box)
    return x, y, w, h


def _chip_png(chip: np.ndarray | None) -> bytes:
    if chip is None:
        raise ValueError("the face has no chip; the gallery stores the aligned chip as its thumbnail")
    arr = np.asarray(chip)
    if arr.ndim != 3 or arr.shape[2] != 3 or arr.dtype != np.uint8:
        raise ValueError(f"expected an (H, W, 3) uint8 RGB chip, got {arr.shape} {arr.dtype}")
    buffer = io.BytesIO()
    # Level 1: a 150x150 chip encodes ~5x faster than at the default 6 (2 vs 9 ms) for ~13% more bytes.
    Image.fromarray(np.ascontiguousarray(arr)).save(buffer, "PNG", compress_level=1)
    return buffer.getvalue()


def _image_suffix(data: bytes) -> str:
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return ".webp"
    return next((suffix for magic, suffix in _IMAGE_MAGIC if data.startswith(magic)), ".img")


def _is_busy(exc: BaseException) -> bool:
    text = str(exc).lower()
    return isinstance(exc, sqlite3.OperationalError) and ("locked" in text or "busy" in text)


def _backoff(attempt: int) -> None:
    # Jittered so that two processes that collided do not collide again.
    time.sleep(min(1.0, 0.02 * 2**attempt) * (0.5 + random.random()))


def _is_temp(path: Path) -> bool:
    return path.name.startswith(".tmp-")


def _mtime(path: Path, *, default: float) -> float:
    try:
        return path.stat().st_mtime
    except FileNotFoundError:  # another writer finished (or gave up) in the meantime
        return default


def _atomic_write(path: Path, content: bytes) -> None:
    """Write ``path`` so that readers see the old file or the whole new one, never a part."""
    temp = path.with_name(f".tmp-{secrets.token_hex(8)}-{path.name}")
    try:
        with open(temp, "xb") as handle:
            handle.write(content)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, path)
    finally:
        temp.unlink(missing_ok=True)


def _new_index(ids: np.ndarray, vectors: np.ndarray) -> Any:
    index = faiss.IndexIDMap2(faiss.IndexFlatL2(vectors.shape[1]))
    if len(ids):
        index.add_with_ids(np.ascontiguousarray(vectors, np.float32), np.ascontiguousarray(ids, np.int64))
    return index


def _vectors_from_blobs(blobs: Sequence[bytes]) -> np.ndarray:
    """Stored vectors as rows; sizes may differ between model versions, so shorter rows are NaN-padded."""
    if not blobs:
        return np.zeros((0, EMBEDDING_DIM), np.float32)
    sizes = {len(b) for b in blobs}
    if len(sizes) == 1:
        return np.frombuffer(b"".join(blobs), np.float32).reshape(len(blobs), -1).copy()
    rows = np.full((len(blobs), max(sizes) // 4), np.nan, np.float32)
    for row, blob in zip(rows, blobs, strict=True):
        row[: len(blob) // 4] = np.frombuffer(blob, np.float32)
    return rows


# ----------------------------------------------------------------------------- gallery


class Gallery:
    """People and their faces in ``root`` (see the module docstring for the layout)."""

    def __init__(self, root: str | os.PathLike[str] | None = None) -> None:
        self.root = Path(root).expanduser() if root is not None else default_gallery_dir()
        self.root = self.root.resolve()
        self.db_path = self.root / "gallery.sqlite"
        self.faces_dir = self.root / "faces"
        self.chips_dir = self.root / "chips"
        self.index_dir = self.root / "index"
        for folder in (self.root, self.faces_dir, self.chips_dir, self.index_dir):
            folder.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        self._index_lock = threading.Lock()
        self._indexes: dict[str, _Index] = {}
        try:
            self._database_id = self._init_schema()
        except sqlite3.DatabaseError as exc:
            raise GalleryError(f"{self.db_path} is not a usable gallery database ({exc}).") from exc

    def __repr__(self) -> str:
        return f"Gallery({str(self.root)!r})"

    def __enter__(self) -> Gallery:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Close this thread's database connection (other threads' close when their thread ends)."""
        state = getattr(self._local, "state", None)
        if state is not None and state[0] == os.getpid():
            state[1].close()
        self._local.state = None

    # ------------------------------------------------------------------ database plumbing

    def _db(self) -> sqlite3.Connection:
        """This thread's connection (sqlite3 connections must not be shared between threads)."""
        state = getattr(self._local, "state", None)
        if state is None or state[0] != os.getpid():
            db = sqlite3.connect(self.db_path, timeout=_BUSY_TIMEOUT_S, isolation_level=None)
            db.execute("PRAGMA foreign_keys = ON")
            # With WAL, NORMAL keeps the database consistent through a crash (a power cut may lose the
            # last commits, leaving only unreferenced files) and spares an fsync per commit.
            db.execute("PRAGMA synchronous = NORMAL")
            state = (os.getpid(), db)
            self._local.state = state
        return state[1]

    def _init_schema(self) -> str:
        db = self._db()
        self._retrying(lambda: db.execute("PRAGMA journal_mode = WAL"))

        def create(db: sqlite3.Connection) -> str:
            version = db.execute("PRAGMA user_version").fetchone()[0]
            if version > SCHEMA_VERSION:
                raise GalleryError(f"{self.db_path} was written by a newer version of this program.")
            for statement in _SCHEMA:
                db.execute(statement)
            db.execute("INSERT OR IGNORE INTO meta (key, value) VALUES ('revision', 0)")
            db.execute(
                "INSERT OR IGNORE INTO meta (key, value) VALUES ('database_id', ?)", (uuid.uuid4().hex,)
            )
            db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            return db.execute("SELECT value FROM meta WHERE key = 'database_id'").fetchone()[0]

        return self._write(create, bump=False)

    def _retrying(self, action: Callable[[], T]) -> T:
        for attempt in range(_WRITE_ATTEMPTS):
            try:
                return action()
            except sqlite3.OperationalError as exc:
                if not _is_busy(exc) or attempt + 1 == _WRITE_ATTEMPTS:
                    raise
                _backoff(attempt)
        raise AssertionError("unreachable")

    def _write(self, action: Callable[[sqlite3.Connection], T], *, bump: bool = True) -> T:
        """Run ``action`` in one ``BEGIN IMMEDIATE`` transaction (bumping the revision), retried while busy.

        ``action`` may run more than once, so whatever it does outside the database must be idempotent.
        """

        def attempt() -> T:
            db = self._db()
            db.execute("BEGIN IMMEDIATE")  # take the write lock now: no deadlock upgrading a read later
            try:
                result = action(db)
                if bump:
                    db.execute(_BUMP_REVISION)
                db.execute("COMMIT")
            except BaseException:
                if db.in_transaction:
                    db.execute("ROLLBACK")
                raise
            return result

        return self._retrying(attempt)

    @contextlib.contextmanager
    def _snapshot(self) -> Iterator[sqlite3.Connection]:
        """A read transaction: every query inside sees the same committed state."""
        db = self._db()
        self._retrying(lambda: db.execute("BEGIN"))
        try:
            yield db
        finally:
            if db.in_transaction:
                db.execute("COMMIT")

    def revision(self) -> int:
        """The write counter: it changes whenever any thread or process changed the gallery."""
        return int(self._db().execute("SELECT value FROM meta WHERE key = 'revision'").fetchone()[0])

    # ------------------------------------------------------------------ people

    def people(self) -> list[Person]:
        """Everyone, by name."""
        rows = self._db().execute(f"{_PERSON_SELECT} ORDER BY p.name COLLATE NOCASE, p.id").fetchall()
        return [Person(*row) for row in rows]

    def person(self, person_id: int) -> Person:
        row = self._db().execute(f"{_PERSON_SELECT} WHERE p.id = ?", (_as_id(person_id),)).fetchone()
        if row is None:
            raise GalleryError(f"There is no person with id {person_id} in the gallery.")
        return Person(*row)

    def find_person(self, name: str) -> Person | None:
        """The person with this name (ignoring case and surrounding spaces), if any."""
        row = self._db().execute(f"{_PERSON_SELECT} WHERE p.name_key = ?", (_name_key(name),)).fetchone()
        return None if row is None else Person(*row)

    def create_person(self, name: str) -> Person:
        cleaned = clean_name(name)

        def insert(db: sqlite3.Connection) -> int:
            self._check_name_free(db, cleaned, None)
            cursor = db.execute(
                "INSERT INTO people (name, name_key, created) VALUES (?, ?, ?)",
                (cleaned, _name_key(cleaned), time.time()),
            )
            return int(cursor.lastrowid)

        return self.person(self._write(insert))

    def rename_person(self, person_id: int, new_name: str) -> Person:
        person_id = _as_id(person_id)
        cleaned = clean_name(new_name)

        def rename(db: sqlite3.Connection) -> None:
            self._require_person(db, person_id)
            self._check_name_free(db, cleaned, person_id)
            db.execute(
                "UPDATE people SET name = ?, name_key = ? WHERE id = ?",
                (cleaned, _name_key(cleaned), person_id),
            )

        self._write(rename)
        return self.person(person_id)

    def delete_person(self, person_id: int) -> None:
        """Delete a person and their faces; files no other face uses are removed after the commit."""
        person_id = _as_id(person_id)

        def delete(db: sqlite3.Connection) -> list[tuple[str, str]]:
            self._require_person(db, person_id)
            files = db.execute(
                "SELECT image_sha256, chip_path FROM faces WHERE person_id = ?", (person_id,)
            ).fetchall()
            # Their faces go with them (ON DELETE CASCADE).
            db.execute("DELETE FROM people WHERE id = ?", (person_id,))
            return files

        self._remove_unreferenced(self._write(delete))

    @staticmethod
    def _require_person(db: sqlite3.Connection, person_id: int) -> str:
        row = db.execute("SELECT name FROM people WHERE id = ?", (person_id,)).fetchone()
        if row is None:
            raise GalleryError(f"There is no person with id {person_id} in the gallery.")
        return row[0]

    @staticmethod
    def _check_name_free(db: sqlite3.Connection, name: str, person_id: int | None) -> None:
        row = db.execute("SELECT id, name FROM people WHERE name_key = ?", (_name_key(name),)).fetchone()
        if row is not None and row[0] != person_id:
            raise GalleryError(f"A person named '{row[1]}' already exists.")

    # ------------------------------------------------------------------ faces

    def add_face(
        self, person_id: int, image_bytes: bytes, face: EmbeddedFaceLike, model_version: str
    ) -> GalleryFace:
        """Store one embedded face of ``image_bytes`` for a person (the image and chip files first)."""
        person_id = _as_id(person_id)
        data = _as_bytes(image_bytes)
        vector = _as_embedding(face.embedding)
        box = _as_box(face.face.box)
        if not isinstance(model_version, str) or not model_version:
            raise ValueError("model_version must be a non-empty string")
        self.person(person_id)  # fail before writing files for nobody
        sha = image_hash(data)
        chip_png = _chip_png(face.chip)
        chip_rel = f"chips/{image_hash(chip_png)}.png"
        files = {f"faces/{sha}{_image_suffix(data)}": data, chip_rel: chip_png}
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

        return self.face(self._write(insert))

    def enrol(self, person_id: int, image_bytes: bytes, pipeline: PipelineLike) -> GalleryFace:
        """Find the largest face in an uploaded image and add it to a person."""
        person = self.person(person_id)  # fail before the slow part
        data = _as_bytes(image_bytes)
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
        row = self._db().execute(f"{_FACE_SELECT} WHERE f.id = ?", (_as_id(face_id),)).fetchone()
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
                .execute(f"{_FACE_SELECT} WHERE f.person_id = ? ORDER BY f.id", (_as_id(person_id),))
                .fetchall()
            )
        return [self._gallery_face(row) for row in rows]

    def delete_face(self, face_id: int) -> None:
        face_id = _as_id(face_id)

        def delete(db: sqlite3.Connection) -> list[tuple[str, str]]:
            row = db.execute("SELECT image_sha256, chip_path FROM faces WHERE id = ?", (face_id,)).fetchone()
            if row is None:
                raise GalleryError(f"There is no face with id {face_id} in the gallery.")
            db.execute("DELETE FROM faces WHERE id = ?", (face_id,))
            return [row]

        self._remove_unreferenced(self._write(delete))

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
                _atomic_write(path, content)

    def _image_files(self, sha: str) -> list[Path]:
        return [p for p in self.faces_dir.glob(f"{sha}.*") if not _is_temp(p)]

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

        return self._write(remove, bump=False)

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
            _vectors_from_blobs([r[2] for r in rows]),
        )

    def model_versions(self) -> dict[str, int]:
        """Model version -> number of faces embedded with it."""
        rows = self._db().execute("SELECT model_version, COUNT(*) FROM faces GROUP BY model_version")
        return dict(rows.fetchall())

    def search(self, embedding: np.ndarray, k: int = 5, *, model_version: str) -> list[Match]:
        """The ``k`` gallery faces nearest to ``embedding`` (euclidean), nearest first.

        Only faces embedded with ``model_version`` are searched: distances between two models mean nothing.
        """
        query = _as_embedding(embedding)[np.newaxis]
        k = _as_id(k)
        if k < 1:
            raise ValueError(f"k must be at least 1, got {k}")
        with self._index_lock:  # a search must not run while another thread updates the index
            index = self._current_index(model_version)
            n = min(k, index.ntotal)
            if n == 0:
                return []
            if index.d != query.shape[1]:
                raise ValueError(f"the gallery holds {index.d}-D embeddings of this model, got {query.shape[1]}-D")
            _single_threaded_faiss()
            squared, ids = index.search(query, n)
        return self._matches(ids[0], squared[0])

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
        with self._index_lock:
            return int(self._current_index(model_version).ntotal)

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

    # ------------------------------------------------------------------ the FAISS index

    def _current_index(self, model_version: str) -> Any:
        """The index of ``model_version`` as of the database's current revision (call under the lock)."""
        with self._snapshot() as db:
            revision = int(db.execute("SELECT value FROM meta WHERE key = 'revision'").fetchone()[0])
            state = self._indexes.get(model_version) or self._load_index(model_version)
            if state is not None and state.revision == revision:
                self._indexes[model_version] = state
                return state.index
            state = self._synced(db, model_version, state, revision)
        self._indexes[model_version] = state
        self._save_index(model_version, state)
        return state.index

    def _synced(
        self, db: sqlite3.Connection, model_version: str, state: _Index | None, revision: int
    ) -> _Index:
        """``state`` brought to ``revision`` by adding and removing face ids (or built anew)."""
        if state is None:
            rows = db.execute(
                "SELECT id, embedding FROM faces WHERE model_version = ? ORDER BY id", (model_version,)
            ).fetchall()
            ids = np.array([r[0] for r in rows], np.int64)
            return _Index(revision, _new_index(ids, _vectors_from_blobs([r[1] for r in rows])))
        wanted = np.array(
            [r[0] for r in db.execute("SELECT id FROM faces WHERE model_version = ?", (model_version,))],
            np.int64,
        )
        have = state.ids()
        gone = np.setdiff1d(have, wanted)
        new = np.setdiff1d(wanted, have)
        if gone.size:
            state.index.remove_ids(gone)
        for start in range(0, new.size, _SQL_CHUNK):
            chunk = [int(i) for i in new[start : start + _SQL_CHUNK]]
            rows = db.execute(
                f"SELECT id, embedding FROM faces WHERE id IN ({','.join('?' * len(chunk))}) ORDER BY id",
                chunk,
            ).fetchall()
            state.index.add_with_ids(
                _vectors_from_blobs([r[1] for r in rows]), np.array([r[0] for r in rows], np.int64)
            )
        state.revision = revision
        return state

    def _index_path(self, model_version: str) -> Path:
        return self.index_dir / f"{hashlib.sha256(model_version.encode()).hexdigest()[:16]}.npz"

    def _save_index(self, model_version: str, state: _Index) -> None:
        if state.index.ntotal == 0:  # nothing worth keeping (e.g. a search with a model nobody enrolled with)
            self._index_path(model_version).unlink(missing_ok=True)
            return
        buffer = io.BytesIO()
        np.savez(
            buffer,
            index=faiss.serialize_index(state.index),
            revision=np.int64(state.revision),
            model_version=np.str_(model_version),
            database_id=np.str_(self._database_id),
        )
        # The file only saves a rebuild at the next start: a full or read-only disk must not fail a search.
        with contextlib.suppress(OSError):
            _atomic_write(self._index_path(model_version), buffer.getvalue())

    def _load_index(self, model_version: str) -> _Index | None:
        """The saved index, or None when missing, corrupt, or from another database or model."""
        path = self._index_path(model_version)
        if not path.is_file():
            return None
        try:
            with np.load(path, allow_pickle=False) as saved:
                if (
                    str(saved["model_version"]) != model_version
                    or str(saved["database_id"]) != self._database_id
                ):
                    return None
                index = faiss.deserialize_index(np.ascontiguousarray(saved["index"], np.uint8))
                revision = int(saved["revision"])
            state = _Index(revision, index)
            if len(state.ids()) != index.ntotal:
                return None
            return state
        except Exception:  # any damage (truncated zip, bad FAISS bytes, wrong type) means: rebuild
            return None

    # ------------------------------------------------------------------ export, stats, repair

    def _export_rows(self, model_version: str | None) -> list[tuple[int, str, str, bytes]]:
        sql = "SELECT f.id, p.name, f.model_version, f.embedding FROM faces f JOIN people p ON p.id = f.person_id"
        if model_version is None:
            return self._db().execute(f"{sql} ORDER BY f.id").fetchall()
        return (
            self._db().execute(f"{sql} WHERE f.model_version = ? ORDER BY f.id", (model_version,)).fetchall()
        )

    def export_embeddings(self, model_version: str | None = None) -> pd.DataFrame:
        """One row per face: ``face_id, person, model_version, e0..`` (for a CSV download).

        Models of different sizes in one export leave the shorter vectors' extra columns empty (NaN).
        """
        rows = self._export_rows(model_version)
        meta = pd.DataFrame(
            {
                "face_id": np.array([r[0] for r in rows], np.int64),
                "person": pd.Series([r[1] for r in rows], dtype=object),
                "model_version": pd.Series([r[2] for r in rows], dtype=object),
            }
        )
        matrix = _vectors_from_blobs([r[3] for r in rows])
        vectors = pd.DataFrame(matrix, columns=[f"e{i}" for i in range(matrix.shape[1])])
        return pd.concat([meta, vectors], axis=1)

    def export_npz_bytes(self, model_version: str | None = None) -> bytes:
        """An ``.npz`` with ``embeddings (n, dim)``, ``labels``, ``face_ids`` and ``model_versions``."""
        rows = self._export_rows(model_version)
        buffer = io.BytesIO()
        np.savez(
            buffer,
            embeddings=_vectors_from_blobs([r[3] for r in rows]),
            labels=np.array([r[1] for r in rows], dtype=str),
            face_ids=np.array([r[0] for r in rows], np.int64),
            model_versions=np.array([r[2] for r in rows], dtype=str),
        )
        return buffer.getvalue()

    def stats(self) -> dict[str, Any]:
        """Counts for a settings or export panel."""
        with self._snapshot() as db:
            people = db.execute("SELECT COUNT(*) FROM people").fetchone()[0]
            empty = db.execute(
                "SELECT COUNT(*) FROM people p WHERE NOT EXISTS (SELECT 1 FROM faces f WHERE f.person_id = p.id)"
            ).fetchone()[0]
            faces, images = db.execute("SELECT COUNT(*), COUNT(DISTINCT image_sha256) FROM faces").fetchone()
            versions = dict(db.execute("SELECT model_version, COUNT(*) FROM faces GROUP BY model_version"))
            revision = db.execute("SELECT value FROM meta WHERE key = 'revision'").fetchone()[0]
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
            present = {p.stem for p in self.faces_dir.iterdir() if p.is_file() and not _is_temp(p)}
            lost = [r[0] for r in rows if r[1] not in present]
            for start in range(0, len(lost), _SQL_CHUNK):
                chunk = lost[start : start + _SQL_CHUNK]
                db.execute(f"DELETE FROM faces WHERE id IN ({','.join('?' * len(chunk))})", chunk)
            if lost:
                db.execute(_BUMP_REVISION)
            kept = [r for r in rows if r[1] in present]
            removed = self._remove_strays({r[1] for r in kept}, {r[2] for r in kept})
            chips_missing = sum(1 for r in kept if not (self.root / r[2]).is_file())
            return len(lost), removed, chips_missing

        faces_removed, files_removed, chips_missing = self._write(fix, bump=False)
        return RepairReport(faces_removed, files_removed, chips_missing, self._rebuild_indexes())

    def _remove_strays(self, images: set[str], chips: set[str]) -> int:
        """Delete files no row uses, and temp files old enough that their writer must have died."""
        now = time.time()
        removed = 0
        for folder in (self.faces_dir, self.chips_dir, self.index_dir):
            for path in folder.iterdir():
                if not path.is_file():
                    continue
                if _is_temp(path):
                    stray = now - _mtime(path, default=now) > _STALE_TEMP_S
                elif folder == self.faces_dir:
                    stray = path.stem not in images
                elif folder == self.chips_dir:
                    stray = f"chips/{path.name}" not in chips
                else:
                    stray = False  # index files are replaced by _rebuild_indexes
                if stray:
                    path.unlink(missing_ok=True)
                    removed += 1
        return removed

    def _rebuild_indexes(self) -> int:
        with self._index_lock:
            self._indexes.clear()
            for path in self.index_dir.glob("*.npz"):
                path.unlink(missing_ok=True)
            versions = list(self.model_versions())
            for version in versions:
                self._current_index(version)
        return len(versions)
