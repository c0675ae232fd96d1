"""The classroom's data: LFW face crops, split by person, and the fixed held-out pairs every model is judged on.

LFW people with at least ``min_images`` photos become small square crops around the face (grey or
colour). People are split in two: the models learn from the *training people* and are judged on fixed,
balanced same/different pairs of *held-out people* they never saw, which is what verification asks of
a model. Numpy and OpenCV only: no Keras here.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from facecore.evaluation.datasets import lfw_people

#: A 125x125 square around the face in a 250x250 LFW image (centred on scikit-learn's default slice).
LFW_FACE_CROP = (slice(70, 195), slice(62, 187))
#: Share of a pipeline chip (150x150, dlib padding 0.25) fed to a model trained on LFW_FACE_CROP. Chosen on
#: validation people split off the training people, never on the held-out pairs
#: (`bench/classroom_training.py --choose-crop 0.6,0.8,0.9,1.0`, docs/benchmarks.md, 2026-11-30): validation
#: AUC 0.684 / 0.692 / 0.771 / 0.827 at 0.6 / 0.8 / 0.9 / 1.0 of the chip; held-out AUC at 1.0: 0.763.
CHIP_CROP_FRACTION = 1.0


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
