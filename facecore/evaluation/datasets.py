"""Face data on disk: the LFW verification protocol and plain one-folder-per-person image sets.

LFW is read from a *data home* in scikit-learn's cache layout::

    <data_home>/lfw_home/lfw_funneled/<Name>/<Name>_0001.jpg
    <data_home>/lfw_home/pairs.txt, pairsDevTrain.txt, pairsDevTest.txt

Nothing here downloads anything except :func:`download_lfw`, which only runs when a user asks for it.
The data home may be read-only: scikit-learn's loaders write a joblib cache into ``lfw_home/``, so
:func:`sklearn_pixel_pairs` runs them against a scratch data home made of symlinks instead.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

#: Our subset names -> the official LFW pairs file.
LFW_SUBSETS = {"10_folds": "pairs.txt", "dev_train": "pairsDevTrain.txt", "dev_test": "pairsDevTest.txt"}
#: Our subset names -> scikit-learn's ``fetch_lfw_pairs(subset=...)`` names.
SKLEARN_SUBSETS = {"10_folds": "10_folds", "dev_train": "train", "dev_test": "test"}
IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".webp", ".bmp"})
LFW_HOME_ENV = "FACECORE_LFW_HOME"

_REPO_ROOT = Path(__file__).resolve().parents[1]


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
            "or fetch LFW once with facecore.datasets.download_lfw(data_home) (needs internet)."
        )
    return images


def default_lfw_home() -> Path | None:
    """Where LFW lives by default: ``$FACECORE_LFW_HOME``, else the project's shared data, else None."""
    override = os.environ.get(LFW_HOME_ENV)
    if override:
        return Path(override).expanduser()
    shared = os.environ.get("FACECORE_SHARED_DATA")
    candidate = Path(shared).expanduser() if shared else _REPO_ROOT.parent / "shared" / "data"
    candidate = candidate / "sklearn"
    return candidate if (candidate / "lfw_home").is_dir() else None


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
    """The fold id of each pair, for :func:`facecore.metrics.kfold_verification`."""
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


def download_lfw(data_home: str | os.PathLike[str]) -> Path:
    """Download LFW into ``data_home`` in the layout this module reads; returns ``data_home``.

    Needs internet and is only ever called on a user's request. It lets scikit-learn fetch the three
    pairs files and the ``lfw-funneled.tgz`` archive (about 200 MB, from figshare, checksums verified by
    sklearn). Note: sklearn's archive holds the ICCV-2007 *funneled* images, not the deep-funneled ones
    of the project's shared copy, so results differ slightly between the two. ``people.txt`` and
    ``lfw-names.txt`` are not part of sklearn's download and nothing here needs them.
    """
    from sklearn.datasets import fetch_lfw_pairs  # local import: only the download path needs it

    home = Path(data_home).expanduser()
    home.mkdir(parents=True, exist_ok=True)
    # One call downloads every pairs file and the whole image archive; "test" is the cheapest subset
    # for the pixel cache sklearn builds afterwards.
    fetch_lfw_pairs(subset="test", data_home=home, download_if_missing=True)
    lfw_images_dir(home)
    return home


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
