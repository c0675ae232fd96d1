"""The two-line use of the lab, in the spirit of face_recognition's ``api.py``: embed, then verify.

>>> import facecore                                              # doctest: +SKIP
>>> a = facecore.face_embeddings("obama/1.jpg")[0]               # doctest: +SKIP
>>> b = facecore.face_embeddings("obama/2.jpg")[0]               # doctest: +SKIP
>>> facecore.verify(a, b).sentence()                             # doctest: +SKIP
'Same person: euclidean distance 0.412 <= threshold 0.614'

Each function takes an optional :class:`~facecore.config.PipelineConfig` (default: HOG detector and
dlib's ResNet); the threshold defaults to the one calibrated on LFW for that configuration.
"""

from __future__ import annotations

import os
from typing import BinaryIO

import numpy as np

from facecore.config import PipelineConfig
from facecore.images import load_image
from facecore.pipeline import build_pipeline
from facecore.types import EmbeddedFace
from facecore.verification import Verdict, default_threshold
from facecore.verification import verify as verify_embeddings


def face_embeddings(
    image: np.ndarray | str | os.PathLike[str] | bytes | BinaryIO, config: PipelineConfig | None = None
) -> list[EmbeddedFace]:
    """Every face in an image (an RGB array, a path, bytes or a file), largest first, embedded."""
    pixels = image if isinstance(image, np.ndarray) else load_image(image)
    return build_pipeline(config).process(pixels)


def verify(
    a: EmbeddedFace | np.ndarray,
    b: EmbeddedFace | np.ndarray,
    config: PipelineConfig | None = None,
    *,
    metric: str = "euclidean",
    threshold: float | None = None,
) -> Verdict:
    """Same person or not, with the default threshold of ``config`` and ``metric`` unless one is given."""
    if threshold is None:
        threshold = default_threshold(config or PipelineConfig(), metric).value
    vectors = [x.embedding if isinstance(x, EmbeddedFace) else np.asarray(x) for x in (a, b)]
    return verify_embeddings(*vectors, threshold=threshold, metric=metric)
