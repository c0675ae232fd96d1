"""Operating points stored in the gallery database, so the dashboard, the API and the CLI share them.

Contract: the table ``operating_points`` (created with the rest of the schema, ``_SCHEMA`` in
:mod:`facecore.gallery.database`) holds one row per (model_version, detector, metric, name); at
most one row per configuration is active. Every statement here goes through the ``Database``'s
``write`` (one transaction, revision bumped) or ``snapshot``; SQL is portable (``?`` placeholders,
TEXT/INTEGER/REAL/BLOB). Distances are stored as little-endian float64 blobs, sorted.
"""

from __future__ import annotations

import sqlite3

import numpy as np

from facecore.config import PipelineConfig
from facecore.gallery.database import Database
from facecore.gallery.records import GalleryError
from facecore.verification.operating_points import OperatingPoint

_COLUMNS = (
    "name, model_version, detector, metric, threshold, source, set_name, set_size, target, impostor, genuine, "
    "created, active"
)
_DTYPE = np.dtype("<f8")


def _blob(values: np.ndarray) -> bytes:
    return np.asarray(values, dtype=_DTYPE).tobytes()


def _point(row) -> OperatingPoint:
    name, version, detector, metric, threshold, source, set_name, size, target, imp, gen, created, active = row
    return OperatingPoint(
        name=name, model_version=version, detector=detector, metric=metric, threshold=float(threshold),
        source=source, set_name=set_name, set_size=int(size), target=target,
        impostor=np.frombuffer(bytes(imp), _DTYPE).copy(), genuine=np.frombuffer(bytes(gen), _DTYPE).copy(),
        created=float(created), active=bool(active),
    )


def _key(config: PipelineConfig, metric: str) -> tuple[str, str, str]:
    return config.model_version, config.detector, metric


class OperatingPoints:
    """The operating points of one gallery database."""

    def __init__(self, database: Database) -> None:
        self._database = database

    def save(self, point: OperatingPoint, *, activate: bool = False) -> OperatingPoint:
        """Store ``point`` (replacing one of the same name for its configuration); optionally make it active."""

        def write(db: sqlite3.Connection) -> None:
            key = (point.model_version, point.detector, point.metric)
            if activate:
                db.execute(
                    "UPDATE operating_points SET active = 0 WHERE model_version = ? AND detector = ? AND metric = ?", key
                )
            db.execute(
                "DELETE FROM operating_points WHERE model_version = ? AND detector = ? AND metric = ? AND name = ?",
                (*key, point.name),
            )
            db.execute(
                f"INSERT INTO operating_points ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (point.name, *key, point.threshold, point.source, point.set_name, point.set_size, point.target,
                 _blob(point.impostor), _blob(point.genuine), point.created, int(activate or point.active)),
            )

        self._database.write(write)
        return self.get(point.model_version, point.detector, point.metric, point.name)

    def get(self, model_version: str, detector: str, metric: str, name: str) -> OperatingPoint:
        with self._database.snapshot() as db:
            row = db.execute(
                f"SELECT {_COLUMNS} FROM operating_points WHERE model_version = ? AND detector = ? AND metric = ? "
                "AND name = ?",
                (model_version, detector, metric, name),
            ).fetchone()
        if row is None:
            raise GalleryError(f"There is no operating point '{name}' for {model_version}, {detector}, {metric}.")
        return _point(row)

    def list(self, config: PipelineConfig | None = None, metric: str | None = None) -> list[OperatingPoint]:
        """Every stored point (or those of one configuration and metric), newest first."""
        query, args = f"SELECT {_COLUMNS} FROM operating_points", ()
        if config is not None:
            query += " WHERE model_version = ? AND detector = ?"
            args = (config.model_version, config.detector)
            if metric is not None:
                query += " AND metric = ?"
                args = (*args, metric)
        with self._database.snapshot() as db:
            rows = db.execute(query + " ORDER BY created DESC, name", args).fetchall()
        return [_point(r) for r in rows]

    def active(self, config: PipelineConfig, metric: str) -> OperatingPoint | None:
        """The active point of this configuration and metric, or None (then the default decides)."""
        with self._database.snapshot() as db:
            row = db.execute(
                f"SELECT {_COLUMNS} FROM operating_points WHERE model_version = ? AND detector = ? AND metric = ? "
                "AND active = 1",
                _key(config, metric),
            ).fetchone()
        return None if row is None else _point(row)

    def activate(self, config: PipelineConfig, metric: str, name: str | None) -> OperatingPoint | None:
        """Make ``name`` the active point of the configuration (None: none, so the default decides)."""
        key = _key(config, metric)

        def write(db: sqlite3.Connection) -> None:
            if name is not None and db.execute(
                "SELECT 1 FROM operating_points WHERE model_version = ? AND detector = ? AND metric = ? AND name = ?",
                (*key, name),
            ).fetchone() is None:
                raise GalleryError(f"There is no operating point '{name}' for {config.describe()}, {metric} distance.")
            db.execute("UPDATE operating_points SET active = 0 WHERE model_version = ? AND detector = ? AND metric = ?", key)
            if name is not None:
                db.execute(
                    "UPDATE operating_points SET active = 1 WHERE model_version = ? AND detector = ? AND metric = ? "
                    "AND name = ?",
                    (*key, name),
                )

        self._database.write(write)
        return self.active(config, metric)

    def delete(self, config: PipelineConfig, metric: str, name: str) -> None:
        def write(db: sqlite3.Connection) -> int:
            return db.execute(
                "DELETE FROM operating_points WHERE model_version = ? AND detector = ? AND metric = ? AND name = ?",
                (*_key(config, metric), name),
            ).rowcount

        if not self._database.write(write):
            raise GalleryError(f"There is no operating point '{name}' for {config.describe()}, {metric} distance.")
