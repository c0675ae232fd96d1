"""Where the bench scripts find their data when no path is given: the same places the app looks.

* LFW (a data home in scikit-learn's layout, holding ``lfw_home/``): ``--data-home``, else
  ``$FACECORE_LFW_HOME``, else scikit-learn's data home, else the mini LFW bundled in ``samples/lfw``
  (:func:`facecore.evaluation.datasets.find_lfw`).
* Photos (``faces_small/``, ``faces_group/``): ``--photos``, else the demo pack in ``samples/``.

Nothing here reads a folder beside the checkout.
"""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

import _repo_path  # noqa: F401  (puts the repo root on sys.path)

from facecore.evaluation.datasets import SAMPLES_DIR, default_lfw_home, lfw_images_dir

#: The LFW photo the per-stage timings use on the full LFW (the first person of LFW's sorted list).
REFERENCE_LFW_PHOTO = "Aaron_Peirsol/Aaron_Peirsol_0001.jpg"
LFW_HOME_HELP = "LFW data home (holds lfw_home/); default: $FACECORE_LFW_HOME, else the bundled mini LFW"
PHOTOS_HELP = "folder holding faces_small/ and faces_group/; default: the demo pack in samples/"


#: Options whose values are machine paths, and what a recorded command says instead.
_PORTABLE = {"--data-home": "$FACECORE_LFW_HOME", "--cache-dir": "$FACECORE_CACHE_DIR"}


def command_line(argv: list[str] | None = None) -> str:
    """The command that ran, as a record others can re-run: ``python`` and the arguments, with the
    LFW data home and the cache folder named by their environment variables instead of this machine's
    paths, and paths inside the checkout relative to it.

    >>> command_line(["bench/x.py", "--data-home", "/data/sklearn", "--cache-dir=/tmp/c", "--limit", "5"])
    'python bench/x.py --data-home "$FACECORE_LFW_HOME" --cache-dir "$FACECORE_CACHE_DIR" --limit 5'
    """
    argv = list(sys.argv if argv is None else argv)
    root = str(Path(__file__).resolve().parents[1]) + "/"
    words, replace_next = ["python"], None
    for arg in argv:
        option, eq, value = arg.partition("=")
        if replace_next:
            words.append(f'"{replace_next}"')
            replace_next = None
        elif eq and option in _PORTABLE:
            words.append(f'{option} "{_PORTABLE[option]}"')
        elif arg in _PORTABLE:
            words.append(arg)
            replace_next = _PORTABLE[arg]
        else:
            words.append(shlex.quote(arg.removeprefix(root)))
    return " ".join(words)


def lfw_home(given: Path | None) -> Path:
    """``given``, else the LFW the app would use (:func:`find_lfw`)."""
    return given if given is not None else default_lfw_home()


def photos_dir(given: Path | None) -> Path:
    """``given``, else ``samples/`` (the bundled photos)."""
    return given if given is not None else SAMPLES_DIR


def benchmark_subset(data_home: Path) -> str:
    """``10_folds`` (pairs.txt, View 2) where the data home has it, else the bundled pack's ``demo`` pairs."""
    return "10_folds" if (data_home / "lfw_home" / "pairs.txt").is_file() else "demo"


def reference_lfw_photo(data_home: Path) -> Path:
    """``Aaron_Peirsol_0001.jpg`` on the full LFW; on a smaller copy, the first photo of its first person."""
    images = lfw_images_dir(data_home)
    if (images / REFERENCE_LFW_PHOTO).is_file():
        return images / REFERENCE_LFW_PHOTO
    first = min(p for p in images.iterdir() if p.is_dir())
    return min(first.glob("*.jpg"))
