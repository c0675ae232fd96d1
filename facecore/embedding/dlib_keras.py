"""dlib's ResNet rebuilt in Keras 3 (registered as ``dlib-keras``, the default embedder)."""

from __future__ import annotations

import numpy as np

from facecore.embedding.base import EMBEDDERS, Embedder, predict_in_batches


@EMBEDDERS.register("dlib-keras")
class KerasDlibEmbedder(Embedder):
    """dlib's ResNet (99.38% on LFW as published) rebuilt in Keras: batched, and on a GPU when present."""

    summary = "dlib's ResNet (2017), 128-D, rebuilt in Keras: batched, on a GPU when Keras sees one"
    order = 10
    pretrained = True
    card = {
        "model": "dlib's ResNet (29 conv layers, a slimmed ResNet-34), 128-D, by Davis King (2017); "
        "rebuilt here in Keras 3 from dlib's weights, with the same vectors as dlib",
        "training data": "about 3 million faces of 7,485 people (FaceScrub, VGG Face and images its author "
        "collected), with LFW's people left out",
        "loss": "a pairwise hinge (metric) loss with hard-negative mining, which pulls a person's faces "
        "within distance 0.6 of each other",
        "terms": "released into the public domain by its author (dlib-models)",
        "published": "99.38% on LFW (dlib's own figure)",
    }

    model_version = "dlib_resnet_v1-keras"

    def __init__(self, *, flip_tta: bool = False, batch_size: int = 32) -> None:
        super().__init__(flip_tta=flip_tta)
        from facecore.embedding.dlib_resnet import load_keras_model

        self.batch_size = batch_size
        self.model = load_keras_model()

    def _embed(self, chips: np.ndarray) -> np.ndarray:
        return predict_in_batches(self.model, chips, self.batch_size)
