"""The gallery's SQLite database: its schema, one connection per thread, and retried transactions.

``gallery.sqlite`` holds people, faces (box, score, detector, model version, float32 embedding) and a
``meta`` table whose ``revision`` goes up with every write and whose ``database_id`` tells this
database from any other. WAL mode, foreign keys on; every write is one ``BEGIN IMMEDIATE``
transaction, retried with jittered backoff while another thread or process holds the lock.
A connection never crosses a fork: a child process opens its own.
"""

from __future__ import annotations

import contextlib
import os
import random
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

from facecore.gallery.records import GalleryError

SCHEMA_VERSION = 1
BUMP_REVISION = "UPDATE meta SET value = value + 1 WHERE key = 'revision'"

_BUSY_TIMEOUT_S = 30.0
_WRITE_ATTEMPTS = 8
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
    # Operating points (facecore.gallery.operating_points): a named threshold per configuration.
    """CREATE TABLE IF NOT EXISTS operating_points (
        model_version TEXT NOT NULL,
        detector TEXT NOT NULL,
        metric TEXT NOT NULL,
        name TEXT NOT NULL,
        threshold REAL NOT NULL,
        source TEXT NOT NULL,
        set_name TEXT NOT NULL,
        set_size INTEGER NOT NULL,
        target TEXT NOT NULL,
        impostor BLOB NOT NULL,
        genuine BLOB NOT NULL,
        active INTEGER NOT NULL,
        created REAL NOT NULL,
        PRIMARY KEY (model_version, detector, metric, name)
    )""",
    # API keys (facecore.gallery.keys): only the SHA-256 of each key is stored.
    """CREATE TABLE IF NOT EXISTS api_keys (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        name TEXT NOT NULL,
        role TEXT NOT NULL,
        key_sha256 TEXT NOT NULL UNIQUE,
        prefix TEXT NOT NULL,
        created REAL NOT NULL,
        revoked REAL
    )""",
    "CREATE UNIQUE INDEX IF NOT EXISTS api_keys_active_name ON api_keys(name) WHERE revoked IS NULL",
    # The audit log (facecore.gallery.audit): decisions and changes, never images or keys.
    """CREATE TABLE IF NOT EXISTS audit_log (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        time REAL NOT NULL,
        key_name TEXT NOT NULL,
        route TEXT NOT NULL,
        model_version TEXT,
        threshold REAL,
        result TEXT NOT NULL,
        ids TEXT NOT NULL
    )""",
    "CREATE INDEX IF NOT EXISTS audit_log_time ON audit_log(time)",
)

T = TypeVar("T")


def is_busy(exc: BaseException) -> bool:
    """Whether ``exc`` is a transient lock conflict worth trying again: SQLITE_BUSY or SQLITE_LOCKED, or
    SQLITE_PROTOCOL ("locking protocol"), which WAL mode raises when another connection is rebuilding the
    WAL index, e.g. the first one in after a writer was killed."""
    text = str(exc).lower()
    return isinstance(exc, sqlite3.OperationalError) and any(w in text for w in ("locked", "busy", "locking protocol"))


def _backoff(attempt: int) -> None:
    # Jittered so that two processes that collided do not collide again.
    time.sleep(min(1.0, 0.02 * 2**attempt) * (0.5 + random.random()))


class Database:
    """``path`` opened once per thread (and per process), with the schema created or checked."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._local = threading.local()
        self.database_id = self._init_schema()

    def connection(self) -> sqlite3.Connection:
        """This thread's connection (sqlite3 connections must not be shared between threads)."""
        state = getattr(self._local, "state", None)
        if state is None or state[0] != os.getpid():
            db = sqlite3.connect(self.path, timeout=_BUSY_TIMEOUT_S, isolation_level=None)
            db.execute("PRAGMA foreign_keys = ON")
            # With WAL, NORMAL keeps the database consistent through a crash (a power cut may lose the
            # last commits, leaving only unreferenced files) and spares an fsync per commit.
            db.execute("PRAGMA synchronous = NORMAL")
            state = (os.getpid(), db)
            self._local.state = state
        return state[1]

    def close(self) -> None:
        """Close this thread's connection (other threads' close when their thread ends)."""
        state = getattr(self._local, "state", None)
        if state is not None and state[0] == os.getpid():
            state[1].close()
        self._local.state = None

    def _init_schema(self) -> str:
        db = self.connection()
        self.retrying(lambda: db.execute("PRAGMA journal_mode = WAL"))

        def create(db: sqlite3.Connection) -> str:
            version = db.execute("PRAGMA user_version").fetchone()[0]
            if version > SCHEMA_VERSION:
                raise GalleryError(f"{self.path} was written by a newer version of this program.")
            for statement in _SCHEMA:
                db.execute(statement)
            db.execute("INSERT OR IGNORE INTO meta (key, value) VALUES ('revision', 0)")
            db.execute(
                "INSERT OR IGNORE INTO meta (key, value) VALUES ('database_id', ?)", (uuid.uuid4().hex,)
            )
            db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            return db.execute("SELECT value FROM meta WHERE key = 'database_id'").fetchone()[0]

        return self.write(create, bump=False)

    def retrying(self, action: Callable[[], T]) -> T:
        """``action()``, tried again while the database is locked by another writer."""
        for attempt in range(_WRITE_ATTEMPTS):
            try:
                return action()
            except sqlite3.OperationalError as exc:
                if not is_busy(exc) or attempt + 1 == _WRITE_ATTEMPTS:
                    raise
                _backoff(attempt)
        raise AssertionError("unreachable")

    def write(self, action: Callable[[sqlite3.Connection], T], *, bump: bool = True) -> T:
        """Run ``action`` in one ``BEGIN IMMEDIATE`` transaction (bumping the revision), retried while busy.

        ``action`` may run more than once, so whatever it does outside the database must be idempotent.
        """

        def attempt() -> T:
            db = self.connection()
            db.execute("BEGIN IMMEDIATE")  # take the write lock now: no deadlock upgrading a read later
            try:
                result = action(db)
                if bump:
                    db.execute(BUMP_REVISION)
                db.execute("COMMIT")
            except BaseException:
                if db.in_transaction:
                    db.execute("ROLLBACK")
                raise
            return result

        return self.retrying(attempt)

    @contextlib.contextmanager
    def snapshot(self) -> Iterator[sqlite3.Connection]:
        """A read transaction: every query inside sees the same committed state."""
        db = self.connection()
        self.retrying(lambda: db.execute("BEGIN"))
        try:
            yield db
        finally:
            if db.in_transaction:
                db.execute("COMMIT")


def read_revision(db: sqlite3.Connection) -> int:
    """The write counter as seen by ``db`` (inside a snapshot, as of that snapshot)."""
    return int(db.execute("SELECT value FROM meta WHERE key = 'revision'").fetchone()[0])
