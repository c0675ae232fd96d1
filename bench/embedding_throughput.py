"""Embedding throughput: the Keras port of dlib's ResNet vs dlib itself, same chips, same run.

    python bench/embedding_throughput.py                       # CPU: Keras (TensorFlow) and dlib
    python bench/embedding_throughput.py --chips 8 --batch-size 4 --seconds 0.2   # a quick run
    KERAS_BACKEND=jax python bench/embedding_throughput.py --skip-dlib --weights PATH   # a GPU box

Throughput does not depend on what the chips show, so fixed random chips are used; the
embedding equivalence itself is tested in tests/test_embedding.py on real LFW faces.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time

import _repo_path  # noqa: F401  (puts the repo root on sys.path)
import numpy as np


def faces_per_second(embed, chips: np.ndarray, batch_size: int, min_seconds: float) -> float:
    embed(chips[:batch_size])  # warm-up: graph tracing / compilation
    done, started = 0, time.perf_counter()
    while time.perf_counter() - started < min_seconds:
        for start in range(0, len(chips), batch_size):
            embed(chips[start : start + batch_size])
            done += len(chips[start : start + batch_size])
    return done / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--chips", type=int, default=128)
    parser.add_argument("--seconds", type=float, default=10.0, help="minimum timed seconds per embedder")
    parser.add_argument("--weights", default=None, help="dlib .dat file (default: face_recognition_models')")
    parser.add_argument("--skip-dlib", action="store_true", help="only the Keras port (e.g. where dlib is absent)")
    args = parser.parse_args()

    import keras

    from facecore.embedding import keras_gpus
    from facecore.embedding.dlib_resnet import load_keras_model

    chips = np.random.default_rng(0).integers(0, 256, (args.chips, 150, 150, 3), dtype=np.uint8)
    model = load_keras_model(args.weights)
    keras_fps = faces_per_second(
        lambda batch: np.asarray(model.predict_on_batch(batch.astype(np.float32))),
        chips, args.batch_size, args.seconds,
    )
    report = {
        "backend": keras.backend.backend(),
        "gpus": keras_gpus(),
        "cpu_count": os.cpu_count(),
        "machine": platform.processor() or platform.machine(),
        "batch_size": args.batch_size,
        "keras_faces_per_s": round(keras_fps, 1),
    }
    print(f"Keras port ({report['backend']}, {'GPU ' + str(report['gpus']) if report['gpus'] else 'CPU'}): "
          f"{keras_fps:.1f} faces/s at batch {args.batch_size}")
    if not args.skip_dlib:
        from facecore.embedding.dlib_reference import DlibReferenceEmbedder

        reference = DlibReferenceEmbedder()
        dlib_fps = faces_per_second(reference.embed, chips[: args.batch_size], args.batch_size, args.seconds)
        report["dlib_faces_per_s"] = round(dlib_fps, 1)
        report["speedup"] = round(keras_fps / dlib_fps, 1)
        print(f"dlib face_recognition_model_v1 (CPU): {dlib_fps:.1f} faces/s at batch {args.batch_size}")
        print(f"speed-up: {keras_fps / dlib_fps:.1f}x")
    print(json.dumps(report))


if __name__ == "__main__":
    main()
