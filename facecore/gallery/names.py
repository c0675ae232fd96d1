"""People's names: how a name is cleaned before it is stored, and the key that makes names unique.

A stored name is NFC-normalised and trimmed, 1 to ``MAX_NAME_LENGTH`` characters, without control
characters, lone surrogates or line/paragraph separators. Two names are the same person when their
:func:`name_key` (NFC + casefold) is equal, so 'ÉLISE' and 'élise' cannot both exist in any script
(SQLite's NOCASE folds ASCII only). Names never become file names.

Invisible characters that change how a name *looks* are refused, so that a name can never display as
another one (the "Trojan Source" trick, CVE-2021-42574):

* bidirectional controls: embeddings and overrides U+202A-U+202E, isolates U+2066-U+2069, and the
  marks U+200E (LRM), U+200F (RLM) and U+061C (ALM). A name in Arabic or Hebrew is shown right to left
  by the Unicode bidi algorithm on its own; marks are only needed to mix directions inside running
  text, and they can make "Eve" sort or read as something else, so they are refused too;
* zero-width characters with no place in a name: U+200B (zero-width space), U+2060 (word joiner),
  U+FEFF (byte-order mark) and U+00AD (soft hyphen);
* every other format character (Unicode category ``Cf``: e.g. the invisible operators U+2061-U+2064,
  the deprecated U+206A-U+206F, U+180E, the tag characters U+E0000-U+E007F) and the default-ignorable
  marks and fillers that draw nothing (:data:`INVISIBLE_MARKS`: U+034F, the Hangul fillers U+115F,
  U+1160, U+3164, U+FFA0, the Mongolian selectors U+180B-U+180F and the variation selectors
  U+FE00-U+FE0F and U+E0100-U+E01EF), so that 'Bob\u2061by' can never sit beside 'Bobby'. This
  refuses emoji written with the emoji-style selector U+FE0F ('❤\ufe0f'); the emoji without it is
  accepted ('❤'). The message names the character's code point and Unicode name.

U+200C (ZWNJ) and U+200D (ZWJ) are letters' business in Persian and the Indic scripts, so they are
kept there: allowed only between two non-ASCII letters or marks. The ZWJ also joins emoji into one
picture ('👩\u200d🔬', woman scientist), so it is allowed between two symbols (an emoji, possibly
followed by its skin-tone modifier, then another emoji). Elsewhere (next to ASCII, at the edges,
doubled) they are refused. :func:`name_key` ignores them, so 'Bo\u200db'-style look-alikes of an
existing name are duplicates even where they pass.
"""

from __future__ import annotations

import unicodedata

from facecore.gallery.records import GalleryError

MAX_NAME_LENGTH = 100
#: Unicode categories a name may not contain: control characters (NUL, tab, newline, DEL, C1), lone
#: surrogates, line and paragraph separators.
FORBIDDEN_NAME_CATEGORIES = frozenset({"Cc", "Cs", "Zl", "Zp"})
#: Bidirectional controls and marks: they can make a name display as another name.
BIDI_CONTROLS = frozenset(
    [chr(c) for c in range(0x202A, 0x202F)] + [chr(c) for c in range(0x2066, 0x206A)] + ["\u200e", "\u200f", "\u061c"]
)
#: Invisible characters with no use in a name.
ZERO_WIDTH = frozenset({"\u200b", "\u2060", "\ufeff", "\u00ad"})
#: Zero-width (non-)joiners: allowed only between two non-ASCII letters or marks (Persian, Indic scripts).
JOINERS = frozenset({"\u200c", "\u200d"})
#: Default-ignorable characters outside category Cf that draw nothing: the combining grapheme joiner,
#: the Hangul fillers, the Mongolian free variation selectors and the variation selectors.
INVISIBLE_MARKS = frozenset(
    ["\u034f", "\u115f", "\u1160", "\u3164", "\uffa0"]
    + [chr(c) for c in range(0x180B, 0x1810)]
    + [chr(c) for c in range(0xFE00, 0xFE10)]
    + [chr(c) for c in range(0xE0100, 0xE01F0)]
)


def _joiner_in_place(text: str, at: int) -> bool:
    """Whether the joiner at ``text[at]`` sits between two non-ASCII letters or marks, or (a ZWJ) inside
    an emoji sequence: a symbol (``So``, or its skin-tone modifier ``Sk``) before, a symbol after."""
    if at == 0 or at == len(text) - 1:
        return False
    before, after = text[at - 1], text[at + 1]
    if all(not c.isascii() and unicodedata.category(c)[0] in "LM" for c in (before, after)):
        return True
    emoji_end = unicodedata.category(before) in {"So", "Sk"}
    return text[at] == "\u200d" and emoji_end and unicodedata.category(after) == "So"


def _invisible_problem(text: str) -> str | None:
    """A sentence saying which invisible character ``text`` may not contain, or None."""
    for at, c in enumerate(text):
        code = f"U+{ord(c):04X}"
        if c in BIDI_CONTROLS:
            return (
                f"A name cannot contain bidirectional control characters ({code}): they can make a name "
                "display as another name. Type the name without them."
            )
        if c in ZERO_WIDTH or (c in JOINERS and not _joiner_in_place(text, at)):
            return (
                f"A name cannot contain invisible zero-width characters ({code}) here: they make two "
                "names look the same. Type the name without them."
            )
        if c not in JOINERS and (c in INVISIBLE_MARKS or unicodedata.category(c) == "Cf"):
            what = unicodedata.name(c, "")
            return (
                f"A name cannot contain the invisible character {code}{f' ({what})' if what else ''}: it "
                "draws nothing, so two names would look the same. Type the name without it."
            )
    return None


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
    problem = _invisible_problem(cleaned)
    if problem is not None:
        raise GalleryError(problem)
    return cleaned


def name_key(name: str) -> str:
    """The uniqueness key of a name: NFC + casefold (SQLite's NOCASE folds ASCII only)."""
    if not isinstance(name, str):
        raise TypeError(f"a name must be a str, not {type(name).__name__}")
    visible = "".join(c for c in name if c not in JOINERS)
    return unicodedata.normalize("NFC", unicodedata.normalize("NFC", visible).strip().casefold())
