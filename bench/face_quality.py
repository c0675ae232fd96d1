"""How small, blurred or turned can a face be before verification suffers? The data behind
``facecore.quality.DEFAULT_MINIMUMS``.

    python bench/face_quality.py --data-home "$FACECORE_LFW_HOME" [--pairs 80]
    python bench/face_quality.py --data-home <home with pairsDevTrain.txt> --pairs 3 --scales 0.35 \
        --sigmas 3 --sample-photos 2                                                    # a quick run

Settings are chosen on LFW **View 1** (``pairsDevTrain.txt``, the development split, never scored);
nothing here reads View 2 (``pairs.txt``). The pipeline is the dashboard's default (HOG, dlib-keras,
no flip, photos shrunk to 800 px for detection) and its default threshold (euclidean, from
``facecore.verification.default_threshold``).

For the first ``--pairs`` genuine View 1 pairs (A, B): A is embedded as it is; B is embedded as it is,
downscaled (``--scales``) and blurred with a Gaussian (``--sigmas``, on the full-size photo). For each
copy of B the script records the quality of its largest face (``facecore.quality.face_quality``) and
whether the pair is still accepted (distance <= threshold), or that no face was found. The undegraded
pairs also give the pose analysis (the larger |yaw| and |roll| of the two photos).

Then, per quality measure, it bins the copies and prints the acceptance rate (TAR) per bin, and the
lowest bin edge from which every higher bin keeps TAR within ``--tolerance`` (5 points) of the
undegraded pairs' TAR: that is the suggested minimum. It also prints the quality of every photo in
``faces_small/`` (real photos that a minimum must not refuse; ``--sample-photos N``: the first N only).
One JSON object at the end.

The data home is ``--data-home``, else ``$FACECORE_LFW_HOME``, else the bundled mini LFW (as the other bench
scripts find it); it must hold ``pairsDevTrain.txt`` next to the images (the bundled mini LFW has none).
The photos are ``--photos`` (holding ``faces_small/``), by default the demo pack in ``samples/``.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import _data
import _repo_path  # noqa: F401
import cv2
import numpy as np

from facecore.config import PipelineConfig
from facecore.evaluation.datasets import read_lfw_pairs
from facecore.images import load_image
from facecore.pipeline import build_pipeline
from facecore.quality import face_quality
from facecore.verification import default_threshold


def largest(pipeline, image: np.ndarray):
    found = list(pipeline.process(image))
    if not found:
        return None, 0
    return max(found, key=lambda f: f.face.area), len(found)


def suggested_minimum(values: np.ndarray, accepted: np.ndarray, edges: list[float], target: float) -> float | None:
    """The lowest edge e such that every bin [e_i, e_i+1) with e_i >= e has TAR >= target."""
    ok_from = None
    for low, high in reversed(list(zip(edges[:-1], edges[1:], strict=True))):
        inside = (values >= low) & (values < high)
        if inside.sum() == 0:
            continue
        if accepted[inside].mean() >= target:
            ok_from = low
        else:
            break
    return ok_from


def table(values: np.ndarray, accepted: np.ndarray, edges: list[float]) -> list[dict]:
    rows = []
    for low, high in zip(edges[:-1], edges[1:], strict=True):
        inside = (values >= low) & (values < high)
        if inside.any():
            rows.append({"from": low, "to": high, "n": int(inside.sum()), "tar": float(accepted[inside].mean())})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-home", type=Path, default=None, help=_data.LFW_HOME_HELP + " (needs pairsDevTrain.txt)")
    parser.add_argument("--photos", type=Path, default=None, help=_data.PHOTOS_HELP)
    parser.add_argument("--sample-photos", type=int, default=None, help="check only the first N faces_small photos")
    parser.add_argument("--pairs", type=int, default=80)
    parser.add_argument("--scales", type=float, nargs="+", default=[0.6, 0.45, 0.35, 0.28, 0.22])
    parser.add_argument("--sigmas", type=float, nargs="+", default=[1.0, 2.0, 3.0, 4.5, 6.0])
    parser.add_argument("--tolerance", type=float, default=0.05)
    args = parser.parse_args()
    data_home, photos = _data.lfw_home(args.data_home), _data.photos_dir(args.photos)
    if not (data_home / "lfw_home" / "pairsDevTrain.txt").is_file():
        raise SystemExit(f"needs LFW's View 1 file {data_home / 'lfw_home' / 'pairsDevTrain.txt'}: give --data-home "
                         "(or set FACECORE_LFW_HOME to) a data home holding it")

    started = time.perf_counter()
    config = PipelineConfig.interactive()
    pipeline = build_pipeline(config)
    threshold = default_threshold(config, "euclidean").value
    pairs = [p for p in read_lfw_pairs(data_home, "dev_train") if p.same][: args.pairs]

    records = []  # one per copy of B: kind, level, quality, accepted (None: no face)
    pose = []  # undegraded pairs: max |yaw|, max |roll|, accepted
    for pair in pairs:
        a_image, b_image = load_image(pair.path_a), load_image(pair.path_b)
        a, a_count = largest(pipeline, a_image)
        if a is None:
            continue
        copies = [("original", 1.0, b_image)]
        h, w = b_image.shape[:2]
        copies += [
            ("scale", s, cv2.resize(b_image, (max(1, round(w * s)), max(1, round(h * s))), interpolation=cv2.INTER_AREA))
            for s in args.scales
        ]
        copies += [("blur", g, cv2.GaussianBlur(b_image, (0, 0), g)) for g in args.sigmas]
        for kind, level, image in copies:
            b, count = largest(pipeline, image)
            if b is None:
                records.append({"kind": kind, "level": level, "accepted": None})
                continue
            q = face_quality(b, count)
            same = bool(np.linalg.norm(a.embedding - b.embedding) <= threshold)
            records.append({"kind": kind, "level": level, "accepted": same, **q.as_dict()})
            if kind == "original":
                qa = face_quality(a, a_count)
                pose.append((max(abs(qa.yaw), abs(q.yaw)), max(abs(qa.roll_deg), abs(q.roll_deg)), same))

    detected = [r for r in records if r["accepted"] is not None]
    originals = [r for r in detected if r["kind"] == "original"]
    base_tar = float(np.mean([r["accepted"] for r in originals]))
    target = base_tar - args.tolerance
    per_level = {}
    for r in records:
        key = f"{r['kind']} {r['level']:g}"
        entry = per_level.setdefault(key, {"n": 0, "no_face": 0, "accepted": 0})
        entry["n"] += 1
        entry["no_face"] += r["accepted"] is None
        entry["accepted"] += bool(r["accepted"])
    for key, entry in per_level.items():
        kind, level = key.split()
        found = [r for r in detected if r["kind"] == kind and f"{r['level']:g}" == level]
        entry["tar"] = round(entry["accepted"] / entry["n"], 4)  # a photo with no face found counts as rejected
        if found:
            entry["median_eye_distance_px"] = round(float(np.median([r["eye_distance_px"] for r in found])), 1)
            entry["median_blur"] = round(float(np.median([r["blur"] for r in found])), 1)
    # Size is judged on the downscaled copies (sharp), blur on the blurred ones (full size), so that
    # one cause does not hide behind the other; the originals are in both.
    sized = [r for r in detected if r["kind"] in ("original", "scale")]
    blurred = [r for r in detected if r["kind"] in ("original", "blur")]
    eye = np.array([r["eye_distance_px"] for r in sized], float)
    eye_ok = np.array([r["accepted"] for r in sized], bool)
    blur = np.array([r["blur"] for r in blurred], float)
    blur_ok = np.array([r["accepted"] for r in blurred], bool)
    eye_edges = [0, 8, 10, 12, 14, 16, 18, 20, 25, 30, 40, 1000]
    blur_edges = [0, 2, 4, 6, 8, 10, 15, 20, 30, 60, 1e9]
    pose_arr = np.array(pose, float) if pose else np.zeros((0, 3))
    yaw_edges = [0, 0.1, 0.2, 0.3, 0.4, 0.6, 10]
    roll_edges = [0, 5, 10, 20, 30, 90]

    samples = []
    for photo in sorted((photos / "faces_small").rglob("*.jpg"))[: args.sample_photos]:
        face, count = largest(pipeline, load_image(photo))
        if face is not None:
            samples.append({"photo": photo.relative_to(photos).as_posix(), **face_quality(face, count).as_dict()})

    result = {
        "data": "LFW View 1 (pairsDevTrain.txt), genuine pairs, B degraded; not View 2",
        "pipeline": config.describe(),
        "threshold": threshold,
        "pairs": len(originals),
        "tar_undegraded": base_tar,
        "target_tar": target,
        "per_level": per_level,
        "eye_distance_bins": table(eye, eye_ok, eye_edges),
        "blur_bins": table(blur, blur_ok, blur_edges),
        "yaw_bins": table(pose_arr[:, 0], pose_arr[:, 2].astype(bool), yaw_edges),
        "roll_bins": table(pose_arr[:, 1], pose_arr[:, 2].astype(bool), roll_edges),
        "suggested_min_eye_distance_px": suggested_minimum(eye, eye_ok, eye_edges, target),
        "suggested_min_blur": suggested_minimum(blur, blur_ok, blur_edges, target),
        "samples_faces_small": {
            "photos": len(samples),
            "min_eye_distance_px": min(s["eye_distance_px"] for s in samples),
            "min_blur": min(s["blur"] for s in samples),
            "max_abs_yaw": max(abs(s["yaw"]) for s in samples),
            "max_abs_roll_deg": max(abs(s["roll_deg"]) for s in samples),
        },
        "seconds": round(time.perf_counter() - started, 1),
    }
    print(
        f"{result['pairs']} View 1 genuine pairs, TAR {base_tar:.3f} undegraded; suggested minimums: eye distance "
        f"{result['suggested_min_eye_distance_px']} px, blur {result['suggested_min_blur']}"
    )
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
