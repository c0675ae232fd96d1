"""Triplet loss in plain numpy: the loss, easy / semi-hard / hard triplets, and what mining picks.

A triplet is an anchor ``a``, a positive ``p`` (same person) and a negative ``n`` (someone else).
With distances ``d_ap = d(a, p)`` and ``d_an = d(a, n)`` the loss is ``max(d_ap - d_an + margin, 0)``
(FaceNet, Schroff et al. 2015). The triplet is

* **easy** when ``d_an >= d_ap + margin``: the negative is already far enough; the loss is 0;
* **semi-hard** when ``d_ap < d_an < d_ap + margin``: the negative is farther than the positive but
  inside the margin band; the loss is between 0 and ``margin``;
* **hard** when ``d_an <= d_ap``: the negative is at least as close as the positive; loss >= margin.

Mining chooses which triplets of a batch to learn from. *Batch-hard* (Hermans et al. 2017) takes, for
each anchor, its farthest positive and its closest negative. *Semi-hard* (FaceNet) takes, for each
anchor-positive pair, the closest negative that is still farther than the positive; when no negative
is, it falls back to the farthest negative (as TensorFlow Addons' ``TripletSemiHardLoss`` does).

The Keras losses used for training (:mod:`facecore.classroom.losses`) compute the same quantities on tensors;
the tests check that both agree.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike

from facecore.verification.metrics import pairwise_distances

TRIPLET_KINDS = ("easy", "semi-hard", "hard")


def triplet_loss(d_ap: ArrayLike, d_an: ArrayLike, margin: float) -> np.ndarray:
    """``max(d_ap - d_an + margin, 0)`` element-wise (scalars give a 0-d array)."""
    _check_margin(margin)
    return np.maximum(np.asarray(d_ap, np.float64) - np.asarray(d_an, np.float64) + margin, 0.0)


def classify_triplets(d_ap: ArrayLike, d_an: ArrayLike, margin: float) -> np.ndarray:
    """``"easy"``, ``"semi-hard"`` or ``"hard"`` per triplet (see the module docstring for the bounds)."""
    _check_margin(margin)
    ap = np.asarray(d_ap, np.float64)
    an = np.asarray(d_an, np.float64)
    # "easy" is decided on the loss itself, so a triplet is easy exactly when its loss is 0.
    loss = triplet_loss(ap, an, margin)
    kinds = np.where(an <= ap, "hard", np.where(loss > 0, "semi-hard", "easy"))
    return kinds.astype(object)


def classify_triplet(d_ap: float, d_an: float, margin: float) -> str:
    """The kind of one triplet: ``"easy"``, ``"semi-hard"`` or ``"hard"``."""
    return str(classify_triplets(d_ap, d_an, margin)[()])


def _check_margin(margin: float) -> None:
    if not np.isfinite(margin) or margin < 0:
        raise ValueError(f"margin must be a finite number >= 0, got {margin}")


def _label_masks(labels: Sequence[object] | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(positive, negative)`` boolean ``(n, n)`` masks: same label but not the same item / other label."""
    y = np.asarray(labels)
    if y.ndim != 1:
        raise ValueError(f"labels must be 1-D, got shape {y.shape}")
    same = y[:, None] == y[None, :]
    return same & ~np.eye(len(y), dtype=bool), ~same


def valid_triplets(labels: Sequence[object] | np.ndarray) -> np.ndarray:
    """Every ``(anchor, positive, negative)`` index triple of a batch, shape ``(t, 3)``."""
    positive, negative = _label_masks(labels)
    a, p, n = np.nonzero(positive[:, :, None] & negative[:, None, :])
    return np.stack([a, p, n], axis=1)


def batch_triplets(
    embeddings: ArrayLike, labels: Sequence[object] | np.ndarray, margin: float, metric: str = "euclidean"
) -> pd.DataFrame:
    """All valid triplets of a batch, one row each: anchor, positive, negative, d_ap, d_an, loss, kind."""
    distances = pairwise_distances(embeddings, metric=metric)
    if distances.shape[0] != len(labels):
        raise ValueError(f"got {distances.shape[0]} embeddings but {len(labels)} labels")
    triples = valid_triplets(labels)
    a, p, n = triples.T
    d_ap, d_an = distances[a, p], distances[a, n]
    return pd.DataFrame(
        {
            "anchor": a,
            "positive": p,
            "negative": n,
            "d_ap": d_ap,
            "d_an": d_an,
            "loss": triplet_loss(d_ap, d_an, margin),
            "kind": classify_triplets(d_ap, d_an, margin),
        }
    )


def triplet_counts(
    embeddings: ArrayLike, labels: Sequence[object] | np.ndarray, margin: float, metric: str = "euclidean"
) -> pd.Series:
    """How many of a batch's valid triplets are easy, semi-hard and hard (always all three keys)."""
    kinds = batch_triplets(embeddings, labels, margin, metric)["kind"]
    return kinds.value_counts().reindex(list(TRIPLET_KINDS), fill_value=0).astype(int)


def batch_all_loss(
    embeddings: ArrayLike, labels: Sequence[object] | np.ndarray, margin: float, metric: str = "euclidean"
) -> float:
    """The batch-all loss: the mean loss over the triplets whose loss is positive (0 when none is)."""
    losses = batch_triplets(embeddings, labels, margin, metric)["loss"].to_numpy()
    active = losses[losses > 0]
    return float(active.mean()) if active.size else 0.0


def batch_hard_triplets(
    embeddings: ArrayLike, labels: Sequence[object] | np.ndarray, margin: float, metric: str = "euclidean"
) -> pd.DataFrame:
    """Batch-hard mining: per anchor, its farthest positive and closest negative.

    One row per anchor that has at least one positive and one negative in the batch.
    """
    distances = pairwise_distances(embeddings, metric=metric)
    positive, negative = _label_masks(labels)
    anchors = np.flatnonzero(positive.any(axis=1) & negative.any(axis=1))
    far_positive = np.where(positive, distances, -np.inf)[anchors].argmax(axis=1)
    near_negative = np.where(negative, distances, np.inf)[anchors].argmin(axis=1)
    return _picked(distances, anchors, far_positive, near_negative, margin)


def semi_hard_triplets(
    embeddings: ArrayLike, labels: Sequence[object] | np.ndarray, margin: float, metric: str = "euclidean"
) -> pd.DataFrame:
    """Semi-hard mining: per anchor-positive pair, the closest negative farther than the positive.

    When every negative is at least as close as the positive, the farthest negative is taken instead
    (``fallback`` is True on those rows), following TensorFlow Addons' ``TripletSemiHardLoss``.
    """
    distances = pairwise_distances(embeddings, metric=metric)
    positive, negative = _label_masks(labels)
    anchors, positives = np.nonzero(positive & negative.any(axis=1)[:, None])
    d_ap = distances[anchors, positives]
    d_an = distances[anchors]  # (pairs, n)
    farther = negative[anchors] & (d_an > d_ap[:, None])
    closest_farther = np.where(farther, d_an, np.inf).argmin(axis=1)
    farthest = np.where(negative[anchors], d_an, -np.inf).argmax(axis=1)
    fallback = ~farther.any(axis=1)
    picked = _picked(distances, anchors, positives, np.where(fallback, farthest, closest_farther), margin)
    picked["fallback"] = fallback
    return picked


def _picked(
    distances: np.ndarray, anchors: np.ndarray, positives: np.ndarray, negatives: np.ndarray, margin: float
) -> pd.DataFrame:
    d_ap = distances[anchors, positives]
    d_an = distances[anchors, negatives]
    return pd.DataFrame(
        {
            "anchor": anchors.astype(int),
            "positive": positives.astype(int),
            "negative": negatives.astype(int),
            "d_ap": d_ap,
            "d_an": d_an,
            "loss": triplet_loss(d_ap, d_an, margin),
            "kind": classify_triplets(d_ap, d_an, margin),
        }
    )


def triangle_coordinates(d_ap: float, d_an: float, d_pn: float) -> np.ndarray:
    """2-D points for anchor, positive and negative with exactly these pairwise distances.

    The anchor sits at the origin and the positive on the x axis, so a picture of the three points
    (and of the margin band ``d_ap < r < d_ap + margin`` around the anchor) is faithful. Rows: a, p, n.
    Distances that break the triangle inequality by rounding are clipped onto it.
    """
    d_ap, d_an, d_pn = (float(v) for v in (d_ap, d_an, d_pn))
    if min(d_ap, d_an, d_pn) < 0:
        raise ValueError("distances must be >= 0")
    if d_ap == 0:
        return np.array([[0.0, 0.0], [0.0, 0.0], [d_an, 0.0]])
    x = (d_ap**2 + d_an**2 - d_pn**2) / (2 * d_ap)
    x = float(np.clip(x, -d_an, d_an))
    y = float(np.sqrt(max(d_an**2 - x**2, 0.0)))
    return np.array([[0.0, 0.0], [d_ap, 0.0], [x, y]])
