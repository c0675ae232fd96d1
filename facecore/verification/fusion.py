"""Score fusion: two models' distances for the same pairs made comparable, then combined.

Two embedders (say dlib's ResNet and ArcFace) give each pair two distances on different scales (a
euclidean distance near 0.6 for one, a cosine distance near 0.7 for the other). Two standard ways
combine them, both plain functions over arrays:

* :func:`zscore_fused`: each model's distances are standardised with a mean and standard deviation
  fitted once on pairs that are not scored (:func:`fit_zscore`, e.g. on LFW's pairsDevTrain), then
  averaged (optionally weighted). A fused distance is still "smaller means more alike", so every
  metric in :mod:`facecore.verification.metrics` (ROC, EER, k-fold accuracy) applies unchanged.
* :func:`concatenated`: each model's vectors scaled to unit length (times ``sqrt(weight)``) and
  concatenated. The squared euclidean distance of the concatenation is then the weighted sum of the
  squared euclidean distances of the parts: one vector per face, so a gallery can search it.

:class:`FusionRecipe` is the stored fusion the dashboard shows on the LFW page: which two pretrained
configurations, their z-score statistics (fitted on pairsDevTrain by ``bench/model_fusion.py --write``)
and the weights; :func:`read_fusion_recipe` reads it from ``facecore/data/fusion.json`` (None when absent).

Contract: inputs are aligned per pair (row ``i`` of every array is the same pair or face); weights
are non-negative and not all zero; nothing is fitted on the pairs being scored unless the caller
does so.

>>> import numpy as np
>>> scale = fit_zscore(np.array([0.2, 0.4, 0.6, 0.8]))
>>> tuple(round(v, 4) for v in scale)
(0.5, 0.2236)
>>> zscore_fused([np.array([0.5, 0.9]), np.array([1.0, 3.0])], [scale, (2.0, 1.0)]).round(3).tolist()
[-0.5, 1.394]
>>> concatenated([np.array([[3.0, 4.0]]), np.array([[0.0, 2.0]])]).round(3).tolist()
[[0.6, 0.8, 0.0, 1.0]]
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from numpy.typing import ArrayLike

FUSION_FILE = Path(__file__).resolve().parents[1] / "data" / "fusion.json"

#: (mean, standard deviation) of one model's distances on the fitting pairs.
ZScale = tuple[float, float]


def _weights(weights: Sequence[float] | None, n: int) -> np.ndarray:
    w = np.ones(n) if weights is None else np.asarray(weights, dtype=np.float64)
    if w.shape != (n,):
        raise ValueError(f"need one weight per model ({n}), got {w.shape[0] if w.ndim else 'a scalar'}")
    if (w < 0).any() or w.sum() <= 0:
        raise ValueError("weights must be non-negative and not all zero")
    return w / w.sum()


def fit_zscore(distances: ArrayLike) -> ZScale:
    """The mean and standard deviation of one model's distances on pairs that will not be scored."""
    d = np.asarray(distances, dtype=np.float64).ravel()
    if d.size < 2 or not np.isfinite(d).all():
        raise ValueError("fit_zscore needs at least two finite distances")
    std = float(d.std())
    if std == 0:
        raise ValueError("all distances are equal: they cannot be standardised")
    return float(d.mean()), std


def zscore_fused(
    distances: Sequence[ArrayLike], scales: Sequence[ZScale], weights: Sequence[float] | None = None
) -> np.ndarray:
    """Weighted mean of each model's standardised distances ``(d - mean) / std``, one per pair."""
    if len(distances) != len(scales) or not distances:
        raise ValueError(f"need one scale per model: {len(distances)} distance arrays, {len(scales)} scales")
    arrays = [np.asarray(d, dtype=np.float64).ravel() for d in distances]
    if len({a.size for a in arrays}) != 1:
        raise ValueError(f"every model needs a distance for every pair, got sizes {[a.size for a in arrays]}")
    w = _weights(weights, len(arrays))
    return sum(wi * (a - mean) / std for wi, a, (mean, std) in zip(w, arrays, scales, strict=True))


def concatenated(embeddings: Sequence[ArrayLike], weights: Sequence[float] | None = None) -> np.ndarray:
    """Each model's vectors at unit length times ``sqrt(weight)``, side by side: ``(n, sum of dims)``."""
    if not embeddings:
        raise ValueError("need at least one model's embeddings")
    parts = [np.asarray(e, dtype=np.float64) for e in embeddings]
    if any(p.ndim != 2 for p in parts) or len({p.shape[0] for p in parts}) != 1:
        raise ValueError(f"need (n, dim) arrays with the same n, got shapes {[p.shape for p in parts]}")
    w = _weights(weights, len(parts)) * len(parts)  # equal weights keep every part at unit length
    norms = [np.linalg.norm(p, axis=1, keepdims=True) for p in parts]
    if any((n == 0).any() for n in norms):
        raise ValueError("a zero vector has no direction: it cannot be normalised")
    return np.hstack([np.sqrt(wi) * p / n for wi, p, n in zip(w, parts, norms, strict=True)])


@dataclass(frozen=True)
class FusedModel:
    """One configuration in a fusion: what it is, and the z-score statistics of its distances."""

    embedder: str  # the registry name, e.g. "dlib-keras"
    detector: str
    metric: str
    flip_tta: bool
    mean: float
    std: float


@dataclass(frozen=True)
class FusionRecipe:
    """Two (or more) configurations fused by :func:`zscore_fused`, with the provenance of the numbers."""

    models: tuple[FusedModel, ...]
    weights: tuple[float, ...]
    fitted_on: str  # the pairs the statistics came from, e.g. "LFW pairsDevTrain (View 1)"
    command: str

    def fuse(self, distances: Sequence[ArrayLike]) -> np.ndarray:
        """The fused distance of each pair, from each model's distances in :attr:`models` order."""
        return zscore_fused(distances, [(m.mean, m.std) for m in self.models], self.weights)


def write_fusion_recipe(recipe: FusionRecipe, path: Path = FUSION_FILE) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(asdict(recipe), indent=1) + "\n")


def read_fusion_recipe(path: Path = FUSION_FILE) -> FusionRecipe | None:
    """The stored recipe, or None when there is none."""
    if not path.exists():
        return None
    raw = json.loads(path.read_text())
    models = tuple(FusedModel(**m) for m in raw.pop("models"))
    return FusionRecipe(models=models, weights=tuple(raw.pop("weights")), **raw)
