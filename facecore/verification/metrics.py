"""Distances between embeddings and the verification metrics built on them.

Conventions, shared by every function here (and by the dashboard):

* a *distance* per pair; smaller means more alike;
* the decision is "same person" iff ``distance <= threshold``;
* ``same`` is a boolean array, ``True`` for a genuine pair (same person), ``False`` for an impostor pair.

FAR (false accept rate) is the share of impostor pairs accepted, FRR (false reject rate) the share of
genuine pairs rejected and TAR = 1 - FRR. scikit-learn scores are "larger = more positive", so the ROC is
computed on ``-distance`` and its thresholds are turned back into distances.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike
from sklearn import metrics as skm
from sklearn.model_selection import KFold, PredefinedSplit
from sklearn.preprocessing import normalize

METRICS = ("euclidean", "sqeuclidean", "cosine", "l1")

#: Default number of evenly spaced thresholds in :func:`threshold_sweep`.
SWEEP_POINTS = 200


# --------------------------------------------------------------------------------------------------------
# Distances
# --------------------------------------------------------------------------------------------------------


def _check_metric(metric: str) -> None:
    if metric not in METRICS:
        raise ValueError(f"unknown metric {metric!r}; expected one of {', '.join(METRICS)}")


def _as_vectors(x: ArrayLike, name: str) -> np.ndarray:
    """A 2-D float64 array of row vectors (a single 1-D vector becomes one row)."""
    arr = np.asarray(x, dtype=np.float64)
    if arr.ndim == 1:
        arr = arr[np.newaxis, :]
    if arr.ndim != 2:
        raise ValueError(f"{name} must be a 2-D array of row vectors, got shape {arr.shape}")
    if not np.isfinite(arr).all():
        raise ValueError(f"{name} contains NaN or infinite values")
    return arr


def pairwise_distances(a: ArrayLike, b: ArrayLike | None = None, metric: str = "euclidean") -> np.ndarray:
    """All distances between the rows of ``a`` and of ``b`` (``a`` with itself when ``b`` is None).

    Returns an ``(n, m)`` float64 array. Batched through scikit-learn (BLAS for euclidean), so a probe
    against a whole gallery is one call. With ``b=None`` the result is exactly symmetric with a zero
    diagonal, which the gallery and clustering code rely on.
    """
    _check_metric(metric)
    x = _as_vectors(a, "a")
    y = None if b is None else _as_vectors(b, "b")
    if y is not None and x.shape[1] != y.shape[1]:
        raise ValueError(f"a and b must have the same number of columns, got {x.shape[1]} and {y.shape[1]}")
    if x.shape[0] == 0 or (y is not None and y.shape[0] == 0):
        return np.zeros((x.shape[0], x.shape[0] if y is None else y.shape[0]))
    if metric == "sqeuclidean":
        d = skm.pairwise.euclidean_distances(x, y, squared=True)
    else:
        d = skm.pairwise_distances(x, y, metric="manhattan" if metric == "l1" else metric)
    d = np.asarray(d, dtype=np.float64)
    if metric == "cosine":
        np.clip(d, 0.0, 2.0, out=d)
    if y is None:
        # BLAS does not promise a bit-for-bit symmetric X @ X.T; make it so.
        d = (d + d.T) / 2
        np.fill_diagonal(d, 0.0)
    return d


def paired_distances(a: ArrayLike, b: ArrayLike, metric: str = "euclidean") -> np.ndarray:
    """Row-wise distances ``d(a[i], b[i])``, shape ``(n,)``: one distance per verification pair.

    Computed directly on the differences (no dot-product trick), so identical rows give exactly 0 and
    the values agree with :func:`pairwise_distances` up to floating-point rounding.
    """
    _check_metric(metric)
    x = _as_vectors(a, "a")
    y = _as_vectors(b, "b")
    if x.shape != y.shape:
        raise ValueError(f"a and b must have the same shape, got {x.shape} and {y.shape}")
    if metric == "cosine":
        # Like sklearn's cosine_distances: a zero vector has similarity 0 with everything.
        return np.clip(1.0 - np.einsum("ij,ij->i", normalize(x), normalize(y)), 0.0, 2.0)
    diff = x - y
    if metric == "l1":
        return np.abs(diff).sum(axis=1)
    squared = np.einsum("ij,ij->i", diff, diff)
    return squared if metric == "sqeuclidean" else np.sqrt(squared)


# --------------------------------------------------------------------------------------------------------
# Input checks and counting
# --------------------------------------------------------------------------------------------------------


def _check_pairs(distances: ArrayLike, same: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """Validated ``(distances float64, same bool)`` 1-D arrays of equal length."""
    d = np.asarray(distances, dtype=np.float64)
    y = np.asarray(same)
    if d.ndim != 1 or y.ndim != 1:
        raise ValueError(f"distances and same must be 1-D, got shapes {d.shape} and {y.shape}")
    if d.shape != y.shape:
        raise ValueError(f"distances and same must have the same length, got {d.size} and {y.size}")
    if d.size == 0:
        raise ValueError("need at least one pair")
    if not np.isfinite(d).all():
        raise ValueError("distances contain NaN or infinite values")
    if y.dtype != bool:
        if not np.isin(y, (0, 1)).all():
            raise ValueError("same must be boolean (True = genuine pair) or 0/1")
        y = y.astype(bool)
    return d, y


def _require_both_classes(same: np.ndarray) -> None:
    if same.all() or not same.any():
        raise ValueError("need both genuine (same=True) and impostor (same=False) pairs")


def _ratio(num: np.ndarray, den: int) -> np.ndarray:
    """``num / den`` as float, NaN when there is nothing to divide by (e.g. FAR with no impostors)."""
    num = np.asarray(num, dtype=np.float64)
    return num / den if den else np.full_like(num, np.nan)


def _counts(d: np.ndarray, y: np.ndarray, thresholds: np.ndarray) -> dict[str, np.ndarray]:
    """Confusion counts and rates at every threshold at once (binary search in the sorted distances)."""
    genuine = np.sort(d[y])
    impostor = np.sort(d[~y])
    tp = np.searchsorted(genuine, thresholds, side="right")
    fp = np.searchsorted(impostor, thresholds, side="right")
    fn = genuine.size - tp
    tn = impostor.size - fp
    return {
        "threshold": thresholds.astype(np.float64),
        "far": _ratio(fp, impostor.size),
        "frr": _ratio(fn, genuine.size),
        "tar": _ratio(tp, genuine.size),
        "accuracy": (tp + tn) / d.size,
        "tp": tp,
        "fp": fp,
        "tn": tn,
        "fn": fn,
    }


# --------------------------------------------------------------------------------------------------------
# Operating points
# --------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Rates:
    """Error rates and confusion counts of the decision ``distance <= threshold``."""

    threshold: float
    far: float
    frr: float
    tar: float
    accuracy: float
    tp: int
    fp: int
    tn: int
    fn: int

    def as_dict(self) -> dict[str, float | int]:
        return asdict(self)


def rates_at_threshold(distances: ArrayLike, same: ArrayLike, threshold: float) -> Rates:
    """FAR, FRR, TAR, accuracy and counts at one threshold (FAR/FRR are NaN if a class is absent)."""
    d, y = _check_pairs(distances, same)
    c = _counts(d, y, np.array([threshold], dtype=np.float64))
    return Rates(
        threshold=float(threshold),
        **{k: float(c[k][0]) for k in ("far", "frr", "tar", "accuracy")},
        **{k: int(c[k][0]) for k in ("tp", "fp", "tn", "fn")},
    )


def roc(
    distances: ArrayLike, same: ArrayLike, drop_intermediate: bool = False
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The ROC curve as ``(far, tar, thresholds)`` with thresholds as distances, ascending.

    Built with :func:`sklearn.metrics.roc_curve` on ``-distance``. sklearn's first threshold (``+inf``,
    "accept nothing") becomes the largest float below the smallest distance, so every returned threshold
    is finite and ``rates_at_threshold`` reproduces each point exactly.
    """
    d, y = _check_pairs(distances, same)
    _require_both_classes(y)
    far, tar, scores = skm.roc_curve(y, -d, drop_intermediate=drop_intermediate)
    thresholds = -scores
    thresholds[0] = np.nextafter(d.min(), -np.inf)
    return far, tar, thresholds


def roc_auc(distances: ArrayLike, same: ArrayLike) -> float:
    """Area under the ROC curve: the chance a random genuine pair is closer than a random impostor pair."""
    d, y = _check_pairs(distances, same)
    _require_both_classes(y)
    return float(skm.roc_auc_score(y, -d))


def equal_error_rate(distances: ArrayLike, same: ArrayLike) -> tuple[float, float]:
    """``(eer, threshold)`` where FAR = FRR, linearly interpolated between the two ROC points around it.

    The ROC starts at FAR=0, FRR=1 and ends at FAR=1, FRR=0, so the crossing always exists.
    """
    far, tar, thresholds = roc(distances, same)
    gap = far - (1.0 - tar)  # FAR - FRR: rises from -1 to +1 along the curve
    i = int(np.argmax(gap >= 0))
    t = gap[i - 1] / (gap[i - 1] - gap[i])
    eer = far[i - 1] + t * (far[i] - far[i - 1])
    threshold = thresholds[i - 1] + t * (thresholds[i] - thresholds[i - 1])
    return float(eer), float(threshold)


def tar_at_far(distances: ArrayLike, same: ArrayLike, far_target: float) -> tuple[float, float]:
    """``(tar, threshold)``: the highest TAR whose FAR does not exceed ``far_target``.

    Among thresholds reaching that TAR the smallest (lowest FAR) is returned; it is one of the observed
    distances, or just below the smallest one when no threshold keeps FAR low enough to accept anything.
    """
    if not 0.0 <= far_target <= 1.0:
        raise ValueError(f"far_target must be in [0, 1], got {far_target}")
    far, tar, thresholds = roc(distances, same)
    allowed = np.where(far <= far_target, tar, -1.0)
    i = int(np.argmax(allowed))
    return float(tar[i]), float(thresholds[i])


def best_accuracy_threshold(distances: ArrayLike, same: ArrayLike) -> float:
    """The threshold with the highest accuracy, in O(n log n).

    Candidates are the midpoints between consecutive distinct distances (plus one just outside each end),
    so the threshold sits in the gap rather than on a training point and generalises to unseen pairs.
    Ties go to the smallest threshold.
    """
    d, y = _check_pairs(distances, same)
    values, inverse = np.unique(d, return_inverse=True)
    genuine_le = np.cumsum(np.bincount(inverse, weights=y, minlength=values.size))
    impostor_le = np.cumsum(np.bincount(inverse, weights=~y, minlength=values.size))
    n_impostor = impostor_le[-1]
    # correct[k] = pairs classified right with the threshold just above values[k-1] (k=0: below all).
    correct = np.concatenate(([n_impostor], genuine_le + n_impostor - impostor_le))
    gaps = np.diff(values)
    pad = gaps.mean() / 2 if gaps.size else 0.5
    mids = values[:-1] + gaps / 2
    # Between adjacent floats the midpoint can round up onto the next value; stay on the lower one then.
    mids = np.where(mids < values[1:], mids, values[:-1])
    below = min(values[0] - pad, np.nextafter(values[0], -np.inf))
    candidates = np.concatenate(([below], mids, [values[-1] + pad]))
    return float(candidates[int(np.argmax(correct))])


def threshold_sweep(
    distances: ArrayLike, same: ArrayLike, thresholds: ArrayLike | None = None
) -> pd.DataFrame:
    """Rates at many thresholds, one row each: threshold, far, frr, tar, accuracy, tp, fp, tn, fn.

    By default :data:`SWEEP_POINTS` evenly spaced thresholds across the distance range plus the EER
    threshold, so a slider over the table always has the EER point on it.
    """
    d, y = _check_pairs(distances, same)
    if thresholds is None:
        grid = np.linspace(d.min(), d.max(), SWEEP_POINTS)
        if y.any() and not y.all():
            grid = np.append(grid, equal_error_rate(d, y)[1])
        t = np.unique(grid)
    else:
        t = np.asarray(thresholds, dtype=np.float64).ravel()
    return pd.DataFrame(_counts(d, y, t))


# --------------------------------------------------------------------------------------------------------
# The LFW protocol
# --------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class KFoldResult:
    """Outcome of :func:`kfold_verification`.

    ``accuracy``/``accuracy_std`` are the mean and (population) standard deviation of the per-fold
    accuracies; ``auc``, ``eer`` and ``tar_at_far_1e3`` are computed on all pairs pooled, since they
    need no threshold.
    """

    accuracy: float
    accuracy_std: float
    fold_accuracies: np.ndarray
    fold_thresholds: np.ndarray
    threshold: float
    auc: float
    eer: float
    eer_threshold: float
    tar_at_far_1e3: float

    @property
    def standard_error(self) -> float:
        """Standard error of the mean accuracy as the LFW README defines it (sample std / sqrt(folds))."""
        n = self.fold_accuracies.size
        return float(np.std(self.fold_accuracies, ddof=1) / np.sqrt(n)) if n > 1 else float("nan")

    def as_dict(self) -> dict[str, float]:
        """The headline numbers as plain floats, ready for JSON."""
        return {
            "accuracy": float(self.accuracy),
            "accuracy_std": float(self.accuracy_std),
            "auc": float(self.auc),
            "eer": float(self.eer),
            "tar_at_far_1e-3": float(self.tar_at_far_1e3),
            "threshold": float(self.threshold),
        }


def kfold_verification(
    distances: ArrayLike, same: ArrayLike, folds: np.ndarray | Sequence[int] | None = None, n_folds: int = 10
) -> KFoldResult:
    """Accuracy under the LFW protocol: each fold is scored with a threshold tuned on the other folds.

    ``folds`` gives a fold id per pair (as in LFW's pairs.txt; -1 keeps a pair in training only, as in
    sklearn's ``PredefinedSplit``); without it the pairs are split in order into ``n_folds`` contiguous
    folds (sklearn ``KFold``, no shuffling). The threshold is never fitted on
    the fold it is tested on, so the accuracy is an honest estimate.
    """
    d, y = _check_pairs(distances, same)
    _require_both_classes(y)
    if folds is None:
        splitter: KFold | PredefinedSplit = KFold(n_splits=n_folds, shuffle=False)
    else:
        fold_ids = np.asarray(folds)
        if fold_ids.shape != d.shape:
            raise ValueError(
                f"folds must have one id per pair, got shape {fold_ids.shape} for {d.size} pairs"
            )
        if np.unique(fold_ids).size < 2:
            raise ValueError("folds must contain at least two distinct fold ids")
        splitter = PredefinedSplit(fold_ids)
    accuracies, thresholds = [], []
    for train, test in splitter.split(d):
        threshold = best_accuracy_threshold(d[train], y[train])
        thresholds.append(threshold)
        accuracies.append(rates_at_threshold(d[test], y[test], threshold).accuracy)
    fold_accuracies = np.asarray(accuracies)
    eer, eer_threshold = equal_error_rate(d, y)
    return KFoldResult(
        accuracy=float(fold_accuracies.mean()),
        accuracy_std=float(fold_accuracies.std()),
        fold_accuracies=fold_accuracies,
        fold_thresholds=np.asarray(thresholds),
        threshold=float(np.mean(thresholds)),
        auc=roc_auc(d, y),
        eer=eer,
        eer_threshold=eer_threshold,
        tar_at_far_1e3=tar_at_far(d, y, 1e-3)[0],
    )


def bootstrap_ci(
    distances: ArrayLike,
    same: ArrayLike,
    statistic: Callable[[np.ndarray, np.ndarray], float],
    n_boot: int = 1000,
    alpha: float = 0.05,
    seed: int = 0,
) -> tuple[float, float]:
    """Percentile bootstrap ``(low, high)`` interval of ``statistic(distances, same)``.

    Genuine and impostor pairs are resampled separately, so every replicate keeps the class balance and
    both classes (which ROC-based statistics need). Deterministic for a given ``seed``.
    """
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must be in (0, 1), got {alpha}")
    if n_boot < 1:
        raise ValueError(f"n_boot must be positive, got {n_boot}")
    d, y = _check_pairs(distances, same)
    rng = np.random.default_rng(seed)
    groups = [np.flatnonzero(y), np.flatnonzero(~y)]
    values = np.empty(n_boot)
    for b in range(n_boot):
        idx = np.concatenate([rng.choice(g, size=g.size) for g in groups if g.size])
        values[b] = statistic(d[idx], y[idx])
    low, high = np.nanquantile(values, [alpha / 2, 1 - alpha / 2])
    return float(low), float(high)


#: Columns of :func:`bootstrap_procedure`, one row per resample.
PROCEDURE_COLUMNS = ("threshold", "far", "frr", "tar", "accuracy", "n_out_of_bag")


def bootstrap_procedure(distances: ArrayLike, same: ArrayLike, n_boot: int = 1000, seed: int = 0) -> pd.DataFrame:
    """The whole procedure "choose the threshold of best accuracy, then use it", once per bootstrap resample.

    Each resample draws the genuine and the impostor pairs separately with replacement (the same
    resamples as :func:`bootstrap_ci` with the same ``seed``), chooses the threshold on the resample
    with :func:`best_accuracy_threshold`, and scores that threshold on the pairs *not drawn* in that
    resample (out-of-bag, about 36.8% of each class). One row per resample, columns
    :data:`PROCEDURE_COLUMNS`: the chosen threshold, the out-of-bag FAR, FRR, TAR and accuracy
    (NaN where the out-of-bag pairs lack the class a rate needs, all NaN when none are left out) and
    how many pairs were out of bag. Percentiles of a column are the interval of the procedure;
    its mean is the out-of-bag ("leave-one-out bootstrap") estimate of the procedure's accuracy.

    Why out-of-bag rather than the accuracy on the resample itself: the best accuracy on the pairs
    the threshold was chosen on is optimistic, and to first order it does not move when the chosen
    threshold does (at the best threshold the accuracy is flat), so it would hide exactly the
    uncertainty of choosing the threshold. Scored on pairs it has not seen, a badly chosen threshold
    costs accuracy, as it would on new pairs. The price: each score rests on about 37% of the pairs,
    so the interval is, if anything, wider than that of the procedure tested on all n pairs.

    >>> d = np.array([0.1, 0.2, 0.3, 0.4, 0.7, 0.8, 0.9, 1.0])
    >>> same = np.array([True] * 4 + [False] * 4)
    >>> runs = bootstrap_procedure(d, same, n_boot=50, seed=0)
    >>> runs.shape, bool(runs["threshold"].between(0.4, 0.7).all()), float(runs["accuracy"].min())
    ((50, 6), True, 1.0)
    """
    if n_boot < 1:
        raise ValueError(f"n_boot must be positive, got {n_boot}")
    d, y = _check_pairs(distances, same)
    _require_both_classes(y)
    rng = np.random.default_rng(seed)
    groups = [np.flatnonzero(y), np.flatnonzero(~y)]
    rows = np.full((n_boot, len(PROCEDURE_COLUMNS)), np.nan)
    out = np.empty(d.size, dtype=bool)
    for b in range(n_boot):
        idx = np.concatenate([rng.choice(g, size=g.size) for g in groups])
        threshold = best_accuracy_threshold(d[idx], y[idx])
        out.fill(True)
        out[idx] = False
        n_out = int(out.sum())
        rows[b, 0], rows[b, 5] = threshold, n_out
        if n_out:
            c = _counts(d[out], y[out], np.array([threshold]))
            rows[b, 1:5] = [c[k][0] for k in ("far", "frr", "tar", "accuracy")]
    table = pd.DataFrame(rows, columns=list(PROCEDURE_COLUMNS))
    return table.astype({"n_out_of_bag": int})
