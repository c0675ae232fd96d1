"""Training loops: P x K batches for the triplet model, random pairs for the twin, and a report per epoch.

:func:`train_triplet_model` trains the encoder with a triplet loss on batches of P people x K images;
:func:`train_twin_network` trains the twin as a same/different classifier (binary cross-entropy).
Both judge the model on the held-out pairs after every epoch and hand an :class:`EpochReport` to
``on_epoch``, so a page can redraw the loss curve and the embedding while it trains.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import keras
import numpy as np

from facecore.classroom.data import ClassroomData, FaceCrops
from facecore.classroom.evaluate import Verification, embed_crops, evaluate_embeddings, evaluate_twin
from facecore.classroom.losses import triplet_loss_for
from facecore.classroom.models import build_encoder, build_twin


class PKBatches(keras.utils.PyDataset):
    """Batches of ``people`` persons x ``per_person`` images, so every batch holds valid triplets."""

    def __init__(
        self,
        crops: FaceCrops,
        *,
        people: int = 8,
        per_person: int = 4,
        steps: int | None = None,
        seed: int = 0,
    ) -> None:
        super().__init__()
        self.crops = crops
        self.by_person = [np.flatnonzero(crops.labels == p) for p in np.unique(crops.labels)]
        self.by_person = [idx for idx in self.by_person if len(idx) >= 2]
        if len(self.by_person) < 2:
            raise ValueError("need at least two training people with two or more photos")
        self.people = min(people, len(self.by_person))
        self.per_person = per_person
        self.steps = steps or max(1, len(crops) // (self.people * per_person))
        self.seed = seed
        self.epoch = 0

    def __len__(self) -> int:
        return self.steps

    def indices(self, step: int) -> np.ndarray:
        rng = np.random.default_rng((self.seed, self.epoch, step))
        chosen = rng.choice(len(self.by_person), self.people, replace=False)
        return np.concatenate(
            [
                rng.choice(
                    self.by_person[p], self.per_person, replace=len(self.by_person[p]) < self.per_person
                )
                for p in chosen
            ]
        )

    def __getitem__(self, step: int) -> tuple[np.ndarray, np.ndarray]:
        idx = self.indices(step)
        return self.crops.images[idx].astype(np.float32), self.crops.labels[idx]

    def on_epoch_end(self) -> None:
        self.epoch += 1


class PairBatches(keras.utils.PyDataset):
    """Balanced random same/different pairs of training faces, fresh every epoch (for the twin)."""

    def __init__(
        self, crops: FaceCrops, *, batch_size: int = 32, steps: int | None = None, seed: int = 0
    ) -> None:
        super().__init__()
        self.crops = crops
        self.batch_size = batch_size
        self.steps = steps or max(1, len(crops) // batch_size)
        self.seed = seed
        self.epoch = 0

    def __len__(self) -> int:
        return self.steps

    def __getitem__(self, step: int):
        seed = int(np.random.default_rng((self.seed, self.epoch, step)).integers(2**31))
        pairs, same = _random_pairs(self.crops.labels, self.batch_size, seed)
        images = self.crops.images.astype(np.float32)
        return (images[pairs[:, 0]], images[pairs[:, 1]]), same.astype(np.float32)[:, None]

    def on_epoch_end(self) -> None:
        self.epoch += 1


def _random_pairs(labels: np.ndarray, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``n`` random pairs, half same-person, half different (cheaper than :func:`balanced_pairs`)."""
    rng = np.random.default_rng(seed)
    by_person = [np.flatnonzero(labels == p) for p in np.unique(labels)]
    by_person = [idx for idx in by_person if len(idx) >= 2]
    rows = []
    for i in range(n):
        if i % 2 == 0:
            images = by_person[rng.integers(len(by_person))]
            rows.append((*rng.choice(images, 2, replace=False), True))
        else:
            a, b = rng.integers(len(labels), size=2)
            while labels[a] == labels[b]:
                b = rng.integers(len(labels))
            rows.append((a, b, False))
    table = np.array(rows, dtype=np.int64)
    return table[:, :2], table[:, 2].astype(bool)


@dataclass(frozen=True)
class EpochReport:
    """What a page needs to redraw after each epoch: the loss curve and held-out embeddings."""

    epoch: int  # 1-based
    epochs: int
    loss: float
    held_out: Verification
    test_embeddings: np.ndarray | None = None


EpochCallback = Callable[[EpochReport], None]


@dataclass
class TrainingRun:
    """A trained model with its per-epoch history and its result on the held-out pairs."""

    model: keras.Model
    losses: list[float] = field(default_factory=list)
    held_out_auc: list[float] = field(default_factory=list)
    result: Verification | None = None
    settings: dict = field(default_factory=dict)


class _ReportEachEpoch(keras.callbacks.Callback):
    def __init__(
        self,
        evaluate: Callable[[], tuple[Verification, np.ndarray | None]],
        run: TrainingRun,
        epochs: int,
        on_epoch: EpochCallback | None,
    ) -> None:
        super().__init__()
        self.evaluate, self.run, self.epochs, self.on_epoch = evaluate, run, epochs, on_epoch

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        held_out, embeddings = self.evaluate()
        loss = float((logs or {}).get("loss", np.nan))
        self.run.losses.append(loss)
        self.run.held_out_auc.append(held_out.auc)
        self.run.result = held_out
        if self.on_epoch is not None:
            self.on_epoch(EpochReport(epoch + 1, self.epochs, loss, held_out, embeddings))


def train_triplet_model(
    data: ClassroomData,
    *,
    mining: str = "batch-all",
    margin: float = 0.2,
    embedding_size: int = 64,
    epochs: int = 5,
    people_per_batch: int = 8,
    images_per_person: int = 4,
    steps_per_epoch: int | None = None,
    learning_rate: float = 1e-3,
    seed: int = 0,
    on_epoch: EpochCallback | None = None,
) -> TrainingRun:
    """Train the embedding CNN with triplet loss; ``on_epoch`` is called after every epoch."""
    loss = triplet_loss_for(mining, margin)
    encoder = build_encoder(data.input_shape, embedding_size, seed=seed)
    encoder.compile(optimizer=keras.optimizers.Adam(learning_rate), loss=loss)
    batches = PKBatches(
        data.train, people=people_per_batch, per_person=images_per_person, steps=steps_per_epoch, seed=seed
    )
    run = TrainingRun(
        encoder,
        settings=dict(
            mining=mining,
            margin=margin,
            embedding_size=embedding_size,
            epochs=epochs,
            input_shape=data.input_shape,
        ),
    )

    def evaluate() -> tuple[Verification, np.ndarray]:
        embeddings = embed_crops(encoder, data.test.images)
        return evaluate_embeddings(f"triplet ({mining})", embeddings, data), embeddings

    encoder.fit(
        batches, epochs=epochs, verbose=0, callbacks=[_ReportEachEpoch(evaluate, run, epochs, on_epoch)]
    )
    return run


def train_twin_network(
    data: ClassroomData,
    *,
    embedding_size: int = 64,
    epochs: int = 5,
    batch_size: int = 32,
    steps_per_epoch: int | None = None,
    learning_rate: float = 1e-3,
    seed: int = 0,
    on_epoch: EpochCallback | None = None,
) -> TrainingRun:
    """Train the twin network (shared encoder, L1 difference, Dense + sigmoid) on same/different pairs."""
    encoder = build_encoder(data.input_shape, embedding_size, normalize=False, seed=seed)
    twin = build_twin(encoder)
    twin.compile(
        optimizer=keras.optimizers.Adam(learning_rate), loss="binary_crossentropy", metrics=["accuracy"]
    )
    batches = PairBatches(data.train, batch_size=batch_size, steps=steps_per_epoch, seed=seed)
    run = TrainingRun(
        twin, settings=dict(embedding_size=embedding_size, epochs=epochs, input_shape=data.input_shape)
    )

    def evaluate() -> tuple[Verification, None]:
        return evaluate_twin(twin, data), None

    twin.fit(batches, epochs=epochs, verbose=0, callbacks=[_ReportEachEpoch(evaluate, run, epochs, on_epoch)])
    return run
