"""CPU runtimes of both models (TensorFlow, JAX, onnxruntime) against dlib itself; SCRFD timings.

    python bench/arcface_throughput.py --data-home "$FACECORE_LFW_HOME" [--photos samples] [--jax-python PY]
    python bench/arcface_throughput.py ... --isa avx2      # TensorFlow and JAX capped at AVX2
    python bench/arcface_throughput.py --faces 4 --batch-size 2 --seconds 0.2 --rounds 1 --repeats 1   # quick

Embedders: faces/s at batch 32 on the same real LFW faces (SCRFD landmarks; 112x112 ArcFace
chips, and 150x150 chips of the same faces for dlib's ResNet), each timed for ``--seconds`` after a
warm-up, taking turns for ``--rounds`` rounds (median and range reported: the machine is shared).
Each model runs on the three CPU runtimes: its Keras port on TensorFlow, the same port on JAX (XLA;
in a subprocess with ``KERAS_BACKEND=jax``, only with ``--jax-python``: an interpreter with jax), and
onnxruntime at 2 threads with and without spinning (ArcFace: the original ONNX file; dlib: the
``dlib-onnx`` graph built from the same weights). dlib's own ``compute_face_descriptor`` is timed too
(one batch of chips over and over), and every embedder row carries ``x_dlib``, its ratio to that.
Parity: ArcFace's vectors against onnxruntime's, dlib's ResNet's against dlib's own (the oracle).
``--isa avx2`` caps the instruction set where the runtime allows it: ``ONEDNN_MAX_CPU_ISA=AVX2``
for TensorFlow (oneDNN) and ``XLA_FLAGS=--xla_cpu_max_isa=AVX2`` for JAX, set before either is
imported (in this process, which the JAX subprocess inherits). onnxruntime and dlib cannot be capped
(onnxruntime's MLAS picks its kernels by CPUID at run time; only a build of its own can leave AVX-512
out): their rows say ``"isa": "not capped"`` (TensorFlow and JAX rows say ``"AVX2"``; ``"native"`` without
``--isa``). MTCNN (TensorFlow) is capped in the detector rows too.
Detectors: median ms of ``detect`` (median over rounds of the median of ``--repeats`` calls) on a 250x250 LFW photo and on
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


#: The environment that caps each runtime's instruction set (``--isa``); set before the runtime is imported.
ISA_CAPS = {"avx2": {"ONEDNN_MAX_CPU_ISA": "AVX2", "XLA_FLAGS": "--xla_cpu_max_isa=AVX2"}}


def cap_isa(isa: str | None) -> None:
    """Cap TensorFlow (oneDNN) and JAX (XLA) at ``isa``: only before either is imported."""
    if isa is None:
        return
    loaded = [m for m in ("tensorflow", "keras", "jax") if m in sys.modules]
    if loaded:
        raise RuntimeError(f"--isa must be set before {loaded} is imported")
    for key, value in ISA_CAPS[isa].items():
        os.environ[key] = f"{os.environ[key]} {value}" if key == "XLA_FLAGS" and os.environ.get(key) else value


def isa_of(row: str, isa: str | None) -> str:
    """The instruction set a row ran with: capped for TensorFlow and JAX (MTCNN too), never for the rest."""
    if isa is None:
        return "native"
    return isa.upper() if any(k in row for k in ("tensorflow", "jax", "mtcnn")) else "not capped"


def summarize(runs: list[dict]) -> dict:
    """Median faces/s over rounds, the range, and the load average seen in each round."""
    rates = [r["faces_per_s"] for r in runs]
    return {
        "faces_per_s_median": round(statistics.median(rates), 1),
        "range": [min(rates), max(rates)],
        "load1": [r["load1"] for r in runs],
        "cpu": cpu_flags(),
    }


def run_jax(
    python: str, embedder: str, chips: np.ndarray, batch: int, seconds: float, rounds: int
) -> tuple[list, np.ndarray]:
    """``embedder`` (a Keras port) on JAX (CPU) in a subprocess: throughput and its vectors for the first batch.

    The subprocess inherits this process's environment, ``--isa``'s ``XLA_FLAGS`` included.
    """
    with tempfile.TemporaryDirectory() as folder:
        np.save(Path(folder) / "chips.npy", chips)
        env = {**os.environ, "KERAS_BACKEND": "jax", "JAX_PLATFORMS": "cpu"}
        code = (
            "import sys, json, numpy as np; sys.path.insert(0, sys.argv[1]); sys.path.insert(0, sys.argv[2]);"
            "import arcface_throughput as b; from facecore.embedding import get_embedder;"
            "chips = np.load(sys.argv[3]); e = get_embedder(sys.argv[7], batch_size=int(sys.argv[4]));"
            "r = [b.faces_per_second(e._embed, chips, int(sys.argv[4]), float(sys.argv[5])) for _ in range(int(sys.argv[6]))];"
            "np.save(sys.argv[3] + '.out.npy', e._embed(chips[:int(sys.argv[4])])); print(json.dumps(r))"
        )
        here = Path(__file__).resolve().parent
        chips_file = str(Path(folder) / "chips.npy")
        args = [str(here.parent), str(here), chips_file, str(batch), str(seconds), str(rounds), embedder]
        done = subprocess.run([python, "-c", code, *args], env=env, capture_output=True, text=True, check=False)
        if done.returncode:
            raise RuntimeError(f"the JAX run of {embedder} failed:\n{done.stderr[-2000:]}")
        return json.loads(done.stdout.strip().splitlines()[-1]), np.load(Path(folder) / "chips.npy.out.npy")


def parity(a: np.ndarray, b: np.ndarray) -> str:
    a, b = a.astype(np.float64), b.astype(np.float64)  # a float32 cosine shows its own rounding (~1e-7)
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
    parser.add_argument(
        "--isa", choices=sorted(ISA_CAPS), default=None, help="cap TensorFlow and JAX at this instruction set "
        "(onnxruntime and dlib cannot be capped: their rows say 'not capped')",
    )  # fmt: skip
    args = parser.parse_args()
    cap_isa(args.isa)  # before anything imports TensorFlow
    data_home, photos_dir = _data.lfw_home(args.data_home), _data.photos_dir(args.photos)
    rows: dict[str, object] = {"cpu_count": os.cpu_count(), "cpu_flags": cpu_flags(), "isa": args.isa or "native"}
    if args.isa:
        rows["isa_caps"] = {**ISA_CAPS[args.isa], "onnxruntime": "not capped", "dlib": "not capped"}

    if "embedders" not in args.skip:
        from facecore.alignment import align_face
        from facecore.embedding import get_embedder
        from facecore.embedding.arcface import ArcFaceKerasEmbedder, ArcFaceOnnxEmbedder
        from facecore.embedding.dlib_onnx import DlibOnnxEmbedder

        faces = lfw_faces(data_home, args.faces)
        chips = np.stack([align_face(photo, face, chip="arcface112").chip for photo, face in faces])
        dlib_chips = np.stack([align_face(photo, face).chip for photo, face in faces])
        batch = args.batch_size
        onnx = ArcFaceOnnxEmbedder(batch_size=batch, threads=2)
        keras_tf = ArcFaceKerasEmbedder(batch_size=batch)
        dlib_tf = get_embedder("dlib-keras", batch_size=batch)
        dlib_onnx = DlibOnnxEmbedder(batch_size=batch, threads=2)
        dlib_own = get_embedder("dlib")
        contenders = {  # measured in turns, round after round, so load changes hit all alike
            "arcface_onnxruntime_2_threads": (onnx._embed, chips),
            "arcface_onnxruntime_2_threads_no_spinning": (
                ArcFaceOnnxEmbedder(batch_size=batch, threads=2, spinning=False)._embed, chips
            ),
            "arcface_keras_tensorflow": (keras_tf._embed, chips),
            "dlib_keras_tensorflow": (dlib_tf._embed, dlib_chips),
            "dlib_onnxruntime_2_threads": (dlib_onnx._embed, dlib_chips),
            "dlib_onnxruntime_2_threads_no_spinning": (
                DlibOnnxEmbedder(batch_size=batch, threads=2, spinning=False)._embed, dlib_chips
            ),
            # dlib's own is slow: one batch over and over, so each turn stays near --seconds.
            "dlib_compute_face_descriptor": (dlib_own._embed, dlib_chips[:batch]),
        }
        results: dict[str, list[dict]] = {name: [] for name in contenders}
        for _ in range(args.rounds):
            for name, (embed, data) in contenders.items():
                results[name].append(faces_per_second(embed, data, batch, args.seconds))
        embedder_rows = {name: summarize(runs) for name, runs in results.items()}
        reference = onnx._embed(chips)
        oracle = dlib_own._embed(dlib_chips)
        parities = {
            "parity_tensorflow_vs_onnx": parity(keras_tf._embed(chips), reference),
            "parity_dlib_tensorflow_vs_dlib": parity(dlib_tf._embed(dlib_chips), oracle),
            "parity_dlib_onnxruntime_vs_dlib": parity(dlib_onnx._embed(dlib_chips), oracle),
        }
        if args.jax_python:
            for model, data, versus, key in (
                ("arcface-keras", chips, reference, "parity_jax_vs_onnx"),
                ("dlib-keras", dlib_chips, oracle, "parity_dlib_jax_vs_dlib"),
            ):
                jax_runs, jax_vectors = run_jax(args.jax_python, model, data, batch, args.seconds, args.rounds)
                embedder_rows[f"{model.replace('-', '_')}_jax"] = summarize(jax_runs)
                parities[key] = parity(jax_vectors, versus[:batch])
        baseline = embedder_rows["dlib_compute_face_descriptor"]["faces_per_s_median"]
        for name, row in embedder_rows.items():  # the "x dlib": faces/s over dlib's own
            row["x_dlib"] = round(row["faces_per_s_median"] / baseline, 2)
            row["isa"] = isa_of(name, args.isa)
        rows.update(embedder_rows)
        rows.update(parities)
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
                "isa": isa_of(name, args.isa),
            }
            print(f"{key}: {rows[key]}", flush=True)
    print(json.dumps(rows))


if __name__ == "__main__":
    sys.exit(main())
