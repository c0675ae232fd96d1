"""``PipelineConfig``: everything that decides which vectors a photo gives, as one frozen value.

A config names the detector, the embedding model, flip test-time augmentation, how far photos are
shrunk before detection and where alignment takes its landmarks. It is hashable (a cache key for
Streamlit and the API), it travels through the code instead of loose arguments, and its
``model_version`` (what the gallery and the caches key on) is computed without loading any model
library.

>>> config = PipelineConfig(detector="mtcnn", flip_tta=True)
>>> config.model_version
'dlib_resnet_v1-keras+flip'
>>> config.describe()
'mtcnn detector, dlib-keras model, flip TTA'
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from facecore.detection.base import DETECTORS, INTERACTIVE_MAX_SIDE
from facecore.embedding.base import DEFAULT_EMBEDDER, EMBEDDERS

DEFAULT_DETECTOR = "hog"


@dataclass(frozen=True)
class PipelineConfig:
    """Detector, model and options of one pipeline; see the module docstring."""

    detector: str = DEFAULT_DETECTOR
    embedder: str = DEFAULT_EMBEDDER
    #: The ``.keras`` file of a ``keras-file`` embedder (None for the pretrained models).
    model_path: str | None = None
    flip_tta: bool = False
    #: Longest side the detector sees (photos are shrunk to it); None keeps the detector's default.
    max_side: int | None = None
    #: Align to the detector's own five points when it gives them, else to dlib's 5-point predictor.
    use_detector_landmarks: bool = True

    def __post_init__(self) -> None:
        if self.detector not in DETECTORS:
            raise ValueError(f"unknown detector {self.detector!r}; choose one of: {', '.join(DETECTORS.names())}")
        if self.embedder not in EMBEDDERS:
            raise ValueError(f"unknown embedder {self.embedder!r}; choose one of: {', '.join(EMBEDDERS.names())}")
        if (self.model_path is None) == (self.embedder == "keras-file"):
            raise ValueError("model_path is needed by the keras-file embedder, and only by it")

    @classmethod
    def interactive(cls, **fields: Any) -> PipelineConfig:
        """The dashboard's and the API's config: photos shrunk to ``INTERACTIVE_MAX_SIDE`` for detection."""
        return cls(**{"max_side": INTERACTIVE_MAX_SIDE, **fields})

    def replace(self, **changes: Any) -> PipelineConfig:
        return dataclasses.replace(self, **changes)

    @property
    def detector_options(self) -> dict[str, Any]:
        return {} if self.max_side is None else {"max_side": self.max_side}

    @property
    def embedder_options(self) -> dict[str, Any]:
        return {"flip_tta": self.flip_tta, **({"path": self.model_path} if self.model_path else {})}

    @property
    def model_version(self) -> str:
        """The embedder's version string (model, weights and flip TTA), without loading the model."""
        return EMBEDDERS.get(self.embedder).version_for(**self.embedder_options)

    @property
    def pretrained(self) -> bool:
        """True for a model whose LFW calibration ships with the lab (not your own ``.keras`` file)."""
        return bool(EMBEDDERS.get(self.embedder).pretrained)

    @property
    def licence(self) -> str:
        """The terms of the detector's and the model's weights, one line ("" when unrestricted)."""
        lines = {DETECTORS.get(self.detector).licence, EMBEDDERS.get(self.embedder).licence} - {""}
        return "; ".join(sorted(lines))

    @property
    def model_label(self) -> str:
        """The model as a person would name it: the registry name, or the kept file's name."""
        return self.embedder if self.model_path is None else self.model_path.replace("\\", "/").rsplit("/", 1)[-1]

    def describe(self) -> str:
        return (
            f"{self.detector} detector, {self.model_label} model"
            f"{', flip TTA' if self.flip_tta else ''}{'' if self.use_detector_landmarks else ', dlib landmarks'}"
        )
