"""The classroom's Keras models: the small CNN encoder, the twin (siamese) network around it, and the
export that lets a trained encoder take the pipeline's 150x150 chips (a ``keras-file`` embedder).

``AbsoluteDifference`` is registered as ``facecore>AbsoluteDifference`` so saved twins load back.
"""

from __future__ import annotations

import os
from pathlib import Path

import keras
import numpy as np
from keras import layers, ops

from facecore.classroom.data import CHIP_CROP_FRACTION


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


def save_model(model: keras.Model, path: str | os.PathLike[str]) -> Path:
    """Save as a ``.keras`` file (the name must end in ``.keras``); returns the path."""
    path = Path(path)
    if path.suffix != ".keras":
        raise ValueError(f"Keras 3 saves models to '.keras' files, got {path.name!r}")
    path.parent.mkdir(parents=True, exist_ok=True)
    model.save(path)
    return path
