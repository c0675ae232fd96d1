"""1:K identification speed on a gallery of 10,000 faces: FAISS search + database lookup, and photo -> name.

    python bench/identify_speed.py --data-home "$FACECORE_LFW_HOME" [--faces 10000] [--real 300]
    python bench/identify_speed.py --faces 40 --real 8 --probes 4            # a quick run

LFW is ``--data-home``, else ``$FACECORE_LFW_HOME``, else the bundled mini LFW.

How the gallery is built (in a temporary folder, deleted afterwards). Embedding a real face costs about
50-70 ms on a CPU (HOG detection, alignment, the dlib ResNet), so 10,000 real LFW faces would take 10
minutes or more; and search time does not depend on what the vectors are, only on how many there are.
So the gallery holds:

* ``--real`` (default 300) **real** faces: the first photo of each of the first LFW people (alphabetical)
  who have at least two photos, embedded with the HOG pipeline (the face nearest the image centre,
  as in the LFW protocol) and enrolled under their LFW name;
* **synthetic** faces up to ``--faces``: copies of those real embeddings plus gaussian noise
  (``--noise`` 0.03 per dimension, about 0.34 in L2: the spread of one person's photos), three per
  synthetic person ("synthetic 00001", ...). They reuse their source's image and chip files, which the
  gallery stores once by content hash. ``--real 10000`` makes every face real (slow).

Every face goes in through ``Gallery.add_face``, one transaction each, as the app enrols them.

Then it times, for ``--probes`` (default 50) probe photos (the *second* LFW photo of the first real people):

* ``identify_ms``: ``Gallery.identify`` with a warm index (FAISS exact L2 search over all faces + the
  SQLite lookup of the k matches' people), median and p95;
* ``faiss_search_ms``: the bare FAISS search on the same vectors, to show what the lookup adds;
* ``end_to_end_ms``: probe JPEG bytes -> decode -> detect -> align -> embed -> identify every face found;
* one-off costs: the first identify (index built from the database), a reopened gallery (index loaded
  from ``index/*.npz``), and an identify right after another write (index updated incrementally).

Prints one line and a JSON object.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import _data
import _repo_path  # noqa: F401  (puts the repo root on sys.path)
import faiss
import numpy as np

from facecore.config import PipelineConfig
from facecore.evaluation.datasets import lfw_people
from facecore.gallery import Gallery
from facecore.images import decode_image, load_image, read_bytes
from facecore.pipeline import EmbeddedFace, FacePipeline, face_nearest_center
from facecore.types import Face
from facecore.verification.thresholds import DLIB_DEFAULT_THRESHOLD


def percentiles_ms(seconds: list[float]) -> dict[str, float]:
    ms = np.asarray(seconds) * 1000
    return {"median": round(float(np.median(ms)), 3), "p95": round(float(np.percentile(ms, 95)), 3)}


def timed(action: Callable[[], Any]) -> tuple[float, Any]:
    started = time.perf_counter()
    result = action()
    return time.perf_counter() - started, result


def central_face(pipeline: FacePipeline, data: bytes) -> EmbeddedFace | None:
    """The embedded face nearest the image centre (LFW centres the labelled person), or None."""
    image = decode_image(data)
    found = pipeline.process(image)
    chosen = face_nearest_center([f.face for f in found], image.shape)
    return next((f for f in found if f.face is chosen), None)


def pick_lfw(data_home: Path, count: int) -> list[tuple[str, Path, Path]]:
    """``(name, gallery photo, probe photo)`` for the first ``count`` LFW people with two photos or more."""
    people = lfw_people(data_home, min_images=2)
    return [(name.replace("_", " "), paths[0], paths[1]) for name, paths in list(people.items())[:count]]


def enrol_real(gallery: Gallery, pipeline: FacePipeline, people: list[tuple[str, Path, Path]]) -> list[tuple]:
    """Enrol each person's first photo; returns ``(bytes, face)`` of every face that was found."""
    sources = []
    for name, photo, _ in people:
        data = read_bytes(photo)
        face = central_face(pipeline, data)
        if face is None:
            continue
        gallery.add_face(gallery.create_person(name).id, data, face, pipeline.embedder.version)
        sources.append((data, face))
    return sources


def add_synthetic(
    gallery: Gallery, sources: list[tuple], count: int, noise: float, model: str, seed: int
) -> None:
    """``count`` noisy copies of the real faces, three per synthetic person, each source once per person."""
    rng = np.random.default_rng(seed)
    person_id = None
    for n in range(count):
        if n % 3 == 0:
            person_id = gallery.create_person(f"synthetic {n // 3 + 1:05d}").id
        data, face = sources[n % len(sources)]
        vector = face.embedding + rng.normal(0.0, noise, face.embedding.shape).astype(np.float32)
        gallery.add_face(person_id, data, EmbeddedFace(face.face, vector, face.chip), model)


def time_identify(gallery: Gallery, probes: list[np.ndarray], model: str, k: int) -> list[float]:
    return [
        timed(lambda p=p: gallery.identify(p, threshold=DLIB_DEFAULT_THRESHOLD, k=k, model_version=model))[0]
        for p in probes
    ]


def time_faiss(gallery: Gallery, probes: list[np.ndarray], model: str, k: int) -> list[float]:
    _, _, vectors = gallery.embeddings(model)
    index = faiss.IndexFlatL2(vectors.shape[1])
    index.add(vectors)
    return [timed(lambda p=p: index.search(p[None], k))[0] for p in probes]


def time_end_to_end(gallery: Gallery, pipeline: FacePipeline, photos: list[bytes], k: int) -> list[float]:
    model = pipeline.embedder.version

    def run(data: bytes) -> list:
        faces = pipeline.process(decode_image(data))
        return [
            gallery.identify(f.embedding, threshold=DLIB_DEFAULT_THRESHOLD, k=k, model_version=model)
            for f in faces
        ]

    return [timed(lambda d=d: run(d))[0] for d in photos]


def one_off_costs(gallery: Gallery, probes: list[np.ndarray], photo: bytes, model: str) -> dict[str, float]:
    """Identify right after a reopen (index loaded from disk) and right after a write (index updated)."""
    load_s, _ = timed(lambda: Gallery(gallery.root).identify(probes[0], threshold=1.0, model_version=model))
    first = gallery.faces()[0]
    stored = EmbeddedFace(Face(first.box, 1.0, None, first.detector), probes[0], load_image(first.chip_path))
    gallery.add_face(first.person_id, photo, stored, model)
    write_s, _ = timed(lambda: gallery.identify(probes[1], threshold=1.0, model_version=model))
    return {
        "reopened_gallery_first_identify_ms": round(1000 * load_s, 1),
        "identify_after_a_write_ms": round(1000 * write_s, 1),
    }


def accuracy(gallery: Gallery, probes: list[np.ndarray], expected: list[str], model: str, k: int) -> dict:
    """A sanity check, not an accuracy claim: each probe's person has one real photo in the gallery."""
    named = [
        gallery.identify(p, threshold=DLIB_DEFAULT_THRESHOLD, k=k, model_version=model).name for p in probes
    ]
    correct = sum(got == name for got, name in zip(named, expected, strict=True))
    unknown = named.count("unknown")
    return {
        "probes_named_correctly": f"{correct}/{len(probes)} at L2 <= {DLIB_DEFAULT_THRESHOLD}",
        "probes_unknown": unknown,
        "probes_named_wrongly": len(probes) - correct - unknown,
    }


def run(args: argparse.Namespace, root: str) -> dict[str, Any]:
    pipeline = FacePipeline(PipelineConfig(detector="hog"))
    model = pipeline.embedder.version
    real = min(args.real, args.faces)
    people = pick_lfw(_data.lfw_home(args.data_home), max(real, args.probes))
    gallery = Gallery(root)
    embed_s, sources = timed(lambda: enrol_real(gallery, pipeline, people[:real]))
    synthetic = args.faces - len(sources)
    synth_s, _ = timed(lambda: add_synthetic(gallery, sources, synthetic, args.noise, model, args.seed))
    size = len(gallery.faces())

    photos = [read_bytes(probe) for _, _, probe in people[: args.probes]]
    found = [
        (name, central_face(pipeline, data))
        for (name, _, _), data in zip(people[: args.probes], photos, strict=True)
    ]
    expected = [name for name, face in found if face is not None]
    probes = [face.embedding for _, face in found if face is not None]

    build_s, _ = timed(lambda: gallery.identify(probes[0], threshold=1.0, model_version=model))
    return {
        "gallery_faces": size,
        "real_faces": len(sources),
        "synthetic_faces": size - len(sources),
        "people": len(gallery.people()),
        "probes": len(probes),
        "k": args.k,
        "identify_ms": percentiles_ms(time_identify(gallery, probes, model, args.k)),
        "faiss_search_ms": percentiles_ms(time_faiss(gallery, probes, model, args.k)),
        "end_to_end_ms": percentiles_ms(time_end_to_end(gallery, pipeline, photos, args.k)),
        "first_identify_builds_index_ms": round(1000 * build_s, 1),
        **accuracy(gallery, probes, expected, model, args.k),
        **one_off_costs(gallery, probes, photos[0], model),  # last: it adds a face
        "embed_real_faces_s": round(embed_s, 1),
        "add_synthetic_faces_per_s": round(synthetic / max(synth_s, 1e-9), 1),
        "faiss_threads": faiss.omp_get_max_threads(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data-home", type=Path, default=None, help=_data.LFW_HOME_HELP)
    parser.add_argument("--faces", type=int, default=10_000, help="gallery size")
    parser.add_argument("--real", type=int, default=300, help="how many of the faces are real LFW faces")
    parser.add_argument("--probes", type=int, default=50)
    parser.add_argument("--noise", type=float, default=0.03, help="std per dimension of the synthetic copies")
    parser.add_argument("-k", type=int, default=5, help="nearest faces per identification")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="identify-speed-") as root:
        report = run(args, root)
    print(
        f"identify over {report['gallery_faces']} faces ({report['real_faces']} real): "
        f"median {report['identify_ms']['median']} ms, p95 {report['identify_ms']['p95']} ms "
        f"(FAISS alone {report['faiss_search_ms']['median']} ms); photo -> name "
        f"median {report['end_to_end_ms']['median']} ms, p95 {report['end_to_end_ms']['p95']} ms"
    )
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
