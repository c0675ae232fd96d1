"""Bring your own model: any ``.keras`` file that maps an image to a vector, as a registered embedder.

The model must have one image input ``(height, width, channels)`` with 1 (grey) or 3 (RGB) channels
and one output ``(dimension,)``. It receives float32 pixels in 0..255 (do any rescaling inside the
model, as :func:`facecore.classroom.models.build_encoder` does). The pipeline's aligned 150x150 RGB chips are
resized to the model's input size (when it has a fixed one) and made grey for a 1-channel model.

Models saved by the classroom (:func:`facecore.classroom.models.export_for_chips`) take chips as they are.
Loading uses Keras's safe mode: a file with Python ``Lambda`` code in it is refused.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import cv2
import numpy as np

from facecore.embedding.base import EMBEDDERS, Embedder, predict_in_batches


class KerasModelError(ValueError):
    """The file is not a usable image-to-vector Keras model; the message says why."""


def file_digest(path: str | os.PathLike[str]) -> str:
    """SHA-256 of a file's bytes, in hex (the embedder's version, so caches never mix two models)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def load_embedding_model(path: str | os.PathLike[str]):
    """Load a ``.keras`` file and check it is image in, vector out; raises :class:`KerasModelError`."""
    import keras

    path = Path(path)
    if path.suffix != ".keras":
        raise KerasModelError(f"{path.name}: expected a Keras 3 '.keras' file")
    if not path.is_file():
        raise KerasModelError(f"{path}: no such file")
    try:
        model = keras.saving.load_model(path, compile=False, safe_mode=True)
    except Exception as exc:  # Keras raises many kinds (zip, JSON, config, unsafe Lambda)
        raise KerasModelError(
            f"{path.name} could not be loaded as a Keras model ({type(exc).__name__}: {exc})"
        ) from exc
    _check_signature(model, path.name)
    return model


def _check_signature(model, name: str) -> None:
    inputs, outputs = model.inputs, model.outputs
    if len(inputs) != 1 or len(outputs) != 1:
        raise KerasModelError(
            f"{name}: needs one image input and one vector output, "
            f"has {len(inputs)} inputs and {len(outputs)} outputs"
        )
    in_shape, out_shape = tuple(inputs[0].shape), tuple(outputs[0].shape)
    if len(in_shape) != 4 or in_shape[-1] not in (1, 3):
        raise KerasModelError(f"{name}: input must be (height, width, 1 or 3), got {in_shape[1:]}")
    if len(out_shape) != 2 or not out_shape[-1]:
        raise KerasModelError(f"{name}: output must be one vector per image, got {out_shape[1:]}")


@EMBEDDERS.register("keras-file")
class KerasFileEmbedder(Embedder):
    """An embedder read from a ``.keras`` file: ``get_embedder("keras-file", path="model.keras")``."""

    summary = "your own .keras model (kept from 'Train your own' or uploaded): not calibrated on LFW"
    order = 90

    @classmethod
    def model_version_for(cls, *, path: str, **options: object) -> str:
        return f"keras-file-{file_digest(path)[:16]}"

    def __init__(self, *, path: str, flip_tta: bool = False, batch_size: int = 64) -> None:
        super().__init__(flip_tta=flip_tta)
        self.path = Path(path)
        self.model = load_embedding_model(self.path)
        self.batch_size = batch_size
        _, self.height, self.width, self.channels = self.model.inputs[0].shape
        self.dimension = int(self.model.outputs[0].shape[-1])
        self.model_version = self.model_version_for(path=str(self.path))

    def describe(self) -> str:
        height = self.height or "any"
        width = self.width or "any"
        colour = "RGB" if self.channels == 3 else "grey"
        return f"{self.path.name}: {height}x{width} {colour} in, {self.dimension}-D vector out"

    def prepare(self, chips: np.ndarray) -> np.ndarray:
        """Chips resized and converted to what the model takes, as float32 in 0..255."""
        if self.height and self.width and chips.shape[1:3] != (self.height, self.width):
            chips = np.stack(
                [cv2.resize(chip, (self.width, self.height), interpolation=cv2.INTER_AREA) for chip in chips]
            )
        if self.channels == 1:
            chips = np.stack([cv2.cvtColor(chip, cv2.COLOR_RGB2GRAY) for chip in chips])[..., None]
        return chips.astype(np.float32)

    def _embed(self, chips: np.ndarray) -> np.ndarray:
        return predict_in_batches(self.model, self.prepare(chips), self.batch_size)
