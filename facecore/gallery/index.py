"""The search side of the gallery: stored vectors, and one exact FAISS index per model version.

Each model version gets an ``IndexFlatL2`` inside an ``IndexIDMap2`` keyed by face id, so faces
embedded by another model are never compared. An index remembers the database revision it matches;
:func:`sync_index` brings it to a newer revision by adding and removing face ids (face ids are never
reused, thanks to AUTOINCREMENT, so an id always means the same vector). On disk an index lives in one
``.npz`` together with its revision, model version and the database's id, so the vectors and their
revision can never disagree and a file copied from another gallery is never trusted.
:class:`ModelIndexes` holds a gallery's indexes behind one lock and keeps them up to date.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import sqlite3
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import faiss
import numpy as np

import facecore.gallery.faiss_hnsw as faiss_hnsw
from facecore.gallery.database import Database, read_revision
from facecore.gallery.files import atomic_write

EMBEDDING_DIM = 128  # the pretrained model's; a kept .keras model may have another size
MAX_EMBEDDING_DIM = 4096
SQL_CHUNK = 500  # ids per query: stay well under SQLite's bound-parameter limit


def as_embedding(vector: Any) -> np.ndarray:
    """A 1-D float32 vector of any size up to ``MAX_EMBEDDING_DIM`` (each model version keeps one size)."""
    arr = np.asarray(vector, dtype=np.float32)
    if arr.ndim > 2 or (arr.ndim == 2 and arr.shape[0] != 1) or not 1 <= arr.size <= MAX_EMBEDDING_DIM:
        raise ValueError(f"expected one embedding vector (1 to {MAX_EMBEDDING_DIM} values), got shape {arr.shape}")
    arr = arr.reshape(-1)
    if not np.isfinite(arr).all():
        raise ValueError("the embedding contains NaN or infinite values")
    return np.ascontiguousarray(arr)


def vectors_from_blobs(blobs: Sequence[bytes]) -> np.ndarray:
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


def single_threaded_faiss() -> None:
    """One query over an exact index takes well under a millisecond on one thread, but FAISS's OpenMP
    threads spin and wait whenever the cores are busy (TensorFlow, other sessions): measured 34 ms per
    10,000-face search with 2 threads on a loaded 2-core machine, 0.05 ms with 1."""
    if faiss.omp_get_max_threads() != 1:
        faiss.omp_set_num_threads(1)


@dataclass
class _Index:
    """A FAISS index of one model version and the database revision it matches."""

    revision: int
    index: Any  # faiss.IndexIDMap2 over IndexFlatL2, or over IndexHNSWFlat past faiss_hnsw.HNSW_MIN_FACES
    removed: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))  # deleted, still in the HNSW graph

    def ids(self) -> np.ndarray:
        """The live face ids (deleted ones still in an HNSW graph left out)."""
        ids = faiss.vector_to_array(self.index.id_map).astype(np.int64)
        return np.setdiff1d(ids, self.removed) if self.removed.size else ids

    def size(self) -> int:
        return int(self.index.ntotal - self.removed.size)


def new_index(ids: np.ndarray, vectors: np.ndarray) -> Any:
    """An L2 index of ``vectors`` (one per row) keyed by ``ids``: exact, or HNSW past its size."""
    if faiss_hnsw.wants_hnsw(len(ids)):
        return faiss_hnsw.new_hnsw(ids, vectors)
    index = faiss.IndexIDMap2(faiss.IndexFlatL2(vectors.shape[1]))
    if len(ids):
        index.add_with_ids(np.ascontiguousarray(vectors, np.float32), np.ascontiguousarray(ids, np.int64))
    return index


def build_index(db: sqlite3.Connection, model_version: str, revision: int) -> _Index:
    """The index of every face of ``model_version`` in ``db`` (read inside one snapshot)."""
    rows = db.execute(
        "SELECT id, embedding FROM faces WHERE model_version = ? ORDER BY id", (model_version,)
    ).fetchall()
    ids = np.array([r[0] for r in rows], np.int64)
    return _Index(revision, new_index(ids, vectors_from_blobs([r[1] for r in rows])))


def sync_index(db: sqlite3.Connection, model_version: str, state: _Index | None, revision: int) -> _Index:
    """``state`` brought to ``revision`` by adding and removing face ids (or built anew when None)."""
    if state is None:
        return build_index(db, model_version, revision)
    wanted = np.array(
        [r[0] for r in db.execute("SELECT id FROM faces WHERE model_version = ?", (model_version,))],
        np.int64,
    )
    have = state.ids()
    gone = np.setdiff1d(have, wanted)
    new = np.setdiff1d(wanted, have)
    hnsw = faiss_hnsw.is_hnsw(state.index)
    if gone.size and hnsw:  # a graph cannot drop nodes: filter them out at search time
        state.removed = np.union1d(state.removed, gone)
    elif gone.size:
        state.index.remove_ids(gone)
    for start in range(0, new.size, SQL_CHUNK):
        chunk = [int(i) for i in new[start : start + SQL_CHUNK]]
        rows = db.execute(
            f"SELECT id, embedding FROM faces WHERE id IN ({','.join('?' * len(chunk))}) ORDER BY id",
            chunk,
        ).fetchall()
        state.index.add_with_ids(
            vectors_from_blobs([r[1] for r in rows]), np.array([r[0] for r in rows], np.int64)
        )
    state.revision = revision
    if hnsw and state.removed.size > faiss_hnsw.REBUILD_FRACTION * state.index.ntotal:
        return build_index(db, model_version, revision)
    if not hnsw and faiss_hnsw.wants_hnsw(state.index.ntotal):  # grew past the size: become approximate
        ids = faiss.vector_to_array(state.index.id_map).astype(np.int64)
        return _Index(revision, faiss_hnsw.new_hnsw(ids, faiss_hnsw.all_vectors(state.index)))
    return state


def index_file(index_dir: Path, model_version: str) -> Path:
    """``index/<sha256(model version)[:16]>.npz``."""
    return index_dir / f"{hashlib.sha256(model_version.encode()).hexdigest()[:16]}.npz"


def save_index(path: Path, state: _Index, *, model_version: str, database_id: str) -> None:
    """Keep ``state`` with its revision, model version and database id; an empty index removes the file.

    The file only saves a rebuild at the next start: a full or read-only disk must not fail a search,
    so write errors are ignored.
    """
    if state.index.ntotal == 0:  # nothing worth keeping (e.g. a search with a model nobody enrolled with)
        path.unlink(missing_ok=True)
        return
    buffer = io.BytesIO()
    np.savez(
        buffer,
        index=faiss.serialize_index(state.index),
        revision=np.int64(state.revision),
        removed=state.removed,
        model_version=np.str_(model_version),
        database_id=np.str_(database_id),
    )
    with contextlib.suppress(OSError):
        atomic_write(path, buffer.getvalue())


def load_index(path: Path, *, model_version: str, database_id: str) -> _Index | None:
    """The saved index, or None when missing, corrupt, or from another database or model."""
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as saved:
            if str(saved["model_version"]) != model_version or str(saved["database_id"]) != database_id:
                return None
            index = faiss.deserialize_index(np.ascontiguousarray(saved["index"], np.uint8))
            revision = int(saved["revision"])
            removed = saved["removed"].astype(np.int64) if "removed" in saved else np.zeros(0, np.int64)
        state = _Index(revision, index, removed)
        if faiss.vector_to_array(index.id_map).size != index.ntotal:
            return None
        return state
    except Exception:  # any damage (truncated zip, bad FAISS bytes, wrong type) means: rebuild
        return None


class ModelIndexes:
    """One gallery's indexes, one per model version, in memory and in ``folder``, behind one lock.

    Before each use the database revision is read in a snapshot; when another thread or process wrote
    since, the index is synced (and saved) first. A search never runs while another thread updates.
    """

    def __init__(self, database: Database, folder: Path) -> None:
        self._database = database
        self._folder = folder
        self._lock = threading.Lock()
        self._indexes: dict[str, _Index] = {}

    def _current(self, model_version: str) -> _Index:
        """The index of ``model_version`` as of the database's current revision (call under the lock)."""
        path = index_file(self._folder, model_version)
        database_id = self._database.database_id
        with self._database.snapshot() as db:
            revision = read_revision(db)
            state = self._indexes.get(model_version) or load_index(
                path, model_version=model_version, database_id=database_id
            )
            if state is not None and state.revision == revision:
                self._indexes[model_version] = state
                return state
            state = sync_index(db, model_version, state, revision)
        self._indexes[model_version] = state
        save_index(path, state, model_version=model_version, database_id=database_id)
        return state

    def search(
        self, query: np.ndarray, k: int, model_version: str, *, exact: bool = False
    ) -> tuple[np.ndarray, np.ndarray]:
        """``(squared L2 distances, face ids)`` of the ``k`` nearest faces to ``query`` (one row);
        ``exact`` scans every vector even when the index is HNSW."""
        with self._lock:
            state = self._current(model_version)
            index = state.index
            n = min(k, state.size())
            if n == 0:
                return np.zeros(0, np.float32), np.zeros(0, np.int64)
            if index.d != query.shape[1]:
                raise ValueError(f"the gallery holds {index.d}-D embeddings of this model, got {query.shape[1]}-D")
            single_threaded_faiss()
            squared, ids = faiss_hnsw.search(index, query, n, state.removed, exact=exact)
        return squared[0], ids[0]

    def size(self, model_version: str) -> int:
        """How many faces the (up to date) index of ``model_version`` holds."""
        with self._lock:
            return self._current(model_version).size()

    def rebuild(self) -> int:
        """Forget every index, delete their files, and build one per model version in the database."""
        with self._lock:
            self._indexes.clear()
            for path in self._folder.glob("*.npz"):
                path.unlink(missing_ok=True)
            rows = self._database.connection().execute("SELECT DISTINCT model_version FROM faces")
            versions = [row[0] for row in rows.fetchall()]
            for version in versions:
                self._current(version)
        return len(versions)
