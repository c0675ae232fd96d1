"""LFW 10-fold accuracy of each pipeline configuration, from the raw images, cold and warm.

    python bench/lfw_benchmark.py --data-home "$FACECORE_LFW_HOME" [--config hog ...] [--limit N]
    python bench/lfw_benchmark.py --config hog --limit 20        # a quick run (the bundled mini LFW's pairs)
    python bench/lfw_benchmark.py --data-home "$FACECORE_LFW_HOME" --json docs/results/lfw_benchmark.json

Each configuration is one ``evaluate_lfw`` run (the same code as ``python -m facecore
evaluate-lfw``). The first run of a configuration embeds every image (cold); the second
reads the on-disk cache (warm). Prints one line per configuration and a JSON list at the end.
The pairs are pairs.txt (View 2) where the data home has it, else the bundled pack's demo pairs
(``--subset`` picks others); ``--limit N`` keeps N of them, balanced over folds and same/different.

``--write-calibration`` then scores every detector x metric x flip-TTA from the cached
embeddings and writes ``facecore/data/calibration.json`` (the app's default thresholds) and
``facecore/data/lfw_distances.npz`` (LFW's genuine/impostor distances, for the app's charts).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import _data
import _repo_path  # noqa: F401  (puts the repo root on sys.path)
from tqdm import tqdm

from facecore.cache import EmbeddingCache
from facecore.config import PipelineConfig
from facecore.embedding import EMBEDDERS
from facecore.evaluation.datasets import LFW_SUBSETS
from facecore.evaluation.lfw import embed_lfw_pairs, evaluate_lfw, score_lfw_pairs
from facecore.verification.metrics import METRICS
from facecore.verification.thresholds import (
    Calibration,
    current_alignment_version,
    write_calibrations,
    write_lfw_distances,
)

# name -> (pipeline config, metric)
CONFIGS = {
    "hog": (PipelineConfig(detector="hog"), "euclidean"),
    "hog+flip+cosine": (PipelineConfig(detector="hog", flip_tta=True), "cosine"),
    "mtcnn": (PipelineConfig(detector="mtcnn"), "euclidean"),
    "mtcnn+flip+cosine": (PipelineConfig(detector="mtcnn", flip_tta=True), "cosine"),
    "mtcnn(dlib5)+flip+cosine": (
        PipelineConfig(detector="mtcnn", flip_tta=True, use_detector_landmarks=False),
        "cosine",
    ),
    "haar": (PipelineConfig(detector="haar"), "euclidean"),
    "haar+flip+cosine": (PipelineConfig(detector="haar", flip_tta=True), "cosine"),
}


def run(
    name: str, options: tuple[PipelineConfig, str], data_home: Path, cache: EmbeddingCache, limit: int | None, subset: str
) -> dict:
    config, metric = options
    with tqdm(total=0, unit="img", desc=name, file=sys.stderr) as bar:

        def progress(done: int, total: int) -> None:
            bar.total = total
            bar.update(done - bar.n)

        cold = evaluate_lfw(
            data_home, config, metric=metric, cache=cache, subset=subset, limit=limit, progress=progress
        )
    warm = evaluate_lfw(data_home, config, metric=metric, cache=cache, subset=subset, limit=limit)
    assert warm.summary()["accuracy"] == cold.summary()["accuracy"]
    return {"config": name, **cold.summary(), "warm_seconds": round(warm.seconds, 2)}


def write_json(path: Path, rows: list[dict], *, cold: bool) -> None:
    """The rows as a committed record: what ran, where, and whether ``seconds`` is a cold time."""
    record = {
        "command": _data.command_line(),
        "date": time.strftime("%Y-%m-%d %H:%M", time.gmtime()),
        "cpus": os.cpu_count(),
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "seconds_is_cold": cold,
        "note": "seconds: the first run of each configuration; cold (every image embedded) only when no "
        "--cache-dir was given, else it read what an earlier run had cached; warm_seconds: the second run",
        "rows": rows,
    }
    path.write_text(json.dumps(record, indent=1) + "\n")


def write_calibration(data_home: Path, cache: EmbeddingCache) -> None:
    """Score every detector x flip x metric on pairs.txt and store thresholds and distances."""
    entries, distances, same = [], {}, None
    command = _data.command_line()
    for detector in ("haar", "hog", "mtcnn"):
        for flip in (False, True):
            config = PipelineConfig(detector=detector, flip_tta=flip)
            chip = EMBEDDERS.get(config.embedder).chip
            embedded = embed_lfw_pairs(data_home, config, cache=cache)
            for metric in METRICS:
                d, same, _, result = score_lfw_pairs(embedded, metric)
                distances[(embedded.embedder, detector, metric)] = d
                entries.append(
                    Calibration(
                        detector=detector, metric=metric, flip_tta=flip, threshold=result.threshold,
                        accuracy=result.accuracy, accuracy_std=result.accuracy_std, auc=result.auc,
                        eer=result.eer, embedder=embedded.embedder, chip=chip,
                        alignment_version=current_alignment_version(chip, detector), command=command,
                    )
                )
                print(f"calibrated {detector:5s} {metric:11s} flip={flip!s:5s} threshold {result.threshold:.4f} "
                      f"accuracy {100 * result.accuracy:.2f}%", flush=True)
    write_calibrations(entries)
    write_lfw_distances(distances, same)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-home", type=Path, default=None, help=_data.LFW_HOME_HELP)
    parser.add_argument("--subset", choices=sorted(LFW_SUBSETS), default=None, help="default: 10_folds, else demo")
    parser.add_argument("--config", action="append", choices=sorted(CONFIGS), help="default: all")
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument("--cache-dir", type=Path, default=None, help="default: a fresh temporary folder (cold)")
    parser.add_argument("--write-calibration", action="store_true", help="also write the app's calibration files")
    parser.add_argument("--json", type=Path, default=None, help="also write the rows, the command and the machine here")
    args = parser.parse_args()
    data_home = _data.lfw_home(args.data_home)
    subset = args.subset or _data.benchmark_subset(data_home)
    if args.write_calibration and subset != "10_folds":
        parser.error("--write-calibration scores pairs.txt: give a --data-home with the full LFW")

    with tempfile.TemporaryDirectory() as scratch:
        cache = EmbeddingCache(args.cache_dir or scratch)
        rows = []
        for name in args.config or ([] if args.write_calibration and args.cache_dir else list(CONFIGS)):
            row = run(name, CONFIGS[name], data_home, cache, args.limit, subset)
            rows.append(row)
            print(
                f"{name:28s} acc {100 * row['accuracy']:.2f}% +- {100 * row['accuracy_std']:.2f}  "
                f"AUC {row['auc']:.4f}  EER {100 * row['eer']:.2f}%  TAR@1e-3 {100 * row['tar_at_far_1e-3']:.2f}%  "
                f"no_face {row['no_face']}/{row['images']}  cold {row['seconds']:.0f} s  warm {row['warm_seconds']:.1f} s",
                flush=True,
            )
        if rows:
            print(json.dumps(rows))
        if rows and args.json:
            write_json(args.json, rows, cold=args.cache_dir is None)
        if args.write_calibration:
            write_calibration(data_home, cache)


if __name__ == "__main__":
    main()
