"""The records that join the steps of the data path: a detected ``Face`` and an ``EmbeddedFace``.

Plain frozen dataclasses over numpy arrays, importable without any model library, so that caches,
the gallery and the decisions can use them without loading dlib, OpenCV's detectors or TensorFlow.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Face:
    """One detected face, in pixel coordinates of the decoded RGB image.

    ``box`` is ``(x, y, w, h)``. ``landmarks`` is a ``(5, 2)`` float32 array of ``(x, y)``
    points in MTCNN's order (left eye, right eye, nose, mouth left, mouth right, as seen in
    the image) when the detector gives them, else ``None``.
    """

    box: tuple[int, int, int, int]
    score: float
    landmarks: np.ndarray | None
    detector: str

    @property
    def area(self) -> int:
        return self.box[2] * self.box[3]

    @property
    def center(self) -> tuple[float, float]:
        x, y, w, h = self.box
        return (x + w / 2.0, y + h / 2.0)


@dataclass(frozen=True)
class EmbeddedFace:
    """A face with its embedding and what it was embedded from.

    ``chip`` is the aligned crop the embedder saw and ``landmarks`` the five image points it was fitted
    to (in the order ``alignment`` names: ``"dlib5"`` or ``"mtcnn5"``); all three are None when the
    result was read back from the on-disk cache, which keeps only boxes and vectors.
    """

    face: Face
    embedding: np.ndarray
    chip: np.ndarray | None = None
    alignment: str | None = None
    landmarks: np.ndarray | None = None


@dataclass(frozen=True)
class Match:
    """One gallery face found near a probe: whose it is and how far (euclidean, L2)."""

    face_id: int
    person_id: int
    person_name: str
    distance: float
