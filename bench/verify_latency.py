"""The engine's 1:1 verify of two photos, in milliseconds: bytes -> decode, detect, align, embed -> decision.

    python bench/verify_latency.py [--photos samples] [--megapixels 1.0] [--rounds 5]
    python bench/verify_latency.py --config scrfd/arcface-keras --config scrfd/arcface-keras/spinning
    python bench/verify_latency.py --rounds 1 --pairs 2                       # a quick run

Each of the ``faces_small`` photos (of ``--photos``, default the demo pack in ``samples/``) is scaled
to ``--megapixels`` (Lanczos, JPEG quality 90), and the photos are paired off (disjoint pairs; same
and different people). One verify is what the API's ``POST /verify`` and the dashboard's Verify do
for two new photos: both photos' bytes through ``FacePipeline.process_bytes`` (no cache), the largest
face of each, then :func:`facecore.verify` with the configuration's calibrated threshold. The
configurations (``detector/embedder[/flip][/spinning]``; ``spinning`` lets SCRFD's onnxruntime threads
busy-wait) take turns pair by pair for ``--rounds`` rounds, so they see the same machine; the models are
loaded and warmed first. The detectors see the whole photo (``max_side`` unset), as the API's issue
asks for; ``--max-side 800`` gives the dashboard's setting.
Reported: median, 90th percentile and max per configuration, with the CPU's AVX flags and the load.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import statistics
import time
from pathlib import Path

import _data
import _repo_path  # noqa: F401  (puts the repo root on sys.path)
import numpy as np
from arcface_throughput import cpu_flags
from PIL import Image

DEFAULT_CONFIGS = ("scrfd/arcface-keras", "scrfd/arcface-keras/spinning", "hog/dlib-keras", "mtcnn/dlib-keras")


def scaled_jpeg(path: Path, megapixels: float) -> bytes:
    """The photo resized to about ``megapixels`` million pixels, as JPEG (quality 90)."""
    image = Image.open(path).convert("RGB")
    factor = (megapixels * 1e6 / (image.width * image.height)) ** 0.5
    image = image.resize((round(image.width * factor), round(image.height * factor)), Image.Resampling.LANCZOS)
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=90)
    return buffer.getvalue()


def photo_pairs(photos_dir: Path, megapixels: float, limit: int | None) -> list[tuple[bytes, bytes, bool]]:
    """Disjoint pairs of the scaled photos: ``(bytes_a, bytes_b, same_person)``."""
    from facecore.evaluation.datasets import image_folder

    people = image_folder(photos_dir / "faces_small")
    photos = [(person, path) for person, paths in people.items() for path in paths]
    pairs = [
        (scaled_jpeg(a, megapixels), scaled_jpeg(b, megapixels), person_a == person_b)
        for (person_a, a), (person_b, b) in zip(photos[0::2], photos[1::2], strict=False)
    ]
    return pairs[:limit] if limit else pairs


def build(text: str, max_side: int | None):
    """``(pipeline, threshold)`` for ``detector/embedder[/flip][/spinning]``."""
    from facecore.config import PipelineConfig
    from facecore.detection import get_detector
    from facecore.pipeline import FacePipeline
    from facecore.verification import default_threshold

    detector, embedder, *options = text.split("/")
    unknown = set(options) - {"flip", "spinning"}
    if unknown:
        raise SystemExit(f"unknown option(s) {sorted(unknown)} in {text!r}; choose from flip, spinning")
    config = PipelineConfig(detector=detector, embedder=embedder, flip_tta="flip" in options, max_side=max_side)
    found = None
    if "spinning" in options:
        found = get_detector(detector, spinning=True, **config.detector_options)
    return FacePipeline(config, detector=found), default_threshold(config, "euclidean").value


def verify_ms(pipeline, threshold: float, a: bytes, b: bytes) -> tuple[float, bool | None]:
    """Milliseconds for one verify, and its decision (None when a photo has no face)."""
    import facecore

    started = time.perf_counter()
    faces_a, faces_b = pipeline.process_bytes(a), pipeline.process_bytes(b)
    same = facecore.verify(faces_a[0], faces_b[0], threshold=threshold).same if faces_a and faces_b else None
    return (time.perf_counter() - started) * 1000, same


def measure(configs: list[str], pairs: list[tuple[bytes, bytes, bool]], rounds: int, max_side: int | None) -> dict:
    pipelines = {text: build(text, max_side) for text in configs}
    for pipeline, threshold in pipelines.values():  # load and warm every model
        verify_ms(pipeline, threshold, pairs[0][0], pairs[0][1])
    timings: dict[str, list[float]] = {text: [] for text in configs}
    right: dict[str, int] = dict.fromkeys(configs, 0)
    load = []
    for _ in range(rounds):
        load.append(os.getloadavg()[0])
        for a, b, same in pairs:
            for text, (pipeline, threshold) in pipelines.items():
                ms, said = verify_ms(pipeline, threshold, a, b)
                timings[text].append(ms)
                right[text] += said == same
    return {
        text: {
            "median_ms": round(statistics.median(values), 1),
            "p90_ms": round(float(np.percentile(values, 90)), 1),
            "max_ms": round(max(values), 1),
            "verifies": len(values),
            "right_decisions": right[text],
        }
        for text, values in timings.items()
    } | {"load_average_1min": [min(load), max(load)]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--photos", type=Path, default=None, help=_data.PHOTOS_HELP)
    parser.add_argument("--config", action="append", default=None, help="detector/embedder[/flip][/spinning]")
    parser.add_argument("--megapixels", type=float, default=1.0)
    parser.add_argument("--pairs", type=int, default=None, help="at most this many pairs (default: all)")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--max-side", type=int, default=None, help="shrink photos for detection (dashboard: 800)")
    args = parser.parse_args()
    pairs = photo_pairs(_data.photos_dir(args.photos), args.megapixels, args.pairs)
    result = measure(list(args.config or DEFAULT_CONFIGS), pairs, args.rounds, args.max_side)
    result.update(
        megapixels=args.megapixels, pairs=len(pairs), rounds=args.rounds, max_side=args.max_side,
        cpu_count=os.cpu_count(), cpu_flags=cpu_flags(),
    )  # fmt: skip
    for text, row in result.items():
        if isinstance(row, dict):
            print(
                f"{text:32s} median {row['median_ms']:7.1f} ms  p90 {row['p90_ms']:7.1f}  max {row['max_ms']:7.1f}"
                f"  ({row['verifies']} verifies, {row['right_decisions']} right)"
            )
    print(json.dumps(result))


if __name__ == "__main__":
    main()
