"""Embeddings export: every face's vector with its person and model, as a table (CSV) or an ``.npz``.

:meth:`Gallery.export_embeddings <facecore.gallery.store.Gallery.export_embeddings>` and
:meth:`Gallery.export_npz_bytes <facecore.gallery.store.Gallery.export_npz_bytes>` call these with
the calling thread's connection. Models of different sizes in one export leave the shorter vectors'
extra columns empty (NaN).
"""

from __future__ import annotations

import io
import sqlite3

import numpy as np
import pandas as pd

from facecore.gallery.index import vectors_from_blobs

_ROWS = "SELECT f.id, p.name, f.model_version, f.embedding FROM faces f JOIN people p ON p.id = f.person_id"


def export_rows(db: sqlite3.Connection, model_version: str | None) -> list[tuple[int, str, str, bytes]]:
    """``(face id, person name, model version, embedding blob)`` by face id (of one model if given)."""
    if model_version is None:
        return db.execute(f"{_ROWS} ORDER BY f.id").fetchall()
    return db.execute(f"{_ROWS} WHERE f.model_version = ? ORDER BY f.id", (model_version,)).fetchall()


def embeddings_frame(db: sqlite3.Connection, model_version: str | None = None) -> pd.DataFrame:
    """One row per face: ``face_id, person, model_version, e0..`` (for a CSV download)."""
    return frame_from_rows(export_rows(db, model_version))


def frame_from_rows(rows: list[tuple[int, str, str, bytes]]) -> pd.DataFrame:
    """The table of :func:`embeddings_frame` from ``(face id, name, model version, float32 bytes)`` rows."""
    meta = pd.DataFrame(
        {
            "face_id": np.array([r[0] for r in rows], np.int64),
            "person": pd.Series([r[1] for r in rows], dtype=object),
            "model_version": pd.Series([r[2] for r in rows], dtype=object),
        }
    )
    matrix = vectors_from_blobs([r[3] for r in rows])
    vectors = pd.DataFrame(matrix, columns=[f"e{i}" for i in range(matrix.shape[1])])
    return pd.concat([meta, vectors], axis=1)


def embeddings_npz(db: sqlite3.Connection, model_version: str | None = None) -> bytes:
    """An ``.npz`` with ``embeddings (n, dim)``, ``labels``, ``face_ids`` and ``model_versions``."""
    return npz_from_rows(export_rows(db, model_version))


def npz_from_rows(rows: list[tuple[int, str, str, bytes]]) -> bytes:
    """The ``.npz`` of :func:`embeddings_npz` from ``(face id, name, model version, float32 bytes)`` rows."""
    buffer = io.BytesIO()
    np.savez(
        buffer,
        embeddings=vectors_from_blobs([r[3] for r in rows]),
        labels=np.array([r[1] for r in rows], dtype=str),
        face_ids=np.array([r[0] for r in rows], np.int64),
        model_versions=np.array([r[2] for r in rows], dtype=str),
    )
    return buffer.getvalue()
