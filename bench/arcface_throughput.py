"""ArcFace throughput (Keras port on TensorFlow and JAX, onnxruntime) vs dlib-keras; SCRFD timings.

    python bench/arcface_throughput.py --data-home "$FACECORE_LFW_HOME" [--photos samples] [--jax-python PY]
    python bench/arcface_throughput.py --faces 4 --batch-size 2 --seconds 0.2 --rounds 1 --repeats 1   # quick

Embedders: faces/s at batch 32 on the same real LFW faces (SCRFD landmarks; 112x112 ArcFace
chips, and 150x150 chips of the same faces for dlib-keras), each timed for ``--seconds`` after a
warm-up, taking turns for ``--rounds`` rounds (median and range reported: the machine is shared).
JAX runs in a subprocess with ``KERAS_BACKEND=jax`` (``--jax-python``: an interpreter with jax). Detectors: median ms of ``detect`` (median over rounds of the median of ``--repeats`` calls) on a 250x250 LFW photo and on
``faces_group/obama_and_biden.jpg`` (of ``--photos``, default ``samples/``) scaled to 1024x1024
(as bench/stage_timings.py does), for SCRFD (640 square canvas, and ``square=False``), HOG and MTCNN
with their defaults.
Every figure is printed with the CPU's AVX flags and the 1-minute load average when measured.
LFW is ``--data-home``, else ``$FACECORE_LFW_HOME``, else the bundled mini LFW (whose first photo
stands in for ``Aaron_Peirsol_0001.jpg``).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import _data
import _repo_path  # noqa: F401  (puts the repo root on sys.path)
import numpy as np


def cpu_flags() -> str:
    """'avx2 avx512f ...' as found in /proc/cpuinfo (empty where it cannot be read)."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return "unknown"
    flags = next((line.split(":", 1)[1].split() for line in text.splitlines() if line.startswith("flags")), [])
    wanted = [f for f in ("avx2", "avx512f", "avx512_vnni", "avx512_bf16", "amx_tile") if f in flags]
    return " ".join(wanted) or "no avx2"


def faces_per_second(embed: Callable[[np.ndarray], object], chips: np.ndarray, batch: int, seconds: float) -> dict:
    embed(chips[:batch])  # warm-up: tracing / compilation
    done, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        for start in range(0, len(chips) - batch + 1, batch):
            embed(chips[start : start + batch])
            done += batch
    rate = done / (time.perf_counter() - started)
    return {"faces_per_s": round(rate, 1), "load1": round(os.getloadavg()[0], 2), "cpu": cpu_flags()}


def median_ms(call: Callable[[], object], repeats: int) -> dict:
    call()
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        call()
        times.append((time.perf_counter() - started) * 1000)
    return {"ms": round(statistics.median(times), 1), "load1": round(os.getloadavg()[0], 2), "cpu": cpu_flags()}


def lfw_faces(data_home: Path, count: int):
    """(photo, SCRFD face) for the first photo of every 20th LFW person with a face found."""
    from facecore.detection.scrfd import ScrfdDetector
    from facecore.images import load_image

    detector = ScrfdDetector()
    root = data_home / "lfw_home" / "lfw_funneled"
    found = []
    for person in sorted(p for p in root.iterdir() if p.is_dir())[::20]:
        photo = load_image(sorted(person.glob("*.jpg"))[0])
        if faces := detector.detect(photo):
            found.append((photo, faces[0]))
        if len(found) == count:
            return found
    raise SystemExit(f"only {len(found)} LFW faces found under {root}")


def summarize(runs: list[dict]) -> dict:
    """Median faces/s over rounds, the range, and the load average seen in each round."""
    rates = [r["faces_per_s"] for r in runs]
    return {
        "faces_per_s_median": round(statistics.median(rates), 1),
        "range": [min(rates), max(rates)],
        "load1": [r["load1"] for r in runs],
        "cpu": cpu_flags(),
    }


def run_jax(python: str, chips: np.ndarray, batch: int, seconds: float, rounds: int) -> tuple[list, np.ndarray]:
    """The Keras port on JAX (CPU) in a subprocess: throughput and its vectors for the first batch."""
    with tempfile.TemporaryDirectory() as folder:
        np.save(Path(folder) / "chips.npy", chips)
        env = {**os.environ, "KERAS_BACKEND": "jax", "JAX_PLATFORMS": "cpu"}
        code = (
            "import sys, json, numpy as np; sys.path.insert(0, sys.argv[1]); sys.path.insert(0, sys.argv[2]);"
            "import arcface_throughput as b; from facecore.embedding.arcface import ArcFaceKerasEmbedder;"
            "chips = np.load(sys.argv[3]); e = ArcFaceKerasEmbedder(batch_size=int(sys.argv[4]));"
            "r = [b.faces_per_second(e._embed, chips, int(sys.argv[4]), float(sys.argv[5])) for _ in range(int(sys.argv[6]))];"
            "np.save(sys.argv[3] + '.out.npy', e._embed(chips[:int(sys.argv[4])])); print(json.dumps(r))"
        )
        here = Path(__file__).resolve().parent
        args = [str(here.parent), str(here), str(Path(folder) / "chips.npy"), str(batch), str(seconds), str(rounds)]
        done = subprocess.run([python, "-c", code, *args], env=env, capture_output=True, text=True, check=False)
        if done.returncode:
            raise RuntimeError(f"the JAX run failed:\n{done.stderr[-2000:]}")
        return json.loads(done.stdout.strip().splitlines()[-1]), np.load(Path(folder) / "chips.npy.out.npy")


def parity(a: np.ndarray, b: np.ndarray) -> str:
    cos = np.sum(a * b, axis=1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))
    return f"min cosine {cos.min():.7f}, max abs diff {np.abs(a - b).max():.2e} ({len(a)} faces)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-home", type=Path, default=None, help=_data.LFW_HOME_HELP)
    parser.add_argument("--photos", type=Path, default=None, help=_data.PHOTOS_HELP)
    parser.add_argument("--faces", type=int, default=128)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=4.0, help="timed seconds per embedder and round")
    parser.add_argument("--rounds", type=int, default=3, help="turns each embedder gets (median reported)")
    parser.add_argument("--repeats", type=int, default=7, help="timed calls per detector and photo")
    parser.add_argument("--jax-python", default=None, help="python with jax installed (skip JAX if absent)")
    parser.add_argument("--skip", nargs="*", default=[], choices=["embedders", "detectors"])
    args = parser.parse_args()
    data_home, photos_dir = _data.lfw_home(args.data_home), _data.photos_dir(args.photos)
    rows: dict[str, object] = {"cpu_count": os.cpu_count(), "cpu_flags": cpu_flags()}

    if "embedders" not in args.skip:
        from facecore.alignment import align_face
        from facecore.embedding import get_embedder
        from facecore.embedding.arcface import ArcFaceKerasEmbedder, ArcFaceOnnxEmbedder

        faces = lfw_faces(data_home, args.faces)
        chips = np.stack([align_face(photo, face, chip="arcface112").chip for photo, face in faces])
        dlib_chips = np.stack([align_face(photo, face).chip for photo, face in faces])
        batch = args.batch_size
        onnx = ArcFaceOnnxEmbedder(batch_size=batch, threads=2)
        keras_tf = ArcFaceKerasEmbedder(batch_size=batch)
        dlib = get_embedder("dlib-keras")
        contenders = {  # measured in turns, round after round, so load changes hit all alike
            "arcface_onnxruntime_2_threads": (onnx._embed, chips),
            "arcface_onnxruntime_2_threads_no_spinning": (
                ArcFaceOnnxEmbedder(batch_size=batch, threads=2, spinning=False)._embed, chips
            ),
            "arcface_keras_tensorflow": (keras_tf._embed, chips),
            "dlib_keras_tensorflow": (dlib._embed, dlib_chips),
        }
        results: dict[str, list[dict]] = {name: [] for name in contenders}
        for _ in range(args.rounds):
            for name, (embed, data) in contenders.items():
                results[name].append(faces_per_second(embed, data, batch, args.seconds))
        rows.update({name: summarize(runs) for name, runs in results.items()})
        reference = onnx._embed(chips)
        rows["parity_tensorflow_vs_onnx"] = parity(keras_tf._embed(chips), reference)
        if args.jax_python:
            jax_runs, jax_vectors = run_jax(args.jax_python, chips, batch, args.seconds, args.rounds)
            rows["arcface_keras_jax"] = summarize(jax_runs)
            rows["parity_jax_vs_onnx"] = parity(jax_vectors, reference[:batch])
        for key, value in rows.items():
            print(f"{key}: {value}", flush=True)

    if "detectors" not in args.skip:
        from PIL import Image

        from facecore.detection import get_detector
        from facecore.images import load_image

        lfw = load_image(_data.reference_lfw_photo(data_home))
        group = Image.open(photos_dir / "faces_group/obama_and_biden.jpg").convert("RGB")
        photos = {"250x250": lfw, "1024x1024": np.asarray(group.resize((1024, 1024), Image.Resampling.LANCZOS))}
        variants = [("scrfd", {}), ("scrfd", {"square": False}), ("hog", {}), ("mtcnn", {})]
        detectors = {
            name + "".join(f"_{key}={value}" for key, value in options.items()): get_detector(name, **options)
            for name, options in variants
        }
        timings: dict[str, list[dict]] = {}
        for _ in range(args.rounds):  # detectors take turns, as the embedders do
            for name, detector in detectors.items():
                for label, photo in photos.items():
                    result = median_ms(lambda d=detector, p=photo: d.detect(p), args.repeats)
                    timings.setdefault(f"detect_{name}_{label}", []).append(result)
        for key, runs in timings.items():
            name, label = key.rsplit("_", 1)
            values = [r["ms"] for r in runs]
            rows[key] = {
                "ms_median": round(statistics.median(values), 1),
                "range": [min(values), max(values)],
                "load1": [r["load1"] for r in runs],
                "faces": len(detectors[name.removeprefix("detect_")].detect(photos[label])),
                "cpu": cpu_flags(),
            }
            print(f"{key}: {rows[key]}", flush=True)
    print(json.dumps(rows))


if __name__ == "__main__":
    sys.exit(main())
