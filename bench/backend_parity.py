"""Same vectors on every Keras backend: save reference embeddings here, check them elsewhere.

    python bench/backend_parity.py --save ref.npz --data-home "$FACECORE_LFW_HOME"   # TensorFlow, CPU
    KERAS_BACKEND=jax python bench/backend_parity.py --check ref.npz --weights PATH  # e.g. on a GPU box
    python bench/backend_parity.py --save ref.npz --count 2                        # a quick run

The reference file holds real LFW chips (made by facecore's pipeline) and their embeddings; LFW is
``--data-home``, else ``$FACECORE_LFW_HOME``, else the bundled mini LFW.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import _data
import _repo_path  # noqa: F401  (puts the repo root on sys.path)
import numpy as np


def lfw_chips(data_home: Path, count: int) -> np.ndarray:
    from facecore.alignment import align_face
    from facecore.detection import get_detector
    from facecore.evaluation.datasets import lfw_people
    from facecore.images import load_image

    detector = get_detector("hog")
    chips = []
    for photos in list(lfw_people(data_home).values())[::97]:
        image = load_image(photos[0])
        faces = detector.detect(image)
        if faces:
            chips.append(align_face(image, faces[0]).chip)
        if len(chips) == count:
            break
    return np.stack(chips)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    action = parser.add_mutually_exclusive_group(required=True)
    action.add_argument("--save", type=Path)
    action.add_argument("--check", type=Path)
    parser.add_argument("--data-home", type=Path, default=None, help=_data.LFW_HOME_HELP)
    parser.add_argument("--count", type=int, default=32)
    parser.add_argument("--weights", default=None)
    args = parser.parse_args()

    import keras

    from facecore.embedding.dlib_resnet import load_keras_model

    model = load_keras_model(args.weights)
    if args.save:
        chips = lfw_chips(_data.lfw_home(args.data_home), args.count)
        vectors = np.asarray(model.predict_on_batch(chips.astype(np.float32)))
        np.savez_compressed(args.save, chips=chips, vectors=vectors, backend=keras.backend.backend())
        print(f"saved {len(chips)} chips and their {keras.backend.backend()} embeddings to {args.save}")
        return
    reference = np.load(args.check)
    vectors = np.asarray(model.predict_on_batch(reference["chips"].astype(np.float32)))
    expected = reference["vectors"]
    cosine = (vectors * expected).sum(1) / np.linalg.norm(vectors, axis=1) / np.linalg.norm(expected, axis=1)
    report = {
        "backend": keras.backend.backend(),
        "reference_backend": str(reference["backend"]),
        "faces": len(vectors),
        "min_cosine": float(cosine.min()),
        "max_abs_diff": float(np.abs(vectors - expected).max()),
    }
    print(json.dumps(report))


if __name__ == "__main__":
    main()
