"""Face data on disk: the LFW verification protocol and plain one-folder-per-person image sets.

LFW is read from a *data home* in scikit-learn's cache layout::

    <data_home>/lfw_home/lfw_funneled/<Name>/<Name>_0001.jpg
    <data_home>/lfw_home/pairs.txt, pairsDevTrain.txt, pairsDevTest.txt   (full LFW)
    <data_home>/lfw_home/pairs_demo.txt                                   (the bundled mini LFW)

:func:`find_lfw` looks for it in this order, everywhere (app, API, CLI, tests): ``$FACECORE_LFW_HOME``,
scikit-learn's data home (``sklearn.datasets.get_data_home()``) when it holds LFW, and the mini LFW
bundled with the repository in ``samples/lfw`` (read-only).

Nothing here downloads anything except :func:`download_lfw`, which only runs when a user asks for it.
The data home may be read-only: scikit-learn's loaders write a joblib cache into ``lfw_home/``, so
:func:`sklearn_pixel_pairs` runs them against a scratch data home made of symlinks instead.
"""

from __future__ import annotations

import contextlib
import functools
import os
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

#: Our subset names -> the pairs file (the official LFW ones, and the bundled pack's ``demo``).
LFW_SUBSETS = {
    "10_folds": "pairs.txt",
    "dev_train": "pairsDevTrain.txt",
    "dev_test": "pairsDevTest.txt",
    "demo": "pairs_demo.txt",
}
#: Our subset names -> scikit-learn's ``fetch_lfw_pairs(subset=...)`` names.
SKLEARN_SUBSETS = {"10_folds": "10_folds", "dev_train": "train", "dev_test": "test"}
IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".webp", ".bmp"})
LFW_HOME_ENV = "FACECORE_LFW_HOME"

#: The demo pack that ships with the repository (see ``samples/README.md``); never written to.
SAMPLES_DIR = Path(__file__).resolve().parents[2] / "samples"
BUNDLED_LFW_HOME = SAMPLES_DIR / "lfw"
#: What the full LFW holds (deep-funneled): used to tell the full set from a partial copy.
FULL_LFW_IMAGES = 13_233


@dataclass(frozen=True)
class Pair:
    """One verification pair; ``fold`` is 0-based (0..9 in pairs.txt, 0 in the dev files)."""

    path_a: Path
    path_b: Path
    same: bool
    fold: int


# --------------------------------------------------------------------------------------------------------
# Locating LFW
# --------------------------------------------------------------------------------------------------------


def lfw_images_dir(data_home: str | os.PathLike[str]) -> Path:
    """``<data_home>/lfw_home/lfw_funneled``; fails early with the layout we expect if it is not there."""
    images = Path(data_home).expanduser() / "lfw_home" / "lfw_funneled"
    if not images.is_dir():
        raise FileNotFoundError(
            f"LFW images not found at {images}. Expected scikit-learn's layout: "
            "<data_home>/lfw_home/lfw_funneled/<Name>/<Name>_0001.jpg plus pairs.txt, pairsDevTrain.txt "
            "and pairsDevTest.txt in <data_home>/lfw_home/. Set FACECORE_LFW_HOME to such a data home, "
            "or download LFW once with `python -m facecore download-lfw` (needs internet)."
        )
    return images


@dataclass(frozen=True)
class LfwSource:
    """Where LFW was found and what it holds, for a page or the CLI to say which copy it uses."""

    home: Path
    origin: str  # "FACECORE_LFW_HOME", "scikit-learn data home" or "bundled mini LFW"
    people: int
    images: int
    subsets: tuple[str, ...]  # the pairs subsets present (``10_folds``, ``dev_train``, ``dev_test``, ``demo``)

    @property
    def full(self) -> bool:
        """True for the complete LFW with its official pairs files (not the bundled mini LFW)."""
        return "10_folds" in self.subsets and self.images >= FULL_LFW_IMAGES

    @property
    def benchmark_subset(self) -> str:
        """The pairs to score here: View 2's pairs.txt on full LFW, else the pack's demo pairs."""
        return "10_folds" if "10_folds" in self.subsets else "demo"

    def describe(self) -> str:
        kind = "full LFW" if self.full else ("the bundled mini LFW" if self.origin == BUNDLED else "a partial LFW")
        return f"{kind}: {self.images:,} images of {self.people:,} people at {self.home} ({self.origin})"


BUNDLED = "bundled mini LFW"


def _has_lfw(home: Path) -> bool:
    return (home / "lfw_home" / "lfw_funneled").is_dir()


def sklearn_data_home() -> Path:
    """scikit-learn's data home, found as ``sklearn.datasets.get_data_home()`` finds it
    (``$SCIKIT_LEARN_DATA``, else ``~/scikit_learn_data``) but without creating the folder."""
    return Path(os.environ.get("SCIKIT_LEARN_DATA") or "~/scikit_learn_data").expanduser()


def _candidates() -> list[tuple[Path, str]]:
    found = []
    if override := os.environ.get(LFW_HOME_ENV):
        found.append((Path(override).expanduser(), LFW_HOME_ENV))
    found.append((sklearn_data_home(), "scikit-learn data home"))
    found.append((BUNDLED_LFW_HOME, BUNDLED))
    return found


@functools.lru_cache(maxsize=8)
def _describe(home: Path, origin: str, mtime: float) -> LfwSource:
    images_dir = home / "lfw_home" / "lfw_funneled"
    people = [p for p in images_dir.iterdir() if p.is_dir() and not p.name.startswith(".")]
    images = sum(1 for person in people for f in person.iterdir() if _is_image(f))
    subsets = tuple(name for name, file in LFW_SUBSETS.items() if (home / "lfw_home" / file).is_file())
    return LfwSource(home, origin, len(people), images, subsets)


def describe_lfw(home: Path, origin: str = "--data-home") -> LfwSource:
    """The LFW held by the data home ``home`` (named by ``origin``; the bundled pack is named as such).

    FileNotFoundError, naming the layout expected, when ``home`` holds no LFW.
    """
    images = lfw_images_dir(home)
    if home.resolve() == BUNDLED_LFW_HOME.resolve():
        origin = BUNDLED
    return _describe(home, origin, images.stat().st_mtime)


def find_lfw() -> LfwSource:
    """The LFW to use: ``$FACECORE_LFW_HOME``, else scikit-learn's data home, else the bundled mini LFW.

    A ``$FACECORE_LFW_HOME`` without LFW in it is an error (it was set on purpose); the bundled pack is
    always there.
    """
    for home, origin in _candidates():
        if _has_lfw(home):
            folder = home / "lfw_home" / "lfw_funneled"
            return _describe(home, origin, folder.stat().st_mtime)
        if origin == LFW_HOME_ENV:
            lfw_images_dir(home)  # raises FileNotFoundError with the layout we expect
    raise FileNotFoundError(f"the bundled mini LFW is missing from {BUNDLED_LFW_HOME}; the checkout is incomplete")


def default_lfw_home() -> Path:
    """The data home of :func:`find_lfw` (holds ``lfw_home/``)."""
    return find_lfw().home


# --------------------------------------------------------------------------------------------------------
# The pairs protocol
# --------------------------------------------------------------------------------------------------------


def _lfw_image(images: Path, name: str, number: str) -> Path:
    return images / name / f"{name}_{int(number):04d}.jpg"


def _parse_pairs(lines: list[str], images: Path, source: str) -> list[Pair]:
    """Parse the official format: a header ``folds n`` (or just ``n`` for one fold), then per fold
    ``n`` genuine lines ``name i j`` followed by ``n`` impostor lines ``name1 i name2 j``."""
    rows = [line.split() for line in lines if line.strip()]
    if not rows or not 1 <= len(rows[0]) <= 2:
        raise ValueError(f"{source}: first line must be '<folds> <pairs per half-fold>' or '<pairs>'")
    header = [int(v) for v in rows[0]]
    n_folds, n = header if len(header) == 2 else (1, header[0])
    body = rows[1:]
    if len(body) != n_folds * 2 * n:
        raise ValueError(f"{source}: header promises {n_folds * 2 * n} pairs, found {len(body)}")
    pairs = []
    for i, tokens in enumerate(body):
        fold, same = i // (2 * n), (i % (2 * n)) < n
        expected = 3 if same else 4
        if len(tokens) != expected:
            kind = "genuine 'name i j'" if same else "impostor 'name1 i name2 j'"
            raise ValueError(f"{source}, line {i + 2}: expected a {kind} line, got {' '.join(tokens)!r}")
        if same:
            name, i_a, i_b = tokens
            a, b = _lfw_image(images, name, i_a), _lfw_image(images, name, i_b)
        else:
            a, b = _lfw_image(images, tokens[0], tokens[1]), _lfw_image(images, tokens[2], tokens[3])
        pairs.append(Pair(a, b, same, fold))
    return pairs


def read_lfw_pairs(data_home: str | os.PathLike[str], subset: str = "10_folds") -> list[Pair]:
    """The pairs of an LFW subset (``10_folds``, ``dev_train`` or ``dev_test``), in file order.

    Image paths are built from the names (``<Name>/<Name>_%04d.jpg``); they are not checked here, see
    :func:`missing_images`.
    """
    if subset not in LFW_SUBSETS:
        raise ValueError(f"unknown LFW subset {subset!r}; expected one of {', '.join(LFW_SUBSETS)}")
    images = lfw_images_dir(data_home)
    pairs_file = images.parent / LFW_SUBSETS[subset]
    if not pairs_file.is_file():
        raise FileNotFoundError(f"LFW pairs file not found: {pairs_file}")
    return _parse_pairs(pairs_file.read_text().splitlines(), images, str(pairs_file))


def pair_labels(pairs: Iterable[Pair]) -> np.ndarray:
    """``same`` of each pair as a boolean array, the label the metrics expect."""
    return np.array([p.same for p in pairs], dtype=bool)


def pair_folds(pairs: Iterable[Pair]) -> np.ndarray:
    """The fold id of each pair, for :func:`facecore.verification.metrics.kfold_verification`."""
    return np.array([p.fold for p in pairs], dtype=np.int64)


def unique_images(pairs: Iterable[Pair]) -> list[Path]:
    """Every image the pairs use, once, in first-seen order: what to embed before scoring the pairs."""
    seen: dict[Path, None] = {}
    for p in pairs:
        seen.setdefault(p.path_a)
        seen.setdefault(p.path_b)
    return list(seen)


def missing_images(pairs: Iterable[Pair]) -> list[Path]:
    """Images the pairs refer to that are not on disk (empty for a complete LFW copy)."""
    return [path for path in unique_images(pairs) if not path.is_file()]


# --------------------------------------------------------------------------------------------------------
# People folders
# --------------------------------------------------------------------------------------------------------


def _is_image(path: Path) -> bool:
    return not path.name.startswith(".") and path.suffix.lower() in IMAGE_SUFFIXES and path.is_file()


def image_folder(root: str | os.PathLike[str], min_images: int = 1) -> dict[str, list[Path]]:
    """``{person: [image, ...]}`` for a folder with one sub-folder per person, both sorted by name.

    Accepts jpg/jpeg/png/webp/bmp in any case and skips hidden entries; people with fewer than
    ``min_images`` images are left out.
    """
    root = Path(root).expanduser()
    if not root.is_dir():
        raise FileNotFoundError(f"image folder not found: {root}")
    people = {}
    for person in sorted(root.iterdir()):
        if person.name.startswith(".") or not person.is_dir():
            continue
        images = sorted(p for p in person.iterdir() if _is_image(p))
        if images and len(images) >= min_images:
            people[person.name] = images
    return people


def lfw_people(data_home: str | os.PathLike[str], min_images: int = 1) -> dict[str, list[Path]]:
    """LFW identities with at least ``min_images`` images (names keep LFW's underscores)."""
    return image_folder(lfw_images_dir(data_home), min_images=min_images)


# --------------------------------------------------------------------------------------------------------
# scikit-learn's loaders
# --------------------------------------------------------------------------------------------------------


class DownloadError(OSError):
    """LFW could not be downloaded; the message says why and what to do instead."""


def download_lfw(
    data_home: str | os.PathLike[str] | None = None, progress: Callable[[int], None] | None = None
) -> Path:
    """Download LFW into ``data_home`` (default: scikit-learn's data home) and return it.

    Needs internet and only ever runs when a person asks for it (the Gallery page's button, or
    ``python -m facecore download-lfw``). scikit-learn fetches the three pairs files and the
    ``lfw-funneled.tgz`` archive (about 230 MB, checksums verified by sklearn). ``progress(bytes)`` is
    called about twice a second with the bytes written so far. Note: sklearn's archive holds the
    ICCV-2007 *funneled* images, not the deep-funneled ones of the bundled pack and of the LFW
    website's deep-funneled set, so results differ slightly. Raises :class:`DownloadError` when offline.
    """
    from sklearn.datasets import fetch_lfw_pairs  # local import: only the download path needs it

    home = Path(data_home).expanduser() if data_home is not None else sklearn_data_home()
    home.mkdir(parents=True, exist_ok=True)
    done = threading.Event()

    def watch() -> None:
        while not done.wait(0.5):
            progress(_bytes_under(home / "lfw_home"))  # type: ignore[misc]

    watcher = threading.Thread(target=watch, daemon=True) if progress is not None else None
    if watcher is not None:
        watcher.start()
    try:
        # One call downloads every pairs file and the whole image archive; "test" is the cheapest
        # subset for the pixel cache sklearn builds afterwards.
        fetch_lfw_pairs(subset="test", data_home=home, download_if_missing=True)
    except OSError as exc:  # URLError, timeouts, refused connections, a full disk
        raise DownloadError(
            f"LFW could not be downloaded into {home} ({exc}). It needs internet access. Without it, copy "
            f"LFW in scikit-learn's layout to a folder and set {LFW_HOME_ENV} to it; the bundled mini LFW "
            "keeps working meanwhile."
        ) from exc
    finally:
        done.set()
    lfw_images_dir(home)
    return home


def _bytes_under(folder: Path) -> int:
    total = 0
    for root, _, files in os.walk(folder):
        for name in files:
            with contextlib.suppress(OSError):
                total += (Path(root) / name).stat().st_size
    return total


def _link(target: Path, link: Path) -> None:
    """Make ``link`` a symlink to ``target``, replacing a stale symlink but never a real file."""
    if link.is_symlink():
        if link.resolve() == target.resolve():
            return
        link.unlink()
    elif link.exists():
        raise FileExistsError(f"{link} exists and is not a symlink; use an empty scratch folder")
    link.symlink_to(target.resolve(), target_is_directory=target.is_dir())


def sklearn_scratch_home(data_home: str | os.PathLike[str], scratch_dir: str | os.PathLike[str]) -> Path:
    """A data home under ``scratch_dir`` whose ``lfw_home/`` symlinks the real images and pairs files.

    sklearn's LFW loaders cache into ``lfw_home/joblib``; pointing them here keeps that cache out of
    ``data_home`` (which may be shared and read-only).
    """
    images = lfw_images_dir(data_home)
    scratch = Path(scratch_dir).expanduser()
    if scratch.resolve() == Path(data_home).expanduser().resolve():
        raise ValueError("scratch_dir must differ from data_home: sklearn would write its cache there")
    lfw_home = scratch / "lfw_home"
    lfw_home.mkdir(parents=True, exist_ok=True)
    _link(images, lfw_home / images.name)
    for name in LFW_SUBSETS.values():
        _link(images.parent / name, lfw_home / name)
    return scratch


def sklearn_pixel_pairs(
    data_home: str | os.PathLike[str], subset: str, scratch_dir: str | os.PathLike[str]
) -> tuple[np.ndarray, np.ndarray]:
    """sklearn's own LFW pair pixels: ``(pairs, same)`` with pairs ``(n, 2, 62, 47)`` float32 gray in [0, 1].

    ``subset`` is one of ours (``10_folds``, ``dev_train``, ``dev_test``) or sklearn's (``train``,
    ``test``). Never downloads; the joblib cache goes to ``scratch_dir``, so a second call is fast.
    Pairs come in the order of the pairs file, like :func:`read_lfw_pairs`.
    """
    from sklearn.datasets import fetch_lfw_pairs

    sk_subset = SKLEARN_SUBSETS.get(subset, subset)
    if sk_subset not in SKLEARN_SUBSETS.values():
        raise ValueError(f"unknown LFW subset {subset!r}; expected one of {', '.join(LFW_SUBSETS)}")
    home = sklearn_scratch_home(data_home, scratch_dir)
    bunch = fetch_lfw_pairs(subset=sk_subset, data_home=home, download_if_missing=False)
    return np.asarray(bunch.pairs), np.asarray(bunch.target, dtype=bool)
