"""Derive ``MTCNN_5_TEMPLATE``: where MTCNN's five points land in dlib's face-chip frame.

dlib's embedder wants chips aligned from dlib's 5-point shape predictor (eye corners and the
base of the nose). MTCNN gives other points (eye centres, nose tip, mouth corners), so to align
MTCNN faces without running the predictor we need those points' average position in the frame
of dlib's template. On LFW images where dlib (HOG + 5-point predictor) and MTCNN each find exactly
one face, and the two faces overlap, this maps MTCNN's points through the inverse of dlib's chip
similarity for that face and averages them.

It also derives the **centre box** (``facecore.pipeline.CENTER_BOX_FRACTIONS``), the face box an
evaluation uses when a detector finds nothing: the median of HOG's box, as fractions of the image, over
the images where HOG finds exactly one face.

    python bench/derive_mtcnn_template.py --data-home "$FACECORE_LFW_HOME" --limit 1000

One image per person (the first in sorted order), people spread evenly over LFW's sorted list, drawn
only from people who appear in none of ``pairs.txt`` (View 2, where numbers are reported) and
``pairsDevTest.txt`` (View 1's test half, where configurations are chosen): 1,281 of LFW's 5,749 people.
So neither the template nor the centre box is fitted on a face whose pairs it is then scored or chosen on.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from facecore.alignment import (  # noqa: E402  (needs the repo on sys.path first)
    CHIP_PADDING,
    CHIP_SIZE,
    DLIB_5_TEMPLATE,
    chip_transform,
    padded_template,
    shape_5_points,
    similarity_transform,
)

MTCNN_POINT_NAMES = ("left_eye", "right_eye", "nose", "mouth_left", "mouth_right")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    default_home = os.environ.get("FACECORE_LFW_HOME")
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--data-home", type=Path, default=default_home, required=default_home is None,
        help="the full LFW's data home (holds lfw_home/); default $FACECORE_LFW_HOME",
    )
    parser.add_argument("--limit", type=int, default=1000, help="number of people (one image each)")
    parser.add_argument("--batch-size", type=int, default=8, help="images per MTCNN pass")
    parser.add_argument("--min-iou", type=float, default=0.3, help="overlap needed between the two faces")
    parser.add_argument("--min-confidence", type=float, default=0.9, help="MTCNN confidence needed")
    return parser.parse_args(argv)


HELD_OUT_PAIR_FILES = ("pairs.txt", "pairsDevTest.txt")


def people_in_pairs(pairs_file: Path) -> set[str]:
    """Everyone named in an LFW pairs file (same-person lines have 3 fields, different-person lines 4)."""
    names: set[str] = set()
    for line in pairs_file.read_text().splitlines()[1:]:
        fields = line.split("\t")
        names.update(fields[0::2] if len(fields) == 4 else fields[:1])
    return names


def pick_images(data_home: Path, limit: int) -> list[Path]:
    """The first image of ``limit`` people spread evenly over the sorted list of people in no held-out pair."""
    root = data_home / "lfw_home" / "lfw_funneled"
    excluded: set[str] = set()
    for name in HELD_OUT_PAIR_FILES:
        pairs_file = data_home / "lfw_home" / name
        if not pairs_file.is_file():
            raise SystemExit(f"{pairs_file} is missing: it names the people the fit must leave out")
        excluded |= people_in_pairs(pairs_file)
    people = sorted(p for p in root.iterdir() if p.is_dir() and p.name not in excluded)
    if not people:
        raise SystemExit(f"no LFW people outside {', '.join(HELD_OUT_PAIR_FILES)} found under {root}")
    chosen = np.unique(np.linspace(0, len(people) - 1, num=min(limit, len(people))).round().astype(int))
    return [sorted(people[i].glob("*.jpg"))[0] for i in chosen]


def load_rgb(path: Path) -> np.ndarray:
    from PIL import Image

    with Image.open(path) as image:
        return np.ascontiguousarray(np.asarray(image.convert("RGB")))


def iou(a: tuple[float, float, float, float], b: tuple[float, float, float, float]) -> float:
    """Intersection over union of two (x1, y1, x2, y2) boxes."""
    w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = w * h
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def mtcnn_faces(mtcnn, images: list[np.ndarray], min_confidence: float) -> list[list[np.ndarray]]:
    """Per image, MTCNN rows (x1, y1, x2, y2, confidence, 5 x's, 5 y's), called as facecore does."""
    rows = mtcnn.detect_faces(
        [image.astype(np.float32) for image in images],
        box_format="xyxy",
        output_type="numpy",
        fit_to_image=False,
        min_face_size=20,
    )
    rows = np.asarray(rows, dtype=np.float64).reshape(-1, 16)
    rows = rows[rows[:, 5] >= min_confidence]
    return [[row[1:] for row in rows[rows[:, 0] == i]] for i in range(len(images))]


def to_template_frame(points: np.ndarray, dlib_points: np.ndarray) -> np.ndarray:
    """``points`` (image) in the unpadded [0, 1] frame of DLIB_5_TEMPLATE, via dlib's chip similarity.

    The similarity (not the corner-stretched pixel map) is the frame the template constants live
    in, so a template derived here plugs straight back into ``chip_transform``.
    """
    tform = similarity_transform(padded_template(DLIB_5_TEMPLATE, CHIP_SIZE, CHIP_PADDING), dlib_points)
    linear, shift = tform[:, :2], tform[:, 2]
    chip = (np.asarray(points, dtype=np.float64) - shift) @ np.linalg.inv(linear).T
    return chip / CHIP_SIZE * (2 * CHIP_PADDING + 1) - CHIP_PADDING


def pair_for_rect(image: np.ndarray, r, mtcnn_rows: list[np.ndarray], min_iou: float):
    """(mtcnn points, dlib points) for HOG's one face ``r`` when MTCNN found one face overlapping it."""
    if len(mtcnn_rows) != 1:
        return None
    dlib_box = (r.left(), r.top(), r.right() + 1.0, r.bottom() + 1.0)
    row = mtcnn_rows[0]
    if iou(dlib_box, tuple(row[:4])) < min_iou:
        return None
    mtcnn_points = np.stack([row[5:10], row[10:15]], axis=1)
    box = (r.left(), r.top(), r.width(), r.height())
    return mtcnn_points, shape_5_points(image, box)


def box_fractions(rect, shape: tuple[int, ...]) -> tuple[float, float, float, float]:
    """HOG's box (x, y, w, h) as fractions of the image's width and height."""
    height, width = shape[:2]
    return (rect.left() / width, rect.top() / height, rect.width() / width, rect.height() / height)


def collect(paths: list[Path], batch_size: int, min_iou: float, min_confidence: float):
    """Mapped MTCNN points (n, 5, 2) and the raw pairs where both detectors agree, and HOG's lone boxes."""
    import dlib
    from mtcnn import MTCNN
    from tqdm import tqdm

    detector = dlib.get_frontal_face_detector()
    mtcnn = MTCNN(stages="face_and_landmarks_detection", device="CPU:0")
    mapped, pairs, boxes = [], [], []
    with tqdm(total=len(paths), unit="img") as progress:
        for start in range(0, len(paths), batch_size):
            images = [load_rgb(p) for p in paths[start : start + batch_size]]
            # One batch per image shape: the package pads mixed sizes, which shifts its output.
            for shape in {im.shape for im in images}:
                group = [im for im in images if im.shape == shape]
                for image, rows in zip(group, mtcnn_faces(mtcnn, group, min_confidence), strict=True):
                    rects = detector(image, 1)
                    if len(rects) != 1:
                        continue
                    boxes.append(box_fractions(rects[0], image.shape))
                    pair = pair_for_rect(image, rects[0], rows, min_iou)
                    if pair is not None:
                        pairs.append(pair)
                        mapped.append(to_template_frame(*pair))
            progress.update(len(images))
            progress.set_postfix(used=len(mapped))
    return np.array(mapped), pairs, np.array(boxes)


def chip_landmark_error(template: np.ndarray, pairs) -> np.ndarray:
    """Per image, mean distance (chip pixels) between dlib's 5 points in the dlib chip and in the MTCNN chip."""
    errors = []
    for mtcnn_points, dlib_points in pairs:
        reference = _image_to_chip(chip_transform(dlib_points, DLIB_5_TEMPLATE), dlib_points)
        ours = _image_to_chip(chip_transform(mtcnn_points, template), dlib_points)
        errors.append(np.linalg.norm(reference - ours, axis=1).mean())
    return np.array(errors)


def _image_to_chip(chip_to_image: np.ndarray, points: np.ndarray) -> np.ndarray:
    linear, shift = chip_to_image[:, :2], chip_to_image[:, 2]
    return (points - shift) @ np.linalg.inv(linear).T


def report_centre_box(boxes: np.ndarray, n_images: int) -> None:
    """The median HOG box as fractions (x, y, w, h), and in pixels of a 250x250 LFW image."""
    median = np.median(boxes, axis=0)
    print(f"\nHOG found exactly one face in {len(boxes)} of {n_images} images; median box:")
    print("CENTER_BOX_FRACTIONS = (" + ", ".join(f"{v:.3f}" for v in median) + ")")
    print("in a 250x250 image: x={:.0f}, y={:.0f}, w={:.0f}, h={:.0f}".format(*(median * 250)))


def report(mapped: np.ndarray, pairs, n_images: int, seconds: float) -> None:
    mean, median = mapped.mean(axis=0), np.median(mapped, axis=0)
    # Spread in chip pixels: the unpadded frame spans size / (1 + 2 * padding) pixels.
    pixels = CHIP_SIZE / (2 * CHIP_PADDING + 1)
    std = mapped.std(axis=0) * pixels
    print(f"\nused {len(mapped)} of {n_images} images ({seconds:.0f} s)")
    print("point         mean (x, y)          median (x, y)        std in chip px (x, y)")
    for name, m, md, s in zip(MTCNN_POINT_NAMES, mean, median, std, strict=True):
        print(f"{name:12s}  ({m[0]:.4f}, {m[1]:.4f})  ({md[0]:.4f}, {md[1]:.4f})  ({s[0]:.2f}, {s[1]:.2f})")
    for label, template in (("mean", mean), ("median", median)):
        err = chip_landmark_error(template, pairs)
        print(
            f"{label}: dlib's 5 points in the MTCNN chip vs the dlib chip, chip px: "
            f"mean {err.mean():.2f}, median {np.median(err):.2f}, p95 {np.percentile(err, 95):.2f}"
        )
    print("\nMTCNN_5_TEMPLATE (mean) =")
    print(_literal(mean))


def _literal(points: np.ndarray) -> str:
    rows = "\n".join(f"        [{x:.10f}, {y:.10f}]," for x, y in points)
    return f"np.array(\n    [\n{rows}\n    ],\n    dtype=np.float64,\n)"


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    paths = pick_images(args.data_home, args.limit)
    started = time.perf_counter()
    mapped, pairs, boxes = collect(paths, args.batch_size, args.min_iou, args.min_confidence)
    if len(mapped) == 0:
        raise SystemExit("no image had exactly one face found by both detectors")
    report(mapped, pairs, len(paths), time.perf_counter() - started)
    report_centre_box(boxes, len(paths))


if __name__ == "__main__":
    main()
