"""Telling a person what happened: errors that say what failed and why, queued messages, progress bars.

The rule for every page: a bad file or an unexpected failure becomes a readable ``st.error`` (and the
page carries on or stops), never a traceback.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import streamlit as st

from facecore.embedding.keras_file import KerasModelError
from facecore.images import ImageError

log = logging.getLogger(__name__)

#: Errors whose message is written for a person (a bad file, a refused name, an unusable model).
PLAIN_ERRORS: tuple[type[BaseException], ...] = (ImageError, KerasModelError)


def _plain_errors() -> tuple[type[BaseException], ...]:
    try:
        from facecore.gallery import GalleryError
    except ImportError:  # pragma: no cover - the gallery package is part of facecore
        return PLAIN_ERRORS
    return (*PLAIN_ERRORS, GalleryError)


def error_text(what: str, exc: BaseException) -> str:
    """``what`` failed, and why: the message itself for errors meant for people, else its kind too."""
    if isinstance(exc, _plain_errors()):
        return f"{what}: {exc}"
    return f"{what} ({type(exc).__name__}: {exc})."


def show_error(what: str, exc: BaseException) -> None:
    """One ``st.error`` saying what failed and why (``what`` is a phrase like "The LFW run failed").

    Unexpected errors are logged with their traceback for whoever runs the server.
    """
    if not isinstance(exc, _plain_errors()):
        log.error("%s", what, exc_info=exc)
    st.error(error_text(what, exc))


def flash(kind: str, message: str) -> None:
    """Queue a message to show at the top of the page on the next run (for widget callbacks)."""
    st.session_state.setdefault("_flash", []).append((kind, message))


def show_flashes() -> None:
    """The queued messages, in one container that is there even when empty.

    A message that comes and goes must not shift the elements after it, or Streamlit sees them as new
    and resets them (e.g. the selected tab).
    """
    with st.container():
        for kind, message in st.session_state.pop("_flash", []):
            getattr(st, kind)(message)


def progress_reporter(bar, what: str = "Embedding images") -> Callable[[int, int], None]:
    """A ``progress(done, total)`` callback that moves an ``st.progress`` bar."""

    def report(done: int, total: int) -> None:
        bar.progress(done / total if total else 1.0, text=f"{what}: {done:,} / {total:,}")

    return report
