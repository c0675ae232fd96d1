"""Nearest faces in SQL with pgvector: exact scans for small galleries, an HNSW index past a size.

Vectors live in one ``faces.embedding vector`` column whatever their size; each model version keeps
one size, so a search casts to ``vector(dim)`` and filters on the model version, which is exactly
the shape of the partial HNSW index made per model version once it holds ``HNSW_MIN_FACES`` faces::

    CREATE INDEX faces_hnsw_<sha256(model)[:16]> ON faces
        USING hnsw ((embedding::vector(dim)) vector_l2_ops) WHERE model_version = '<model>'

Distances are L2 (``<->``), as in the embedded store. No ``vector_cosine_ops`` index is needed for
the cosine metric: the models whose threshold is cosine (ArcFace, ``-l2`` in its version) store
unit-length vectors, for which ``|a - b|^2 = 2 - 2 cos(a, b)``, so the L2 order is the cosine order.

``hnsw.ef_search`` is set per query to ``EF_SEARCH`` (at least ``k``); the graph's shape depends on
the vectors' size (:func:`graph_settings`). These numbers are measured in ``bench/gallery_scale.py``
and recorded in ``docs/benchmarks.md``. Below ``HNSW_MIN_FACES`` the planner scans, which is exact.
"""

from __future__ import annotations

import contextlib
import hashlib
import os

import numpy as np
import psycopg
from pgvector import Vector
from psycopg import sql

from facecore.gallery.pg_database import PgConnection

#: Faces of one model version past which an HNSW index is built: the exact scan's p50 is 5.5 ms at 2k,
#: 21 ms at 10k and 102 ms at 100k faces, HNSW's 2 to 10 ms (bench/gallery_scale.py, docs/benchmarks.md).
HNSW_MIN_FACES = int(os.environ.get("FACECORE_PG_HNSW_MIN_FACES", "5000"))
#: The HNSW candidate list per query. recall@1 for 128-D vectors at 100k faces: 0.9967 with 40 or 100,
#: 1.0 with 200; at 1M: 0.94 with 40, 0.97 with 100, 0.99 with 200 (p50 2.9 ms); 512-D at 1M with
#: graph_settings' denser graph: 0.9967 with 200 (p50 3.4 to 3.7 ms). pgvector's default, 40, gave 0.73
#: on random vectors in the issue. 200 keeps recall@1 >= 0.99 up to 1M faces for both sizes.
EF_SEARCH = int(os.environ.get("FACECORE_PG_EF_SEARCH", "200"))
#: ``maintenance_work_mem`` for the index build. pgvector builds the graph in memory while it fits and
#: then goes on far more slowly; the index is about 0.8 GB per million 128-D faces and 2.7 GB per
#: million 512-D ones (docs/benchmarks.md), so a gallery of millions of 512-D faces wants more than 1 GB.
BUILD_MEMORY = os.environ.get("FACECORE_PG_BUILD_MEMORY", "1GB")


def graph_settings(dim: int) -> tuple[int, int]:
    """``(m, ef_construction)``, the graph's links per node and its build-time candidate list, for
    ``dim``-D vectors: pgvector's defaults (16, 64) up to 256-D, (32, 128) above.

    Measured at 1M faces (bench/gallery_scale.py, docs/benchmarks.md): 128-D vectors reach recall@1
    0.99 at ef_search 200 with the defaults (6-minute build); 512-D vectors only 0.92 (0.95 at 400),
    and 0.9967 at 200 with (32, 128), whose build takes about twice as long (11 minutes).

    >>> graph_settings(128), graph_settings(512)
    ((16, 64), (32, 128))
    """
    return (16, 64) if dim <= 256 else (32, 128)


def index_name(model_version: str) -> str:
    return f"faces_hnsw_{hashlib.sha256(model_version.encode()).hexdigest()[:16]}"


def stored_dimension(db: PgConnection, model_version: str) -> int | None:
    """The embedding size of ``model_version`` in the gallery (None when it has no face)."""
    row = db.execute(
        "SELECT vector_dims(embedding) FROM faces WHERE model_version = ? LIMIT 1", (model_version,)
    ).fetchone()
    return None if row is None else int(row[0])


def nearest(
    db: PgConnection, query: np.ndarray, k: int, model_version: str, dim: int, *, exact: bool = False
) -> list[tuple[int, int, str, float]]:
    """``(face id, person id, name, L2 distance)`` of the ``k`` nearest faces, nearest first.

    Call inside a transaction (``SET LOCAL`` lasts until its end). ``exact`` forbids the index scan.
    """
    db.execute(f"SET LOCAL hnsw.ef_search = {max(EF_SEARCH, int(k))}")
    if exact:
        db.execute("SET LOCAL enable_indexscan = off")
    rows = db.raw.execute(
        sql.SQL(
            "SELECT f.id, f.person_id, p.name, f.distance FROM ("
            " SELECT id, person_id, embedding::vector({dim}) <-> %s::vector({dim}) AS distance"
            " FROM faces WHERE model_version = %s ORDER BY distance LIMIT %s"
            ") f JOIN people p ON p.id = f.person_id ORDER BY f.distance, f.id"
        ).format(dim=sql.Literal(dim)),
        (Vector(query), model_version, int(k)),
    ).fetchall()
    return [(int(a), int(b), str(c), float(d)) for a, b, c, d in rows]


def has_index(db: PgConnection, model_version: str) -> bool:
    return db.execute("SELECT to_regclass(?) IS NOT NULL", (index_name(model_version),)).fetchone()[0]


def ensure_index(db: PgConnection, model_version: str, *, min_faces: int | None = None) -> bool:
    """Build the HNSW index of ``model_version`` if it holds ``min_faces`` (default :data:`HNSW_MIN_FACES`)
    faces and has none yet.

    Run outside a transaction (autocommit). The build's memory (:data:`BUILD_MEMORY`) is set for the
    build only: the connection goes back to its pool with the server's own setting. Returns whether an
    index exists afterwards.
    """
    if has_index(db, model_version):
        return True
    dim = stored_dimension(db, model_version)
    count = db.execute("SELECT COUNT(*) FROM faces WHERE model_version = ?", (model_version,)).fetchone()[0]
    if dim is None or count < (HNSW_MIN_FACES if min_faces is None else min_faces):
        return False
    try:
        _build_index(db, model_version, dim)
    finally:
        db.execute("RESET maintenance_work_mem")
    db.execute("ANALYZE faces")  # so that the planner knows the table is now large enough to use it
    return True


def _build_index(db: PgConnection, model_version: str, dim: int) -> None:
    db.execute("SELECT set_config('maintenance_work_mem', ?, false)", (BUILD_MEMORY,))
    m, ef_construction = graph_settings(dim)
    statement = sql.SQL(
        "CREATE INDEX IF NOT EXISTS {name} ON faces USING hnsw ((embedding::vector({dim})) vector_l2_ops) "
        "WITH (m = {m}, ef_construction = {ef}) WHERE model_version = {model}"
    ).format(
        name=sql.Identifier(index_name(model_version)),
        dim=sql.Literal(dim),
        m=sql.Literal(m),
        ef=sql.Literal(ef_construction),
        model=sql.Literal(model_version),
    )
    with contextlib.suppress(psycopg.errors.UniqueViolation):  # another process built it at the same moment
        db.raw.execute(statement)


def drop_index(db: PgConnection, model_version: str) -> None:
    db.raw.execute(sql.SQL("DROP INDEX IF EXISTS {}").format(sql.Identifier(index_name(model_version))))
