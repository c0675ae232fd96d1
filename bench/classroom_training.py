"""How long the Classroom's "Train your own" takes on a CPU, and what the models reach on held-out people.

    python bench/classroom_training.py [--data-home "$FACECORE_LFW_HOME"] [--epochs 12] [--chips]
    python bench/classroom_training.py --choose-crop 0.6,0.8,0.9,1.0   # how CHIP_CROP_FRACTION was chosen

Runs what the page runs with its default settings: LFW people with 10+ photos (at most 20 each, 32x32
grey crops; 158 people, 2,541 crops), 25% of the people held out, 600 fixed held-out pairs; the triplet
model (batch-all and semi-hard, margin 0.2, 64-D), the twin network, GaussianNB on raw pixels, and the
pretrained dlib model (HOG; the held-out photos embedded without a cache, i.e. the cold cost). Times each
step (wall clock) and prints held-out AUC and 5-fold accuracy per model.

``--chips`` also embeds the held-out photos through the real pipeline (HOG, aligned 150x150 chips) with
the exported batch-all model loaded back as a ``keras-file`` embedder, to show the bring-your-own path
keeps most of what the model learned on LFW crops.

``--choose-crop F1,F2,...`` chooses ``facecore.classroom.data.CHIP_CROP_FRACTION`` (the share of a pipeline
chip fed to a model trained on LFW crops) without touching the held-out pairs: the *training* people are
split again (25% of them as validation people, 400 validation pairs, seed 1), a batch-all model is trained
on the rest, and each fraction is scored (AUC) on the validation pairs through the real pipeline's chips
(HOG, 150x150). The best is *chosen* there; then the model trained on all training people is *reported*
on the 600 held-out pairs at every fraction, the chosen one marked. ``--limit-people N`` keeps the first N
people (a quick run).

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
import numpy as np

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


def chips_of(paths: list[Path]) -> np.ndarray:
    """The pipeline's 150x150 chip (HOG, dlib's 5 points) of each photo's primary face, detected once."""
    from facecore.alignment import align_face
    from facecore.detection import get_detector
    from facecore.images import load_image
    from facecore.pipeline import center_box_face, face_nearest_center

    detector = get_detector("hog")
    chips = []
    for path in paths:
        image = load_image(path)
        face = face_nearest_center(detector.detect(image), image.shape) or center_box_face(image.shape)
        chips.append(align_face(image, face, chip="dlib150").chip)
    return np.stack(chips)


def auc_at_fractions(model, chips: np.ndarray, data, fractions: list[float]) -> dict[str, float]:
    """AUC on ``data``'s pairs of ``model`` exported for chips at each crop fraction."""
    scores = {}
    for fraction in fractions:
        exported = export_for_chips(model, crop_fraction=fraction)
        vectors = np.asarray(exported.predict(chips.astype(np.float32), batch_size=64, verbose=0))
        scores[f"{fraction:g}"] = round(evaluate_embeddings(f"crop {fraction:g}", vectors, data).auc, 4)
    return scores


def choose_crop(data, fractions: list[float], epochs: int, full_model) -> dict:
    """Choose the fraction on validation people split from the training people; report on held-out pairs."""
    validation = prepare_data(data.train, held_out=0.25, n_pairs=400, seed=1)
    run = train_triplet_model(validation, mining="batch-all", epochs=epochs)
    chosen_on = auc_at_fractions(run.model, chips_of(list(validation.test.paths)), validation, fractions)
    chosen = max(chosen_on, key=lambda f: (chosen_on[f], -abs(float(f) - 1.0)))
    reported = auc_at_fractions(full_model, chips_of(list(data.test.paths)), data, fractions)
    return {
        "validation": validation.describe(),
        "validation_auc_chooses": chosen_on,
        "chosen_fraction": float(chosen),
        "held_out_auc_reports": reported,
        "held_out_auc_at_chosen": reported[chosen],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-home", type=Path, default=default_lfw_home())
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument("--chips", action="store_true")
    parser.add_argument("--choose-crop", default="", help="comma-separated chip crop fractions to choose from")
    parser.add_argument("--limit-people", type=int, default=None, help="keep the first N people (quick run)")
    args = parser.parse_args()
    fractions = [float(f) for f in args.choose_crop.split(",") if f.strip()]

    report: dict = {"cpus": os.cpu_count(), "load_average_before": os.getloadavg()[0], "epochs": args.epochs}
    crops, report["load_crops_s"] = timed(
        lambda: load_lfw_crops(args.data_home, min_images=10, max_images=20, max_people=args.limit_people)
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
    if fractions:
        report["chip_crop_fraction"] = choose_crop(data, fractions, args.epochs, runs["batch-all"].model)
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
