"""``sqlite:///path/to/folder``: the embedded gallery (SQLite, files and FAISS) in that folder."""

from __future__ import annotations

from typing import Any

from facecore.gallery.stores import STORES


@STORES.register("sqlite")
class SqliteStore:
    summary = "Embedded: SQLite, files and a FAISS index in one folder on this machine (the default)."
    order = 0

    @staticmethod
    def open(location: str) -> Any:
        from facecore.gallery.store import Gallery

        return Gallery(location or None)
