"""The folder of kept ``.keras`` models (``$FACECORE_MODELS_DIR``, else ``~/.cache/facecore/models``).

A kept file is named ``<name>-<sha256[:12]>.keras`` and never changes once written, so an embedder
loaded from it (and cached by path) always matches it. Files are checked with
:func:`facecore.embedding.keras_file.load_embedding_model` before they become visible.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from pathlib import Path

from facecore.embedding.keras_file import load_embedding_model

MODELS_DIR_ENV = "FACECORE_MODELS_DIR"


def default_models_dir() -> Path:
    """Where kept ``.keras`` models live: ``$FACECORE_MODELS_DIR``, else ``~/.cache/facecore/models``."""
    override = os.environ.get(MODELS_DIR_ENV)
    return Path(override).expanduser() if override else Path.home() / ".cache" / "facecore" / "models"


def saved_models(directory: str | os.PathLike[str] | None = None) -> list[Path]:
    """The ``.keras`` files in the models folder, by name (empty when the folder does not exist)."""
    folder = Path(directory) if directory is not None else default_models_dir()
    return sorted(p for p in folder.glob("*.keras") if p.is_file()) if folder.is_dir() else []


def keep_model(content: bytes, name: str, directory: str | os.PathLike[str] | None = None) -> Path:
    """Check ``content`` is a usable embedding model and store it as ``<name>-<digest>.keras``.

    The digest in the name means a file never changes once written, so an embedder loaded from it
    (and cached by path) always matches it. Raises :class:`KerasModelError` for an unusable model.
    """
    folder = Path(directory) if directory is not None else default_models_dir()
    folder.mkdir(parents=True, exist_ok=True)
    stem = re.sub(r"[^A-Za-z0-9_-]+", "-", Path(name).stem).strip("-")[:40] or "model"
    digest = hashlib.sha256(content).hexdigest()[:12]
    target = folder / f"{stem}-{digest}.keras"
    if target.is_file():
        return target
    with tempfile.TemporaryDirectory(dir=folder) as scratch:
        candidate = Path(scratch) / target.name
        candidate.write_bytes(content)
        load_embedding_model(candidate)  # refuse before it becomes visible to the pages
        candidate.replace(target)
    return target
