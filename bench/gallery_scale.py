"""Gallery search at scale: FAISS flat, FAISS HNSW and pgvector HNSW at 10k / 100k / 1M faces.

    FACECORE_CACHE_DIR=<an embedding cache> python bench/gallery_scale.py --sizes 10000 100000
    python bench/gallery_scale.py --sizes 400 --queries 20 --faiss-ef 16 64 --pg-ef 40 --lfw-seeds 60   # a quick run

**The vectors** (``realistic_gallery``): real embeddings read from the embedding cache
(``$FACECORE_CACHE_DIR/embeddings.sqlite``, one vector per cached image: the primary face of the
``--model`` embedder, 128-D dlib or 512-D ArcFace), e.g. the LFW images of earlier benchmark runs.
Around them, synthetic identities: identity ``i`` is real seed ``i mod S`` moved by a random offset of
length ``0.5 * d_nn`` (``d_nn``: the median distance from a seed to its nearest other seed), and each
of its ``--faces-per-identity`` faces (default 4) is that centre plus a random offset of length
``0.35 * d_nn``. So identities are spread like real people (many near each seed, closer to one
another than two real people usually are), and a person's faces are closer to each other than to
anyone else's, as in a face gallery; unit-length models (ArcFace) are renormalised. Queries
(``--queries``, default 300) are fresh faces of stored identities (centre + a new offset), the way
a probe photo of an enrolled person looks. Pure random vectors would make HNSW's job far easier.

**When the cache holds fewer than 50 such vectors** (a fresh clone, an empty ``$FACECORE_CACHE_DIR``),
the script first embeds the first photo of ``--lfw-seeds`` LFW people (default 100; HOG + the
``--model`` embedder, through that cache) from ``--data-home``, else ``$FACECORE_LFW_HOME``, else the
bundled mini LFW, as the other bench scripts find it, then reads the seeds as above. The first JSON
line says how many seeds there are and whether they were embedded now; the published figures used
3,827 to 5,000 seeds from an LFW benchmark's cache.

**What is measured**, per size, on ``--threads`` CPU threads (default 1, as the store searches):

* FAISS flat (``IndexFlatL2``, the embedded store below its HNSW size): add rate, p50/p95 latency for
  k = 1 and 10; it is the exact reference for recall.
* FAISS HNSW (``facecore.gallery.faiss_hnsw``: M, efConstruction as the store builds it): build
  time, then for each efSearch in ``--faiss-ef``: p50/p95 latency (k = 1, 10) and recall@1 / @10.
* pgvector (a real PostgreSQL from the ``pgserver`` wheel, loopback Unix socket, through
  ``PostgresGallery.search``, i.e. the store's own SQL): COPY insert rate, the exact scan's latency (no
  index), HNSW build time (``facecore.gallery.pg_search.ensure_index``), then per ``hnsw.ef_search`` in
  ``--pg-ef``: p50/p95 and recall@1 / @10, and the table's and index's size on disk.
* memory: the FAISS index's serialised size (what it holds in RAM, give or take).

``$FACECORE_PG_BUILD_MEMORY`` (the store's ``maintenance_work_mem`` for the build, default 1GB) is
recorded with the build time; 512-D at 1M was built with 4GB (m 16) and 6GB (m 32).

``--skip-faiss`` leaves the FAISS rows out (the 1M FAISS graph takes 20 minutes to build) and takes the
exact reference for recall from one batched flat search; ``--pg-exact-queries`` times fewer queries on
pgvector's exact scan (a second each at 1M).

Prints one JSON object per setup and size (``--out`` also writes them as JSON lines).
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import tempfile
import time
from collections.abc import Collection
from pathlib import Path

import _data
import _repo_path  # noqa: F401
import faiss
import numpy as np

from facecore.cache import CachedFaces, EmbeddingCache, default_cache_dir
from facecore.config import PipelineConfig
from facecore.embedding import EMBEDDERS
from facecore.evaluation.datasets import lfw_people
from facecore.gallery import faiss_hnsw

#: Fewer real seeds than this, and the nearest-seed distances that shape the generator mean little.
MIN_SEEDS = 50


def real_seeds(
    cache_dir: Path, model: str, limit: int, *, required: int = MIN_SEEDS, exclude: Collection[str] = frozenset()
) -> np.ndarray:
    """One vector per cached image for ``model`` (its primary face; no flip TTA variants).

    ``exclude``: content hashes (``facecore.images.image_hash`` of the file bytes, the keys' first part)
    of images whose vectors must not be seeds, e.g. every photo of the people a benchmark probes with.
    """
    path = cache_dir / "embeddings.sqlite"
    if not path.is_file():
        rows = []
    else:
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
            rows = db.execute("SELECT key, payload FROM results ORDER BY key").fetchall()
    seen: set[str] = set()
    vectors = []
    for key, payload in rows:
        parts = key.split("|")
        if parts[-2] != model or parts[-1] != "primary" or parts[0] in seen or parts[0] in exclude:
            continue
        cached = CachedFaces.from_bytes(payload)
        if cached.fallback or not len(cached.embeddings):
            continue
        seen.add(parts[0])
        vectors.append(cached.embeddings[0])
        if len(vectors) == limit:
            break
    if len(vectors) < required:
        raise SystemExit(f"only {len(vectors)} cached {model} embeddings in {path}: run an LFW benchmark first")
    return np.asarray(vectors, np.float32)


def seed_config(model: str) -> PipelineConfig:
    """HOG + the pretrained embedder whose vectors are ``model`` (no model is loaded to find it)."""
    for name in EMBEDDERS.names():
        for flip in (False, True):
            try:
                config = PipelineConfig(embedder=name, flip_tta=flip)
            except ValueError:  # keras-file: needs a model file
                continue
            if config.model_version == model:
                return config
    raise SystemExit(f"no pretrained embedder gives {model!r} vectors: fill the embedding cache with them first")


def embed_lfw_seeds(cache_dir: Path, model: str, data_home: Path, people: int) -> int:
    """Embed the first photo of the first ``people`` LFW people (sorted) into the cache; how many were."""
    from facecore.pipeline import build_pipeline

    found = lfw_people(data_home)
    paths = [found[name][0] for name in sorted(found)[:people]]
    pipeline = build_pipeline(seed_config(model), cache=EmbeddingCache(cache_dir))
    pipeline.embed_primary_faces(paths)
    return len(paths)


def realistic_gallery(
    seeds: np.ndarray, n: int, per_identity: int, queries: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """``(gallery vectors (n, d), query vectors (queries, d))`` around the real ``seeds`` (docstring)."""
    unit = bool(np.allclose(np.linalg.norm(seeds, axis=1), 1.0, atol=1e-3))
    index = faiss.IndexFlatL2(seeds.shape[1])
    index.add(seeds)
    distances, _ = index.search(seeds, 2)
    d_nn = float(np.median(np.sqrt(distances[:, 1])))

    def offsets(count: int, length: float) -> np.ndarray:
        step = rng.normal(size=(count, seeds.shape[1])).astype(np.float32)
        return step / np.linalg.norm(step, axis=1, keepdims=True) * length

    identities = -(-n // per_identity)
    centres = seeds[np.arange(identities) % len(seeds)] + offsets(identities, 0.5 * d_nn)
    owner = np.repeat(np.arange(identities), per_identity)[:n]
    faces = centres[owner] + offsets(n, 0.35 * d_nn)
    probes = centres[rng.integers(0, identities, queries)] + offsets(queries, 0.35 * d_nn)
    if unit:
        faces /= np.linalg.norm(faces, axis=1, keepdims=True)
        probes /= np.linalg.norm(probes, axis=1, keepdims=True)
    return np.ascontiguousarray(faces, np.float32), np.ascontiguousarray(probes, np.float32)


def latencies(search, queries: np.ndarray, k: int) -> tuple[float, float, list[np.ndarray]]:
    """p50 / p95 in ms of ``search(query, k) -> ids``, one query at a time, and the ids found."""
    times, found = [], []
    for query in queries:
        start = time.perf_counter()
        ids = search(query, k)
        times.append((time.perf_counter() - start) * 1000)
        found.append(np.asarray(ids))
    return float(np.percentile(times, 50)), float(np.percentile(times, 95)), found


def recall(found: list[np.ndarray], exact: list[np.ndarray], k: int) -> float:
    """recall@k against exact search: the share of the exact top-k that was found (@1: the nearest)."""
    return float(np.mean([len(set(f[:k].tolist()) & set(e[:k].tolist())) / k for f, e in zip(found, exact, strict=True)]))


def same_person_at_1(found: list[np.ndarray], exact: list[np.ndarray], per_identity: int) -> float:
    """The share of queries whose nearest found face belongs to the same identity as the exact nearest
    face (face id ``i``, 1-based, is identity ``(i - 1) // per_identity``): what identify names, even
    where recall@1 counts a miss (another face of that person)."""
    return float(np.mean([
        len(f) > 0 and (int(f[0]) - 1) // per_identity == (int(e[0]) - 1) // per_identity
        for f, e in zip(found, exact, strict=True)
    ]))  # fmt: skip


def faiss_runs(
    vectors: np.ndarray, queries: np.ndarray, ef_values: list[int], per_identity: int
) -> tuple[list[dict], dict]:
    ids = np.arange(1, len(vectors) + 1, dtype=np.int64)
    none = np.zeros(0, np.int64)
    flat = faiss.IndexIDMap2(faiss.IndexFlatL2(vectors.shape[1]))
    start = time.perf_counter()
    flat.add_with_ids(vectors, ids)
    add_s = time.perf_counter() - start
    results, exact = [], {}
    row = {"setup": "faiss-flat", "n": len(vectors), "insert_per_s": round(len(vectors) / add_s), "build_s": round(add_s, 3),
           "memory_mb": round(faiss.serialize_index(flat).nbytes / 1e6, 1)}
    for k in (1, 10):
        p50, p95, exact[k] = latencies(lambda q, k: faiss_hnsw.search(flat, q[None], k, none)[1][0], queries, k)
        row[f"k{k}_p50_ms"], row[f"k{k}_p95_ms"] = round(p50, 3), round(p95, 3)
    results.append(row)
    start = time.perf_counter()
    hnsw = faiss_hnsw.new_hnsw(ids, vectors)
    build_s = time.perf_counter() - start
    memory = round(faiss.serialize_index(hnsw).nbytes / 1e6, 1)
    for ef in ef_values:
        faiss_hnsw.EF_SEARCH = ef
        row = {"setup": "faiss-hnsw", "n": len(vectors), "ef_search": ef, "M": faiss_hnsw.HNSW_M,
               "ef_construction": faiss_hnsw.EF_CONSTRUCTION, "build_s": round(build_s, 1),
               "insert_per_s": round(len(vectors) / build_s), "memory_mb": memory}
        for k in (1, 10):
            p50, p95, found = latencies(lambda q, k: faiss_hnsw.search(hnsw, q[None], k, none)[1][0], queries, k)
            row[f"k{k}_p50_ms"], row[f"k{k}_p95_ms"] = round(p50, 3), round(p95, 3)
            row[f"recall@{k}"] = round(recall(found, exact[k], k), 4)
            if k == 1:
                row["same_person@1"] = round(same_person_at_1(found, exact[1], per_identity), 4)
        results.append(row)
    return results, exact


def exact_reference(vectors: np.ndarray, queries: np.ndarray) -> dict[int, list[np.ndarray]]:
    """The exact top-1 and top-10 ids of every query (one batched flat search; no latency measured)."""
    flat = faiss.IndexIDMap2(faiss.IndexFlatL2(vectors.shape[1]))
    flat.add_with_ids(vectors, np.arange(1, len(vectors) + 1, dtype=np.int64))
    _, ids = flat.search(queries, 10)
    return {k: [row[:k] for row in ids] for k in (1, 10)}


def copy_faces(gallery, vectors: np.ndarray, person_ids: np.ndarray, model: str) -> float:
    """COPY ``vectors`` into a ``PostgresGallery``'s faces (row ``i`` to person ``person_ids[i]``, a
    placeholder image and chip, ``model``'s version), then ANALYZE; the seconds the COPY took.

    Binary COPY (pgvector's binary format: the floats as they are): 1M 512-D vectors as text would
    be about 5 GB of decimal digits formatted in Python and parsed again by the server."""
    from pgvector import Vector

    def seed_rows(db) -> None:
        db.execute("INSERT INTO images (sha256, data) VALUES ('bench', '\\x00') ON CONFLICT DO NOTHING")
        db.execute("INSERT INTO chips (sha256, png) VALUES ('bench', '\\x00') ON CONFLICT DO NOTHING")

    gallery.database.write(seed_rows)
    start = time.perf_counter()
    columns = "person_id, image_sha256, chip_sha256, box, detector, model_version, embedding, created"
    with (
        gallery.database.connection() as db,
        db.raw.transaction(),
        db.raw.cursor().copy(f"COPY faces ({columns}) FROM STDIN WITH (FORMAT BINARY)") as copy,
    ):
        copy.set_types(["int8", "text", "text", "text", "text", "text", "vector", "float8"])
        for person_id, vector in zip(person_ids.tolist(), vectors, strict=True):
            copy.write_row((person_id, "bench", "bench", "[0, 0, 1, 1]", "bench", model, Vector(vector), 0.0))
    took = time.perf_counter() - start
    with gallery.database.connection() as db:
        db.execute("ANALYZE faces")
    return took


def pgvector_runs(
    vectors: np.ndarray, queries: np.ndarray, exact: dict, ef_values: list[int], model: str, exact_queries: int,
    per_identity: int,
) -> list[dict]:
    import pgserver

    from facecore.gallery import pg_search
    from facecore.gallery.postgres import PostgresGallery

    folder = Path(tempfile.mkdtemp(prefix="facecore-bench-pg-"))
    server = pgserver.get_server(folder, cleanup_mode="delete")
    try:
        gallery = PostgresGallery(server.get_uri())
        person = gallery.create_person("Synthetic")
        insert_s = copy_faces(gallery, vectors, np.full(len(vectors), person.id), model)
        with gallery.database.connection() as db:
            first_id = db.execute("SELECT min(id) FROM faces").fetchone()[0]

        def search(exact_scan: bool):
            return lambda q, k: np.array([m.face_id - first_id + 1 for m in gallery.search(q, k, model_version=model, exact=exact_scan)])

        results = []
        base = {"setup": "pgvector", "n": len(vectors), "insert_per_s": round(len(vectors) / insert_s)}
        row = {**base, "setup": "pgvector-exact-scan"}
        for k in (1, 10):
            p50, p95, found = latencies(search(True), queries[:exact_queries], k)
            row[f"k{k}_p50_ms"], row[f"k{k}_p95_ms"] = round(p50, 2), round(p95, 2)
            row[f"recall@{k}"] = round(recall(found, exact[k][:exact_queries], k), 4)  # 1.0 unless ties
        row["exact_queries"] = len(queries[:exact_queries])
        results.append(row)
        start = time.perf_counter()
        with gallery.database.connection() as db:
            assert pg_search.ensure_index(db, model, min_faces=0)
        build_s = time.perf_counter() - start
        graph = pg_search.graph_settings(vectors.shape[1])
        with gallery.database.connection() as db:
            table_mb, index_mb = db.execute(
                "SELECT pg_total_relation_size('faces') / 1e6, pg_relation_size(?) / 1e6", (pg_search.index_name(model),)
            ).fetchone()
        for ef in ef_values:
            pg_search.EF_SEARCH = ef
            row = {**base, "setup": "pgvector-hnsw", "ef_search": ef, "build_s": round(build_s, 1),
                   "build_memory": pg_search.BUILD_MEMORY, "m": graph[0], "ef_construction": graph[1],
                   "disk_table_mb": round(float(table_mb), 1), "disk_index_mb": round(float(index_mb), 1)}
            for k in (1, 10):
                p50, p95, found = latencies(search(False), queries, k)
                row[f"k{k}_p50_ms"], row[f"k{k}_p95_ms"] = round(p50, 2), round(p95, 2)
                row[f"recall@{k}"] = round(recall(found, exact[k], k), 4)
                if k == 1:
                    row["same_person@1"] = round(same_person_at_1(found, exact[1], per_identity), 4)
            results.append(row)
        gallery.close()
        return results
    finally:
        server.cleanup()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--model", default="dlib_resnet_v1-keras", help="the cached embedder version to seed from")
    parser.add_argument("--seeds", type=int, default=5000, help="at most this many real seed vectors")
    parser.add_argument("--faces-per-identity", type=int, default=4)
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--faiss-ef", type=int, nargs="+", default=[16, 32, 64, 128])
    parser.add_argument("--pg-ef", type=int, nargs="+", default=[40, 100, 200])
    parser.add_argument("--skip-pgvector", action="store_true")
    parser.add_argument("--skip-faiss", action="store_true",
                        help="no FAISS rows: the exact reference for recall comes from one batched flat search")
    parser.add_argument("--pg-exact-queries", type=int, default=100, help="queries timed on pgvector's exact scan")
    parser.add_argument("--pg-m", type=int, default=None, help="pgvector HNSW links per node (default: the store's, pg_search.graph_settings)")
    parser.add_argument("--pg-ef-construction", type=int, default=None, help="pgvector HNSW ef_construction (default: the store's)")
    parser.add_argument("--seed", type=int, default=0, help="the generator's seed: another seed, another gallery and queries")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--lfw-seeds", type=int, default=100,
                        help=f"with fewer than {MIN_SEEDS} cached vectors: embed the first photo of this many LFW people first")
    parser.add_argument("--data-home", type=Path, default=None, help=_data.LFW_HOME_HELP + " (for --lfw-seeds)")
    args = parser.parse_args()
    faiss.omp_set_num_threads(args.threads)
    if args.pg_m is not None or args.pg_ef_construction is not None:
        from facecore.gallery import pg_search

        store_graph = pg_search.graph_settings
        pg_search.graph_settings = lambda dim: (  # the store's choice, overridden where asked
            args.pg_m or store_graph(dim)[0], args.pg_ef_construction or store_graph(dim)[1]
        )
    rng = np.random.default_rng(args.seed)
    cache_dir = default_cache_dir()
    embedded = 0
    if len(real_seeds(cache_dir, args.model, args.seeds, required=0)) < MIN_SEEDS:
        embedded = embed_lfw_seeds(cache_dir, args.model, _data.lfw_home(args.data_home), args.lfw_seeds)
    seeds = real_seeds(cache_dir, args.model, args.seeds)
    print(json.dumps({"seeds": len(seeds), "dim": seeds.shape[1], "model": args.model, "cpu": os.cpu_count(), "seed": args.seed,
                      "lfw_photos_embedded_now": embedded}))
    for n in args.sizes:
        vectors, queries = realistic_gallery(seeds, n, args.faces_per_identity, args.queries, rng)
        if args.skip_faiss:
            rows, exact = [], exact_reference(vectors, queries)
        else:
            rows, exact = faiss_runs(vectors, queries, args.faiss_ef, args.faces_per_identity)
        if not args.skip_pgvector:
            rows += pgvector_runs(
                vectors, queries, exact, args.pg_ef, args.model, args.pg_exact_queries, args.faces_per_identity
            )
        for row in rows:
            row["dim"] = seeds.shape[1]
            print(json.dumps(row), flush=True)
            if args.out is not None:
                with args.out.open("a") as out:
                    out.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main()
