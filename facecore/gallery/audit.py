"""The audit log: who decided or changed what, when, in the gallery database (table ``audit_log``).

Contract:

* One :class:`AuditEntry` per decision (verify, identify) or change (people, faces, imports): the time,
  the key's *name* (never its secret), the route, the model version, the threshold, the result (a
  small JSON object: distances, decisions, names) and the ids touched (a JSON list). No images, no
  embeddings, no keys.
* :func:`record` writes one entry in its own transaction and, in the same transaction, deletes the
  entries older than ``retention_days`` (0 keeps everything). Audit writes do not bump the gallery's
  revision.
* :func:`entries` reads newest first, filtered by key name, route and time; :func:`entries_frame`
  turns them into a pandas table (what the dashboard shows and exports as CSV).

The table is in ``facecore.gallery.database._SCHEMA``; all other SQL lives here and reaches the database
only through ``write`` / ``snapshot`` (``Gallery.database``).
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from facecore.gallery.records import DatabaseLike

DEFAULT_RETENTION_DAYS = 90
DAY_S = 86400.0
RETENTION_ENV = "FACECORE_AUDIT_RETENTION_DAYS"


def configured_retention_days(env: Mapping[str, str] | None = None) -> float:
    """``$FACECORE_AUDIT_RETENTION_DAYS`` (days; 0 keeps everything), else :data:`DEFAULT_RETENTION_DAYS`."""
    env = os.environ if env is None else env
    days = float(env.get(RETENTION_ENV) or DEFAULT_RETENTION_DAYS)
    if not days >= 0:
        raise ValueError(f"{RETENTION_ENV} must be a number of days >= 0, got {days}")
    return days
COLUMNS = ("id", "time", "key_name", "route", "model_version", "threshold", "result", "ids")


@dataclass(frozen=True)
class AuditEntry:
    """One decision or change; ``id`` and ``time`` are set when it is recorded."""

    key_name: str
    route: str
    result: Mapping[str, Any]
    ids: Sequence[int] = ()
    model_version: str | None = None
    threshold: float | None = None
    time: float = field(default=0.0)
    id: int = 0


def record(database: DatabaseLike, entry: AuditEntry, retention_days: float = DEFAULT_RETENTION_DAYS) -> int:
    """Store ``entry`` (now) and drop entries older than the retention; its id."""
    now = time.time()
    row = (
        now,
        entry.key_name,
        entry.route,
        entry.model_version,
        None if entry.threshold is None else float(entry.threshold),
        json.dumps(dict(entry.result), sort_keys=True, default=float),
        json.dumps([int(i) for i in entry.ids]),
    )

    def insert(db: sqlite3.Connection) -> int:
        if retention_days > 0:
            db.execute("DELETE FROM audit_log WHERE time < ?", (now - retention_days * DAY_S,))
        inserted = db.execute(
            "INSERT INTO audit_log (time, key_name, route, model_version, threshold, result, ids) "
            "VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING id",
            row,
        ).fetchone()
        return int(inserted[0])

    return database.write(insert, bump=False)


def entries(
    database: DatabaseLike,
    *,
    key_name: str | None = None,
    route: str | None = None,
    since: float | None = None,
    until: float | None = None,
    limit: int = 10_000,
) -> list[AuditEntry]:
    """Entries, newest first; ``route`` matches as a substring (``"verify"`` finds both verify routes)."""
    where, params = ["1 = 1"], []
    if key_name:
        where.append("key_name = ?")
        params.append(key_name)
    if route:
        where.append("instr(route, ?) > 0")
        params.append(route)
    if since is not None:
        where.append("time >= ?")
        params.append(since)
    if until is not None:
        where.append("time <= ?")
        params.append(until)
    sql = (
        "SELECT id, time, key_name, route, model_version, threshold, result, ids FROM audit_log "
        f"WHERE {' AND '.join(where)} ORDER BY id DESC LIMIT ?"
    )
    with database.snapshot() as db:
        rows = db.execute(sql, (*params, int(limit))).fetchall()
    return [
        AuditEntry(
            id=int(r[0]),
            time=float(r[1]),
            key_name=r[2],
            route=r[3],
            model_version=r[4],
            threshold=r[5],
            result=json.loads(r[6]),
            ids=tuple(json.loads(r[7])),
        )
        for r in rows
    ]


def key_names(database: DatabaseLike) -> list[str]:
    """Every key name that appears in the log, sorted (for a filter)."""
    with database.snapshot() as db:
        return [r[0] for r in db.execute("SELECT DISTINCT key_name FROM audit_log ORDER BY key_name")]


def entries_frame(found: Sequence[AuditEntry]) -> pd.DataFrame:
    """A table of entries: UTC time, result and ids as JSON text (CSV-ready)."""
    frame = pd.DataFrame(
        [
            {
                "id": e.id,
                "time": pd.Timestamp(e.time, unit="s", tz="UTC"),
                "key_name": e.key_name,
                "route": e.route,
                "model_version": e.model_version,
                "threshold": e.threshold,
                "result": json.dumps(dict(e.result), sort_keys=True),
                "ids": json.dumps(list(e.ids)),
            }
            for e in found
        ],
        columns=list(COLUMNS),
    )
    return frame
