"""dlib's own ResNet (registered as ``dlib``): the reference the Keras port is tested against.

It computes the vectors the Keras port computes (cosine >= 0.9999999 in the tests), so it shares the
port's LFW calibration (``calibration_twin``).
"""

from __future__ import annotations

import numpy as np

from facecore.embedding.base import EMBEDDERS, Embedder


@EMBEDDERS.register("dlib")
class DlibReferenceEmbedder(Embedder):
    """dlib's own ``face_recognition_model_v1``: the reference the Keras port is tested against."""

    summary = "dlib's own ResNet through dlib: the reference the Keras port is checked against (slow)"
    order = 20

    model_version = "dlib_resnet_v1-dlib"
    calibration_twin = "dlib-keras"

    def __init__(self, *, flip_tta: bool = False) -> None:
        super().__init__(flip_tta=flip_tta)
        import dlib
        import face_recognition_models

        self.model = dlib.face_recognition_model_v1(face_recognition_models.face_recognition_model_location())

    def _embed(self, chips: np.ndarray) -> np.ndarray:
        vectors = self.model.compute_face_descriptor(list(chips))
        return np.asarray([np.asarray(v) for v in vectors], dtype=np.float32)
