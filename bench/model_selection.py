"""Choose the pipeline on LFW View 1, report it on View 2: detector x embedder x flip x metric.

    python bench/model_selection.py --data-home "$FACECORE_LFW_HOME" --cache-dir ~/.cache/facecore \\
        --config scrfd/arcface-keras --config scrfd/arcface-keras/flip [--write-calibration]

View 1 is LFW's development view: a threshold is chosen on pairsDevTrain (2,200 pairs, best accuracy)
and scored on pairsDevTest (1,000 pairs); the configuration with the best View-1 test accuracy (then
AUC) is *chosen*. View 2 is pairs.txt (6,000 pairs, 10 folds, each fold's threshold chosen on the other
nine): it is *reported* for every configuration, the chosen one marked, and never used for choosing.
The same pipeline code as ``python -m facecore evaluate-lfw``; embeddings go through the cache.

``--view1-only`` skips View 2 (to choose among configurations whose View-2 rows are already published).
``--write-calibration`` stores each configuration's View-2 calibration (mean of the fold thresholds and
the cross-validated accuracy of that procedure) and distances in ``facecore/data``, replacing the
entries of the same embedder, detector and metric. The JSON it prints last (and ``--json FILE``) holds
every number, with the command and the load average.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import _data
import _repo_path  # noqa: F401  (puts the repo root on sys.path)
import numpy as np

from facecore.cache import EmbeddingCache
from facecore.config import PipelineConfig
from facecore.embedding import EMBEDDERS
from facecore.evaluation.lfw import embed_lfw_pairs
from facecore.verification.metrics import (
    METRICS,
    best_accuracy_threshold,
    kfold_verification,
    paired_distances,
    rates_at_threshold,
    roc_auc,
    tar_at_far,
)
from facecore.verification.thresholds import (
    Calibration,
    current_alignment_version,
    write_calibrations,
    write_lfw_distances,
)

OPTIONS = ("flip", "dlib-landmarks")


def parse_config(text: str) -> PipelineConfig:
    """``detector/embedder[/flip][/dlib-landmarks]``, e.g. ``scrfd/arcface-keras/flip``.

    ``dlib-landmarks`` aligns on dlib's 5-point predictor run on the detector's box instead of the
    detector's own landmarks (which MTCNN and SCRFD give).
    """
    detector, embedder, *options = text.split("/")
    unknown = set(options) - set(OPTIONS)
    if unknown:
        raise SystemExit(f"unknown option(s) {sorted(unknown)} in {text!r}; choose from {OPTIONS}")
    return PipelineConfig(
        detector=detector, embedder=embedder, flip_tta="flip" in options,
        use_detector_landmarks="dlib-landmarks" not in options,
    )


def emit_report(report: dict, path: Path | None) -> None:
    """Print ``report`` as one JSON line (the last line the tests read) and, given a path, write it there too."""
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(report, indent=1) + "\n")
    print(json.dumps(report))


def view1(config: PipelineConfig, home: Path, cache: EmbeddingCache) -> dict[str, dict]:
    """Per metric: the threshold chosen on pairsDevTrain, and accuracy/AUC on pairsDevTest."""
    train = embed_lfw_pairs(home, config, subset="dev_train", cache=cache)
    test = embed_lfw_pairs(home, config, subset="dev_test", cache=cache)
    rows = {}
    for metric in METRICS:
        d_train = paired_distances(train.a, train.b, metric)
        y_train = np.array([p.same for p in train.pairs])
        d_test = paired_distances(test.a, test.b, metric)
        y_test = np.array([p.same for p in test.pairs])
        threshold = best_accuracy_threshold(d_train, y_train)
        rows[metric] = {
            "threshold": threshold,
            "accuracy": rates_at_threshold(d_test, y_test, threshold).accuracy,
            "auc": roc_auc(d_test, y_test),
            "no_face": len(train.no_face_images) + len(test.no_face_images),
        }
    return rows


def view1_rows(config: PipelineConfig, selection: dict[str, dict]) -> list[dict]:
    """The View-1 columns of each metric's row, for ``--view1-only``."""
    return [
        {
            "detector": config.detector, "embedder": config.model_version, "flip_tta": config.flip_tta,
            "detector_landmarks": config.use_detector_landmarks, "metric": metric,
            "view1_threshold": selection[metric]["threshold"], "view1_accuracy": selection[metric]["accuracy"],
            "view1_auc": selection[metric]["auc"], "view1_no_face": selection[metric]["no_face"],
        }
        for metric in METRICS
    ]


def view2(config: PipelineConfig, home: Path, cache: EmbeddingCache):
    embedded = embed_lfw_pairs(home, config, subset="10_folds", cache=cache)
    same = np.array([p.same for p in embedded.pairs])
    folds = np.array([p.fold for p in embedded.pairs])
    out = {}
    for metric in METRICS:
        d = paired_distances(embedded.a, embedded.b, metric)
        result = kfold_verification(d, same, folds=folds)
        out[metric] = (d, result, tar_at_far(d, same, 1e-3)[0])
    return embedded, same, out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-home", type=Path, required=True, help="full LFW (holds lfw_home/ with pairs.txt)")
    parser.add_argument("--config", action="append", required=True, help="detector/embedder[/flip]")
    parser.add_argument("--cache-dir", type=Path, default=None)
    parser.add_argument("--write-calibration", action="store_true")
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    parser.add_argument("--view1-only", action="store_true", help="choose on View 1, report no View 2")
    args = parser.parse_args()
    if args.view1_only and args.write_calibration:
        parser.error("--write-calibration needs View 2 (drop --view1-only)")
    cache = EmbeddingCache(args.cache_dir)
    rows, calibrations, distances, same = [], [], {}, None
    for text in args.config:
        config = parse_config(text)
        started = time.perf_counter()
        selection = view1(config, args.data_home, cache)
        if args.view1_only:
            rows.extend(view1_rows(config, selection))
            print(f"{text}: {time.perf_counter() - started:.0f} s", file=sys.stderr, flush=True)
            continue
        embedded, same, reported = view2(config, args.data_home, cache)
        for metric in METRICS:
            d, result, tar = reported[metric]
            rows.append({
                "detector": config.detector, "embedder": embedded.embedder, "flip_tta": config.flip_tta,
                "detector_landmarks": config.use_detector_landmarks, "metric": metric,
                "view1_threshold": selection[metric]["threshold"], "view1_accuracy": selection[metric]["accuracy"],
                "view1_auc": selection[metric]["auc"], "view1_no_face": selection[metric]["no_face"],
                "view2_accuracy": result.accuracy, "view2_accuracy_std": result.accuracy_std,
                "view2_auc": result.auc, "view2_eer": result.eer, "view2_tar_at_far_1e-3": tar,
                "view2_threshold": result.threshold, "view2_no_face": len(embedded.no_face_images),
                "images_view2": len(embedded.images),
            })
            distances[(embedded.embedder, config.detector, metric)] = d
            calibrations.append(Calibration(
                detector=config.detector, metric=metric, flip_tta=config.flip_tta, threshold=result.threshold,
                accuracy=result.accuracy, accuracy_std=result.accuracy_std, auc=result.auc, eer=result.eer,
                embedder=embedded.embedder, chip=EMBEDDERS.get(config.embedder).chip,
                alignment_version=current_alignment_version(EMBEDDERS.get(config.embedder).chip, config.detector),
                command=_data.command_line(),
            ))
        print(f"{text}: {time.perf_counter() - started:.0f} s", file=sys.stderr, flush=True)
    chosen = max(rows, key=lambda r: (r["view1_accuracy"], r["view1_auc"]))
    for row in rows:
        row["chosen_on_view1"] = row is chosen
        view2_text = (
            f"  View2 {100 * row['view2_accuracy']:.2f} +- {100 * row['view2_accuracy_std']:.2f}"
            f"  TAR@1e-3 {100 * row['view2_tar_at_far_1e-3']:.2f}%  no_face {row['view2_no_face']}"
            if "view2_accuracy" in row else ""
        )
        landmarks = "" if row["detector_landmarks"] else " dlib-landmarks"
        print(
            f"{row['detector']:6s}{landmarks} {row['embedder']:32s} {row['metric']:11s} "
            f"View1 {100 * row['view1_accuracy']:.2f}% (AUC {row['view1_auc']:.4f}){view2_text}"
            f"{'  <- chosen on View 1' if row is chosen else ''}"
        )
    report = {
        "command": _data.command_line(),
        "load_average": os.getloadavg(),
        "rows": rows,
    }
    emit_report(report, args.json)
    if args.write_calibration:
        write_calibrations(calibrations)
        write_lfw_distances(distances, same)


if __name__ == "__main__":
    main()
