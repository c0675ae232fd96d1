"""LFW View 1 (pairsDevTest.txt, 1,000 pairs) with SCRFD + ArcFace: input scaling and flip TTA.

    python bench/arcface_view1.py --data-home "$FACECORE_LFW_HOME" [--cache FILE.npz]
    python bench/arcface_view1.py --pairs samples/lfw/lfw_home/pairs_demo.txt --limit 20   # a quick run

A quick check, not the LFW benchmark: View 1's development test split (500 matched, 500
mismatched pairs; not pairs.txt). Each image: SCRFD, the face nearest the image centre, a 112x112
ArcFace chip, embedded with the onnxruntime embedder (the Keras port gives the same vectors) at
two input scalings, ``arcface`` ((x - 127.5) / 127.5, what the model was trained with) and
``unit`` (x / 255), with and without flip TTA. Distance: cosine. Reported: accuracy at the best
single threshold on all 1,000 pairs, and 10-fold accuracy (each fold's threshold chosen on the
other nine; folds interleave matched and mismatched pairs). Embeddings are cached in ``--cache``
(with the image names, so a cache of other images is not reused).

LFW is ``--data-home``, else ``$FACECORE_LFW_HOME``, else the bundled mini LFW; ``--pairs`` reads
another pairs file in the official format (e.g. the pack's ``pairs_demo.txt``), and ``--limit N``
keeps its first N/2 matched and first N/2 mismatched pairs.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import _data
import _repo_path  # noqa: F401  (puts the repo root on sys.path)
import numpy as np

Pair = tuple[str, str, bool]


def read_pairs(path: Path) -> list[Pair]:
    """(image a, image b, same person) for each line of an LFW pairs file (relative paths)."""
    lines = path.read_text().splitlines()
    pairs = []
    for line in lines[1:]:
        parts = line.split()
        if len(parts) == 3:
            name, a, b = parts
            pairs.append((f"{name}/{name}_{int(a):04d}.jpg", f"{name}/{name}_{int(b):04d}.jpg", True))
        elif len(parts) == 4:
            name_a, a, name_b, b = parts
            pairs.append((f"{name_a}/{name_a}_{int(a):04d}.jpg", f"{name_b}/{name_b}_{int(b):04d}.jpg", False))
    return pairs


def balanced(pairs: list[Pair], limit: int | None) -> list[Pair]:
    """The first ``limit // 2`` matched and first ``limit - limit // 2`` mismatched pairs (all when None)."""
    if limit is None:
        return pairs
    matched = [p for p in pairs if p[2]][: limit // 2]
    return matched + [p for p in pairs if not p[2]][: limit - len(matched)]


def central_chip(detector, image: np.ndarray) -> tuple[np.ndarray, bool]:
    """The ArcFace chip of the face nearest the centre; ``False`` when SCRFD found none."""
    from facecore.alignment import ARCFACE_TEMPLATE, align_face
    from facecore.types import Face

    faces = detector.detect(image)
    if not faces:  # deep-funneled LFW centres the face: assume a ~100 px face in the middle
        centre = np.array(image.shape[1::-1]) / 2
        guess = Face((0, 0, 1, 1), 0.0, (ARCFACE_TEMPLATE - 56 + centre).astype(np.float32), "centre")
        return align_face(image, guess, chip="arcface112").chip, False
    middle = np.array(image.shape[1::-1]) / 2
    face = min(faces, key=lambda f: float(np.hypot(*(np.array(f.center) - middle))))
    return align_face(image, face, chip="arcface112").chip, True


def accuracies(distance: np.ndarray, same: np.ndarray, folds: int = 10) -> tuple[float, float]:
    """(best-threshold accuracy on all pairs, mean accuracy over folds with thresholds from the rest)."""

    def best_threshold(d: np.ndarray, s: np.ndarray) -> float:
        candidates = np.concatenate([[d.min() - 1e-6], np.sort(d)])
        return float(max(candidates, key=lambda t: np.mean((d <= t) == s)))

    overall = float(np.mean((distance <= best_threshold(distance, same)) == same))
    fold_of = np.arange(len(distance)) % folds
    per_fold = []
    for k in range(folds):
        threshold = best_threshold(distance[fold_of != k], same[fold_of != k])
        per_fold.append(np.mean((distance[fold_of == k] <= threshold) == same[fold_of == k]))
    return overall, float(np.mean(per_fold))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-home", "--lfw-home", dest="data_home", type=Path, default=None, help=_data.LFW_HOME_HELP)
    parser.add_argument("--pairs", type=Path, default=None, help="pairs file (default: lfw_home/pairsDevTest.txt)")
    parser.add_argument("--limit", type=int, default=None, help="keep N pairs, half matched, half mismatched")
    parser.add_argument(
        "--cache", type=Path, default=Path(tempfile.gettempdir()) / "arcface_view1_embeddings.npz",
        help="embeddings are kept here, so a second run only scores",
    )
    args = parser.parse_args()
    root = _data.lfw_home(args.data_home) / "lfw_home"
    pairs_file = args.pairs or root / "pairsDevTest.txt"
    if not pairs_file.is_file():
        raise SystemExit(f"{pairs_file} not found; set FACECORE_LFW_HOME or --data-home to the full LFW, or give --pairs")

    pairs = balanced(read_pairs(pairs_file), args.limit)
    images = sorted({p for a, b, _ in pairs for p in (a, b)})
    index = {name: i for i, name in enumerate(images)}
    print(f"{len(pairs)} pairs, {len(images)} images, load {os.getloadavg()[0]:.2f}", flush=True)

    cached = np.load(args.cache) if args.cache.is_file() else None
    if cached is not None and "images" in cached.files and cached["images"].tolist() == images:
        vectors = {key: cached[key] for key in cached.files if key != "images"}
        print(f"embeddings read from {args.cache}")
    else:
        from facecore.detection.scrfd import ScrfdDetector
        from facecore.embedding.arcface import ArcFaceOnnxEmbedder
        from facecore.images import load_image

        started = time.perf_counter()
        detector = ScrfdDetector()
        found = [central_chip(detector, load_image(root / "lfw_funneled" / name)) for name in images]
        chips = np.stack([chip for chip, _ in found])
        missed = sum(not ok for _, ok in found)
        print(f"detect + align: {time.perf_counter() - started:.1f} s, {missed} images with no face "
              f"(centre fallback), load {os.getloadavg()[0]:.2f}", flush=True)
        vectors = {}
        for scaling in ("arcface", "unit"):
            started = time.perf_counter()
            embedder = ArcFaceOnnxEmbedder(input_scaling=scaling)
            vectors[f"{scaling}_plain"] = embedder.embed(chips)
            vectors[f"{scaling}_mirror"] = embedder.embed(chips[:, :, ::-1])
            print(f"embed {scaling} ({2 * len(chips)} chips): {time.perf_counter() - started:.1f} s, "
                  f"load {os.getloadavg()[0]:.2f}", flush=True)
        args.cache.parent.mkdir(parents=True, exist_ok=True)
        np.savez(args.cache, images=np.array(images), **vectors)

    a = np.array([index[p[0]] for p in pairs])
    b = np.array([index[p[1]] for p in pairs])
    same = np.array([p[2] for p in pairs])
    print("| input scaling | flip TTA | best-threshold accuracy | 10-fold accuracy |")
    print("|---|---|---|---|")
    for scaling in ("arcface", "unit"):
        for flip in (False, True):
            v = vectors[f"{scaling}_plain"]
            if flip:
                v = (v + vectors[f"{scaling}_mirror"]) / 2
            v = v / np.linalg.norm(v, axis=1, keepdims=True)
            distance = 1.0 - np.sum(v[a] * v[b], axis=1)
            best, tenfold = accuracies(distance, same)
            label = "(x-127.5)/127.5" if scaling == "arcface" else "x/255"
            print(f"| {label} | {'yes' if flip else 'no'} | {best:.2%} | {tenfold:.2%} |")


if __name__ == "__main__":
    main()
