"""Metrics turned into the tables and orderings the analysis pages show (UI-free).

Every function takes plain arrays (distances, genuine/impostor labels, embeddings) and returns
numpy arrays or pandas tables, so the pages only lay them out and the tests check them directly.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.cluster.hierarchy import leaves_list, linkage, optimal_leaf_ordering
from scipy.spatial.distance import squareform

from facecore.verification.decisions import accepts
from facecore.verification.metrics import (
    bootstrap_ci,
    bootstrap_procedure,
    equal_error_rate,
    pairwise_distances,
    rates_at_threshold,
    roc_auc,
    tar_at_far,
)
from facecore.verification.thresholds import Calibration

#: The FAR targets of the operating-points table (10%, 1%, 0.1%).
FAR_TARGETS = (0.1, 0.01, 0.001)

# --------------------------------------------------------------------------------------------------------
# Orderings for the distance matrix
# --------------------------------------------------------------------------------------------------------


def identity_order(labels: Sequence[str]) -> np.ndarray:
    """Indices that group faces by identity (names sorted), keeping the input order within a name."""
    return np.argsort(np.asarray(labels, dtype=str), kind="stable")


def cluster_order(distances: np.ndarray) -> np.ndarray:
    """Leaf order of average-linkage hierarchical clustering (optimal leaf ordering) of a square matrix.

    Neighbouring rows are then as similar as the tree allows, so identities the model confuses
    end up next to each other whatever their names are.
    """
    d = np.asarray(distances, dtype=np.float64)
    if d.ndim != 2 or d.shape[0] != d.shape[1]:
        raise ValueError(f"need a square distance matrix, got shape {d.shape}")
    if d.shape[0] < 3:
        return np.arange(d.shape[0])
    condensed = squareform(d, checks=False)
    tree = optimal_leaf_ordering(linkage(condensed, method="average"), condensed)
    return leaves_list(tree)


def identity_blocks(sorted_labels: Sequence[str]) -> list[tuple[str, int, int]]:
    """``(label, start, end)`` runs of equal labels (end exclusive): the same-identity blocks."""
    blocks: list[tuple[str, int, int]] = []
    for i, label in enumerate(sorted_labels):
        if blocks and blocks[-1][0] == label and blocks[-1][2] == i:
            blocks[-1] = (label, blocks[-1][1], i + 1)
        else:
            blocks.append((label, i, i + 1))
    return blocks


# --------------------------------------------------------------------------------------------------------
# Pairs from a labelled set of faces
# --------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class AllPairs:
    """Every unordered pair ``(i, j)``, ``i < j``, of a labelled set, with its distance."""

    first: np.ndarray
    second: np.ndarray
    distances: np.ndarray
    same: np.ndarray


def all_pairs(embeddings: np.ndarray, labels: Sequence[str], metric: str = "euclidean") -> AllPairs:
    """All pairs of a gallery or sample: genuine where both faces carry the same label."""
    labels_arr = np.asarray(labels, dtype=str)
    if len(labels_arr) != len(embeddings):
        raise ValueError(f"{len(labels_arr)} labels for {len(embeddings)} embeddings")
    matrix = pairwise_distances(embeddings, metric=metric)
    first, second = np.triu_indices(len(labels_arr), k=1)
    return AllPairs(first, second, matrix[first, second], labels_arr[first] == labels_arr[second])


# --------------------------------------------------------------------------------------------------------
# Tables
# --------------------------------------------------------------------------------------------------------


def operating_points(distances: np.ndarray, same: np.ndarray, far_targets: Sequence[float] = FAR_TARGETS) -> pd.DataFrame:
    """TAR at each target FAR and the threshold that reaches it, one row per target.

    ``measurable`` is False when there are too few impostor pairs for the target (one false accept
    already exceeds it), so a reader does not trust a TAR@0.1% read off 300 impostors.
    """
    same = np.asarray(same, dtype=bool)
    n_impostor = int((~same).sum())
    rows = []
    for target in far_targets:
        tar, threshold = tar_at_far(distances, same, target)
        achieved = rates_at_threshold(distances, same, threshold)
        rows.append(
            {
                "target FAR": target,
                "TAR": tar,
                "threshold": threshold,
                "FAR reached": achieved.far,
                "FRR": achieved.frr,
                "measurable": n_impostor * target >= 1,
            }
        )
    return pd.DataFrame(rows)


def _accuracy_at(threshold: float) -> Callable[[np.ndarray, np.ndarray], float]:
    def accuracy(d: np.ndarray, y: np.ndarray) -> float:
        return rates_at_threshold(d, y, threshold).accuracy

    return accuracy


def _eer(d: np.ndarray, y: np.ndarray) -> float:
    return equal_error_rate(d, y)[0]


def summary_with_ci(
    distances: np.ndarray, same: np.ndarray, threshold: float, *, n_boot: int = 200, seed: int = 0
) -> pd.DataFrame:
    """AUC, EER and accuracy at ``threshold`` with percentile-bootstrap 95% intervals.

    Genuine and impostor pairs are resampled separately (see :func:`facecore.verification.metrics.bootstrap_ci`).
    """
    statistics: dict[str, Callable[[np.ndarray, np.ndarray], float]] = {
        "AUC": roc_auc,
        "EER": _eer,
        "accuracy": _accuracy_at(threshold),
    }
    rows = []
    for name, statistic in statistics.items():
        low, high = bootstrap_ci(distances, same, statistic, n_boot=n_boot, seed=seed)
        rows.append({"metric": name, "value": statistic(distances, same), "95% CI low": low, "95% CI high": high})
    return pd.DataFrame(rows)


#: Rows of :func:`procedure_summary_with_ci`: table name -> column of :func:`bootstrap_procedure`.
PROCEDURE_ROWS = {"accuracy": "accuracy", "FAR": "far", "FRR": "frr", "TAR": "tar", "threshold": "threshold"}


def procedure_summary_with_ci(
    distances: np.ndarray, same: np.ndarray, *, n_boot: int = 200, seed: int = 0, alpha: float = 0.05
) -> pd.DataFrame:
    """Accuracy, FAR, FRR and TAR of the whole procedure, threshold choice included, with intervals.

    The procedure is "choose the best-accuracy threshold on the pairs, then use it". In each of
    ``n_boot`` stratified resamples (the same resamples as :func:`summary_with_ci` for the same
    ``seed``) the threshold is chosen on the resample and scored on the pairs left out of it; see
    :func:`facecore.verification.metrics.bootstrap_procedure` for why out-of-bag. ``value`` is the
    mean over the resamples (the out-of-bag estimate), ``95% CI low``/``high`` the percentile
    interval (``alpha`` / 2 and 1 - ``alpha`` / 2); the ``threshold`` row is the spread of the
    chosen thresholds themselves. Unlike :func:`summary_with_ci` at a fixed threshold, the width
    here includes how much the chosen threshold, and so its error rates, move with the sample.
    """
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must be in (0, 1), got {alpha}")
    runs = bootstrap_procedure(distances, same, n_boot=n_boot, seed=seed)
    rows = []
    for name, column in PROCEDURE_ROWS.items():
        values = runs[column].to_numpy()
        if np.isnan(values).all():
            mean = low = high = float("nan")
        else:
            mean = float(np.nanmean(values))
            low, high = (float(v) for v in np.nanquantile(values, [alpha / 2, 1 - alpha / 2]))
        rows.append({"metric": name, "value": mean, "95% CI low": low, "95% CI high": high})
    return pd.DataFrame(rows)


def confusion_table(distances: np.ndarray, same: np.ndarray, threshold: float) -> pd.DataFrame:
    """The 2x2 confusion matrix at ``threshold``: rows are the truth, columns the decision."""
    r = rates_at_threshold(distances, same, threshold)
    return pd.DataFrame(
        [[r.tp, r.fn], [r.fp, r.tn]],
        index=pd.Index(["same person", "different people"], name="truth"),
        columns=pd.Index(["accepted", "rejected"], name="decision"),
    )


def failure_cases(distances: np.ndarray, same: np.ndarray, threshold: float, k: int = 8) -> pd.DataFrame:
    """The worst mistakes at ``threshold``: closest false accepts and farthest false rejects.

    Columns: ``pair`` (index into the inputs), ``kind``, ``distance``, ``margin`` (how far past the
    threshold). At most ``k`` of each kind, worst first.
    """
    d = np.asarray(distances, dtype=np.float64)
    y = np.asarray(same, dtype=bool)
    accepted = accepts(d, threshold)
    false_accepts = np.flatnonzero(~y & accepted)
    false_rejects = np.flatnonzero(y & ~accepted)
    false_accepts = false_accepts[np.argsort(d[false_accepts], kind="stable")][:k]
    false_rejects = false_rejects[np.argsort(-d[false_rejects], kind="stable")][:k]
    rows = [
        {"pair": int(i), "kind": "false accept", "distance": d[i], "margin": threshold - d[i]}
        for i in false_accepts
    ] + [
        {"pair": int(i), "kind": "false reject", "distance": d[i], "margin": d[i] - threshold}
        for i in false_rejects
    ]
    return pd.DataFrame(rows, columns=["pair", "kind", "distance", "margin"])


def nearest_neighbours(
    embeddings: np.ndarray, labels: Sequence[str], index: int, k: int = 5, metric: str = "euclidean"
) -> pd.DataFrame:
    """The ``k`` faces nearest to face ``index`` (itself excluded): position, label, distance, same."""
    if not 0 <= index < len(embeddings):
        raise IndexError(f"face {index} is out of range for {len(embeddings)} faces")
    d = pairwise_distances(embeddings[index : index + 1], embeddings, metric=metric)[0]
    d[index] = np.inf
    order = np.argsort(d, kind="stable")[: min(k, len(embeddings) - 1)]
    labels_arr = np.asarray(labels, dtype=str)
    return pd.DataFrame(
        {
            "face": order,
            "identity": labels_arr[order],
            "distance": d[order],
            "same identity": labels_arr[order] == labels_arr[index],
        }
    )


def calibration_table(entries: Sequence[Calibration]) -> pd.DataFrame:
    """The stored LFW calibrations as one row per configuration, best accuracy first."""
    rows = [
        {
            "detector": e.detector,
            "metric": e.metric,
            "flip TTA": e.flip_tta,
            "accuracy": e.accuracy,
            "accuracy std": e.accuracy_std,
            "AUC": e.auc,
            "EER": e.eer,
            "threshold": e.threshold,
            "embedder": e.embedder,
        }
        for e in entries
    ]
    table = pd.DataFrame(rows)
    if table.empty:
        return table
    return table.sort_values("accuracy", ascending=False, kind="stable").reset_index(drop=True)
