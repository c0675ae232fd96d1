"""dlib's ResNet rebuilt in Keras 3 (registered as ``dlib-keras``, the default embedder)."""

from __future__ import annotations

import numpy as np

from facecore.embedding.base import EMBEDDERS, Embedder


@EMBEDDERS.register("dlib-keras")
class KerasDlibEmbedder(Embedder):
    """dlib's ResNet (99.38% on LFW as published) rebuilt in Keras: batched, and on a GPU when present."""

    summary = "dlib's ResNet (2017), 128-D, rebuilt in Keras: batched, on a GPU when Keras sees one"
    order = 10
    pretrained = True

    model_version = "dlib_resnet_v1-keras"

    def __init__(self, *, flip_tta: bool = False, batch_size: int = 32) -> None:
        super().__init__(flip_tta=flip_tta)
        from facecore.embedding.dlib_resnet import load_keras_model

        self.batch_size = batch_size
        self.model = load_keras_model()

    def _embed(self, chips: np.ndarray) -> np.ndarray:
        # predict_on_batch per chunk: Keras's predict() adds a data pipeline that costs ~40% here.
        chunks = [
            np.asarray(self.model.predict_on_batch(chips[start : start + self.batch_size].astype(np.float32)))
            for start in range(0, len(chips), self.batch_size)
        ]
        return np.concatenate(chunks).astype(np.float32)
