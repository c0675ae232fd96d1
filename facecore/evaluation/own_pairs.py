"""Pairs from a labelled set of one's own: a folder (or zip) per person, or a pairs CSV with its images.

Contract:

* Every image is named by its path relative to the set's root, with ``/`` separators
  (``"ada/1.jpg"``); a name never leaves the root (absolute paths and ``..`` are refused).
* :func:`folder_pairs` builds every genuine pair (each unordered pair of photos of one person, in
  sorted order) and then impostor pairs: all of them when there are at most ``max_impostors``, else a
  sample of ``max_impostors`` drawn without replacement with ``numpy.random.default_rng(seed)``, kept
  in sorted order. The same folder and seed always give the same pairs in the same order.
* :func:`read_pairs_csv` reads ``image_a,image_b,same`` (extra columns are ignored; ``same`` is
  1/0, true/false, yes/no or same/different, any case). Any bad row makes the whole file fail with an
  :class:`OwnDataError` naming the rows (1-based data lines) and what is wrong: no partial set is ever
  returned.
* :func:`write_pairs_csv` writes pairs in the format :func:`read_pairs_csv` reads.
* :func:`extract_zip` unpacks an uploaded zip into a folder, refusing names that would leave it and
  archives over :data:`ZIP_MAX_FILES` / :data:`ZIP_MAX_BYTES`.
"""

from __future__ import annotations

import csv
import io
import itertools
import os
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import numpy as np
import pandas as pd

from facecore.evaluation.datasets import IMAGE_SUFFIXES, image_folder

PAIR_COLUMNS = ("image_a", "image_b", "same")
MAX_IMPOSTORS = 20_000
ZIP_MAX_FILES = 5000
ZIP_MAX_BYTES = 1_000_000_000
_TRUE = frozenset({"1", "true", "yes", "same", "y", "t"})
_FALSE = frozenset({"0", "false", "no", "different", "n", "f"})
_SHOWN = 5  # rows named in an error message


class OwnDataError(ValueError):
    """A labelled set that cannot be evaluated; the message says what to fix."""


@dataclass(frozen=True)
class OwnPair:
    """One pair: two image names relative to the set's root and whether they are one person (None: not labelled)."""

    image_a: str
    image_b: str
    same: bool | None


@dataclass(frozen=True)
class PairSet:
    """The pairs of a set, the folder their names are relative to, and what to call the set."""

    name: str
    root: Path
    pairs: tuple[OwnPair, ...]

    @property
    def images(self) -> list[str]:
        """Every image name the pairs use, once, sorted."""
        return sorted({p.image_a for p in self.pairs} | {p.image_b for p in self.pairs})

    @property
    def genuine(self) -> int:
        return sum(p.same is True for p in self.pairs)

    @property
    def impostor(self) -> int:
        return sum(p.same is False for p in self.pairs)


def _rel(path: Path, root: Path) -> str:
    return path.relative_to(root).as_posix()


def folder_pairs(
    root: str | os.PathLike[str], *, max_impostors: int = MAX_IMPOSTORS, seed: int = 0, name: str | None = None
) -> PairSet:
    """All genuine pairs and a seeded sample of impostor pairs of a folder with one sub-folder per person."""
    root = Path(root).expanduser()
    people = image_folder(root)
    if not people:
        raise OwnDataError(f"{root} has no sub-folders with photos; put each person's photos in a folder of their own.")
    genuine = [
        OwnPair(_rel(a, root), _rel(b, root), True)
        for paths in people.values()
        for a, b in itertools.combinations(paths, 2)
    ]
    impostor = _impostor_pairs(root, people, max_impostors, seed)
    if not genuine:
        raise OwnDataError(f"{root}: nobody has two photos, so there is no genuine pair; add a second photo of someone.")
    if not impostor:
        raise OwnDataError(f"{root}: only one person, so there is no impostor pair; add a folder for someone else.")
    return PairSet(name or root.name, root, tuple(genuine + impostor))


def _impostor_pairs(root: Path, people: dict[str, list[Path]], max_impostors: int, seed: int) -> list[OwnPair]:
    """Every impostor pair in combination order, or a seeded sample of ``max_impostors`` of them.

    The images are listed person by person, so image ``i``'s impostor partners after it are exactly the
    images from the end of its person's folder on: pair number ``k`` is found from cumulative counts,
    without listing all the pairs (5,000 images would make 12.5 million).
    """
    images = [_rel(p, root) for paths in people.values() for p in paths]
    ends = np.repeat(np.cumsum([len(paths) for paths in people.values()]), [len(p) for p in people.values()])
    per_image = len(images) - ends  # impostor partners after each image
    total = int(per_image.sum())
    if total > max_impostors:
        picked = np.sort(np.random.default_rng(seed).choice(total, size=max_impostors, replace=False))
    else:
        picked = np.arange(total)
    starts = np.cumsum(per_image) - per_image  # number of the first pair of each image
    first = np.searchsorted(starts, picked, side="right") - 1
    second = ends[first] + (picked - starts[first])
    return [OwnPair(images[i], images[j], False) for i, j in zip(first.tolist(), second.tolist(), strict=True)]


def _label(value: str) -> bool | None:
    text = value.strip().lower()
    return True if text in _TRUE else False if text in _FALSE else None


def _safe_name(name: str) -> bool:
    path = PurePosixPath(name.replace("\\", "/"))
    return bool(name) and not path.is_absolute() and ".." not in path.parts and ":" not in name


def _rows(problems: list[int]) -> str:
    shown = ", ".join(str(r) for r in problems[:_SHOWN])
    return shown + (f" and {len(problems) - _SHOWN} more" if len(problems) > _SHOWN else "")


def read_pairs_csv(
    source: str | os.PathLike[str] | bytes,
    images: str | os.PathLike[str],
    name: str | None = None,
    *,
    labelled: bool = True,
    max_pairs: int | None = None,
) -> PairSet:
    """The pairs of a CSV (a path or its bytes) whose image names are relative to ``images``; all or nothing.

    ``labelled=False`` (batch verification) needs only ``image_a,image_b``; a ``same`` column is then
    optional (checked when present) and the pairs need not hold both classes. More than ``max_pairs``
    pairs is an error.
    """
    root = Path(images).expanduser()
    if not root.is_dir():
        raise OwnDataError(f"The images folder {root} does not exist.")
    text = source if isinstance(source, bytes) else Path(source).read_bytes()
    try:
        table = pd.read_csv(io.BytesIO(text), dtype=str, keep_default_na=False, skipinitialspace=True)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise OwnDataError(f"The pairs file cannot be read as CSV ({exc}).") from None
    table.columns = [str(c).strip().lower() for c in table.columns]
    required = PAIR_COLUMNS if labelled else PAIR_COLUMNS[:2]
    missing = [c for c in required if c not in table.columns]
    if missing:
        raise OwnDataError(
            f"The pairs file lacks the column(s) {', '.join(missing)}; its header must name "
            f"{', '.join(required)} (found: {', '.join(table.columns) or 'nothing'})."
        )
    if table.empty:
        raise OwnDataError("The pairs file has a header but no pairs.")
    if max_pairs is not None and len(table) > max_pairs:
        raise OwnDataError(f"The pairs file has {len(table):,} pairs; the limit is {max_pairs:,} per file.")
    labels = [_label(v) for v in table["same"]] if "same" in table.columns else [None] * len(table)
    bad_labels = [i + 1 for i, v in enumerate(labels) if v is None] if "same" in table.columns else []
    if bad_labels:
        raise OwnDataError(
            f"Row(s) {_rows(bad_labels)} of the pairs file have a 'same' value that is not 1/0, true/false, "
            "yes/no or same/different."
        )
    names = table[["image_a", "image_b"]].apply(lambda col: col.str.strip())
    unsafe = [i + 1 for i, (a, b) in enumerate(names.itertuples(index=False)) if not (_safe_name(a) and _safe_name(b))]
    if unsafe:
        raise OwnDataError(f"Row(s) {_rows(unsafe)} name an image outside the images folder (or no image at all).")
    unknown = sorted({n for n in itertools.chain(names["image_a"], names["image_b"]) if not (root / n).is_file()})
    if unknown:
        shown = ", ".join(unknown[:_SHOWN]) + (f" and {len(unknown) - _SHOWN} more" if len(unknown) > _SHOWN else "")
        raise OwnDataError(f"{len(unknown)} image(s) named in the pairs file are not in {root.name or root}: {shown}.")
    pairs = tuple(
        OwnPair(a.replace("\\", "/"), b.replace("\\", "/"), same)
        for (a, b), same in zip(names.itertuples(index=False), labels, strict=True)
    )
    if labelled and (all(p.same for p in pairs) or not any(p.same for p in pairs)):
        raise OwnDataError("The pairs file needs both genuine (same=1) and impostor (same=0) pairs.")
    return PairSet(name or (Path(source).name if not isinstance(source, bytes) else "pairs.csv"), root, pairs)


def write_pairs_csv(pairs: PairSet | tuple[OwnPair, ...] | list[OwnPair], path: str | os.PathLike[str]) -> None:
    """Write ``image_a,image_b,same`` (1/0) rows that :func:`read_pairs_csv` reads back as the same pairs."""
    rows = pairs.pairs if isinstance(pairs, PairSet) else pairs
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(PAIR_COLUMNS)
        writer.writerows((p.image_a, p.image_b, int(p.same)) for p in rows)


def extract_zip(data: bytes, folder: str | os.PathLike[str]) -> Path:
    """Unpack a zip's images and CSVs into ``folder``; returns the root (a single top folder is skipped)."""
    folder = Path(folder)
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        infos = archive.infolist()
    except (zipfile.BadZipFile, ValueError, OSError) as exc:
        raise OwnDataError(f"This file cannot be read as a zip file ({exc}).") from None
    unsafe = next((i.filename for i in infos if not _safe_name(i.filename)), None)
    if unsafe is not None:
        raise OwnDataError(f"The zip holds {unsafe!r}, a name outside the archive; it is refused.")
    entries = [
        i for i in infos
        if not i.is_dir()
        and PurePosixPath(i.filename).suffix.lower() in IMAGE_SUFFIXES | {".csv"}
        and not any(part.startswith((".", "__MACOSX")) for part in PurePosixPath(i.filename).parts)
    ]
    if len(entries) > ZIP_MAX_FILES or sum(i.file_size for i in entries) > ZIP_MAX_BYTES:
        raise OwnDataError(f"The zip is too large (limit {ZIP_MAX_FILES} files, {ZIP_MAX_BYTES / 1e9:g} GB unpacked).")
    for info in entries:
        target = folder / PurePosixPath(info.filename.replace("\\", "/"))
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(archive.read(info))
    tops = {PurePosixPath(i.filename).parts[0] for i in entries}
    single = len(tops) == 1 and all(len(PurePosixPath(i.filename).parts) >= 3 for i in entries)
    return folder / tops.pop() if single else folder
