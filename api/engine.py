"""The engine every request shares: one pipeline, the gallery, the decision threshold, and two guards.

Contract:

* The pipeline is ``facecore.pipeline.build_pipeline(config.pipeline)``, built once per app (the API's
  only cache; the models themselves are shared per process by facecore). Faces come from
  ``FacePipeline.process`` unchanged: ``EmbeddedFace`` objects, largest first, each with its chip,
  the landmarks it was aligned to and their order (``alignment``).
* One model call runs at a time (``_model_lock``: TensorFlow does not promise thread-safe inference,
  and the machine has few cores), and at most ``MAX_IMAGES_IN_FLIGHT`` decoded images are held at
  once (``_image_slots``), which bounds memory under load.
* Image problems become ``HTTPException(422)`` whose sentence names the form field.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from fastapi import HTTPException

from api.config import ApiConfig
from api.ratelimit import RateLimiter
from facecore.gallery.stores import open_gallery
from facecore.images import ImageError, decode_image
from facecore.pipeline import FacePipeline, PrimaryFaces, build_pipeline
from facecore.types import EmbeddedFace

MAX_IMAGES_IN_FLIGHT = 4  # decoded images held at once: bounds memory (40 MP is 120 MB as RGB)


class Engine:
    """The pipeline, the gallery and the decision threshold, shared by every request."""

    def __init__(self, config: ApiConfig, pipeline: FacePipeline | None = None) -> None:
        if pipeline is not None and pipeline.config != config.pipeline:
            raise ValueError(
                f"the pipeline was built for {pipeline.config.describe()}, the API is configured for "
                f"{config.pipeline.describe()}"
            )
        self.config = config
        self.pipeline = pipeline or build_pipeline(config.pipeline)
        self.gallery = open_gallery(config.gallery_url or f"sqlite://{config.gallery_root}")
        choice = config.decision_threshold()
        self.threshold = choice.value
        self.threshold_source = choice.source
        self._model_lock = threading.Lock()
        self._image_slots = threading.BoundedSemaphore(MAX_IMAGES_IN_FLIGHT)
        self.rate_limiter = RateLimiter(config.rate_per_minute, config.rate_burst)

    @property
    def model_version(self) -> str:
        return self.pipeline.embedder.version

    @property
    def detector(self) -> str:
        return self.pipeline.config.detector

    def close(self) -> None:
        self.gallery.close()

    def decode(self, data: bytes, field: str) -> np.ndarray:
        try:
            return decode_image(data, max_pixels=self.config.max_pixels)
        except ImageError as exc:
            raise HTTPException(422, f"{field}: {exc}") from None

    def faces_of_upload(self, data: bytes, field: str) -> tuple[tuple[int, int], list[EmbeddedFace]]:
        """The decoded image's (height, width) and ``FacePipeline.process``'s faces, largest first."""
        with self._image_slots:
            image = self.decode(data, field)
            with self._model_lock:
                found = self.pipeline.process(image)
            return image.shape[:2], found

    def largest_face(self, data: bytes, field: str) -> tuple[EmbeddedFace, int]:
        """The largest face of an upload and how many faces it has; 422 when it has none."""
        _, found = self.faces_of_upload(data, field)
        if not found:
            raise HTTPException(
                422,
                f"{field}: no face found with the {self.detector} detector. Use a photo where "
                "the face is larger, frontal and well lit.",
            )
        return found[0], len(found)

    def embed_primary_faces(self, paths: Sequence[Path]) -> tuple[np.ndarray, np.ndarray]:
        """``FacePipeline.embed_primary_faces`` of image files under the model lock (batch verification)."""
        with self._model_lock:
            return self.pipeline.embed_primary_faces(paths)

    def embed_primary_faces_with_quality(self, paths: Sequence[Path]) -> PrimaryFaces:
        """``FacePipeline.embed_primary_faces_with_quality`` under the model lock (batch verification)."""
        with self._model_lock:
            return self.pipeline.embed_primary_faces_with_quality(paths)

    def guarded_pipeline(self) -> GuardedPipeline:
        """The pipeline behind this engine's guards, for ``facecore.gallery`` calls that run it themselves."""
        return GuardedPipeline(self)


class GuardedPipeline:
    """``PipelineLike`` for ``Gallery.enrol``/``enrol_many``: the API's pixel limit, image slot and model lock.

    ``Gallery.enrol`` decodes the photo itself (within facecore's own pixel cap), so the API's smaller
    limit, when set, is checked here on the decoded size, with the same wording as ``decode_image``.
    """

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self.embedder = engine.pipeline.embedder

    def process(self, image: np.ndarray) -> Sequence[EmbeddedFace]:
        height, width = image.shape[:2]
        limit = self._engine.config.max_pixels
        if width * height > limit:
            raise ImageError(
                f"The image is {width}x{height} pixels ({width * height / 1e6:.0f} MP); the limit is {limit / 1e6:g} MP."
            )
        with self._engine._image_slots, self._engine._model_lock:
            return self._engine.pipeline.process(image)
