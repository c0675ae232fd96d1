"""Fusion of two models on LFW: chosen on View 1, reported on View 2 (issue 13).

    python bench/model_fusion.py --data-home "$FACECORE_LFW_HOME" --cache-dir ~/.cache/facecore \\
        --model mtcnn/dlib-keras/flip:euclidean --model scrfd/arcface-keras/flip:cosine \\
        --json docs/results/model_fusion.json

Each ``--model`` is ``detector/embedder[/flip][/dlib-landmarks]:metric`` (the pipelines of
``bench/model_selection.py``, through the same embedding cache). For every LFW pair both models give
a distance; the candidates are each model alone and, for every weight ``w`` of the first model in
``--weights`` (the second gets ``1 - w``):

* ``zscore``: each model's distances standardised with the mean and standard deviation of its
  distances on **pairsDevTrain** (View 1's training pairs; :func:`facecore.verification.fusion.fit_zscore`),
  then averaged with the weights;
* ``concat``: both models' vectors at unit length, weighted and concatenated, compared by euclidean
  distance (:func:`facecore.verification.fusion.concatenated`).

**View 1** chooses: each candidate's threshold is the best-accuracy one on pairsDevTrain, its accuracy
and AUC are measured on pairsDevTest; the best test accuracy (then AUC) is chosen. **View 2** (pairs.txt,
10 folds, each fold's threshold from the other nine) is only reported, for every candidate. The z-score
statistics never see View 2 or pairsDevTest.

``--write`` stores the z-score recipe with equal weights (the two models' configurations and their
pairsDevTrain statistics) in ``facecore/data/fusion.json``: the LFW page draws the fused ROC from it
and the stored pairs.txt distances of both configurations.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import _data
import _repo_path  # noqa: F401  (puts the repo root on sys.path)
import numpy as np
from model_selection import emit_report, parse_config

from facecore.cache import EmbeddingCache
from facecore.evaluation.lfw import embed_lfw_pairs
from facecore.verification.fusion import (
    FusedModel,
    FusionRecipe,
    concatenated,
    fit_zscore,
    write_fusion_recipe,
    zscore_fused,
)
from facecore.verification.metrics import (
    best_accuracy_threshold,
    kfold_verification,
    paired_distances,
    rates_at_threshold,
    roc_auc,
    tar_at_far,
)

SUBSETS = ("dev_train", "dev_test", "10_folds")


def embed_model(text: str, home: Path, cache: EmbeddingCache) -> dict:
    """One model's pairs of every subset: distances, pair vectors, labels, folds and no-face counts."""
    config_text, metric = text.rsplit(":", 1)
    config = parse_config(config_text)
    out = {"name": text, "metric": metric, "config": config}
    for subset in SUBSETS:
        embedded = embed_lfw_pairs(home, config, subset=subset, cache=cache)
        out[subset] = {
            "a": embedded.a,
            "b": embedded.b,
            "d": paired_distances(embedded.a, embedded.b, metric),
            "same": np.array([p.same for p in embedded.pairs]),
            "folds": np.array([p.fold for p in embedded.pairs]),
            "keys": [(p.path_a, p.path_b) for p in embedded.pairs],
            "no_face": len(embedded.no_face_images),
        }
    return out


def candidates(first: dict, second: dict, weights: list[float]) -> dict[str, dict[str, np.ndarray]]:
    """Per candidate, its distances on every subset."""
    scales = [fit_zscore(model["dev_train"]["d"]) for model in (first, second)]
    found = {
        first["name"]: {s: first[s]["d"] for s in SUBSETS},
        second["name"]: {s: second[s]["d"] for s in SUBSETS},
    }
    for w in weights:
        found[f"zscore w={w:.2f}"] = {
            s: zscore_fused([first[s]["d"], second[s]["d"]], scales, [w, 1 - w]) for s in SUBSETS
        }
        found[f"concat w={w:.2f}"] = {
            s: paired_distances(
                concatenated([first[s]["a"], second[s]["a"]], [w, 1 - w]),
                concatenated([first[s]["b"], second[s]["b"]], [w, 1 - w]),
                "euclidean",
            )
            for s in SUBSETS
        }
    return found


def score(name: str, d: dict[str, np.ndarray], model: dict) -> dict:
    train, test, view2 = (model[s] for s in SUBSETS)
    threshold = best_accuracy_threshold(d["dev_train"], train["same"])
    result = kfold_verification(d["10_folds"], view2["same"], folds=view2["folds"])
    return {
        "candidate": name,
        "view1_threshold": threshold,
        "view1_accuracy": rates_at_threshold(d["dev_test"], test["same"], threshold).accuracy,
        "view1_auc": roc_auc(d["dev_test"], test["same"]),
        "view2_accuracy": result.accuracy,
        "view2_accuracy_std": result.accuracy_std,
        "view2_auc": result.auc,
        "view2_eer": result.eer,
        "view2_tar_at_far_1e-3": tar_at_far(d["10_folds"], view2["same"], 1e-3)[0],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-home", type=Path, required=True, help="full LFW (pairs.txt and View 1's files)")
    parser.add_argument("--model", action="append", required=True, help="detector/embedder[/flip]:metric (twice)")
    parser.add_argument("--weights", type=float, nargs="*", default=[0.25, 0.4, 0.5, 0.6, 0.75])
    parser.add_argument("--cache-dir", type=Path, default=None)
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    parser.add_argument("--write", action="store_true", help="store the equal-weight z-score recipe for the app")
    args = parser.parse_args()
    if len(args.model) != 2:
        parser.error("give exactly two --model")
    started = time.perf_counter()
    cache = EmbeddingCache(args.cache_dir)
    first, second = (embed_model(text, args.data_home, cache) for text in args.model)
    for subset in SUBSETS:
        if first[subset]["keys"] != second[subset]["keys"]:
            raise SystemExit(f"the two models' {subset} pairs differ")
    rows = [score(name, d, first) for name, d in candidates(first, second, args.weights).items()]
    chosen = max(rows, key=lambda r: (r["view1_accuracy"], r["view1_auc"]))
    for row in rows:
        row["chosen_on_view1"] = row is chosen
        print(
            f"{row['candidate']:42s} View1 {100 * row['view1_accuracy']:.2f}% (AUC {row['view1_auc']:.4f})  "
            f"View2 {100 * row['view2_accuracy']:.2f} +- {100 * row['view2_accuracy_std']:.2f}  "
            f"AUC {row['view2_auc']:.5f}  EER {100 * row['view2_eer']:.2f}%  "
            f"TAR@1e-3 {100 * row['view2_tar_at_far_1e-3']:.2f}%{'  <- chosen on View 1' if row is chosen else ''}"
        )
    report = {
        "command": _data.command_line(),
        "models": args.model,
        "no_face_view2": {first["name"]: first["10_folds"]["no_face"], second["name"]: second["10_folds"]["no_face"]},
        "zscore_fitted_on": "pairsDevTrain (View 1)",
        "seconds": round(time.perf_counter() - started, 1),
        "load_average": os.getloadavg(),
        "rows": rows,
    }
    emit_report(report, args.json)
    if args.write:
        write_fusion_recipe(recipe(first, second, report["command"]))


def recipe(first: dict, second: dict, command: str) -> FusionRecipe:
    """Equal weights, each model's statistics from pairsDevTrain."""
    models = []
    for model in (first, second):
        config, (mean, std) = model["config"], fit_zscore(model["dev_train"]["d"])
        if not config.use_detector_landmarks:
            raise SystemExit("the stored LFW distances are of detector-landmark configurations; drop dlib-landmarks")
        models.append(FusedModel(config.embedder, config.detector, model["metric"], config.flip_tta, mean, std))
    return FusionRecipe(tuple(models), (0.5, 0.5), "LFW pairsDevTrain (View 1, 2,200 pairs)", command)


if __name__ == "__main__":
    main()
