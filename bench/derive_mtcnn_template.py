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

    python bench/derive_mtcnn_template.py --data-home "$FACECORE_LFW_HOME" --limit 1000 \\
        --json docs/results/mtcnn_template.json

One image per person (the first in sorted order), people spread evenly over LFW's sorted list, drawn
only from people who appear in none of ``pairs.txt`` (View 2, where numbers are reported) and
``pairsDevTest.txt`` (View 1's test half, where configurations are chosen): 1,281 of LFW's 5,749 people.
So neither the template nor the centre box is fitted on a face whose pairs it is then scored or chosen on.

``--json PATH`` writes what was derived: the template (mean and median points, per-point spread), the
centre box, how many people and images were used and left out (and which images, and why), the command,
and how both compare with the constants in use (``facecore.alignment.MTCNN_5_TEMPLATE``,
``facecore.pipeline.CENTER_BOX_FRACTIONS``).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

import _data  # noqa: E402  (bench/ is on sys.path: the script's own folder)

from facecore.alignment import (  # noqa: E402  (needs the repo on sys.path first)
    CHIP_PADDING,
    CHIP_SIZE,
    DLIB_5_TEMPLATE,
    MTCNN_5_TEMPLATE,
    MTCNN_TEMPLATE_VERSION,
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
    parser.add_argument("--json", type=Path, default=None, help="also write what was derived here (JSON)")
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
    return eligible_people(data_home, limit)[0]


def eligible_people(data_home: Path, limit: int) -> tuple[list[Path], dict[str, int]]:
    """:func:`pick_images`'s images, and the people counts behind them (LFW's, held out, eligible, chosen)."""
    root = data_home / "lfw_home" / "lfw_funneled"
    excluded: set[str] = set()
    for name in HELD_OUT_PAIR_FILES:
        pairs_file = data_home / "lfw_home" / name
        if not pairs_file.is_file():
            raise SystemExit(f"{pairs_file} is missing: it names the people the fit must leave out")
        excluded |= people_in_pairs(pairs_file)
    everyone = sorted(p for p in root.iterdir() if p.is_dir())
    people = [p for p in everyone if p.name not in excluded]
    if not people:
        raise SystemExit(f"no LFW people outside {', '.join(HELD_OUT_PAIR_FILES)} found under {root}")
    chosen = np.unique(np.linspace(0, len(people) - 1, num=min(limit, len(people))).round().astype(int))
    counts = {
        "people_in_lfw": len(everyone),
        "people_in_held_out_pairs": len(everyone) - len(people),
        "people_eligible": len(people),
        "people_chosen": len(chosen),
    }
    return [sorted(people[i].glob("*.jpg"))[0] for i in chosen], counts


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


def collect(paths: list[Path], batch_size: int, min_iou: float, min_confidence: float, outcomes: dict | None = None):
    """Mapped MTCNN points (n, 5, 2) and the raw pairs where both detectors agree, and HOG's lone boxes.

    ``outcomes``, when given, gets each path's fate: ``"template"`` (used for the template and the box),
    ``"box_only"`` (HOG's one face, but MTCNN found no single overlapping face), ``"hog_not_one_face"``.
    """
    import dlib
    from mtcnn import MTCNN
    from tqdm import tqdm

    detector = dlib.get_frontal_face_detector()
    mtcnn = MTCNN(stages="face_and_landmarks_detection", device="CPU:0")
    mapped, pairs, boxes = [], [], []
    with tqdm(total=len(paths), unit="img") as progress:
        for start in range(0, len(paths), batch_size):
            batch = paths[start : start + batch_size]
            images = [load_rgb(p) for p in batch]
            # One batch per image shape: the package pads mixed sizes, which shifts its output.
            for shape in {im.shape for im in images}:
                group = [(p, im) for p, im in zip(batch, images, strict=True) if im.shape == shape]
                found = mtcnn_faces(mtcnn, [im for _, im in group], min_confidence)
                for (path, image), rows in zip(group, found, strict=True):
                    rects = detector(image, 1)
                    outcome = "hog_not_one_face"
                    if len(rects) == 1:
                        boxes.append(box_fractions(rects[0], image.shape))
                        pair = pair_for_rect(image, rects[0], rows, min_iou)
                        outcome = "box_only"
                        if pair is not None:
                            pairs.append(pair)
                            mapped.append(to_template_frame(*pair))
                            outcome = "template"
                    if outcomes is not None:
                        outcomes[path] = outcome
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


def report_centre_box(boxes: np.ndarray, n_images: int) -> np.ndarray:
    """The median HOG box as fractions (x, y, w, h), and in pixels of a 250x250 LFW image (returned)."""
    median = np.median(boxes, axis=0)
    print(f"\nHOG found exactly one face in {len(boxes)} of {n_images} images; median box:")
    print("CENTER_BOX_FRACTIONS = (" + ", ".join(f"{v:.3f}" for v in median) + ")")
    print("in a 250x250 image: x={:.0f}, y={:.0f}, w={:.0f}, h={:.0f}".format(*(median * 250)))
    return median


def report(mapped: np.ndarray, pairs, n_images: int, seconds: float) -> dict:
    """Print the template (mean and median points, spread, chip error); return the same as a dict."""
    mean, median = mapped.mean(axis=0), np.median(mapped, axis=0)
    # Spread in chip pixels: the unpadded frame spans size / (1 + 2 * padding) pixels.
    pixels = CHIP_SIZE / (2 * CHIP_PADDING + 1)
    std = mapped.std(axis=0) * pixels
    print(f"\nused {len(mapped)} of {n_images} images ({seconds:.0f} s)")
    print("point         mean (x, y)          median (x, y)        std in chip px (x, y)")
    for name, m, md, s in zip(MTCNN_POINT_NAMES, mean, median, std, strict=True):
        print(f"{name:12s}  ({m[0]:.4f}, {m[1]:.4f})  ({md[0]:.4f}, {md[1]:.4f})  ({s[0]:.2f}, {s[1]:.2f})")
    errors = {}
    for label, template in (("mean", mean), ("median", median)):
        err = chip_landmark_error(template, pairs)
        errors[label] = {"mean": float(err.mean()), "median": float(np.median(err)), "p95": float(np.percentile(err, 95))}
        print(
            f"{label}: dlib's 5 points in the MTCNN chip vs the dlib chip, chip px: "
            f"mean {err.mean():.2f}, median {np.median(err):.2f}, p95 {np.percentile(err, 95):.2f}"
        )
    print("\nMTCNN_5_TEMPLATE (mean) =")
    print(_literal(mean))
    return {
        "points": list(MTCNN_POINT_NAMES),
        "template_mean": mean.tolist(),
        "template_median": median.tolist(),
        "std_chip_px": std.tolist(),
        "dlib_points_error_chip_px": errors,
    }


def compare(derived: np.ndarray, constant: np.ndarray, name: str) -> dict:
    """How a derived array differs from the constant in use: largest difference, and equal to 3 decimals."""
    derived, constant = np.asarray(derived, np.float64), np.asarray(constant, np.float64)
    largest = float(np.max(np.abs(derived - constant)))
    same = bool(np.array_equal(np.round(derived, 3), np.round(constant, 3)))
    print(f"{name}: largest difference from the constant {largest:.4f}; equal to 3 decimals: {'yes' if same else 'no'}")
    return {"constant": constant.tolist(), "max_abs_difference": largest, "equal_to_3_decimals": same}


def _literal(points: np.ndarray) -> str:
    rows = "\n".join(f"        [{x:.10f}, {y:.10f}]," for x, y in points)
    return f"np.array(\n    [\n{rows}\n    ],\n    dtype=np.float64,\n)"


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    paths, people = eligible_people(args.data_home, args.limit)
    started = time.perf_counter()
    outcomes: dict[Path, str] = {}
    mapped, pairs, boxes = collect(paths, args.batch_size, args.min_iou, args.min_confidence, outcomes)
    if len(mapped) == 0:
        raise SystemExit("no image had exactly one face found by both detectors")
    seconds = time.perf_counter() - started
    template = report(mapped, pairs, len(paths), seconds)
    box = report_centre_box(boxes, len(paths))
    if args.json is None:
        return
    from facecore.pipeline import CENTER_BOX_FRACTIONS

    print()
    template["compared_with_alignment"] = {
        "version": MTCNN_TEMPLATE_VERSION,
        **compare(template["template_mean"], MTCNN_5_TEMPLATE, "MTCNN_5_TEMPLATE (mean)"),
    }
    names = {kind: sorted(f"{p.parent.name}/{p.name}" for p, o in outcomes.items() if o == kind)
             for kind in ("template", "box_only", "hog_not_one_face")}  # fmt: skip
    result = {
        "command": _data.command_line(None if argv is None else ["bench/derive_mtcnn_template.py", *argv]),
        "date": datetime.date.today().isoformat(),
        "load_average": os.getloadavg(),
        "seconds": round(seconds, 1),
        "settings": {"limit": args.limit, "batch_size": args.batch_size, "min_iou": args.min_iou,
                     "min_confidence": args.min_confidence, "held_out_pair_files": list(HELD_OUT_PAIR_FILES)},
        "people": people,
        "images": {
            "chosen": len(paths),
            "used_for_template": len(mapped),
            "used_for_centre_box": len(boxes),
            "left_out_of_template": len(paths) - len(mapped),
            "left_out_of_centre_box": len(paths) - len(boxes),
            "left_out_hog_not_one_face": len(names["hog_not_one_face"]),
            "left_out_mtcnn_no_single_overlapping_face": len(names["box_only"]),
        },
        "mtcnn_5_template": template,
        "centre_box": {
            "fractions_xywh": box.tolist(),
            "pixels_of_250x250": (box * 250).tolist(),
            "compared_with_pipeline": compare(box, CENTER_BOX_FRACTIONS, "CENTER_BOX_FRACTIONS"),
        },
        "image_names": names,
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=1) + "\n")
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
