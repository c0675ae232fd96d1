"""dlib's HOG + linear SVM detector (registered as ``hog``)."""

from __future__ import annotations

from typing import Any

import numpy as np

from facecore.detection.base import DETECTORS, Detector, _Candidate


@DETECTORS.register("hog")
class HogDetector(Detector):
    """dlib's HOG + linear SVM detector: frontal faces from about 40 px (with upsample=1)."""

    summary = "dlib HOG + SVM: fast, frontal faces from about 40 px"
    order = 20

    def __init__(self, *, upsample: int = 1, adjust_threshold: float = 0.0, **base: Any) -> None:
        super().__init__(**base)
        if upsample < 0:
            raise ValueError(f"upsample must be 0 or more, got {upsample}")
        self.upsample = int(upsample)
        self.adjust_threshold = float(adjust_threshold)
        import dlib  # here, not at import: listing the detectors must not load dlib

        self._detector = dlib.get_frontal_face_detector()

    def _detect(self, image: np.ndarray, min_size: int) -> list[_Candidate]:
        rects, scores, _ = self._detector.run(
            np.ascontiguousarray(image), self.upsample, self.adjust_threshold
        )
        # dlib's right/bottom are inclusive pixel indices, hence + 1 for the far edge.
        return [
            _Candidate(float(r.left()), float(r.top()), float(r.right() + 1), float(r.bottom() + 1), float(s))
            for r, s in zip(rects, scores, strict=True)
        ]
