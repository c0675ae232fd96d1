"""The ``mtcnn`` package's detector with five landmarks (registered as ``mtcnn``; TensorFlow)."""

from __future__ import annotations

import functools
import threading
from collections.abc import Sequence
from typing import Any

import numpy as np

from facecore.detection.base import DETECTORS, Detector, _Candidate, _check_image
from facecore.types import Face


@DETECTORS.register("mtcnn")
class MtcnnDetector(Detector):
    """The ``mtcnn`` package (TensorFlow): boxes plus five landmarks, batched when sizes match.

    Its batch path pads images of different sizes to the largest one, which changes what the
    network sees near the padding and, in mtcnn 1.0.0, shifts boxes by the wrong image's padding
    when an image in the batch has no face. So batches here only ever hold images of one shape.
    """

    summary = "MTCNN (TensorFlow): slower, finds smaller and turned faces, gives 5 landmarks"
    order = 30
    gives_landmarks = True

    # Columns of the package's numpy output: image id, x1, y1, x2, y2, confidence, then the
    # five landmark x's and the five landmark y's (left eye, right eye, nose, mouth l, mouth r).
    _X = slice(6, 11)
    _Y = slice(11, 16)
    # MTCNN's first network looks at 12x12 windows; asking for smaller faces upsamples the image.
    _SMALLEST = 12
    # mtcnn 1.0.0 sizes its image pyramid without regard to min_face_size, so a larger value
    # shrinks the last levels below 12 px and the whole call fails ("no faces"). Above this we
    # let the pyramid run at 20 (the package default) and drop small faces afterwards.
    _LARGEST_SAFE = 20

    def __init__(self, *, batch_size: int = 8, device: str | None = None, **base: Any) -> None:
        super().__init__(**base)
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        self.batch_size = batch_size
        self.device = device or _default_tf_device()
        # Detectors that differ only in options share one network (and its lock).
        self._mtcnn, self._lock = _shared_mtcnn(self.device)

    def _backend_min_size(self, factors: tuple[float, float]) -> int:
        return min(max(self._SMALLEST, super()._backend_min_size(factors)), self._LARGEST_SAFE)

    def _detect(self, image: np.ndarray, min_size: int) -> list[_Candidate]:
        return self._detect_same_shape([image], min_size)[0]

    def detect_batch(self, images: Sequence[np.ndarray]) -> list[list[Face]]:
        """One network pass per group of same-shaped images (about 2x faster than one by one)."""
        for image in images:
            _check_image(image)
        shrunk = [self._shrink(image) for image in images]
        results: list[list[Face]] = [[] for _ in images]
        for indices in _chunks(_group_by_shape([small for small, _ in shrunk]), self.batch_size):
            factors = shrunk[indices[0]][1]
            with self._lock:
                batch = self._detect_same_shape(
                    [shrunk[i][0] for i in indices], self._backend_min_size(factors)
                )
            for i, candidates in zip(indices, batch, strict=True):
                results[i] = self._finish(candidates, factors, images[i].shape)
        return [self._upscaled_if_none(image, faces) for image, faces in zip(images, results, strict=True)]

    def _detect_same_shape(self, images: list[np.ndarray], min_size: int) -> list[list[_Candidate]]:
        if min(images[0].shape[:2]) < self._SMALLEST:
            return [[] for _ in images]  # too small for PNet's 12x12 window; the package would fail
        rows = self._mtcnn.detect_faces(
            [image.astype(np.float32) for image in images],  # float32 in, so it never computes in float64
            box_format="xyxy",
            output_type="numpy",
            fit_to_image=False,  # we clip ourselves; the package clips to W-1 / H-1
            min_face_size=min_size,
        )
        rows = np.asarray(rows, dtype=np.float64).reshape(-1, 16)
        return [[self._candidate(row) for row in rows[rows[:, 0] == i]] for i in range(len(images))]

    def _candidate(self, row: np.ndarray) -> _Candidate:
        landmarks = np.stack([row[self._X], row[self._Y]], axis=1)
        return _Candidate(row[1], row[2], row[3], row[4], row[5], landmarks)


@functools.cache
def _shared_mtcnn(device: str) -> tuple[Any, threading.Lock]:
    from mtcnn import MTCNN  # lazy: imports TensorFlow

    return MTCNN(stages="face_and_landmarks_detection", device=device), threading.Lock()


def _default_tf_device() -> str:
    import tensorflow as tf  # lazy: only MTCNN needs it

    return "GPU:0" if tf.config.list_physical_devices("GPU") else "CPU:0"


def _group_by_shape(images: Sequence[np.ndarray]) -> list[list[int]]:
    groups: dict[tuple[int, ...], list[int]] = {}
    for i, image in enumerate(images):
        groups.setdefault(image.shape, []).append(i)
    return list(groups.values())


def _chunks(groups: list[list[int]], size: int) -> list[list[int]]:
    return [group[i : i + size] for group in groups for i in range(0, len(group), size)]
