"""Identify through the HTTP API against a PostgreSQL gallery of 1M faces: photo bytes in, a name out.

    FACECORE_CACHE_DIR=<cache with LFW embeddings> python bench/api_identify_scale.py --data-home "$FACECORE_LFW_HOME"
    python bench/api_identify_scale.py --faces 3000 --people 3 --strangers 3 --probes 1 --lfw-seeds 60   # a quick run

**The gallery.** A real PostgreSQL + pgvector from the ``pgserver`` wheel, in a temporary folder
(deleted afterwards); ``PostgresGallery(url)`` creates the schema. ``--faces`` synthetic faces (default
1,000,000) of the model version the API will serve with (``ApiConfig.from_env`` on the server's
environment: ``FACECORE_API_DETECTOR`` / ``_EMBEDDER`` / ``_FLIP_TTA``, by default HOG + dlib-keras,
128-D) are drawn around real seed vectors from the embedding cache (``$FACECORE_CACHE_DIR``) by
``gallery_scale.realistic_gallery`` (``--faces-per-identity``, default 4), one synthetic person per
identity (``synthetic-000123``), people and faces both loaded with COPY. **The probe people are no
seeds**: the cache entries of every photo of every LFW person this run may enrol or probe with (by
``facecore.images.image_hash`` of the file bytes, the cache keys' first part) are left out, so no
synthetic identity sits on a probe person. With fewer than 50 usable cached vectors the first photo of
``--lfw-seeds`` LFW people is embedded first, as ``gallery_scale.py`` does. The tables are then
VACUUMed and ANALYZEd (as autovacuum would leave them) and the HNSW index is built
(``pg_search.ensure_index``).

**The API.** ``uvicorn api.main:app`` in its own process on a free loopback port with
``FACECORE_GALLERY_URL`` pointing at that PostgreSQL. Once it answers ``/health`` (no key exists yet, so
loopback callers need none), the bench creates an ``enrol`` API key in the gallery and sends it with
every later request (the production path: a key lookup and an audit row per request), with the per-key
rate limit off (``FACECORE_API_RATE_PER_MINUTE=0``) so that no request is a 429. Everything else is the API's default configuration and threshold.

**What is measured.** ``--people`` LFW people with 2+ photos (default 20, drawn with a fixed seed) are
enrolled through ``POST /people`` and ``POST /people/{id}/faces`` with their first photo (a person whose
photo has no face is skipped and another drawn); their next photo is then sent to ``POST /identify``
``--probes`` times (default 5), as are one photo each of ``--strangers`` other LFW people (default:
as many as ``--people``), who are not enrolled. One identify before the timed ones warms the server
up. Reported: faces in the gallery, COPY insert rate, HNSW build seconds, the identify round trip over
HTTP (upload -> JSON answer, one request at a time) p50 / p95 in ms, the share of enrolled probes
named right (the largest face's ``person_id`` is theirs), the share of stranger probes rejected
(``unknown``; of those where a face was found), the CPU count and the load average. LFW comes from ``--data-home``, else ``$FACECORE_LFW_HOME``, else the
bundled mini LFW. For a breakdown, the same process then times the store's own search
(``PostgresGallery.search``, k = 5, of 50 fresh faces of synthetic identities) and the face count that
every ``/identify`` answer carries (``index_size``). The last line printed is the JSON report.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import _data
import _repo_path  # noqa: F401
import httpx
import numpy as np
from api_throughput import REPO_ROOT, free_port, wait_for_health
from gallery_scale import MIN_SEEDS, copy_faces, embed_lfw_seeds, latencies, real_seeds, realistic_gallery

from api.config import ApiConfig
from facecore.cache import default_cache_dir
from facecore.evaluation.datasets import lfw_people
from facecore.gallery import pg_search
from facecore.gallery.keys import create_key
from facecore.gallery.names import name_key
from facecore.gallery.postgres import PostgresGallery
from facecore.images import image_hash

STORE_QUERIES = 50  # fresh faces of synthetic identities, searched in-process for the breakdown
SPARE_PEOPLE = 10  # drawn beyond --people, in case some enrolment photos have no face (excluded from seeds too)


def pick_people(found: dict[str, list[Path]], people: int, strangers: int, rng: np.random.Generator):
    """``(candidates to enrol (2+ photos, in order), strangers)``, disjoint, drawn with ``rng``."""
    multi = [name for name in sorted(found) if len(found[name]) >= 2]
    if len(multi) < people:
        raise SystemExit(f"only {len(multi)} LFW people have 2+ photos; asked for {people}")
    candidates = [str(n) for n in rng.permutation(multi)[: people + SPARE_PEOPLE]]
    others = [name for name in sorted(found) if name not in set(candidates)]
    if len(others) < strangers:
        raise SystemExit(f"only {len(others)} LFW people are left for {strangers} strangers")
    return candidates, [str(n) for n in rng.permutation(others)[:strangers]]


def copy_people(gallery: PostgresGallery, count: int) -> tuple[np.ndarray, float]:
    """COPY ``count`` people named ``synthetic-000000``... into an empty gallery; their ids and the seconds."""
    width = max(6, len(str(count - 1)))
    start = time.perf_counter()
    with (
        gallery.database.connection() as db,
        db.raw.transaction(),
        db.raw.cursor().copy("COPY people (id, name, name_key, created) FROM STDIN") as copy,
    ):
        for i in range(count):
            name = f"synthetic-{i:0{width}d}"
            copy.write_row((i + 1, name, name_key(name), 0.0))
    took = time.perf_counter() - start
    with gallery.database.connection() as db:
        db.execute("SELECT setval(pg_get_serial_sequence('people', 'id'), ?)", (count,))
        db.execute("ANALYZE people")
    return np.arange(1, count + 1, dtype=np.int64), took


def percentile_ms(seconds: list[float], q: float) -> float | None:
    return round(float(np.percentile(np.array(seconds) * 1000, q)), 1) if seconds else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--faces", type=int, default=1_000_000, help="synthetic faces in the gallery")
    parser.add_argument("--faces-per-identity", type=int, default=4)
    parser.add_argument("--seeds", type=int, default=5000, help="at most this many real seed vectors")
    parser.add_argument("--people", type=int, default=20, help="LFW people (2+ photos) enrolled through the API")
    parser.add_argument("--strangers", type=int, default=None, help="LFW people probed but not enrolled (default: --people)")
    parser.add_argument("--probes", type=int, default=5, help="times each probe photo is sent to /identify")
    parser.add_argument("--lfw-seeds", type=int, default=100,
                        help=f"with fewer than {MIN_SEEDS} cached vectors: embed the first photo of this many LFW people first")
    parser.add_argument("--data-home", type=Path, default=None, help=_data.LFW_HOME_HELP)
    args = parser.parse_args()
    strangers = args.people if args.strangers is None else args.strangers
    load_before = os.getloadavg()
    rng = np.random.default_rng(0)

    home = _data.lfw_home(args.data_home)
    found = lfw_people(home)
    candidates, stranger_names = pick_people(found, args.people, strangers, rng)
    excluded = {image_hash(path.read_bytes()) for name in [*candidates, *stranger_names] for path in found[name]}

    server_env = {**os.environ, "FACECORE_API_RATE_PER_MINUTE": "0"}
    model = ApiConfig.from_env(server_env).pipeline.model_version
    cache_dir = default_cache_dir()
    embedded = 0
    if len(real_seeds(cache_dir, model, args.seeds, required=0, exclude=excluded)) < MIN_SEEDS:
        embedded = embed_lfw_seeds(cache_dir, model, home, args.lfw_seeds)
    seeds = real_seeds(cache_dir, model, args.seeds, exclude=excluded)
    vectors, queries = realistic_gallery(seeds, args.faces, args.faces_per_identity, STORE_QUERIES, rng)
    identities = -(-args.faces // args.faces_per_identity)

    import pgserver

    folder = Path(tempfile.mkdtemp(prefix="facecore-bench-api-pg-"))
    server = pgserver.get_server(folder, cleanup_mode="delete")
    api = gallery = None
    try:
        url = server.get_uri()
        gallery = PostgresGallery(url)
        person_ids, people_s = copy_people(gallery, identities)
        insert_s = copy_faces(gallery, vectors, person_ids[np.arange(args.faces) // args.faces_per_identity], model)
        del vectors
        start = time.perf_counter()
        with gallery.database.connection() as db:  # a settled table, as autovacuum leaves it (visibility map)
            db.execute("VACUUM (ANALYZE) faces")
            db.execute("VACUUM (ANALYZE) people")
        vacuum_s = time.perf_counter() - start
        start = time.perf_counter()
        with gallery.database.connection() as db:
            assert pg_search.ensure_index(db, model, min_faces=0)
        index_s = time.perf_counter() - start

        port = free_port()
        base = f"http://127.0.0.1:{port}"
        command = [sys.executable, "-m", "uvicorn", "api.main:app", "--host", "127.0.0.1", "--port", str(port)]
        api = subprocess.Popen(
            [*command, "--log-level", "warning"], cwd=REPO_ROOT, env={**server_env, "FACECORE_GALLERY_URL": url},
            stdout=subprocess.DEVNULL,
        )
        startup_s = wait_for_health(base, api)  # no key yet: loopback callers need none
        _, secret = create_key(gallery.database, "bench-api-identify-scale", "enrol")
        with httpx.Client(base_url=base, timeout=300, headers={"X-API-Key": secret}) as client:
            health = client.get("/health").json()
            if health["model_version"] != model:
                raise SystemExit(f"the API serves {health['model_version']}, the gallery was filled for {model}")

            enrolled: list[tuple[str, int, Path]] = []  # (name, person id, probe photo)
            enrol_failed, enrol_s = 0, []
            for name in candidates:
                if len(enrolled) == args.people:
                    break
                person = client.post("/people", json={"name": name.replace("_", " ")})
                person.raise_for_status()
                photos = found[name]
                start = time.perf_counter()
                added = client.post(
                    f"/people/{person.json()['id']}/faces", files={"image": (photos[0].name, photos[0].read_bytes())}
                )
                enrol_s.append(time.perf_counter() - start)
                if added.status_code == 201:
                    enrolled.append((person.json()["name"], person.json()["id"], photos[1]))
                elif added.status_code == 422:  # no face: draw another person (this one stays, without a face)
                    enrol_failed += 1
                else:
                    added.raise_for_status()
            if len(enrolled) < args.people:
                raise SystemExit(f"only {len(enrolled)} of {args.people} people could be enrolled")

            def identify(photo: Path) -> tuple[dict, float]:
                start = time.perf_counter()
                answer = client.post("/identify", files={"image": (photo.name, photo.read_bytes())})
                took = time.perf_counter() - start
                answer.raise_for_status()
                return answer.json(), took

            identify(enrolled[0][2])  # warm-up, not counted
            times: list[float] = []
            right = wrong = unknown = no_face = rejected = stranger_no_face = 0
            gallery_faces = None
            for _ in range(args.probes):
                for _name, person_id, photo in enrolled:
                    answer, took = identify(photo)
                    times.append(took)
                    gallery_faces = answer["gallery_faces"]
                    if not answer["faces"]:
                        no_face += 1
                    elif answer["faces"][0]["person_id"] == person_id:
                        right += 1
                    elif answer["faces"][0]["person_id"] is None:
                        unknown += 1
                    else:
                        wrong += 1
                for name in stranger_names:
                    answer, took = identify(found[name][0])
                    times.append(took)
                    if not answer["faces"]:
                        stranger_no_face += 1
                    elif answer["faces"][0]["person_id"] is None:
                        rejected += 1
            threshold = answer["threshold"]

        # The breakdown, in this process: the store's search alone (k = 5, as /identify) and the face count
        # every /identify answer carries (gallery_faces).
        search_p50, search_p95, _ = latencies(
            lambda q, k: [m.face_id for m in gallery.search(q, k, model_version=model)], queries, 5
        )
        count_p50, count_p95, _ = latencies(lambda q, k: [gallery.index_size(model)], queries[:10], 1)
    finally:
        if gallery is not None:
            gallery.close()
        if api is not None:
            api.terminate()
            api.wait(timeout=60)
        server.cleanup()

    enrolled_probes = len(enrolled) * args.probes
    stranger_probes = len(stranger_names) * args.probes
    report = {
        "model_version": model,
        "dim": int(seeds.shape[1]),
        "seeds": len(seeds),
        "probe_people_images_excluded_from_seeds": len(excluded),
        "lfw_photos_embedded_now": embedded,
        "synthetic_faces": args.faces,
        "synthetic_people": identities,
        "gallery_faces": gallery_faces,
        "people_copy_s": round(people_s, 2),
        "insert_s": round(insert_s, 2),
        "insert_per_s": round(args.faces / insert_s),
        "vacuum_s": round(vacuum_s, 2),
        "index_build_s": round(index_s, 1),
        "ef_search": pg_search.EF_SEARCH,
        "server_startup_s": round(startup_s, 1),
        "enrolled_people": len(enrolled),
        "enrol_no_face": enrol_failed,
        "enrol_p50_ms": percentile_ms(enrol_s, 50),
        "threshold": threshold,
        "identify_requests": len(times),
        "identify_p50_ms": percentile_ms(times, 50),
        "identify_p95_ms": percentile_ms(times, 95),
        "store_search_k5_p50_ms": round(search_p50, 2),
        "store_search_k5_p95_ms": round(search_p95, 2),
        "face_count_p50_ms": round(count_p50, 2),
        "face_count_p95_ms": round(count_p95, 2),
        "enrolled_probes": enrolled_probes,
        "enrolled_named_right": right,
        "enrolled_named_wrong": wrong,
        "enrolled_unknown": unknown,
        "enrolled_no_face": no_face,
        "enrolled_named_right_share": round(right / enrolled_probes, 4),
        "stranger_probes": stranger_probes,
        "strangers_rejected": rejected,
        "strangers_no_face": stranger_no_face,
        "strangers_rejected_share": round(rejected / max(stranger_probes - stranger_no_face, 1), 4),
        "cpu": os.cpu_count(),
        "load_avg_before": [round(x, 2) for x in load_before],
        "load_avg_after": [round(x, 2) for x in os.getloadavg()],
    }
    print(json.dumps(report), flush=True)


if __name__ == "__main__":
    main()
