"""Which server folders the dashboard may import from: only under one allowed root, off by default.

Contract:

* :func:`allowed_import_root` is ``$FACECORE_IMPORT_ROOT`` resolved (symlinks followed), or None when
  it is unset or empty: then no server path is read at all, and the Gallery page offers zip and photo
  uploads only. A root that is not a folder is an error naming the variable.
* :func:`resolve_under` turns what a visitor typed (relative to the root, or absolute) into a folder
  at or under the root. Anything that resolves outside it (``..``, an absolute path elsewhere, a
  symlink pointing out) is refused with a ``GalleryError`` that names the root, never the resolved
  target. :func:`keep_inside` drops listed images whose own symlinks lead outside the root.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from facecore.gallery.records import GalleryError

IMPORT_ROOT_ENV = "FACECORE_IMPORT_ROOT"


def allowed_import_root(env: Mapping[str, str] | None = None) -> Path | None:
    """The folder server-side imports are confined to, or None (server-side import off)."""
    value = (os.environ if env is None else env).get(IMPORT_ROOT_ENV, "").strip()
    if not value:
        return None
    root = Path(value).expanduser().resolve()
    if not root.is_dir():
        raise GalleryError(f"{IMPORT_ROOT_ENV}={value!r} is not a folder.")
    return root


def _inside(path: Path, root: Path) -> bool:
    return path == root or root in path.parents


def resolve_under(root: Path, typed: str) -> Path:
    """The folder ``typed`` names, if it is ``root`` or below it; ``GalleryError`` otherwise."""
    text = typed.strip()
    if not text or "\x00" in text:
        raise GalleryError("Type a folder under the import root.")
    candidate = Path(text).expanduser()
    target = (candidate if candidate.is_absolute() else root / candidate).resolve()
    if not _inside(target, root):
        raise GalleryError(f"Only folders under {root} can be imported; '{text}' is outside it.")
    if not target.is_dir():
        raise GalleryError(f"There is no folder '{text}' under {root}.")
    return target


def keep_inside(found: Mapping[str, list[Path]], root: Path) -> dict[str, list[Path]]:
    """``found`` (``{person: [image, ...]}``) without images that resolve outside ``root``."""
    kept = {person: [p for p in images if _inside(p.resolve(), root)] for person, images in found.items()}
    return {person: images for person, images in kept.items() if images}
