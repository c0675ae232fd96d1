"""Face embedders: aligned 150x150 RGB chips in, 128-D vectors out, behind one interface."""

from __future__ import annotations

import functools
from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np

from facecore.registry import Registry

CHIP_SHAPE = (150, 150, 3)


class Embedder(ABC):
    """Maps aligned face chips to embedding vectors; closer vectors mean more alike faces."""

    name: ClassVar[str]
    dimension: ClassVar[int] = 128
    #: Changes whenever the vectors would change: the embedding cache keys on it.
    model_version: ClassVar[str]

    def __init__(self, *, flip_tta: bool = False) -> None:
        self.flip_tta = flip_tta

    @property
    def version(self) -> str:
        """The cache key of this embedder's output, including test-time augmentation."""
        return f"{self.model_version}{'+flip' if self.flip_tta else ''}"

    def embed(self, chips: np.ndarray | Sequence[np.ndarray]) -> np.ndarray:
        """Embed ``(N, 150, 150, 3)`` uint8 RGB chips; returns ``(N, dimension)`` float32."""
        batch = _as_chip_batch(chips)
        if len(batch) == 0:
            return np.zeros((0, self.dimension), np.float32)
        if not self.flip_tta:
            return self._embed(batch)
        # Test-time augmentation: average the embeddings of each chip and its mirror image.
        both = self._embed(np.concatenate([batch, batch[:, :, ::-1]]))
        return ((both[: len(batch)] + both[len(batch) :]) / 2).astype(np.float32)

    @abstractmethod
    def _embed(self, chips: np.ndarray) -> np.ndarray: ...


def _as_chip_batch(chips: np.ndarray | Sequence[np.ndarray]) -> np.ndarray:
    batch = np.asarray(chips, dtype=np.uint8) if len(chips) else np.zeros((0, *CHIP_SHAPE), np.uint8)
    if batch.ndim != 4 or batch.shape[1:] != CHIP_SHAPE:
        raise ValueError(f"expected chips of shape (N, 150, 150, 3), got {batch.shape}")
    return np.ascontiguousarray(batch)


EMBEDDERS: Registry[Embedder] = Registry("embedder")


@EMBEDDERS.register("dlib-keras")
class KerasDlibEmbedder(Embedder):
    """dlib's ResNet (99.38% on LFW as published) rebuilt in Keras: batched, and on a GPU when present."""

    model_version = "dlib_resnet_v1-keras"

    def __init__(self, *, flip_tta: bool = False, batch_size: int = 32) -> None:
        super().__init__(flip_tta=flip_tta)
        from facecore.dlib_resnet import load_keras_model

        self.batch_size = batch_size
        self.model = load_keras_model()

    def _embed(self, chips: np.ndarray) -> np.ndarray:
        # predict_on_batch per chunk: Keras's predict() adds a data pipeline that costs ~40% here.
        chunks = [
            np.asarray(self.model.predict_on_batch(chips[start : start + self.batch_size].astype(np.float32)))
            for start in range(0, len(chips), self.batch_size)
        ]
        return np.concatenate(chunks).astype(np.float32)


@EMBEDDERS.register("dlib")
class DlibReferenceEmbedder(Embedder):
    """dlib's own ``face_recognition_model_v1``: the reference the Keras port is tested against."""

    model_version = "dlib_resnet_v1-dlib"

    def __init__(self, *, flip_tta: bool = False) -> None:
        super().__init__(flip_tta=flip_tta)
        import dlib
        import face_recognition_models

        self.model = dlib.face_recognition_model_v1(face_recognition_models.face_recognition_model_location())

    def _embed(self, chips: np.ndarray) -> np.ndarray:
        vectors = self.model.compute_face_descriptor(list(chips))
        return np.asarray([np.asarray(v) for v in vectors], dtype=np.float32)


@functools.lru_cache(maxsize=8)
def _cached_embedder(name: str, options: tuple[tuple[str, Any], ...]) -> Embedder:
    return EMBEDDERS.create(name, **dict(options))


def get_embedder(name: str = "dlib-keras", **options: Any) -> Embedder:
    """The embedder ``name`` with ``options``, loaded once per process."""
    return _cached_embedder(name, tuple(sorted(options.items())))


def tensorflow_gpus() -> list[str]:
    """Names of the GPUs the Keras backend can use (empty on a CPU-only machine)."""
    import keras

    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        return [gpu.name for gpu in tf.config.list_physical_devices("GPU")]
    if backend == "jax":
        import jax

        return [str(d) for d in jax.devices() if d.platform == "gpu"]
    if backend == "torch":
        import torch

        return [f"cuda:{i}" for i in range(torch.cuda.device_count())]
    return []


# Embedders defined in their own modules register themselves on import (kept last: they import this one).
from facecore import keras_file_embedder  # noqa: E402, F401
