"""Face detection: a ``Face`` record and detectors behind one interface and a registry."""

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
