"""The ``Detector`` base class, the ``DETECTORS`` registry and the shared-instance helpers.

A detector shrinks large photos to ``max_side``, runs its backend (``_detect``), maps the raw boxes
back to original pixels, clips, filters by ``min_face_size`` and ``min_score``, and sorts largest
first. Scores are each backend's own confidence (Haar: cascade level weight, HOG: SVM margin, MTCNN:
probability) and are not comparable across detectors.
"""

from __future__ import annotations

import functools
import threading
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import cv2
import numpy as np

from facecore.images import downscale_to_max_side
from facecore.registry import Registry
from facecore.types import Face

#: Photos whose shorter side is below this many pixels are searched again at twice the size when no face
#: is found (LFW's 250 px photos are not: their calibrations stay as measured).
SMALL_PHOTO_SIDE = 200


@dataclass(frozen=True)
class _Candidate:
    """A raw detection in the (possibly downscaled) image the backend saw: float corners."""

    x1: float
    y1: float
    x2: float
    y2: float
    score: float
    landmarks: np.ndarray | None = None


# ----------------------------------------------------------------------------- base


class Detector(ABC):
    """Finds faces in RGB images. Subclasses implement ``_detect`` on an already-shrunk image.

    ``min_face_size`` (shorter box side, original pixels) and ``min_score`` drop weak or tiny
    detections; ``max_side`` shrinks large photos before detecting (faces much smaller than
    about ``longest_side / max_side`` times the backend's own minimum are then missed), and
    results are mapped back to original pixels. ``None`` disables shrinking.
    """

    name: ClassVar[str] = "detector"  # replaced by the registry decorator
    #: One line for pickers and help texts: what it is and what it is good at.
    summary: ClassVar[str] = ""
    #: Position in pickers (smaller first).
    order: ClassVar[int] = 100
    #: One line on the weights' terms, shown wherever the detector can be chosen ("" when unrestricted).
    licence: ClassVar[str] = ""
    #: Whether its faces carry five landmarks (eye centres, nose tip, mouth corners) to align on.
    gives_landmarks: ClassVar[bool] = False

    def __init__(
        self,
        *,
        min_face_size: int = 20,
        min_score: float = 0.0,
        max_side: int | None = 1600,
        upscale_below: int | None = SMALL_PHOTO_SIDE,
    ) -> None:
        if min_face_size < 1:
            raise ValueError(f"min_face_size must be at least 1, got {min_face_size}")
        if max_side is not None and max_side < 32:
            raise ValueError(f"max_side must be at least 32 (or None), got {max_side}")
        self.min_face_size = int(min_face_size)
        self.min_score = float(min_score)
        self.max_side = max_side
        self.upscale_below = upscale_below
        # get_detector shares one instance between callers (and Streamlit sessions, which are
        # threads); the backends do not promise thread safety, so one call runs at a time.
        self._lock = threading.Lock()

    @property
    def settings_key(self) -> str:
        """The detector's name and every setting that changes what it finds (for cache keys).

        Public scalar attributes only: backends, locks and the device (same results) are left out.
        """
        settings = {
            key: value
            for key, value in vars(self).items()
            if not key.startswith("_")
            and key not in {"device", "batch_size"}
            and (value is None or isinstance(value, int | float | str | bool))
        }
        return f"{self.name}{sorted(settings.items())}"

    def detect(self, image: np.ndarray) -> list[Face]:
        """Faces in one image, largest first (a small photo with none is searched again, doubled)."""
        _check_image(image)
        small, factors = self._shrink(image)
        with self._lock:
            candidates = self._detect(small, self._backend_min_size(factors))
        return self._upscaled_if_none(image, self._finish(candidates, factors, image.shape))

    def detect_batch(self, images: Sequence[np.ndarray]) -> list[list[Face]]:
        """``detect`` on each image; backends with a real batch path override this."""
        return [self.detect(image) for image in images]

    def _upscaled_if_none(self, image: np.ndarray, faces: list[Face]) -> list[Face]:
        """``faces``, or when there are none and the photo's shorter side is below ``upscale_below``,
        the faces found in the photo doubled in size (mapped back to its pixels).

        The detectors' smallest windows (HOG ~80 px at upsample 1, Haar's 24 px cascade at the
        minimum size, MTCNN's 12 px) miss the faces of small portraits; doubling once finds them.
        """
        height, width = image.shape[:2]
        if faces or self.upscale_below is None or min(height, width) >= self.upscale_below:
            return faces
        big = cv2.resize(image, (2 * width, 2 * height), interpolation=cv2.INTER_LINEAR)
        with self._lock:
            candidates = self._detect(big, self._backend_min_size((2.0, 2.0)))
        return self._finish(candidates, (2.0, 2.0), image.shape)

    @abstractmethod
    def _detect(self, image: np.ndarray, min_size: int) -> list[_Candidate]:
        """Raw detections in ``image``; ``min_size`` is ``min_face_size`` in this image's pixels."""

    # -- shared steps ---------------------------------------------------------------------

    def _shrink(self, image: np.ndarray) -> tuple[np.ndarray, tuple[float, float]]:
        """The image the backend sees, and its (x, y) scale relative to the original."""
        if self.max_side is None:
            return image, (1.0, 1.0)
        small, _ = downscale_to_max_side(image, self.max_side)
        # Per-axis factors from the real shapes, so rounding in the resize does not skew boxes.
        return small, (small.shape[1] / image.shape[1], small.shape[0] / image.shape[0])

    def _backend_min_size(self, factors: tuple[float, float]) -> int:
        return max(1, int(self.min_face_size * min(factors)))

    def _finish(
        self, candidates: list[_Candidate], factors: tuple[float, float], shape: tuple[int, ...]
    ) -> list[Face]:
        """Map back to original pixels, clip, filter and sort largest first."""
        faces = [self._to_face(c, factors, shape) for c in candidates]
        kept = [f for f in faces if f is not None and self._keep(f)]
        return sorted(kept, key=lambda f: f.area, reverse=True)

    def _keep(self, face: Face) -> bool:
        return min(face.box[2], face.box[3]) >= self.min_face_size and face.score >= self.min_score

    def _to_face(self, c: _Candidate, factors: tuple[float, float], shape: tuple[int, ...]) -> Face | None:
        fx, fy = factors
        height, width = shape[:2]
        x1 = _clip_round(c.x1 / fx, width)
        x2 = _clip_round(c.x2 / fx, width)
        y1 = _clip_round(c.y1 / fy, height)
        y2 = _clip_round(c.y2 / fy, height)
        if x2 <= x1 or y2 <= y1:
            return None  # entirely outside the image
        landmarks = None
        if c.landmarks is not None:
            landmarks = (np.asarray(c.landmarks, dtype=np.float64) / (fx, fy)).astype(np.float32)
        return Face(
            box=(x1, y1, x2 - x1, y2 - y1), score=float(c.score), landmarks=landmarks, detector=self.name
        )


def _clip_round(value: float, limit: int) -> int:
    return int(round(min(max(value, 0.0), float(limit))))


def _check_image(image: np.ndarray) -> None:
    if not isinstance(image, np.ndarray) or image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        got = f"{image.dtype} {image.shape}" if isinstance(image, np.ndarray) else type(image).__name__
        raise ValueError(
            f"detectors expect an (H, W, 3) uint8 RGB image (see facecore.images.load_image), got {got}"
        )
    if image.shape[0] == 0 or image.shape[1] == 0:
        raise ValueError("the image has no pixels")


DETECTORS = Registry[Detector]("detector", package="facecore.detection")

# Longest side the detectors see in interactive use (dashboard, API). On the sample photos (up to
# 2,204 px, group photos included) 800 px finds the same faces as 1,600 px with hog and mtcnn at under
# half the time; 640 px is faster still but loses one face of a 20-face crowd. Boxes and landmarks
# map back to the full photo, and chips are cut from it.
INTERACTIVE_MAX_SIDE = 800


# ----------------------------------------------------------------------------- helpers


def get_detector(name: str, **options: Any) -> Detector:
    """A shared detector for ``name`` and ``options``, built once (models load once per process)."""
    return _cached_detector(name, tuple(sorted(options.items())))


@functools.lru_cache(maxsize=16)
def _cached_detector(name: str, options: tuple[tuple[str, Any], ...]) -> Detector:
    return DETECTORS.create(name, **dict(options))


def detect_faces(image: np.ndarray, detector: str = "hog", **options: Any) -> list[Face]:
    """Faces in ``image`` with the shared ``detector``, largest first."""
    return get_detector(detector, **options).detect(image)
