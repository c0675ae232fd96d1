"""Zip archives built in memory for the import tests (API and gallery)."""

from __future__ import annotations

import io
import zipfile


def zip_bytes(entries: dict[str, bytes]) -> bytes:
    """A zip holding ``{path inside the zip: content}``, in that order."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
    return buffer.getvalue()
