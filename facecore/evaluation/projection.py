"""Embeddings projected to 2-D or 3-D for a picture: PCA, t-SNE (scikit-learn) and UMAP (umap-learn).

UMAP is optional: ``umap-learn`` pulls in numba, whose first call compiles for 10 to 30 s; the
import happens only when UMAP is asked for, and :func:`umap_available` says whether it can be.
"""

from __future__ import annotations

import importlib.util

import numpy as np
from sklearn.decomposition import PCA
from sklearn.manifold import TSNE

METHODS = ("PCA", "t-SNE", "UMAP")

#: What each picture means, in two sentences, for the page to show beside it.
EXPLANATIONS = {
    "PCA": (
        "PCA rotates the 128-D embeddings and keeps the directions of largest spread, so distances "
        "in the picture are true distances squashed flat (far apart here means far apart in 128-D, "
        "near here may still be far). Tight, separate clouds per colour mean the model keeps "
        "identities apart along its main directions."
    ),
    "t-SNE": (
        "t-SNE places faces so that each one's nearest neighbours in 128-D stay its neighbours here, "
        "keeping only local structure (cluster sizes and gaps mean little). A colour split into several islands, or two colours sharing one, shows faces the model confuses."
    ),
    "UMAP": (
        "UMAP, like t-SNE, keeps each face's nearest neighbours together, and keeps somewhat more of the "
        "global layout (which clusters are near each other). Distances inside the picture are still "
        "not the model's distances: read it as 'who is next to whom'."
    ),
}


def umap_available() -> bool:
    """Whether ``umap-learn`` is installed (it is imported only when UMAP is actually used)."""
    return importlib.util.find_spec("umap") is not None


def available_methods() -> list[str]:
    return [m for m in METHODS if m != "UMAP" or umap_available()]


def _check(embeddings: np.ndarray, n_components: int) -> np.ndarray:
    x = np.asarray(embeddings, dtype=np.float64)
    if x.ndim != 2:
        raise ValueError(f"embeddings must be a 2-D array, got shape {x.shape}")
    if n_components not in (2, 3):
        raise ValueError(f"n_components must be 2 or 3, got {n_components}")
    if x.shape[0] < n_components + 1:
        raise ValueError(f"need at least {n_components + 1} faces to project to {n_components}-D, got {x.shape[0]}")
    if not np.isfinite(x).all():
        raise ValueError("embeddings contain NaN or infinite values")
    return x


def project(embeddings: np.ndarray, method: str = "PCA", n_components: int = 2, *, seed: int = 0) -> np.ndarray:
    """``(n, n_components)`` coordinates of the rows of ``embeddings``; deterministic for a ``seed``."""
    x = _check(embeddings, n_components)
    n = x.shape[0]
    if method == "PCA":
        return PCA(n_components=n_components, random_state=seed).fit_transform(x)
    if method == "t-SNE":
        # Perplexity must stay below the number of points; 30 is sklearn's default for larger sets.
        perplexity = float(min(30.0, max(2.0, (n - 1) / 3)))
        # 500 iterations (250 of early exaggeration, then 250) settle the picture of a few thousand
        # faces; sklearn's 1,000 double the time for changes the eye does not see.
        tsne = TSNE(
            n_components=n_components, perplexity=perplexity, init="pca", max_iter=500, random_state=seed
        )
        return tsne.fit_transform(x)
    if method == "UMAP":
        if not umap_available():
            raise ValueError("UMAP needs the umap-learn package (pip install umap-learn); use PCA or t-SNE")
        import umap  # noqa: PLC0415  (slow import: numba)

        reducer = umap.UMAP(
            n_components=n_components, n_neighbors=min(15, n - 1), random_state=seed, n_jobs=1
        )
        return np.asarray(reducer.fit_transform(x))
    raise ValueError(f"unknown projection {method!r}; choose one of {', '.join(METHODS)}")


def explained_variance(embeddings: np.ndarray, n_components: int = 2) -> np.ndarray:
    """Share of the variance each PCA component keeps (for the axis titles)."""
    x = _check(embeddings, n_components)
    return PCA(n_components=n_components).fit(x).explained_variance_ratio_
