"""Checks of the committed demo pack (``samples/``); they need nothing outside the repository.

The one check against LFW's test protocol (``pairs.txt``) needs the full LFW and runs only when
``FACECORE_LFW_HOME`` points at it (the ``full_lfw_home`` fixture).
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from pathlib import Path

import pytest
from PIL import Image

PACK = Path(__file__).resolve().parents[1] / "samples"
LFW_HOME = PACK / "lfw" / "lfw_home"
MAX_BYTES = 15_000_000

Pair = frozenset[tuple[str, int]]


def read_pairs(path: Path) -> tuple[list[int], list[tuple[Pair, bool]]]:
    """Header numbers and ``(unordered image pair, same)`` for each line of an official pairs file."""
    lines = path.read_text().splitlines()
    pairs = []
    for line in lines[1:]:
        t = line.split()
        if len(t) == 3:
            pairs.append((frozenset({(t[0], int(t[1])), (t[0], int(t[2]))}), True))
        elif len(t) == 4:
            pairs.append((frozenset({(t[0], int(t[1])), (t[2], int(t[3]))}), False))
        else:
            raise AssertionError(f"{path.name}: malformed line {line!r}")
    return [int(v) for v in lines[0].split()], pairs


def lines_of(path: Path) -> list[list[str]]:
    return [line.split("\t") for line in path.read_text().splitlines()[1:]]


@pytest.fixture(scope="module")
def manifest() -> dict:
    return json.loads((PACK / "MANIFEST.json").read_text())


def pack_files() -> list[Path]:
    return sorted(p for p in PACK.rglob("*") if p.is_file())


def test_pack_is_at_most_15_mb() -> None:
    total = sum(p.stat().st_size for p in pack_files())
    assert total <= MAX_BYTES, f"samples/ holds {total:,} bytes"


def test_manifest_lists_exactly_the_data_files_with_matching_hashes(manifest: dict) -> None:
    on_disk = {p.relative_to(PACK).as_posix() for p in pack_files()} - {"MANIFEST.json", "README.md"}
    assert set(manifest["files"]) == on_disk
    for rel, entry in manifest["files"].items():
        data = (PACK / rel).read_bytes()
        assert len(data) == entry["bytes"], rel
        assert hashlib.sha256(data).hexdigest() == entry["sha256"], rel
        assert entry["source"], rel
    assert manifest["total_bytes"] == sum(e["bytes"] for e in manifest["files"].values())


def test_demo_pairs_header_and_folds() -> None:
    header, pairs = read_pairs(LFW_HOME / "pairs_demo.txt")
    assert header == [10, 15]
    assert len(pairs) == 10 * 2 * 15
    for fold in range(10):
        block = pairs[fold * 30:(fold + 1) * 30]
        assert [same for _, same in block] == [True] * 15 + [False] * 15, f"fold {fold}"
    assert len({p for p, _ in pairs}) == len(pairs), "a pair appears twice"


def test_every_demo_pair_image_is_in_the_pack() -> None:
    _, pairs = read_pairs(LFW_HOME / "pairs_demo.txt")
    for pair, _ in pairs:
        for name, number in pair:
            assert (LFW_HOME / "lfw_funneled" / name / f"{name}_{number:04d}.jpg").is_file(), (name, number)


def test_demo_pairs_come_from_view1_dev_test_only() -> None:
    dev_test = PACK / "lfw" / "view1" / "pairsDevTest.txt"
    header, official = read_pairs(dev_test)
    assert header == [500] and len(official) == 1000
    _, demo = read_pairs(LFW_HOME / "pairs_demo.txt")
    assert set(demo) <= set(official)
    # The official protocol files stay out of lfw_home/: they name images the pack does not hold.
    assert not any((LFW_HOME / n).exists() for n in ("pairs.txt", "pairsDevTrain.txt", "pairsDevTest.txt"))


def test_no_demo_pair_is_in_the_lfw_test_protocol(full_lfw_home: Path) -> None:
    protocol = full_lfw_home / "lfw_home" / "pairs.txt"
    header, view2 = read_pairs(protocol)
    assert header == [10, 300] and len(view2) == 6000
    _, demo = read_pairs(LFW_HOME / "pairs_demo.txt")
    assert not {p for p, _ in demo} & {p for p, _ in view2}


@pytest.mark.parametrize(("folder", "long_side"), [("faces_small", 800), ("faces_group", 1024)])
def test_photos_decode_upright_and_within_size(folder: str, long_side: int) -> None:
    photos = sorted((PACK / folder).rglob("*.jpg"))
    assert len(photos) == {"faces_small": 17, "faces_group": 4}[folder]
    for path in photos:
        with Image.open(path) as im:
            im.load()
            assert im.format == "JPEG" and im.mode == "RGB", path
            assert max(im.size) <= long_side, (path, im.size)
            assert 0x0112 not in im.getexif(), f"{path} still carries an EXIF orientation"


def test_faces_small_people() -> None:
    people = {p.name: len(list(p.glob("*.jpg"))) for p in (PACK / "faces_small").iterdir() if p.is_dir()}
    assert len(people) == 9 and sum(people.values()) == 17


def test_lfw_images_decode_and_enough_people_with_four_photos(manifest: dict) -> None:
    images = sorted((LFW_HOME / "lfw_funneled").glob("*/*.jpg"))
    for path in images:
        assert path.name.startswith(path.parent.name + "_"), path
        with Image.open(path) as im:
            im.load()
            assert im.size == (250, 250), path
    counts = Counter(p.parent.name for p in images)
    assert dict(sorted(counts.items())) == manifest["people"]["lfw_photo_counts"]
    assert sum(n >= 4 for n in counts.values()) >= 30
