"""Approximate search for large embedded galleries: a FAISS HNSW graph in place of the exact scan.

A model version's index is exact (``IndexFlatL2``) until it holds ``HNSW_MIN_FACES`` faces; from then
on :mod:`facecore.gallery.index` keeps an ``IndexHNSWFlat`` (``HNSW_M`` links per node, built with
``EF_CONSTRUCTION``) inside the same ``IndexIDMap2`` keyed by face id. Both numbers and the search's
:func:`ef_search` are chosen in ``bench/gallery_scale.py`` (docs/benchmarks.md gives the recall and the
latency they buy). An HNSW graph cannot drop a node, so deleted faces are filtered out at search time
(an ``IDSelector``) until they are more than ``REBUILD_FRACTION`` of the index, when it is rebuilt.

Exact search stays available: ``exact=True`` scans the HNSW index's own flat storage (the same
vectors) with the same filter, and ``FACECORE_FAISS_HNSW_MIN_FACES=0`` (or a huge value) turns the
switch off.
"""

from __future__ import annotations

import os
from typing import Any

import faiss
import numpy as np

#: Exact search grows linearly (measured p50: 0.17 ms at 5k, 0.3 ms at 10k, 0.57 ms at 20k, 15 ms at 100k
#: on a loaded 2-core machine; docs/results/gallery_cutoffs.json); HNSW stays near 0.1 to 0.2 ms. Building
#: the graph takes 4 to 8 s at 20k (one thread).
HNSW_MIN_FACES = int(os.environ.get("FACECORE_FAISS_HNSW_MIN_FACES", "20000"))
HNSW_M = 32
EF_CONSTRUCTION = 80
#: ``$FACECORE_FAISS_EF_SEARCH``: one efSearch for every vector size, in place of :func:`ef_search`'s.
EF_SEARCH: int | None = int(os.environ["FACECORE_FAISS_EF_SEARCH"]) if os.environ.get("FACECORE_FAISS_EF_SEARCH") else None
REBUILD_FRACTION = 0.1


def ef_search(dim: int) -> int:
    """The HNSW candidate list per query for ``dim``-D vectors: 128 up to 256-D, 256 above (``EF_SEARCH``
    when set).

    Chosen at 1M faces (bench/gallery_scale.py, generator seeds 0 and 1; docs/benchmarks.md), the
    smallest value with recall@1 >= 0.99 on every gallery: 128-D vectors reach 1.0 with 64 and 128
    (0.10 / 0.14 ms); 512-D ArcFace vectors need more (64: 0.987; 128: 1.0 and 0.98; 192: 0.99;
    256: 0.9933 at 0.49 ms). Both were then checked on a fresh gallery (seed 2).

    >>> ef_search(128), ef_search(512)
    (128, 256)
    """
    if EF_SEARCH is not None:
        return EF_SEARCH
    return 128 if dim <= 256 else 256


def wants_hnsw(count: int) -> bool:
    """Whether an index of ``count`` faces should be approximate."""
    return 0 < HNSW_MIN_FACES <= count


def is_hnsw(index: Any) -> bool:
    return isinstance(faiss.downcast_index(index.index), faiss.IndexHNSWFlat)


def new_hnsw(ids: np.ndarray, vectors: np.ndarray) -> Any:
    """An HNSW index of ``vectors`` keyed by ``ids``."""
    inner = faiss.IndexHNSWFlat(vectors.shape[1], HNSW_M)
    inner.hnsw.efConstruction = EF_CONSTRUCTION
    index = faiss.IndexIDMap2(inner)
    if len(ids):
        index.add_with_ids(np.ascontiguousarray(vectors, np.float32), np.ascontiguousarray(ids, np.int64))
    return index


def all_vectors(index: Any) -> np.ndarray:
    """Every vector in ``index`` (flat or HNSW), in insertion order (the order of its id map)."""
    return index.index.reconstruct_n(0, index.ntotal) if index.ntotal else np.zeros((0, index.d), np.float32)


def search(
    index: Any, query: np.ndarray, k: int, removed: np.ndarray, *, exact: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """``(squared distances, face ids)`` of the ``k`` nearest live faces (``removed`` ids skipped)."""
    # FAISS keeps raw pointers to selectors: every one stays in a local variable until the search is done.
    batch = faiss.IDSelectorBatch(removed) if removed.size else None
    selector = faiss.IDSelectorNot(batch) if batch is not None else None
    inner = faiss.downcast_index(index.index)
    if exact and isinstance(inner, faiss.IndexHNSWFlat):
        internal = position_batch = position_selector = None
        if selector is not None:  # the storage is keyed by position: translate the removed ids
            positions = np.flatnonzero(np.isin(faiss.vector_to_array(index.id_map), removed)).astype(np.int64)
            position_batch = faiss.IDSelectorBatch(positions)
            position_selector = faiss.IDSelectorNot(position_batch)
            internal = faiss.SearchParameters(sel=position_selector)
        squared, found = inner.storage.search(query, k, params=internal)
        id_map = faiss.vector_to_array(index.id_map)
        return squared, np.where(found >= 0, id_map[np.maximum(found, 0)], -1)
    if isinstance(inner, faiss.IndexHNSWFlat):
        params = faiss.SearchParametersHNSW(efSearch=max(ef_search(index.d), k))
        if selector is not None:
            params.sel = selector
    else:
        params = faiss.SearchParameters(sel=selector) if selector is not None else None
    return index.search(query, k, params=params)
