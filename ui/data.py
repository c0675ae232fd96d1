"""Which LFW the pages use, said on every page that uses it, and the one "Download full LFW" button.

:func:`lfw_panel` is what a page calls: it finds LFW (``facecore.evaluation.datasets.find_lfw``: the
``$FACECORE_LFW_HOME`` folder, scikit-learn's data home, else the mini LFW bundled in ``samples/``),
says in a caption which copy is used, and, when that copy is not the full LFW, offers to download it.

The download runs ``download_lfw`` in a background thread; the script thread polls the job and moves
an ``st.progress`` bar (Streamlit elements are only ever touched from the script thread), shows the
``DownloadError`` message when there is no internet, and reruns the app when the full LFW is there.
One job per process: a rerun, another page or another session picks up the running download.
"""

from __future__ import annotations

import functools
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import streamlit as st

from facecore.evaluation.datasets import (
    BUNDLED,
    LFW_HOME_ENV,
    LFW_SUBSETS,
    DownloadError,
    LfwSource,
    download_lfw,
    find_lfw,
    sklearn_data_home,
)

#: What scikit-learn downloads for LFW (the funneled archive and the pairs files), for the progress bar.
DOWNLOAD_BYTES = 235_000_000
_POLL_SECONDS = 0.5

#: How each pairs subset is named to people.
SUBSET_LABELS = {
    "10_folds": "pairs.txt, View 2",
    "dev_train": "pairsDevTrain.txt, View 1",
    "dev_test": "pairsDevTest.txt, View 1",
    "demo": "View 1 demo pairs",
}


@functools.lru_cache(maxsize=16)
def pair_count(home: Path, subset: str) -> int:
    """How many pairs ``subset`` holds, from its header (``folds n`` -> folds x 2n, or ``n`` -> 2n)."""
    with open(home / "lfw_home" / LFW_SUBSETS[subset]) as f:
        header = [int(v) for v in f.readline().split()]
    folds, n = header if len(header) == 2 else (1, header[0])
    return folds * 2 * n


def subset_label(source: LfwSource, subset: str) -> str:
    """``"LFW pairs.txt, View 2 (6,000 pairs)"`` for a subset present in ``source``."""
    return f"LFW {SUBSET_LABELS[subset]} ({pair_count(source.home, subset):,} pairs)"


def lfw_source_note(source: LfwSource) -> str:
    """One line saying which LFW copy a page uses and what it holds."""
    subset = source.benchmark_subset
    pairs = ""
    if subset in source.subsets:
        pairs = f", {pair_count(source.home, subset):,} pairs ({SUBSET_LABELS[subset]})"
    what = f"{source.images:,} images of {source.people:,} people{pairs}"
    if source.origin == BUNDLED:
        return f"Using the bundled mini LFW: {what}."
    kind = "full LFW" if source.full else "a partial LFW"
    return f"Using {kind}: {what}, from {source.home} ({source.origin})."


def current_lfw() -> LfwSource | None:
    """The LFW to use, or None after an ``st.error`` (only when ``$FACECORE_LFW_HOME`` names no LFW)."""
    try:
        return find_lfw()
    except FileNotFoundError as exc:
        st.error(f"{exc} Unset {LFW_HOME_ENV} to use the LFW bundled with the lab.")
        return None


# ----------------------------------------------------------------------------- the download


@dataclass
class _Download:
    """A download running in a background thread; only plain values cross between the threads."""

    target: Path
    written: int = 0
    error: str | None = None
    thread: threading.Thread | None = field(default=None, repr=False)

    def run(self) -> None:
        try:
            download_lfw(self.target, progress=self._progress)
        except DownloadError as exc:
            self.error = str(exc)
        except Exception as exc:  # anything else (a full disk, a corrupt archive) is still said in words
            self.error = f"LFW could not be downloaded into {self.target}: {type(exc).__name__}: {exc}"

    def _progress(self, written: int) -> None:
        self.written = written

    @property
    def running(self) -> bool:
        return self.thread is not None and self.thread.is_alive()


_LOCK = threading.Lock()
_JOBS: dict[Path, _Download] = {}


def _start(target: Path) -> _Download:
    """The download into ``target``: the running one if there is one, else a new one."""
    with _LOCK:
        job = _JOBS.get(target)
        if job is None or not job.running:
            job = _Download(target)
            job.thread = threading.Thread(target=job.run, name="lfw-download", daemon=True)
            _JOBS[target] = job
            job.thread.start()
        return job


def _follow(job: _Download) -> None:
    """Poll ``job`` from the script thread until it ends; then an error, or a rerun with the full LFW."""
    bar = st.progress(0.0, text="Downloading LFW...")
    while job.running:
        mb = job.written / 1e6
        bar.progress(min(job.written / DOWNLOAD_BYTES, 0.99), text=f"Downloading LFW: {mb:,.0f} of about "
                     f"{DOWNLOAD_BYTES / 1e6:,.0f} MB")
        time.sleep(_POLL_SECONDS)
    bar.empty()
    with _LOCK:
        if _JOBS.get(job.target) is job:
            del _JOBS[job.target]
    if job.error is not None:
        st.error(job.error)
        return
    st.cache_data.clear()  # LFW listings and samples cached for the old copy
    st.rerun()


def download_offer(source: LfwSource, key: str) -> None:
    """The "Download full LFW" button (about 230 MB through scikit-learn; needs internet), when the
    full LFW is not there yet; a download already running anywhere in this process is followed."""
    target = sklearn_data_home()
    job = _JOBS.get(target)
    if job is not None and (job.running or job.error is not None):
        _follow(job)
        return
    where = f"scikit-learn's data home ({target})"
    if source.origin == LFW_HOME_ENV:
        where += f"; {LFW_HOME_ENV} is set, so point it there (or unset it) afterwards"
    if st.button("Download full LFW", key=f"{key}_download_lfw", icon=":material/download:",
                 help=f"About 230 MB through scikit-learn, into {where}. Needs internet access."):
        _follow(_start(target))
    else:
        st.caption(f"The full LFW (13,233 images, 6,000 benchmark pairs) is about 230 MB through scikit-learn, "
                   f"into {where}. It needs internet access.")


def lfw_panel(key: str) -> LfwSource | None:
    """Which LFW this page uses (a caption) and, unless it is the full LFW, the download offer.

    None after an error when ``$FACECORE_LFW_HOME`` names a folder without LFW.
    """
    source = current_lfw()
    if source is None:
        return None
    st.caption(lfw_source_note(source))
    if not source.full:
        download_offer(source, key)
    return source
