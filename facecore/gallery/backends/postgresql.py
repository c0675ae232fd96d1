"""``postgresql://user@host:port/db``: the gallery in PostgreSQL with pgvector, shared by many servers."""

from __future__ import annotations

from typing import Any

from facecore.gallery.stores import STORES


@STORES.register("postgresql")
class PostgresStore:
    summary = "Shared: PostgreSQL + pgvector, one database for several API servers and millions of faces."
    order = 1

    @staticmethod
    def open(location: str) -> Any:
        from facecore.gallery.postgres import PostgresGallery

        return PostgresGallery(location)
