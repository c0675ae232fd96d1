"""Train small face models on the CPU in minutes: a triplet-loss embedding and the twin (siamese) network.

The data are LFW people with at least ``min_images`` photos, as small square crops around the face
(grey or colour). People are split in two: the models learn from the *training people* and are judged
on fixed, balanced same/different pairs of *held-out people* they never saw, which is what
verification asks of a model. Three things are compared on the same held-out pairs:

* the **triplet model**: a small CNN whose L2-normalised output is trained with triplet loss, batch-all
  or semi-hard mining (:mod:`facecore.classroom.triplets` explains both), on batches of P people x K images;
* the **twin network**: the same kind of encoder shared by two inputs, the L1 distance of the two
  embeddings, a dense layer with a sigmoid, trained as a same/different classifier (binary cross-entropy);
* **GaussianNB on raw pixels** of both crops, the baseline that knows nothing about faces.

Everything here is Keras 3 (``keras.ops``) and numpy; nothing downloads and nothing imports Streamlit.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import keras
import numpy as np
from keras import layers, ops

from facecore.evaluation.datasets import lfw_people
from facecore.verification.metrics import kfold_verification, paired_distances, roc, roc_auc

#: A 125x125 square around the face in a 250x250 LFW image (centred on scikit-learn's default slice).
LFW_FACE_CROP = (slice(70, 195), slice(62, 187))
#: Share of a pipeline chip (150x150, dlib padding 0.25) fed to a model trained on LFW_FACE_CROP. Chosen on
#: held-out LFW pairs through the real pipeline (bench/classroom_training.py, docs/benchmarks.md): AUC
#: 0.64 / 0.69 / 0.74 / 0.75 at 0.6 / 0.8 / 0.9 / 1.0 of the chip, against 0.78 on the crops themselves.
CHIP_CROP_FRACTION = 0.9
MINING = ("batch-all", "semi-hard")
#: Folds for the held-out accuracy: each fold's threshold is tuned on the other folds.
ACCURACY_FOLDS = 5


# --------------------------------------------------------------------------------------------------------
# Data
# --------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FaceCrops:
    """Small face crops with integer person labels (``names[label]`` is the LFW name)."""

    images: np.ndarray  # (n, size, size, channels) uint8
    labels: np.ndarray  # (n,) int
    names: list[str]
    paths: list[Path]

    def __len__(self) -> int:
        return len(self.labels)

    def subset(self, keep: np.ndarray) -> FaceCrops:
        return FaceCrops(self.images[keep], self.labels[keep], self.names, [self.paths[i] for i in keep])


def face_crop(path: str | os.PathLike[str], size: int, color: bool) -> np.ndarray:
    """The LFW face square of one image, resized to ``size`` x ``size``: ``(size, size, 3 or 1)`` uint8."""
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if bgr is None:
        raise ValueError(f"cannot read image {path}")
    square = bgr[LFW_FACE_CROP]
    small = cv2.resize(square, (size, size), interpolation=cv2.INTER_AREA)
    if color:
        return cv2.cvtColor(small, cv2.COLOR_BGR2RGB)
    return cv2.cvtColor(small, cv2.COLOR_BGR2GRAY)[:, :, None]


def load_lfw_crops(
    data_home: str | os.PathLike[str],
    *,
    min_images: int = 10,
    max_images: int = 20,
    max_people: int | None = None,
    size: int = 32,
    color: bool = False,
) -> FaceCrops:
    """LFW people with at least ``min_images`` photos, their first ``max_images`` each, as face crops.

    ``max_people`` keeps that many people spread evenly over the alphabetical list (a smaller, still
    varied set). Capping the photos per person stops a few famous people from dominating the data.
    """
    if min_images < 2 or max_images < 2:
        raise ValueError("min_images and max_images must be at least 2 (triplets need two photos)")
    people = lfw_people(data_home, min_images=min_images)
    names = sorted(people)
    if max_people is not None and max_people < len(names):
        picks = np.unique(np.linspace(0, len(names) - 1, max_people).round().astype(int))
        names = [names[i] for i in picks]
    if len(names) < 4:
        raise ValueError(f"only {len(names)} LFW people have {min_images}+ photos; lower min_images")
    paths = [(label, path) for label, name in enumerate(names) for path in people[name][:max_images]]
    images = np.stack([face_crop(path, size, color) for _, path in paths])
    labels = np.array([label for label, _ in paths], dtype=np.int64)
    return FaceCrops(images, labels, names, [path for _, path in paths])


@dataclass(frozen=True)
class ClassroomData:
    """Training people, held-out people, and fixed balanced pairs of held-out faces (indices into test)."""

    train: FaceCrops
    test: FaceCrops
    pairs: np.ndarray  # (m, 2) int
    same: np.ndarray  # (m,) bool

    @property
    def input_shape(self) -> tuple[int, int, int]:
        return tuple(self.train.images.shape[1:])  # type: ignore[return-value]

    def describe(self) -> str:
        size, _, channels = self.input_shape
        return (
            f"{len(np.unique(self.train.labels))} training people ({len(self.train)} crops), "
            f"{len(np.unique(self.test.labels))} held-out people ({len(self.test)} crops, "
            f"{len(self.same)} pairs: {int(self.same.sum())} same, {int((~self.same).sum())} different); "
            f"{size}x{size} {'colour' if channels == 3 else 'grey'}"
        )


def split_people(crops: FaceCrops, held_out: float = 0.25, seed: int = 0) -> tuple[FaceCrops, FaceCrops]:
    """``(train, test)`` with no person in both: a random ``held_out`` share of the people is kept out."""
    people = np.unique(crops.labels)
    n_test = int(round(held_out * len(people)))
    if not 2 <= n_test <= len(people) - 2:
        raise ValueError(f"held_out={held_out} leaves too few people on one side ({len(people)} people)")
    test_people = np.random.default_rng(seed).choice(people, size=n_test, replace=False)
    in_test = np.isin(crops.labels, test_people)
    return crops.subset(np.flatnonzero(~in_test)), crops.subset(np.flatnonzero(in_test))


def balanced_pairs(labels: np.ndarray, n_pairs: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``(pairs (m, 2), same (m,))``: half same-person pairs, half different-person pairs, shuffled.

    Pairs are distinct and never pair an image with itself; ``m`` may be below ``n_pairs`` when the
    people have too few photos for that many distinct same-person pairs.
    """
    rng = np.random.default_rng(seed)
    labels = np.asarray(labels)
    a, b = np.triu_indices(len(labels), k=1)
    same_all = labels[a] == labels[b]
    genuine, impostor = np.flatnonzero(same_all), np.flatnonzero(~same_all)
    half = min(n_pairs // 2, len(genuine), len(impostor))
    if half < 1:
        raise ValueError("need at least one same-person and one different-person pair")
    chosen = np.concatenate(
        [rng.choice(genuine, half, replace=False), rng.choice(impostor, half, replace=False)]
    )
    chosen = rng.permutation(chosen)
    return np.stack([a[chosen], b[chosen]], axis=1), same_all[chosen]


def prepare_data(
    crops: FaceCrops, *, held_out: float = 0.25, n_pairs: int = 600, seed: int = 0
) -> ClassroomData:
    """Split ``crops`` by person and draw the fixed held-out pairs every model is judged on."""
    train, test = split_people(crops, held_out, seed)
    pairs, same = balanced_pairs(test.labels, n_pairs, seed)
    return ClassroomData(train, test, pairs, same)


# --------------------------------------------------------------------------------------------------------
# Models
# --------------------------------------------------------------------------------------------------------


def build_encoder(
    input_shape: tuple[int, int, int], embedding_size: int = 64, *, normalize: bool = True, seed: int = 0
) -> keras.Model:
    """A small CNN: uint8-range pixels in, an ``embedding_size`` vector out (unit length if ``normalize``).

    Three conv blocks (32, 64, 128 filters) with batch norm, global average pooling and a dense layer;
    about 100k weights, so an epoch on a few thousand 32x32 crops takes seconds on a CPU.
    """
    keras.utils.set_random_seed(seed)
    inputs = keras.Input(shape=input_shape, name="image")
    x = layers.Rescaling(1 / 255.0)(inputs)
    x = layers.RandomFlip("horizontal", seed=seed)(x)  # active only while training
    for filters in (32, 64, 128):
        x = layers.Conv2D(filters, 3, padding="same", use_bias=False)(x)
        # momentum 0.9: the running statistics settle within the few hundred steps of a short run.
        x = layers.BatchNormalization(momentum=0.9)(x)
        x = layers.Activation("relu")(x)
        x = layers.MaxPooling2D()(x)
    x = layers.GlobalAveragePooling2D()(x)
    x = layers.Dense(embedding_size, name="embedding")(x)
    if normalize:
        # On the unit sphere distances lie in [0, 2], so one margin means the same thing all run long.
        x = layers.UnitNormalization(name="unit_length")(x)
    return keras.Model(inputs, x, name="face_encoder")


@keras.saving.register_keras_serializable(package="facecore")
class AbsoluteDifference(layers.Layer):
    """``|a - b|`` element-wise: the L1 distance of the twin network, kept per dimension."""

    def call(self, a, b):
        return ops.abs(a - b)


def build_twin(encoder: keras.Model) -> keras.Model:
    """Two images -> one shared encoder -> ``|e_a - e_b|`` -> Dense(1, sigmoid) = P(same person)."""
    shape = encoder.input_shape[1:]
    image_a = keras.Input(shape=shape, name="image_a")
    image_b = keras.Input(shape=shape, name="image_b")
    difference = AbsoluteDifference(name="l1_difference")(encoder(image_a), encoder(image_b))
    same = layers.Dense(1, activation="sigmoid", name="same_probability")(difference)
    return keras.Model([image_a, image_b], same, name="twin_network")


def export_for_chips(encoder: keras.Model, crop_fraction: float = CHIP_CROP_FRACTION) -> keras.Model:
    """The encoder behind the pipeline's chip format: 150x150 RGB (0..255) in, embedding out.

    The centre ``crop_fraction`` of the chip is resized to the encoder's input (and turned grey for a
    grey encoder) inside the model, so the saved ``.keras`` file needs no code to be used.
    """
    height, width, channels = encoder.input_shape[1:]
    chip = keras.Input(shape=(150, 150, 3), name="chip")
    side = int(round(150 * crop_fraction))
    x = layers.CenterCrop(side, side)(chip)
    x = layers.Resizing(height, width, interpolation="area")(x)
    if channels == 1:
        grey = layers.Conv2D(1, 1, use_bias=False, trainable=False, name="to_grey")
        x = grey(x)
        grey.set_weights([np.array([0.299, 0.587, 0.114], np.float32).reshape(1, 1, 3, 1)])
    return keras.Model(chip, encoder(x), name=f"{encoder.name}_for_chips")


# --------------------------------------------------------------------------------------------------------
# Losses (keras.ops, so any Keras backend trains them)
# --------------------------------------------------------------------------------------------------------


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


# --------------------------------------------------------------------------------------------------------
# Batches
# --------------------------------------------------------------------------------------------------------


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


# --------------------------------------------------------------------------------------------------------
# Evaluation on the held-out pairs
# --------------------------------------------------------------------------------------------------------


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


# --------------------------------------------------------------------------------------------------------
# Training
# --------------------------------------------------------------------------------------------------------


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


def save_model(model: keras.Model, path: str | os.PathLike[str]) -> Path:
    """Save as a ``.keras`` file (the name must end in ``.keras``); returns the path."""
    path = Path(path)
    if path.suffix != ".keras":
        raise ValueError(f"Keras 3 saves models to '.keras' files, got {path.name!r}")
    path.parent.mkdir(parents=True, exist_ok=True)
    model.save(path)
    return path
