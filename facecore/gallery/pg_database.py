"""The gallery's PostgreSQL database: schema and migrations, a connection pool, and transactions.

:class:`PostgresDatabase` offers what :class:`facecore.gallery.database.Database` offers SQLite's
users: ``write(action)`` runs ``action(db)`` in one transaction (retried on a serialisation failure or
deadlock, so ``action`` must be idempotent outside the database) and ``snapshot()`` yields a read-only
``REPEATABLE READ`` transaction. ``db`` is a :class:`PgConnection`, whose ``execute(sql, params)``
takes the same ``?`` placeholders as ``sqlite3`` (translated to ``%s``) and returns a cursor with
``fetchone()`` / ``fetchall()``; there is no ``lastrowid``: use ``INSERT ... RETURNING id``.
A module that keeps its own tables in the gallery database adds its ``CREATE TABLE IF NOT EXISTS``
to ``_SCHEMA`` here (PostgreSQL types) as it does to the SQLite one.

Every write first locks the ``revision`` row of ``meta``, so writers are serialised as SQLite's
``BEGIN IMMEDIATE`` serialises them (checks such as "is this face already there" hold until the
commit), and bumps it at the end. Commits are synchronous (PostgreSQL's default), so a write that
returned survives a crash of this process or of the server.

The pool (``psycopg_pool``) is per process: a child process opens its own, as with SQLite.
"""

from __future__ import annotations

import contextlib
import functools
import os
import random
import threading
import time
import uuid
import weakref
from collections.abc import Callable, Iterator, Sequence
from typing import Any, TypeVar

import psycopg
from pgvector.psycopg import register_vector
from psycopg_pool import ConnectionPool

from facecore.gallery.records import GalleryError

SCHEMA_VERSION = 1
POOL_MAX = int(os.environ.get("FACECORE_PG_POOL_MAX", "8"))
_WRITE_ATTEMPTS = 8
_RETRIED = (psycopg.errors.SerializationFailure, psycopg.errors.DeadlockDetected)
_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    """CREATE TABLE IF NOT EXISTS people (
        id BIGSERIAL PRIMARY KEY,
        name TEXT NOT NULL,
        name_key TEXT NOT NULL UNIQUE,
        created DOUBLE PRECISION NOT NULL
    )""",
    "CREATE TABLE IF NOT EXISTS images (sha256 TEXT PRIMARY KEY, data BYTEA NOT NULL)",
    "CREATE TABLE IF NOT EXISTS chips (sha256 TEXT PRIMARY KEY, png BYTEA NOT NULL)",
    """CREATE TABLE IF NOT EXISTS faces (
        id BIGSERIAL PRIMARY KEY,
        person_id BIGINT NOT NULL REFERENCES people(id) ON DELETE CASCADE,
        image_sha256 TEXT NOT NULL REFERENCES images(sha256),
        chip_sha256 TEXT NOT NULL REFERENCES chips(sha256),
        box TEXT NOT NULL,
        score DOUBLE PRECISION,
        detector TEXT NOT NULL,
        model_version TEXT NOT NULL,
        embedding vector NOT NULL,
        created DOUBLE PRECISION NOT NULL
    )""",
    "CREATE INDEX IF NOT EXISTS faces_person ON faces(person_id)",
    "CREATE INDEX IF NOT EXISTS faces_model ON faces(model_version, id)",
    "CREATE INDEX IF NOT EXISTS faces_image ON faces(image_sha256)",
    "CREATE INDEX IF NOT EXISTS faces_chip ON faces(chip_sha256)",
    # The same side tables as the SQLite store's (facecore.gallery.database._SCHEMA), in PostgreSQL types.
    """CREATE TABLE IF NOT EXISTS operating_points (
        model_version TEXT NOT NULL,
        detector TEXT NOT NULL,
        metric TEXT NOT NULL,
        name TEXT NOT NULL,
        threshold DOUBLE PRECISION NOT NULL,
        source TEXT NOT NULL,
        set_name TEXT NOT NULL,
        set_size BIGINT NOT NULL,
        target TEXT NOT NULL,
        impostor BYTEA NOT NULL,
        genuine BYTEA NOT NULL,
        active INTEGER NOT NULL,
        created DOUBLE PRECISION NOT NULL,
        PRIMARY KEY (model_version, detector, metric, name)
    )""",
    """CREATE TABLE IF NOT EXISTS api_keys (
        id BIGSERIAL PRIMARY KEY,
        name TEXT NOT NULL,
        role TEXT NOT NULL,
        key_sha256 TEXT NOT NULL UNIQUE,
        prefix TEXT NOT NULL,
        created DOUBLE PRECISION NOT NULL,
        revoked DOUBLE PRECISION
    )""",
    "CREATE UNIQUE INDEX IF NOT EXISTS api_keys_active_name ON api_keys(name) WHERE revoked IS NULL",
    """CREATE TABLE IF NOT EXISTS audit_log (
        id BIGSERIAL PRIMARY KEY,
        time DOUBLE PRECISION NOT NULL,
        key_name TEXT NOT NULL,
        route TEXT NOT NULL,
        model_version TEXT,
        threshold DOUBLE PRECISION,
        result TEXT NOT NULL,
        ids TEXT NOT NULL
    )""",
    "CREATE INDEX IF NOT EXISTS audit_log_time ON audit_log(time)",
)
_LOCK_WRITES = "SELECT value FROM meta WHERE key = 'revision' FOR UPDATE"
BUMP_REVISION = "UPDATE meta SET value = (value::bigint + 1)::text WHERE key = 'revision'"

T = TypeVar("T")


@functools.lru_cache(maxsize=1024)
def to_format(sql: str) -> str:
    """``sql`` with sqlite3's ``?`` placeholders as psycopg's ``%s`` (and a literal ``%`` as ``%%``);
    quoted strings and identifiers are left alone."""
    out: list[str] = []
    quote = ""
    for ch in sql:
        if quote:
            quote = "" if ch == quote else quote
            out.append("%%" if ch == "%" else ch)
        elif ch in "'\"":
            quote = ch
            out.append(ch)
        else:
            out.append({"?": "%s", "%": "%%"}.get(ch, ch))
    return "".join(out)


class PgConnection:
    """A psycopg connection that speaks ``?`` placeholders, like the ``sqlite3`` one the stores share."""

    def __init__(self, raw: psycopg.Connection) -> None:
        self.raw = raw

    def execute(self, sql: str, params: Sequence[Any] = ()) -> psycopg.Cursor:
        if not params:
            return self.raw.execute(sql)
        return self.raw.execute(to_format(sql), tuple(params))

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> psycopg.Cursor:
        cursor = self.raw.cursor()
        cursor.executemany(to_format(sql), rows)
        return cursor


def _configure(conn: psycopg.Connection) -> None:
    register_vector(conn)


class PostgresDatabase:
    """The database at ``url``, with the schema created or migrated on first connect."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._lock = threading.Lock()
        self._pool: tuple[int, ConnectionPool] | None = None
        try:
            with psycopg.connect(url, autocommit=True) as conn:
                conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
        except psycopg.Error as exc:
            raise GalleryError(f"Cannot open the PostgreSQL gallery ({exc}).".strip()) from exc
        self.database_id = self._init_schema()

    def pool(self) -> ConnectionPool:
        """This process's pool (a pool never crosses a fork)."""
        with self._lock:
            if self._pool is None or self._pool[0] != os.getpid():
                pool = ConnectionPool(
                    self.url,
                    min_size=1,
                    max_size=POOL_MAX,
                    kwargs={"autocommit": True},
                    configure=_configure,
                    open=True,
                )
                self._pool = (os.getpid(), pool)
                # A pool sits in a reference cycle with its worker threads, so left to the garbage
                # collector it may be collected on one of them, which cannot join itself: close it
                # when this database goes, on the thread that lets it go.
                weakref.finalize(self, pool.close)
            return self._pool[1]

    def close(self) -> None:
        with self._lock:
            if self._pool is not None and self._pool[0] == os.getpid():
                self._pool[1].close()
            self._pool = None

    @contextlib.contextmanager
    def connection(self) -> Iterator[PgConnection]:
        """A pooled connection in autocommit mode: each statement sees the latest commits."""
        with self.pool().connection() as raw:
            yield PgConnection(raw)

    def _init_schema(self) -> str:
        def create(db: PgConnection) -> str:
            # One creator at a time, even before the meta table exists.
            db.execute("SELECT pg_advisory_xact_lock(7419)")
            for statement in _SCHEMA:
                db.execute(statement)
            found = db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
            if found is not None and int(found[0]) > SCHEMA_VERSION:
                raise GalleryError("This gallery database was written by a newer version of this program.")
            db.execute("INSERT INTO meta (key, value) VALUES ('revision', '0') ON CONFLICT DO NOTHING")
            db.execute(
                "INSERT INTO meta (key, value) VALUES ('database_id', ?) ON CONFLICT DO NOTHING",
                (uuid.uuid4().hex,),
            )
            db.execute(
                "INSERT INTO meta (key, value) VALUES ('schema_version', ?) "
                "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                (str(SCHEMA_VERSION),),
            )
            return db.execute("SELECT value FROM meta WHERE key = 'database_id'").fetchone()[0]

        with self.connection() as db, db.raw.transaction():
            return create(db)

    def write(self, action: Callable[[PgConnection], T], *, bump: bool = True) -> T:
        """Run ``action`` in one transaction, after every earlier writer (bumping the revision).

        ``action`` may run more than once, so whatever it does outside the database must be idempotent.
        """
        for attempt in range(_WRITE_ATTEMPTS):
            try:
                with self.connection() as db, db.raw.transaction():
                    db.execute(_LOCK_WRITES)
                    result = action(db)
                    if bump:
                        db.execute(BUMP_REVISION)
                return result
            except _RETRIED:
                if attempt + 1 == _WRITE_ATTEMPTS:
                    raise
                time.sleep(min(1.0, 0.02 * 2**attempt) * (0.5 + random.random()))
        raise AssertionError("unreachable")

    @contextlib.contextmanager
    def snapshot(self) -> Iterator[PgConnection]:
        """A read-only transaction: every query inside sees the same committed state."""
        with self.connection() as db, db.raw.transaction():
            db.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            yield db


def read_revision(db: PgConnection) -> int:
    """The write counter as seen by ``db``."""
    return int(db.execute("SELECT value FROM meta WHERE key = 'revision'").fetchone()[0])
