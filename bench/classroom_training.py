"""How long the Classroom's "Train your own" takes on a CPU, and what the models reach on held-out people.

    python bench/classroom_training.py [--data-home ../shared/data/sklearn] [--epochs 12] [--chips]

Runs what the page runs with its default settings: LFW people with 10+ photos (at most 20 each, 32x32
grey crops; 158 people, 2,541 crops), 25% of the people held out, 600 fixed held-out pairs; the triplet
model (batch-all and semi-hard, margin 0.2, 64-D), the twin network, GaussianNB on raw pixels, and the
pretrained dlib model (HOG; the held-out photos embedded without a cache, i.e. the cold cost). Times each
step (wall clock) and prints held-out AUC and 5-fold accuracy per model.

``--chips`` also embeds the held-out photos through the real pipeline (HOG, aligned 150x150 chips) with
the exported batch-all model loaded back as a ``keras-file`` embedder, to show the bring-your-own path
keeps most of what the model learned on LFW crops.

Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import _repo_path  # noqa: F401

from facecore.classroom.data import load_lfw_crops, prepare_data
from facecore.classroom.evaluate import evaluate_embeddings, pixel_naive_bayes
from facecore.classroom.models import export_for_chips, save_model
from facecore.classroom.training import train_triplet_model, train_twin_network
from facecore.config import PipelineConfig
from facecore.evaluation.datasets import default_lfw_home
from facecore.pipeline import FacePipeline


def timed(fn):
    start = time.perf_counter()
    value = fn()
    return value, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-home", type=Path, default=default_lfw_home())
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument("--chips", action="store_true")
    args = parser.parse_args()

    report: dict = {"cpus": os.cpu_count(), "load_average_before": os.getloadavg()[0], "epochs": args.epochs}
    crops, report["load_crops_s"] = timed(
        lambda: load_lfw_crops(args.data_home, min_images=10, max_images=20)
    )
    data = prepare_data(crops, held_out=0.25, n_pairs=600, seed=0)
    report["data"] = data.describe()
    results = {}
    runs = {}
    for mining in ("batch-all", "semi-hard"):
        run, seconds = timed(lambda m=mining: train_triplet_model(data, mining=m, epochs=args.epochs))
        runs[mining] = run
        results[f"triplet {mining}"] = (run.result, seconds)
    twin, seconds = timed(lambda: train_twin_network(data, epochs=args.epochs))
    results["twin network"] = (twin.result, seconds)
    results["GaussianNB raw pixels"] = timed(lambda: pixel_naive_bayes(data))
    pipeline = FacePipeline(PipelineConfig(detector="hog", embedder="dlib-keras"))
    (embeddings, _), seconds = timed(lambda: pipeline.embed_primary_faces(list(data.test.paths)))
    results["pretrained dlib-keras"] = (evaluate_embeddings("pretrained", embeddings, data), seconds)
    if args.chips:
        from facecore.embedding.keras_file import KerasFileEmbedder

        with tempfile.TemporaryDirectory() as scratch:
            path = save_model(export_for_chips(runs["batch-all"].model), Path(scratch) / "model.keras")
            chip_pipeline = FacePipeline(PipelineConfig(detector="hog"), embedder=KerasFileEmbedder(path=str(path)))
            (chip_vectors, _), seconds = timed(
                lambda: chip_pipeline.embed_primary_faces(list(data.test.paths))
            )
        results["triplet batch-all, as keras-file on pipeline chips"] = (
            evaluate_embeddings("chips", chip_vectors, data),
            seconds,
        )
    report["models"] = {
        name: {
            "seconds": round(seconds, 1),
            "auc": round(result.auc, 3),
            "accuracy": round(result.accuracy, 3),
        }
        for name, (result, seconds) in results.items()
    }
    report["load_average_after"] = os.getloadavg()[0]
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
