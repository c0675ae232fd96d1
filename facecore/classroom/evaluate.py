"""Judging a model on the held-out pairs: a distance per pair, its ROC AUC, and k-fold accuracy.

Three kinds of model are compared on the same pairs: an embedding (euclidean distance of the two
vectors), the twin network (``1 - P(same)``), and GaussianNB on the raw pixels of both crops, the
baseline that knows nothing about faces.
"""

from __future__ import annotations

from dataclasses import dataclass

import keras
import numpy as np

from facecore.classroom.data import ClassroomData, FaceCrops, balanced_pairs
from facecore.verification.metrics import kfold_verification, paired_distances, roc, roc_auc

#: Folds for the held-out accuracy: each fold's threshold is tuned on the other folds.
ACCURACY_FOLDS = 5


@dataclass(frozen=True)
class Verification:
    """One model on the held-out pairs: a distance per pair (smaller = more alike) and its scores."""

    model: str
    distances: np.ndarray
    same: np.ndarray
    auc: float
    accuracy: float

    def roc(self) -> tuple[np.ndarray, np.ndarray]:
        far, tar, _ = roc(self.distances, self.same)
        return far, tar


def verification(model: str, distances: np.ndarray, same: np.ndarray) -> Verification:
    """AUC, and accuracy with thresholds tuned on the other folds (never on the pairs scored)."""
    result = kfold_verification(distances, same, n_folds=ACCURACY_FOLDS)
    return Verification(
        model, np.asarray(distances), np.asarray(same), roc_auc(distances, same), result.accuracy
    )


def embed_crops(model: keras.Model, images: np.ndarray, batch_size: int = 256) -> np.ndarray:
    """The model's vectors for uint8 crops, in inference mode."""
    chunks = [
        np.asarray(model.predict_on_batch(images[start : start + batch_size].astype(np.float32)))
        for start in range(0, len(images), batch_size)
    ]
    return np.concatenate(chunks).astype(np.float32)


def evaluate_embeddings(model: str, test_embeddings: np.ndarray, data: ClassroomData) -> Verification:
    """Euclidean distance of each held-out pair's two embeddings (one row per held-out crop)."""
    a, b = data.pairs.T
    return verification(model, paired_distances(test_embeddings[a], test_embeddings[b]), data.same)


def evaluate_twin(twin: keras.Model, data: ClassroomData, batch_size: int = 256) -> Verification:
    """The twin's P(same) turned into a distance, ``1 - P(same)``."""
    images = data.test.images.astype(np.float32)
    a, b = data.pairs.T
    probabilities = np.concatenate(
        [
            np.asarray(twin.predict_on_batch([images[a[s : s + batch_size]], images[b[s : s + batch_size]]]))
            for s in range(0, len(a), batch_size)
        ]
    ).ravel()
    return verification("twin network", 1.0 - probabilities.astype(np.float64), data.same)


def pixel_naive_bayes(data: ClassroomData, train_pairs: int = 2000, seed: int = 0) -> Verification:
    """GaussianNB on the raw pixels of both crops, fitted on training-people pairs: ``1 - P(same)``."""
    from sklearn.naive_bayes import GaussianNB

    def features(crops: FaceCrops, pairs: np.ndarray) -> np.ndarray:
        flat = crops.images.reshape(len(crops), -1).astype(np.float32) / 255.0
        return np.concatenate([flat[pairs[:, 0]], flat[pairs[:, 1]]], axis=1)

    pairs, same = balanced_pairs(data.train.labels, train_pairs, seed)
    model = GaussianNB().fit(features(data.train, pairs), same)
    p_same = model.predict_proba(features(data.test, data.pairs))[:, list(model.classes_).index(True)]
    return verification("GaussianNB (raw pixels)", 1.0 - p_same, data.same)
