"""Triplet losses as Keras losses (``keras.ops``, so any Keras backend trains them), and the numpy
yardstick that compares models before and after training.

Batch-all averages every valid triplet of a batch whose loss is positive; semi-hard is FaceNet's mining
(:mod:`facecore.classroom.triplets` explains both and computes the same quantities in numpy). The loss
classes are registered as ``facecore>BatchAllTripletLoss`` and ``facecore>SemiHardTripletLoss``.
"""

from __future__ import annotations

from collections.abc import Sequence

import keras
import numpy as np
from keras import ops

from facecore.classroom.data import FaceCrops
from facecore.classroom.evaluate import embed_crops

MINING = ("batch-all", "semi-hard")


def _distance_matrix(embeddings):
    """Euclidean distances between all rows; the floor keeps the sqrt's gradient finite at 0."""
    squared = ops.sum(ops.square(embeddings), axis=1)
    d2 = ops.expand_dims(squared, 1) - 2.0 * ops.matmul(embeddings, ops.transpose(embeddings))
    d2 = d2 + ops.expand_dims(squared, 0)
    return ops.sqrt(ops.maximum(d2, 1e-12))


def _masks(labels):
    labels = ops.reshape(ops.cast(labels, "int32"), (-1,))
    same = ops.equal(ops.expand_dims(labels, 1), ops.expand_dims(labels, 0))
    not_self = ops.logical_not(ops.cast(ops.eye(ops.shape(labels)[0]), "bool"))
    return ops.logical_and(same, not_self), ops.logical_not(same)


@keras.saving.register_keras_serializable(package="facecore")
class BatchAllTripletLoss(keras.losses.Loss):
    """Mean triplet loss over every valid triplet of the batch whose loss is positive."""

    def __init__(self, margin: float = 0.2, name: str = "batch_all_triplet_loss", **kwargs) -> None:
        super().__init__(name=name, **kwargs)
        self.margin = margin

    def call(self, y_true, y_pred):
        d = _distance_matrix(y_pred)
        positive, negative = _masks(y_true)
        loss = ops.expand_dims(d, 2) - ops.expand_dims(d, 1) + self.margin  # [a, p, n]
        valid = ops.logical_and(ops.expand_dims(positive, 2), ops.expand_dims(negative, 1))
        loss = ops.where(valid, ops.relu(loss), 0.0)
        active = ops.sum(ops.cast(loss > 1e-16, "float32"))
        # Keras averages a per-sample loss; give every sample the batch value.
        return ops.ones_like(y_pred[:, 0]) * ops.sum(loss) / (active + 1e-16)

    def get_config(self) -> dict:
        return {**super().get_config(), "margin": self.margin}


@keras.saving.register_keras_serializable(package="facecore")
class SemiHardTripletLoss(keras.losses.Loss):
    """FaceNet's semi-hard mining: per anchor-positive pair, the closest negative beyond the positive
    (the farthest negative when there is none), mean over all anchor-positive pairs."""

    def __init__(self, margin: float = 0.2, name: str = "semi_hard_triplet_loss", **kwargs) -> None:
        super().__init__(name=name, **kwargs)
        self.margin = margin

    def call(self, y_true, y_pred):
        d = _distance_matrix(y_pred)
        positive, negative = _masks(y_true)
        d_ap = ops.expand_dims(d, 2)  # [a, p, 1]
        d_an = ops.expand_dims(d, 1)  # [a, 1, n]
        farther = ops.logical_and(ops.expand_dims(negative, 1), d_an > d_ap)  # [a, p, n]
        big = ops.max(d) + 1.0
        closest_farther = ops.min(ops.where(farther, d_an, big), axis=2)  # [a, p]
        farthest = ops.max(ops.where(negative, d, -1.0), axis=1, keepdims=True)  # [a, 1]
        chosen = ops.where(ops.any(farther, axis=2), closest_farther, farthest)
        loss = ops.where(positive, ops.relu(d - chosen + self.margin), 0.0)
        pairs = ops.sum(ops.cast(positive, "float32"))
        return ops.ones_like(y_pred[:, 0]) * ops.sum(loss) / (pairs + 1e-16)

    def get_config(self) -> dict:
        return {**super().get_config(), "margin": self.margin}


def triplet_loss_for(mining: str, margin: float) -> keras.losses.Loss:
    if mining == "batch-all":
        return BatchAllTripletLoss(margin)
    if mining == "semi-hard":
        return SemiHardTripletLoss(margin)
    raise ValueError(f"unknown mining {mining!r}; choose one of {', '.join(MINING)}")


def mean_triplet_loss(
    model: keras.Model, crops: FaceCrops, margin: float, batches: Sequence[np.ndarray]
) -> float:
    """The mean loss over *all* valid triplets of fixed batches (indices into ``crops``), in numpy.

    Unlike the batch-all training loss (a mean over the active triplets only) it can only fall when
    the embedding gets better, so it is the number to compare before and after training.
    """
    from facecore.classroom.triplets import batch_triplets

    embeddings = embed_crops(model, crops.images)
    losses = [batch_triplets(embeddings[idx], crops.labels[idx], margin)["loss"].mean() for idx in batches]
    return float(np.mean(losses))
