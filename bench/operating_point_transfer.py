"""An operating point chosen on one labelled set, checked on another: does its false-accept estimate hold?

    python bench/operating_point_transfer.py --data-home "$FACECORE_LFW_HOME" [--target "FAR <= 0.1%"]
    python bench/operating_point_transfer.py --data-home <home with pairsDevTrain.txt> --limit 20   # a quick run

The workflow of issue 17 on data that is not scored: LFW View 1's training pairs (pairsDevTrain.txt,
2,200 pairs) are read as a user's pairs CSV would be (``facecore.evaluation.own_pairs``), scored with
``facecore.evaluation.own_data.evaluate_pairs`` (HOG + dlib-keras, euclidean, through the embedding
cache), and an operating point is chosen on them for ``--target``. It is then reported on View 2
(pairs.txt's 6,000 pairs, the stored distances of the same configuration in
``facecore/data/lfw_distances.npz``): the FAR and TAR the point achieves there, against what View 1
predicted, and how far the point's false-accept estimate (``confidence_at``) is from View 2's impostor
fraction at every View 2 impostor distance below 0.8. The default threshold's FAR on View 2 is given
for comparison. (View 1 and View 2 share people, so this is an easier transfer than a new camera's.)

The data home (``--data-home``, else ``$FACECORE_LFW_HOME``, else the bundled mini LFW, as the other bench
scripts find it) must hold ``pairsDevTrain.txt`` next to the images; the bundled mini LFW has none. View 2's
distances are the stored ones, so nothing here reads pairs.txt. ``--limit N`` scores only the first N/2 genuine and
N/2 impostor View 1 pairs (a quick run; with few pairs the chosen point is rough).
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import _data
import _repo_path  # noqa: F401  (puts the repo root on sys.path)
import numpy as np

from facecore.cache import EmbeddingCache
from facecore.config import PipelineConfig
from facecore.evaluation.datasets import lfw_images_dir, read_lfw_pairs
from facecore.evaluation.own_data import evaluate_pairs
from facecore.evaluation.own_pairs import OwnPair, PairSet
from facecore.verification.metrics import rates_at_threshold
from facecore.verification.operating_points import TARGETS, confidence_at, from_pairs
from facecore.verification.thresholds import default_threshold, lfw_distances


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--target", choices=TARGETS[:-1], default="FAR <= 0.1%")
    parser.add_argument("--data-home", type=Path, default=None, help=_data.LFW_HOME_HELP + " (needs pairsDevTrain.txt)")
    parser.add_argument("--limit", type=int, default=None, help="score only N View 1 pairs, the first N/2 genuine and N/2 impostor ones (a quick run)")
    args = parser.parse_args()
    home = _data.lfw_home(args.data_home)
    if not (home / "lfw_home" / "pairsDevTrain.txt").is_file():
        raise SystemExit(f"needs LFW's View 1 file {home / 'lfw_home' / 'pairsDevTrain.txt'}: give --data-home "
                         "(or set FACECORE_LFW_HOME to) a data home holding it")
    config = PipelineConfig(detector="hog")
    root = lfw_images_dir(home)
    view1_pairs = read_lfw_pairs(home, "dev_train")
    if args.limit is not None:  # pairsDevTrain lists its genuine pairs first: take half of each kind
        genuine, impostor = [p for p in view1_pairs if p.same], [p for p in view1_pairs if not p.same]
        view1_pairs = genuine[: args.limit - args.limit // 2] + impostor[: args.limit // 2]
    pairs = tuple(
        OwnPair(p.path_a.relative_to(root).as_posix(), p.path_b.relative_to(root).as_posix(), p.same)
        for p in view1_pairs
    )
    started = time.perf_counter()
    view1 = evaluate_pairs(PairSet("LFW View 1 train", root, pairs), config,
                           cache=EmbeddingCache(os.environ.get("FACECORE_CACHE_DIR")))
    point = from_pairs("view1", config, "euclidean", view1.distances, view1.same, target=args.target,
                       source="own set", set_name="LFW View 1 train")
    d2, same2 = lfw_distances(config, "euclidean")
    at_point = rates_at_threshold(d2, same2, point.threshold)
    default = default_threshold(config, "euclidean").value
    at_default = rates_at_threshold(d2, same2, default)
    predicted = confidence_at(point, point.threshold)
    impostor2 = np.sort(d2[~same2])
    probe = impostor2[impostor2 < 0.8]
    gaps = [abs(confidence_at(point, x).far - np.mean(impostor2 <= x)) for x in probe]
    result = {
        "target": args.target,
        "view1_pairs": len(pairs),
        "view1_kfold_accuracy": view1.result.accuracy,
        "threshold": point.threshold,
        "view1_far": predicted.far,
        "view1_tar": predicted.gar,
        "view2_far": at_point.far,
        "view2_tar": at_point.tar,
        "view2_false_accepts": at_point.fp,
        "default_threshold": default,
        "default_view2_far": at_default.far,
        "default_view2_tar": at_default.tar,
        "max_far_estimate_gap_below_0.8": float(max(gaps)),
        "seconds": round(time.perf_counter() - started, 1),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
