"""Operating points stored in the gallery database, so the dashboard, the API and the CLI share them.

Contract: the table ``operating_points`` (created with the rest of the schema, ``_SCHEMA`` in
:mod:`facecore.gallery.database` and :mod:`facecore.gallery.pg_database`) holds one row per
(model_version, detector, metric, name). At most one row per configuration (model_version, detector,
metric) is active: every write that sets a row active first clears the others of its configuration in
the same transaction (writers are serialised by both stores), so no reader ever sees two.

* :meth:`OperatingPoints.save` replaces a point of the same name and never switches a point off:
  re-saving the active point keeps it active, whatever ``activate`` says (to let the default decide
  again, :meth:`OperatingPoints.activate` with None). ``activate=True`` (or a point whose ``active``
  is set) makes the saved point the active one.
* The names in :data:`RESERVED_NAMES` (compared without case or surrounding spaces) are refused with a
  :class:`GalleryError`: they name what decides when no stored point does, the dashboard's
  ``"default"``, the API's ``"request"`` (``?threshold=``) and ``"FACECORE_API_THRESHOLD"`` (the server's
  setting), and a stored point under one of them could not be told from it.

Every statement here goes through the ``Database``'s ``write`` (one transaction, revision bumped) or
``snapshot``; SQL is portable (``?`` placeholders, TEXT/INTEGER/REAL/BLOB). Distances are stored as
little-endian float64 blobs, sorted.
"""

from __future__ import annotations

import sqlite3

import numpy as np

from facecore.config import PipelineConfig
from facecore.gallery.database import Database
from facecore.gallery.records import GalleryError
from facecore.verification.operating_points import DEFAULT_NAME, OperatingPoint

#: The name of what decides for a request that gives ``?threshold=`` (:mod:`api.calibration`).
REQUEST_NAME = "request"
#: The name of what decides when the API's ``FACECORE_API_THRESHOLD`` is set and no point is active.
SERVER_SETTING_NAME = "FACECORE_API_THRESHOLD"
#: Names no stored operating point may take: each already names a threshold that is not a stored point.
RESERVED_NAMES = (DEFAULT_NAME, REQUEST_NAME, SERVER_SETTING_NAME)

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


def check_name(name: str) -> str:
    """``name`` if an operating point may take it; a :class:`GalleryError` saying why not otherwise."""
    if name.strip().casefold() in {reserved.casefold() for reserved in RESERVED_NAMES}:
        others = ", ".join(f"'{n}'" for n in RESERVED_NAMES)
        raise GalleryError(
            f"'{name.strip()}' cannot name an operating point: {others} already name the thresholds that "
            "decide when no stored point does. Pick another name."
        )
    return name


class OperatingPoints:
    """The operating points of one gallery database."""

    def __init__(self, database: Database) -> None:
        self._database = database

    def save(self, point: OperatingPoint, *, activate: bool = False) -> OperatingPoint:
        """Store ``point`` (replacing one of the same name for its configuration). It is active afterwards
        when ``activate`` or ``point.active`` says so, or when the point it replaces was active."""
        check_name(point.name)

        def write(db: sqlite3.Connection) -> None:
            key = (point.model_version, point.detector, point.metric)
            named = (*key, point.name)
            replaced = db.execute(
                "SELECT active FROM operating_points WHERE model_version = ? AND detector = ? AND metric = ? "
                "AND name = ?",
                named,
            ).fetchone()
            active = activate or point.active or (replaced is not None and bool(replaced[0]))
            if active:
                db.execute(
                    "UPDATE operating_points SET active = 0 WHERE model_version = ? AND detector = ? AND metric = ?", key
                )
            db.execute(
                "DELETE FROM operating_points WHERE model_version = ? AND detector = ? AND metric = ? AND name = ?",
                named,
            )
            db.execute(
                f"INSERT INTO operating_points ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (point.name, *key, point.threshold, point.source, point.set_name, point.set_size, point.target,
                 _blob(point.impostor), _blob(point.genuine), point.created, int(active)),
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
                "AND active = 1 ORDER BY created DESC, name LIMIT 1",  # one, even in a gallery written before the rule
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
