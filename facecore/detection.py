"""Face detection: a ``Face`` record and detectors behind one interface and a registry.

All detectors take an (H, W, 3) uint8 RGB image (``facecore.images.load_image``) and return
``Face``s in that image's pixel coordinates, largest first. Scores are each detector's own
confidence (Haar: cascade level weight, HOG: SVM margin, MTCNN: probability) and are not
comparable across detectors. TensorFlow is imported only when an MTCNN detector is built, so
Haar/HOG users never pay for it.
"""

from __future__ import annotations

import functools
import threading
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import cv2
import dlib
import numpy as np

from facecore.images import downscale_to_max_side
from facecore.registry import Registry


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

    def __init__(
        self, *, min_face_size: int = 20, min_score: float = 0.0, max_side: int | None = 1600
    ) -> None:
        if min_face_size < 1:
            raise ValueError(f"min_face_size must be at least 1, got {min_face_size}")
        if max_side is not None and max_side < 32:
            raise ValueError(f"max_side must be at least 32 (or None), got {max_side}")
        self.min_face_size = int(min_face_size)
        self.min_score = float(min_score)
        self.max_side = max_side
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
        """Faces in one image, largest first."""
        _check_image(image)
        small, factors = self._shrink(image)
        with self._lock:
            candidates = self._detect(small, self._backend_min_size(factors))
        return self._finish(candidates, factors, image.shape)

    def detect_batch(self, images: Sequence[np.ndarray]) -> list[list[Face]]:
        """``detect`` on each image; backends with a real batch path override this."""
        return [self.detect(image) for image in images]

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


DETECTORS = Registry[Detector]("detector")

# Longest side the detectors see in interactive use (dashboard, API). On the sample photos (up to
# 2,204 px, group photos included) 800 px finds the same faces as 1,600 px with hog and mtcnn at under
# half the time; 640 px is faster still but loses one face of a 20-face crowd. Boxes and landmarks
# map back to the full photo, and chips are cut from it.
INTERACTIVE_MAX_SIDE = 800


# ----------------------------------------------------------------------------- Haar


@DETECTORS.register("haar")
class HaarDetector(Detector):
    """OpenCV's Viola-Jones frontal-face cascade: fast, no landmarks, more false positives."""

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


# ----------------------------------------------------------------------------- HOG


@DETECTORS.register("hog")
class HogDetector(Detector):
    """dlib's HOG + linear SVM detector: frontal faces from about 40 px (with upsample=1)."""

    def __init__(self, *, upsample: int = 1, adjust_threshold: float = 0.0, **base: Any) -> None:
        super().__init__(**base)
        if upsample < 0:
            raise ValueError(f"upsample must be 0 or more, got {upsample}")
        self.upsample = int(upsample)
        self.adjust_threshold = float(adjust_threshold)
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


# ----------------------------------------------------------------------------- MTCNN


@DETECTORS.register("mtcnn")
class MtcnnDetector(Detector):
    """The ``mtcnn`` package (TensorFlow): boxes plus five landmarks, batched when sizes match.

    Its batch path pads images of different sizes to the largest one, which changes what the
    network sees near the padding and, in mtcnn 1.0.0, shifts boxes by the wrong image's padding
    when an image in the batch has no face. So batches here only ever hold images of one shape.
    """

    # Columns of the package's numpy output: image id, x1, y1, x2, y2, confidence, then the
    # five landmark x's and the five landmark y's (left eye, right eye, nose, mouth l, mouth r).
    _X = slice(6, 11)
    _Y = slice(11, 16)
    # MTCNN's first network looks at 12x12 windows; asking for smaller faces upsamples the image.
    _SMALLEST = 12
    # mtcnn 1.0.0 sizes its image pyramid without regard to min_face_size, so a larger value
    # shrinks the last levels below 12 px and the whole call fails ("no faces"). Above this we
    # let the pyramid run at 20 (the package default) and drop small faces afterwards.
    _LARGEST_SAFE = 20

    def __init__(self, *, batch_size: int = 8, device: str | None = None, **base: Any) -> None:
        super().__init__(**base)
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        self.batch_size = batch_size
        self.device = device or _default_tf_device()
        # Detectors that differ only in options share one network (and its lock).
        self._mtcnn, self._lock = _shared_mtcnn(self.device)

    def _backend_min_size(self, factors: tuple[float, float]) -> int:
        return min(max(self._SMALLEST, super()._backend_min_size(factors)), self._LARGEST_SAFE)

    def _detect(self, image: np.ndarray, min_size: int) -> list[_Candidate]:
        return self._detect_same_shape([image], min_size)[0]

    def detect_batch(self, images: Sequence[np.ndarray]) -> list[list[Face]]:
        """One network pass per group of same-shaped images (about 2x faster than one by one)."""
        for image in images:
            _check_image(image)
        shrunk = [self._shrink(image) for image in images]
        results: list[list[Face]] = [[] for _ in images]
        for indices in _chunks(_group_by_shape([small for small, _ in shrunk]), self.batch_size):
            factors = shrunk[indices[0]][1]
            with self._lock:
                batch = self._detect_same_shape(
                    [shrunk[i][0] for i in indices], self._backend_min_size(factors)
                )
            for i, candidates in zip(indices, batch, strict=True):
                results[i] = self._finish(candidates, factors, images[i].shape)
        return results

    def _detect_same_shape(self, images: list[np.ndarray], min_size: int) -> list[list[_Candidate]]:
        if min(images[0].shape[:2]) < self._SMALLEST:
            return [[] for _ in images]  # too small for PNet's 12x12 window; the package would fail
        rows = self._mtcnn.detect_faces(
            [image.astype(np.float32) for image in images],  # float32 in, so it never computes in float64
            box_format="xyxy",
            output_type="numpy",
            fit_to_image=False,  # we clip ourselves; the package clips to W-1 / H-1
            min_face_size=min_size,
        )
        rows = np.asarray(rows, dtype=np.float64).reshape(-1, 16)
        return [[self._candidate(row) for row in rows[rows[:, 0] == i]] for i in range(len(images))]

    def _candidate(self, row: np.ndarray) -> _Candidate:
        landmarks = np.stack([row[self._X], row[self._Y]], axis=1)
        return _Candidate(row[1], row[2], row[3], row[4], row[5], landmarks)


@functools.cache
def _shared_mtcnn(device: str) -> tuple[Any, threading.Lock]:
    from mtcnn import MTCNN  # lazy: imports TensorFlow

    return MTCNN(stages="face_and_landmarks_detection", device=device), threading.Lock()


def _default_tf_device() -> str:
    import tensorflow as tf  # lazy: only MTCNN needs it

    return "GPU:0" if tf.config.list_physical_devices("GPU") else "CPU:0"


def _group_by_shape(images: Sequence[np.ndarray]) -> list[list[int]]:
    groups: dict[tuple[int, ...], list[int]] = {}
    for i, image in enumerate(images):
        groups.setdefault(image.shape, []).append(i)
    return list(groups.values())


def _chunks(groups: list[list[int]], size: int) -> list[list[int]]:
    return [group[i : i + size] for group in groups for i in range(0, len(group), size)]


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
