"""Build the bundled demo pack (``samples/``) from the staged face data, deterministically.

Contract:
* Inputs (read-only): ``--lfw-home`` holds ``lfw_home/`` in scikit-learn's layout (deep-funneled images in
  ``lfw_funneled/``, plus ``pairs.txt`` and ``pairsDevTest.txt``); ``--faces-small`` holds
  ``<person>/<n>.jpg``; ``--faces-group`` holds the group photos. Only files in ``SOURCES`` are taken.
* Output: ``--out`` (default ``samples/`` in the repo root). The builder replaces ``faces_small/``,
  ``faces_group/``, ``lfw/`` and ``MANIFEST.json`` there and touches nothing else (``README.md`` is
  hand-written).
* Photos are EXIF-transposed, shrunk (long side <= 800 px, group photos <= 1024 px; smaller ones keep
  their size) and stored as baseline JPEG, quality 90, 4:2:0, no EXIF, ICC profile kept.
* LFW images are copied byte for byte. People: ``N_PEOPLE`` with >= ``MIN_PHOTOS`` photos who appear
  nowhere in ``pairsDevTest.txt``, spread evenly over the alphabetical list, first ``MIN_PHOTOS`` photos
  each. Pairs: ``lfw_home/pairs_demo.txt`` (header ``10 15``), drawn with a fixed seed from View 1's
  ``pairsDevTest.txt`` only, never a pair (unordered image pair) of ``pairs.txt``; their images are added.
  ``lfw/view1/pairsDevTest.txt`` is a byte copy of the official file, kept outside ``lfw_home/`` so
  loaders of the official protocol do not pick it up.
* Same inputs and same Pillow build -> byte-identical output. Fails if the pack exceeds ``MAX_BYTES``.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import random
import shutil
from pathlib import Path

import PIL
from PIL import Image, ImageOps

REPO_ROOT = Path(__file__).resolve().parents[1]
SEED, N_FOLDS, PER_HALF_FOLD = 2007, 10, 15
N_PEOPLE, MIN_PHOTOS = 50, 8
SMALL_LONG_SIDE, GROUP_LONG_SIDE, QUALITY = 800, 1024, 90
MAX_BYTES = 15_000_000
MANAGED = ("faces_small", "faces_group", "lfw", "MANIFEST.json")

FR = ("ageitgey/face_recognition", "2e2dccea9dd0ce730c8d464d0f67c6eebb40c9d1")
FP = ("timesler/facenet-pytorch", "787da06156087cd6b616fe6608213722bddc30cd")
LFW = ("umass-vis-lfw/umass-vis-lfw.github.io", "2a620cd8cceb10430f8c7012fe9fa5f0837759e9")
KNN = "examples/knn_examples/"
#: Pack path (under faces_small/ or faces_group/) -> (upstream repo and commit, upstream path).
SOURCES: dict[str, tuple[tuple[str, str], str]] = {
    "faces_small/obama/1.jpg": (FR, KNN + "train/obama/obama.jpg"),
    "faces_small/obama/2.jpg": (FR, KNN + "train/obama/obama2.jpg"),
    "faces_small/obama/3.jpg": (FR, "tests/test_images/obama3.jpg"),
    "faces_small/obama/4.jpg": (FR, KNN + "test/obama1.jpg"),
    "faces_small/biden/1.jpg": (FR, KNN + "train/biden/biden.jpg"),
    "faces_small/biden/2.jpg": (FR, KNN + "train/biden/biden2.jpg"),
    "faces_small/kit_harington/1.jpg": (FR, KNN + "train/kit_harington/john1.jpeg"),
    "faces_small/kit_harington/2.jpg": (FR, KNN + "train/kit_harington/john2.jpeg"),
    "faces_small/kit_harington/3.jpg": (FR, KNN + "test/johnsnow_test1.jpg"),
    "faces_small/rose_leslie/1.jpg": (FR, KNN + "train/rose_leslie/img1.jpg"),
    "faces_small/rose_leslie/2.jpg": (FR, KNN + "train/rose_leslie/img2.jpg"),
    "faces_small/alex_lacamoire/1.jpg": (FR, KNN + "train/alex_lacamoire/img1.jpg"),
    "faces_small/alex_lacamoire/2.jpg": (FR, KNN + "test/alex_lacamoire1.jpg"),
    "faces_small/angelina_jolie/1.jpg": (FP, "data/test_images/angelina_jolie/1.jpg"),
    "faces_small/kate_siegel/1.jpg": (FP, "data/test_images/kate_siegel/1.jpg"),
    "faces_small/paul_rudd/1.jpg": (FP, "data/test_images/paul_rudd/1.jpg"),
    "faces_small/shea_whigham/1.jpg": (FP, "data/test_images/shea_whigham/1.jpg"),
    "faces_group/obama_and_biden.jpg": (FR, KNN + "test/obama_and_biden.jpg"),
    "faces_group/two_people.jpg": (FR, "examples/two_people.jpg"),
    "faces_group/kit_with_rose.jpg": (FR, KNN + "test/kit_with_rose.jpg"),
    "faces_group/multiface.jpg": (FP, "data/multiface.jpg"),
}
#: Pack folder -> what was done to its files on the way in.
TRANSFORMS = {
    "faces_small/": f"EXIF-transposed, long side <= {SMALL_LONG_SIDE} px, JPEG q{QUALITY} 4:2:0, no EXIF",
    "faces_group/": f"EXIF-transposed, long side <= {GROUP_LONG_SIDE} px, JPEG q{QUALITY} 4:2:0, no EXIF",
    "lfw/lfw_home/lfw_funneled/": "copied byte for byte",
    "lfw/lfw_home/pairs_demo.txt": f"seeded draw (seed {SEED}) from pairsDevTest.txt, no pair of pairs.txt",
    "lfw/view1/pairsDevTest.txt": "copied byte for byte",
}

Image_ = tuple[str, int]  # (LFW name, 1-based photo number)
Pair = tuple[Image_, Image_]


def source(repo: tuple[str, str], path: str) -> str:
    """``owner/name:path``; the commit of each repository is listed once in the manifest."""
    return f"{repo[0]}:{path}"


def reencode(src: Path, long_side: int) -> bytes:
    """Upright pixels (EXIF orientation applied), long side <= ``long_side``, fixed JPEG settings."""
    with Image.open(src) as im:
        icc = im.info.get("icc_profile")
        img = ImageOps.exif_transpose(im).convert("RGB")
    scale = long_side / max(img.size)
    if scale < 1:
        size = (max(1, round(img.width * scale)), max(1, round(img.height * scale)))
        img = img.resize(size, Image.Resampling.LANCZOS)
    buf = io.BytesIO()
    extra = {"icc_profile": icc} if icc else {}
    img.save(buf, "JPEG", quality=QUALITY, subsampling=2, optimize=False, progressive=False, **extra)
    return buf.getvalue()


def read_pairs(path: Path) -> list[tuple[Pair, bool]]:
    """``((a, b), same)`` for every line of an official pairs file (any header)."""
    pairs = []
    for line in path.read_text().splitlines()[1:]:
        t = line.split()
        if len(t) == 3:
            pairs.append((((t[0], int(t[1])), (t[0], int(t[2]))), True))
        elif len(t) == 4:
            pairs.append((((t[0], int(t[1])), (t[2], int(t[3]))), False))
    return pairs


def lfw_file(name: str, number: int) -> str:
    return f"{name}/{name}_{number:04d}.jpg"


def choose_people(images: Path, excluded: set[str]) -> list[str]:
    """``N_PEOPLE`` names with >= MIN_PHOTOS photos, not in ``excluded``, evenly spread alphabetically."""
    names = sorted(p.name for p in images.iterdir() if p.is_dir() and p.name not in excluded)
    rich = [n for n in names if len(list((images / n).glob("*.jpg"))) >= MIN_PHOTOS]
    if len(rich) < N_PEOPLE:
        raise SystemExit(f"only {len(rich)} people with >= {MIN_PHOTOS} photos outside pairsDevTest")
    return [rich[i * len(rich) // N_PEOPLE] for i in range(N_PEOPLE)]


def choose_pairs(dev_test: list[tuple[Pair, bool]], protocol: list[tuple[Pair, bool]]) -> list[Pair]:
    """Seeded draw of N_FOLDS x (PER_HALF_FOLD same + PER_HALF_FOLD different), none in pairs.txt."""
    banned = {frozenset(p) for p, _ in protocol}
    allowed = [(p, same) for p, same in dev_test if frozenset(p) not in banned]
    rng = random.Random(SEED)
    n = N_FOLDS * PER_HALF_FOLD
    same = rng.sample([p for p, s in allowed if s], n)
    diff = rng.sample([p for p, s in allowed if not s], n)
    out: list[Pair] = []
    for k in range(N_FOLDS):
        out += same[k * PER_HALF_FOLD:(k + 1) * PER_HALF_FOLD] + diff[k * PER_HALF_FOLD:(k + 1) * PER_HALF_FOLD]
    if {frozenset(p) for p in out} & banned:
        raise SystemExit("a demo pair is in pairs.txt")
    return out


def pairs_text(pairs: list[Pair]) -> str:
    lines = [f"{N_FOLDS}\t{PER_HALF_FOLD}"]
    for (a, b) in pairs:
        lines.append(f"{a[0]}\t{a[1]}\t{b[1]}" if a[0] == b[0] else f"{a[0]}\t{a[1]}\t{b[0]}\t{b[1]}")
    return "\n".join(lines) + "\n"


def build(lfw_home: Path, faces_small: Path, faces_group: Path, out: Path) -> dict:
    home = lfw_home / "lfw_home"
    images = home / "lfw_funneled"
    files: dict[str, tuple[bytes, str]] = {}
    inputs = {"faces_small": faces_small, "faces_group": faces_group}
    for rel, (repo, upstream) in SOURCES.items():
        top, rest = rel.split("/", 1)
        long_side = SMALL_LONG_SIDE if top == "faces_small" else GROUP_LONG_SIDE
        files[rel] = (reencode(inputs[top] / rest, long_side), source(repo, upstream))
    for top, folder in inputs.items():
        extra = {f"{top}/{p.relative_to(folder).as_posix()}" for p in folder.rglob("*.jpg")} - set(SOURCES)
        if extra:
            raise SystemExit(f"files without a recorded source: {sorted(extra)}")

    dev_test = read_pairs(home / "pairsDevTest.txt")
    protocol_file = home / "pairs.txt"
    pairs = choose_pairs(dev_test, read_pairs(protocol_file))
    people = choose_people(images, {x[0] for p, _ in dev_test for x in p})
    wanted: set[Image_] = {(n, i) for n in people for i in range(1, MIN_PHOTOS + 1)}
    wanted |= {x for p in pairs for x in p}
    for name, number in sorted(wanted):
        rel = lfw_file(name, number)
        upstream = source(LFW, f"images_deepfunneled/{rel}")
        files[f"lfw/lfw_home/lfw_funneled/{rel}"] = ((images / rel).read_bytes(), upstream)
    files["lfw/lfw_home/pairs_demo.txt"] = (pairs_text(pairs).encode(), source(LFW, "pairsDevTest.txt"))
    view1 = (home / "pairsDevTest.txt").read_bytes()
    files["lfw/view1/pairsDevTest.txt"] = (view1, source(LFW, "pairsDevTest.txt"))

    total = sum(len(data) for data, _ in files.values())
    if total > MAX_BYTES:
        raise SystemExit(f"pack is {total:,} bytes, over the {MAX_BYTES:,} byte limit")
    write(out, files)
    counts: dict[str, int] = {}
    for name, _ in wanted:
        counts[name] = counts.get(name, 0) + 1
    manifest = {
        "builder": {"script": "tools/build_demo_pack.py", "seed": SEED, "pillow": PIL.__version__},
        "repositories": {repo: commit for repo, commit in (FR, FP, LFW)},
        "transforms": TRANSFORMS,
        "total_bytes": total,
        "files": {rel: {"bytes": len(data), "sha256": hashlib.sha256(data).hexdigest(), "source": src}
                  for rel, (data, src) in sorted(files.items())},
        "pairs": {"file": "lfw/lfw_home/pairs_demo.txt", "folds": N_FOLDS, "same_per_fold": PER_HALF_FOLD,
                  "different_per_fold": PER_HALF_FOLD, "same": sum(a[0] == b[0] for a, b in pairs),
                  "different": sum(a[0] != b[0] for a, b in pairs), "drawn_from": "pairsDevTest.txt",
                  "checked_not_in_pairs_txt_sha256": hashlib.sha256(protocol_file.read_bytes()).hexdigest()},
        "people": {
            "faces_small": sorted({rel.split("/")[1] for rel in SOURCES if rel.startswith("faces_small/")}),
            "lfw_photo_counts": dict(sorted(counts.items())),
            "lfw_training_people": people,
        },
    }
    (out / "MANIFEST.json").write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n")
    return manifest


def write(out: Path, files: dict[str, tuple[bytes, str]]) -> None:
    """Replace the builder-managed parts of ``out`` with ``files``."""
    out.mkdir(parents=True, exist_ok=True)
    for name in MANAGED:
        target = out / name
        if target.is_dir():
            shutil.rmtree(target)
        elif target.exists():
            target.unlink()
    for rel, (data, _) in sorted(files.items()):
        path = out / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lfw-home", type=Path, required=True, help="folder holding lfw_home/ (sklearn layout)")
    parser.add_argument("--faces-small", type=Path, required=True, help="folder of <person>/<n>.jpg")
    parser.add_argument("--faces-group", type=Path, required=True, help="folder of group photos")
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "samples", help="pack folder (default: samples/)")
    args = parser.parse_args(argv)
    m = build(args.lfw_home, args.faces_small, args.faces_group, args.out)
    print(f"{len(m['files'])} files, {m['total_bytes']:,} bytes, {m['pairs']['same']} same + "
          f"{m['pairs']['different']} different pairs -> {args.out}")


if __name__ == "__main__":
    main()
