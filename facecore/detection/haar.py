"""OpenCV's Haar cascade detector (registered as ``haar``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import cv2
import numpy as np

from facecore.detection.base import DETECTORS, Detector, _Candidate


@DETECTORS.register("haar")
class HaarDetector(Detector):
    """OpenCV's Viola-Jones frontal-face cascade: fast, no landmarks, more false positives."""

    summary = "OpenCV Haar cascade: fastest, no landmarks, more false detections"
    order = 10

    CASCADE_FILE = "haarcascade_frontalface_default.xml"

    def __init__(self, *, scale_factor: float = 1.1, min_neighbors: int = 5, **base: Any) -> None:
        super().__init__(**base)
        self.scale_factor = scale_factor
        self.min_neighbors = min_neighbors
        self._cascade = _load_cascade(self.CASCADE_FILE)

    def _detect(self, image: np.ndarray, min_size: int) -> list[_Candidate]:
        gray = cv2.equalizeHist(cv2.cvtColor(image, cv2.COLOR_RGB2GRAY))
        # detectMultiScale3 with outputRejectLevels gives each box a confidence (level weight).
        boxes, _levels, weights = self._cascade.detectMultiScale3(
            gray,
            scaleFactor=self.scale_factor,
            minNeighbors=self.min_neighbors,
            minSize=(min_size, min_size),
            outputRejectLevels=True,
        )
        weights = np.asarray(weights, dtype=np.float64).reshape(-1)
        return [
            _Candidate(float(x), float(y), float(x + w), float(y + h), float(s))
            for (x, y, w, h), s in zip(np.asarray(boxes).reshape(-1, 4), weights, strict=True)
        ]


def _load_cascade(filename: str) -> cv2.CascadeClassifier:
    path = Path(cv2.data.haarcascades) / filename
    if not path.is_file():
        raise RuntimeError(
            f"OpenCV's Haar cascade {filename} is missing from {path.parent}; "
            "install opencv-python-headless 4.x (5.x wheels do not ship cv2/data)"
        )
    cascade = cv2.CascadeClassifier(str(path))
    if cascade.empty():
        raise RuntimeError(f"OpenCV could not load the Haar cascade {path}")
    return cascade
