"""People's names: how a name is cleaned before it is stored, and the key that makes names unique.

A stored name is NFC-normalised and trimmed, 1 to ``MAX_NAME_LENGTH`` characters, without control
characters, lone surrogates or line/paragraph separators. Two names are the same person when their
:func:`name_key` (NFC + casefold) is equal, so 'ÉLISE' and 'élise' cannot both exist in any script
(SQLite's NOCASE folds ASCII only). Names never become file names.
"""

from __future__ import annotations

import unicodedata

from facecore.gallery.records import GalleryError

MAX_NAME_LENGTH = 100
#: Unicode categories a name may not contain: control characters (NUL, tab, newline, DEL, C1), lone
#: surrogates, line and paragraph separators.
FORBIDDEN_NAME_CATEGORIES = frozenset({"Cc", "Cs", "Zl", "Zp"})


def clean_name(name: str) -> str:
    """The name as stored (NFC, trimmed), or ``GalleryError`` saying why it cannot be used."""
    if not isinstance(name, str):
        raise GalleryError("A name must be text.")
    cleaned = unicodedata.normalize("NFC", name).strip()
    if not cleaned:
        raise GalleryError("A name cannot be empty.")
    if len(cleaned) > MAX_NAME_LENGTH:
        raise GalleryError(
            f"A name can have at most {MAX_NAME_LENGTH} characters; this one has {len(cleaned)}."
        )
    bad = next((c for c in cleaned if unicodedata.category(c) in FORBIDDEN_NAME_CATEGORIES), None)
    if bad is not None:
        raise GalleryError(
            f"A name cannot contain control characters such as NUL, tabs or line breaks (found U+{ord(bad):04X})."
        )
    return cleaned


def name_key(name: str) -> str:
    """The uniqueness key of a name: NFC + casefold (SQLite's NOCASE folds ASCII only)."""
    if not isinstance(name, str):
        raise TypeError(f"a name must be a str, not {type(name).__name__}")
    return unicodedata.normalize("NFC", unicodedata.normalize("NFC", name).strip().casefold())
