"""The ``Embedder`` base class and the ``EMBEDDERS`` registry: aligned chips in, vectors out.

Contract: ``embed(chips)`` takes ``(N, S, S, 3)`` uint8 RGB chips cut by ``facecore.alignment`` at
the embedder's ``chip_size`` and returns ``(N, dimension)`` float32; closer vectors mean more alike
faces. ``version`` names the vectors exactly (model, weights, test-time augmentation): caches and the
gallery key on it, and :meth:`Embedder.version_for` gives it without loading any model library.
An embedder that computes the same function as another registered one (the same weights under another
runtime, held to cosine >= 0.9999 by the tests) names it in ``calibration_twin`` and shares its LFW
calibration (``facecore.verification.thresholds``); its own version still keys caches and the gallery.
Each embedder is one module in this package that registers itself.
"""

from __future__ import annotations

import functools
from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np

from facecore.registry import Registry

CHIP_SIZE = 150


class Embedder(ABC):
    """Maps aligned face chips to embedding vectors; closer vectors mean more alike faces."""

    name: ClassVar[str]
    dimension: ClassVar[int] = 128
    #: The chip geometry this model reads (``facecore.alignment.CHIP_VERSIONS``) and its side in pixels.
    chip: ClassVar[str] = "dlib150"
    chip_size: ClassVar[int] = CHIP_SIZE
    #: One line on the weights' terms, shown wherever the model can be chosen ("" when unrestricted).
    licence: ClassVar[str] = ""
    #: A short model card (what it is, its training data and loss, its terms, what its authors publish);
    #: the numbers measured here come from the calibration, not from this card.
    card: ClassVar[dict[str, str]] = {}
    #: Changes whenever the vectors would change: the embedding cache keys on it.
    model_version: ClassVar[str]
    #: One line for pickers and help texts.
    summary: ClassVar[str] = ""
    #: Position in pickers (smaller first).
    order: ClassVar[int] = 100
    #: True for the models whose LFW numbers and thresholds ship in ``facecore/data``.
    pretrained: ClassVar[bool] = False
    #: The registered embedder whose LFW calibration this one shares because it computes the same vectors
    #: (the same weights under another runtime, e.g. an onnxruntime oracle of a Keras port): thresholds and
    #: LFW figures are looked up under that embedder's version with this one's options (flip TTA, input
    #: scaling). None: only its own calibration counts.
    calibration_twin: ClassVar[str | None] = None
    #: Scale every output vector to unit length (after flip TTA), so euclidean distance orders pairs as
    #: cosine does: the gallery's L2 search and the API's euclidean decisions then suit the model.
    unit_length: ClassVar[bool] = False

    def __init__(self, *, flip_tta: bool = False) -> None:
        self.flip_tta = flip_tta

    @classmethod
    def model_version_for(cls, **options: Any) -> str:
        """The model version an instance built with ``options`` would have (no model is loaded)."""
        return cls.model_version

    @classmethod
    def version_for(cls, *, flip_tta: bool = False, **options: Any) -> str:
        """:attr:`version` of an instance built with these options, without building it."""
        return f"{cls.model_version_for(**options)}{'+flip' if flip_tta else ''}"

    @property
    def version(self) -> str:
        """The cache key of this embedder's output, including test-time augmentation."""
        return f"{self.model_version}{'+flip' if self.flip_tta else ''}"

    def embed(self, chips: np.ndarray | Sequence[np.ndarray]) -> np.ndarray:
        """Embed ``(N, S, S, 3)`` uint8 RGB chips; returns ``(N, dimension)`` float32."""
        batch = self._as_chip_batch(chips)
        if len(batch) == 0:
            return np.zeros((0, self.dimension), np.float32)
        if not self.flip_tta:
            vectors = self._embed(batch)
        else:
            # Test-time augmentation: average the embeddings of each chip and its mirror image.
            both = self._embed(np.concatenate([batch, batch[:, :, ::-1]]))
            vectors = (both[: len(batch)] + both[len(batch) :]) / 2
        if self.unit_length:
            vectors = vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
        return np.asarray(vectors, np.float32)

    @abstractmethod
    def _embed(self, chips: np.ndarray) -> np.ndarray: ...

    def _as_chip_batch(self, chips: np.ndarray | Sequence[np.ndarray]) -> np.ndarray:
        shape = (self.chip_size, self.chip_size, 3)
        batch = np.asarray(chips, dtype=np.uint8) if len(chips) else np.zeros((0, *shape), np.uint8)
        if batch.ndim != 4 or batch.shape[1:] != shape:
            raise ValueError(f"expected chips of shape (N, {shape[0]}, {shape[1]}, 3), got {batch.shape}")
        return np.ascontiguousarray(batch)


EMBEDDERS: Registry[Embedder] = Registry("embedder", package="facecore.embedding")
DEFAULT_EMBEDDER = "dlib-keras"


@functools.lru_cache(maxsize=8)
def _cached_embedder(name: str, options: tuple[tuple[str, Any], ...]) -> Embedder:
    return EMBEDDERS.create(name, **dict(options))


def builtin_embedders() -> list[str]:
    """The embedders that need no file of your own: every registered one but ``keras-file``."""
    return [name for name in EMBEDDERS.names() if name != "keras-file"]


def get_embedder(name: str = DEFAULT_EMBEDDER, **options: Any) -> Embedder:
    """The embedder ``name`` with ``options``, loaded once per process."""
    return _cached_embedder(name, tuple(sorted(options.items())))


def predict_in_batches(model, inputs: np.ndarray, batch_size: int) -> np.ndarray:
    """A Keras model's outputs for ``inputs`` (cast to float32), ``batch_size`` at a time.

    ``predict_on_batch`` per chunk: Keras's ``predict()`` adds a data pipeline that costs ~40% here.
    """
    chunks = [
        np.asarray(model.predict_on_batch(inputs[start : start + batch_size].astype(np.float32)))
        for start in range(0, len(inputs), batch_size)
    ]
    return np.concatenate(chunks).astype(np.float32)


def keras_gpus() -> list[str]:
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
