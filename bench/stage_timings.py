"""Per-stage timings of the pipeline (decode, detect per detector, align, embed), warm.

    python bench/stage_timings.py --data-home "$FACECORE_LFW_HOME" [--photos samples]
    python bench/stage_timings.py --repeats 1                     # a quick run

Uses a real LFW photo (250x250: ``Aaron_Peirsol_0001.jpg``, or the first photo of a smaller LFW
such as the bundled one) and a real group photo (``faces_group/obama_and_biden.jpg``) scaled to
1024x1024, and prints the median of ``--repeats`` runs per stage in milliseconds.
"""

from __future__ import annotations

import argparse
import io
import json
import statistics
import time
from pathlib import Path

import _data
import _repo_path  # noqa: F401  (puts the repo root on sys.path)
import numpy as np
from PIL import Image

from facecore.alignment import align_face
from facecore.detection import DETECTORS, get_detector
from facecore.embedding import get_embedder
from facecore.images import decode_image


def median_ms(action, repeats: int) -> float:
    action()  # warm-up
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        action()
        times.append(time.perf_counter() - started)
    return 1000 * statistics.median(times)


def jpeg_bytes(path: Path, size: int | None) -> bytes:
    image = Image.open(path).convert("RGB")
    if size is not None:
        image = image.resize((size, size), Image.Resampling.LANCZOS)
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=92)
    return buffer.getvalue()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-home", type=Path, default=None, help=_data.LFW_HOME_HELP)
    parser.add_argument("--photos", type=Path, default=None, help=_data.PHOTOS_HELP)
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()

    lfw_photo = _data.reference_lfw_photo(_data.lfw_home(args.data_home))
    group_photo = _data.photos_dir(args.photos) / "faces_group/obama_and_biden.jpg"
    samples = {"250x250": jpeg_bytes(lfw_photo, None), "1024x1024": jpeg_bytes(group_photo, 1024)}
    embedder = get_embedder("dlib-keras")
    rows = []
    for label, data in samples.items():
        image = decode_image(data)
        row = {"image": label, "decode_ms": median_ms(lambda d=data: decode_image(d), args.repeats)}
        for name in DETECTORS.names():
            detector = get_detector(name)
            row[f"detect_{name}_ms"] = median_ms(lambda det=detector, im=image: det.detect(im), args.repeats)
        faces = get_detector("hog").detect(image)
        face = faces[0]
        row["faces_hog"] = len(faces)
        row["align_dlib5_ms"] = median_ms(lambda im=image, f=face: align_face(im, f), args.repeats)
        mtcnn_faces = get_detector("mtcnn").detect(image)
        if mtcnn_faces:
            row["align_mtcnn5_ms"] = median_ms(lambda im=image, f=mtcnn_faces[0]: align_face(im, f), args.repeats)
        chip = align_face(image, face).chip[None]
        row["embed_1_face_ms"] = median_ms(lambda c=chip: embedder.embed(c), args.repeats)
        batch = np.repeat(chip, 32, axis=0)
        row["embed_per_face_at_batch_32_ms"] = median_ms(lambda b=batch: embedder.embed(b), args.repeats) / 32
        rows.append({k: round(v, 2) if isinstance(v, float) else v for k, v in row.items()})
    for row in rows:
        print(" | ".join(f"{k}={v}" for k, v in row.items()))
    print(json.dumps(rows))


if __name__ == "__main__":
    main()
