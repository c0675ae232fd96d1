"""Face alignment: cut the chip each embedder was trained on, from five landmarks.

Two chip geometries, named by the embedder's ``chip`` (each with its own version in the cache keys):

* ``"dlib150"``: the 150x150 chip of dlib's ResNet, below;
* ``"arcface112"``: insightface's 112x112 chip, a least-squares similarity that puts five points (eye
  centres, nose tip, mouth corners) on ``ARCFACE_TEMPLATE``, as insightface's ``norm_crop`` does. The
  points come from the detector (SCRFD, MTCNN) or, for boxes without landmarks (Haar, HOG), from
  dlib's 68-point predictor (:func:`semantic_5_points`; its training data, iBUG 300-W, restricts
  commercial use, as ArcFace's weights do anyway).

The dlib chip:

dlib's face model expects exactly what ``dlib.get_face_chip(img, shape, size=150, padding=0.25)``
produces from its 5-point shape predictor. This module reproduces that function with OpenCV
(dlib 20.0.1, ``dlib/image_transforms/interpolation.h``) so every detector feeds the embedder the
same geometry:

* ``chip_transform`` follows ``chip_details(chip_points, img_points, dims)``: a least-squares
  similarity (Umeyama) from the template to the landmarks, turned into a rotated rectangle, then
  the chip's corner pixels are mapped onto that rectangle's corners.
* ``extract_chip`` follows ``extract_image_chips``: crop, dlib's own ``pyramid_down<2>`` while the
  face is more than twice the chip size, then bilinear sampling, truncated to integers as dlib does.

Faces from MTCNN come with five landmarks of their own (eye centres, nose tip, mouth corners);
they are aligned with ``MTCNN_5_TEMPLATE``, the average position of those points in dlib's chip
frame, so no second landmark model has to run.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from typing import Literal

import cv2
import numpy as np

from facecore.types import Face

CHIP_SIZE = 150
CHIP_PADDING = 0.25

# Changes whenever chip geometry changes (templates, warp, pyramid); the embedding cache keys on it.
ALIGNMENT_VERSION = "chip150-p0.25-a1"

# dlib's get_face_chip_details template for its 5-point model, in the unpadded [0, 1] chip frame and
# in dlib's point order: outer and inner corner of the eye on the image's right, outer and inner
# corner of the eye on the image's left, base of the nose.
DLIB_5_TEMPLATE = np.array(
    [
        [0.8595674595992, 0.2134981538014],
        [0.6460604764104, 0.2289674387677],
        [0.1205750620789, 0.2137274526848],
        [0.3340850613712, 0.2290642403242],
        [0.4901123135679, 0.6277975316475],
    ],
    dtype=np.float64,
)

# Where MTCNN's five points (left eye centre, right eye centre, nose tip, mouth left, mouth right,
# as seen in the image) land, on average, in the same frame as DLIB_5_TEMPLATE. Derived by
# bench/derive_mtcnn_template.py --limit 1000 on 2026-11-30 (re-derived to 4e-11 in
# docs/results/mtcnn_template.json): the first LFW image of 1000 people spread over the 1,281 who appear
# in neither pairs.txt nor pairsDevTest.txt (so it is fitted on no face it is scored or chosen on), 884
# of which had exactly one face found by both dlib HOG and MTCNN. Per-point spread (std, chip px): eyes ~1.7, nose tip ~5
# (it moves with head turn), mouth ~5. Its version (MTCNN_TEMPLATE_VERSION) changes with it.
MTCNN_5_TEMPLATE = np.array(
    [
        [0.2238535561, 0.2048599233],
        [0.7617539635, 0.2037045555],
        [0.4871240613, 0.5167099160],
        [0.2528694587, 0.7944310883],
        [0.7320598130, 0.7932986437],
    ],
    dtype=np.float64,
)
# t1 was fitted on 1000 people of whom 703 images were in pairs.txt; t2 on people in no scored pair.
MTCNN_TEMPLATE_VERSION = "mtcnn5-t2"

# insightface's 5-point template for 112x112 chips (the constant in the wheel's face_aligner.onnx and in
# insightface.utils.face_align.arcface_dst), in MTCNN's point order.
ARCFACE_TEMPLATE = np.array(
    [[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366], [41.5493, 92.3655], [70.7299, 92.2041]],
    dtype=np.float64,
)
ARCFACE_CHIP_SIZE = 112

#: Chip geometry -> its version (the embedding cache keys on it; change it when the chip changes).
CHIP_VERSIONS = {"dlib150": ALIGNMENT_VERSION, "arcface112": "arcface112-a1"}
# The chips whose geometry, on a detector's own landmarks, also depends on a fitted template (ArcFace's
# 112x112 chip uses insightface's fixed template, whatever the detector).
_DETECTOR_LANDMARK_TEMPLATES = {"dlib150": MTCNN_TEMPLATE_VERSION}


def alignment_version(chip: str, *, detector_landmarks: bool) -> str:
    """The version of ``chip``'s geometry: ``CHIP_VERSIONS[chip]``, plus the template's when the chip is
    cut on a detector's own five landmarks through a fitted template (dlib's chip on MTCNN/SCRFD points).

    >>> alignment_version("dlib150", detector_landmarks=False)
    'chip150-p0.25-a1'
    >>> alignment_version("dlib150", detector_landmarks=True)
    'chip150-p0.25-a1+mtcnn5-t2'
    """
    template = _DETECTOR_LANDMARK_TEMPLATES.get(chip) if detector_landmarks else None
    return f"{CHIP_VERSIONS[chip]}+{template}" if template else CHIP_VERSIONS[chip]

AlignMethod = Literal["dlib5", "mtcnn5", "arcface5", "dlib68-arcface5"]


@dataclass(frozen=True)
class AlignedFace:
    """One face cut out for the embedder.

    ``landmarks`` are the five image points the chip was fitted to (dlib's order for ``"dlib5"``,
    MTCNN's order for the others); ``chip_to_image`` maps chip pixel coordinates to image
    coordinates (e.g. to draw the chip's outline on the photo).
    """

    chip: np.ndarray
    face: Face
    landmarks: np.ndarray
    method: AlignMethod
    chip_to_image: np.ndarray | None = None


# ----------------------------------------------------------------------------- landmarks


@lru_cache(maxsize=1)
def _shape_predictor():
    import dlib  # lazy: keeps importing facecore cheap
    import face_recognition_models

    return dlib.shape_predictor(face_recognition_models.pose_predictor_five_point_model_location())


def shape_5_points(image: np.ndarray, box: tuple[int, int, int, int]) -> np.ndarray:
    """dlib's 5-point landmarks (its order, see ``DLIB_5_TEMPLATE``) for the face in ``box``, (5, 2)."""
    import dlib

    x, y, w, h = (int(v) for v in box)
    # Face boxes use dlib's width (right - left + 1), so this round-trips a HOG detection exactly.
    rect = dlib.rectangle(x, y, x + w - 1, y + h - 1)
    shape = _shape_predictor()(_checked(image), rect)
    return np.array([(p.x, p.y) for p in shape.parts()], dtype=np.float64)


@lru_cache(maxsize=1)
def _shape_predictor_68():
    import dlib
    import face_recognition_models

    return dlib.shape_predictor(face_recognition_models.pose_predictor_model_location())


def semantic_5_points(image: np.ndarray, box: tuple[int, int, int, int]) -> np.ndarray:
    """Eye centres, nose tip and mouth corners (MTCNN's order) for the face in ``box``, from dlib's
    68-point predictor: the means of points 36-41 and 42-47, point 30, and points 48 and 54."""
    import dlib

    x, y, w, h = (int(v) for v in box)
    rect = dlib.rectangle(x, y, x + w - 1, y + h - 1)
    shape = _shape_predictor_68()(_checked(image), rect)
    points = np.array([(p.x, p.y) for p in shape.parts()], dtype=np.float64)
    return np.stack([points[36:42].mean(0), points[42:48].mean(0), points[30], points[48], points[54]])


# ----------------------------------------------------------------------------- geometry


def similarity_transform(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Least-squares similarity (2x3) taking ``src`` points to ``dst``: Umeyama, as dlib computes it."""
    src = np.asarray(src, dtype=np.float64)
    dst = np.asarray(dst, dtype=np.float64)
    mean_src, mean_dst = src.mean(axis=0), dst.mean(axis=0)
    src_c, dst_c = src - mean_src, dst - mean_dst
    sigma_src = np.mean(np.sum(src_c**2, axis=1))
    cov = dst_c.T @ src_c / len(src)
    u, d, vt = np.linalg.svd(cov)
    s = np.ones(2)
    if np.linalg.det(cov) < 0 or (np.linalg.det(cov) == 0 and np.linalg.det(u) * np.linalg.det(vt) < 0):
        # A reflection is not a similarity: flip the weaker axis (dlib's tie rule: the first one).
        s[1 if d[1] < d[0] else 0] = -1.0
    rotation = u @ np.diag(s) @ vt
    scale = float(np.sum(d * s) / sigma_src) if sigma_src != 0 else 1.0
    translation = mean_dst - scale * rotation @ mean_src
    return np.hstack([scale * rotation, translation[:, None]])


def padded_template(template: np.ndarray, size: int = CHIP_SIZE, padding: float = CHIP_PADDING) -> np.ndarray:
    """Template points in chip pixel units, with ``padding`` (a fraction of the face) on each side."""
    return (padding + np.asarray(template, dtype=np.float64)) / (2 * padding + 1) * size


def chip_transform(
    landmarks: np.ndarray,
    template: np.ndarray,
    size: int = CHIP_SIZE,
    padding: float = CHIP_PADDING,
) -> np.ndarray:
    """The 2x3 matrix mapping chip pixel (x, y) to image coordinates, as dlib builds it.

    dlib keeps only the similarity's angle and scale and describes the chip as a rotated
    rectangle of side ``size * scale`` (``centered_drect``: its far edge is ``side - 1`` away);
    chip pixels 0 and ``size - 1`` then land on that rectangle's edges, which stretches the chip
    slightly relative to the similarity itself. That stretch is part of what the model saw.
    """
    tform = similarity_transform(padded_template(template, size, padding), landmarks)
    column = tform[:, 0]  # the image of the unit x vector: scale and rotation
    angle = math.atan2(column[1], column[0])
    scale = float(np.hypot(column[0], column[1]))
    center = tform @ np.array([size / 2.0, size / 2.0, 1.0])
    half = (size * scale - 1.0) / 2.0
    rotation = np.array([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]])
    top_left = center + rotation @ np.array([-half, -half])
    top_right = center + rotation @ np.array([half, -half])
    bottom_left = center + rotation @ np.array([-half, half])
    span = max(size - 1, 1)
    return np.column_stack([(top_right - top_left) / span, (bottom_left - top_left) / span, top_left])


# ----------------------------------------------------------------------------- sampling


def extract_chip(image: np.ndarray, chip_to_image: np.ndarray, size: int = CHIP_SIZE) -> np.ndarray:
    """Sample the (size, size, 3) uint8 chip; pixels whose source lies outside the image are 0.

    Large faces are first shrunk with dlib's pyramid (halving while the face's rectangle, halved,
    still has more pixels than the chip), so they are anti-aliased exactly as dlib does it.
    """
    image = _checked(image)
    matrix = np.asarray(chip_to_image, dtype=np.float64)
    if matrix.shape != (2, 3) or not np.isfinite(matrix).all():
        raise ValueError("chip_to_image must be a finite 2x3 matrix")  # inf would never stop the pyramid loop
    depth = _pyramid_depth(matrix, size)
    crop_box = _crop_box(matrix, size, depth, image.shape)
    if crop_box is None:
        return np.zeros((size, size, 3), dtype=np.uint8)
    left, top, right, bottom = crop_box
    source = image[top : bottom + 1, left : right + 1]
    matrix = matrix - np.array([[0.0, 0.0, left], [0.0, 0.0, top]])
    for _ in range(depth):
        source = pyramid_down(source)
        matrix = _point_down(matrix)
    if source.shape[0] < 2 or source.shape[1] < 2:
        return np.zeros((size, size, 3), dtype=np.uint8)
    return _warp_bilinear(source, matrix, size)


def _chip_corners(matrix: np.ndarray, size: int) -> np.ndarray:
    """Image positions of the chip's four corner pixels, (4, 2)."""
    last = size - 1
    corners = np.array([[0, 0, 1], [last, 0, 1], [0, last, 1], [last, last, 1]], dtype=np.float64)
    return corners @ matrix.T


def _pyramid_depth(matrix: np.ndarray, size: int) -> int:
    """How many times dlib halves the image before sampling this chip."""
    span = max(size - 1, 1)
    # The chip rectangle's extent (right - left, bottom - top); drectangle adds 1 for its width.
    extent_x = float(np.hypot(*matrix[:, 0])) * span
    extent_y = float(np.hypot(*matrix[:, 1])) * span
    depth = 0
    while (extent_x / 2 ** (depth + 1) + 1) * (extent_y / 2 ** (depth + 1) + 1) > size * size:
        depth += 1
    return depth


def _crop_box(
    matrix: np.ndarray, size: int, depth: int, shape: tuple[int, ...]
) -> tuple[int, int, int, int] | None:
    """dlib's ``bounding_box``: the chip's footprint grown for the pyramid's borders, clipped."""
    grow = 2.0
    for _ in range(depth):
        grow = grow * 2 + 2
    corners = _chip_corners(matrix, size)
    left = max(corners[:, 0].min() - grow, 0.0)
    top = max(corners[:, 1].min() - grow, 0.0)
    right = min(corners[:, 0].max() + grow, shape[1] - 1.0)
    bottom = min(corners[:, 1].max() + grow, shape[0] - 1.0)
    box = tuple(_lround(v) for v in (left, top, right, bottom))
    if box[0] > box[2] or box[1] > box[3]:
        return None
    return box  # type: ignore[return-value]


def _lround(value: float) -> int:
    """C's lround: halves go away from zero (Python's round() goes to even)."""
    return int(math.copysign(math.floor(abs(value) + 0.5), value))


def _point_down(matrix: np.ndarray) -> np.ndarray:
    """Compose with dlib's pyramid_down<2>::point_down, p / 2 - (1.25, 0.75).

    dlib maps coordinates with this offset although its level pixel (c, r) is centred on (2c + 2,
    2r + 2); the resulting sub-pixel shift is in every chip dlib makes, so it is kept.
    """
    down = matrix / 2.0
    down[:, 2] -= (1.25, 0.75)
    return down


def pyramid_down(image: np.ndarray) -> np.ndarray:
    """dlib's ``pyramid_down<2>`` for uint8 images: 5x5 binomial filter, every other pixel, floor.

    Output pixel (c, r) is the filter centred on input (2c + 2, 2r + 2); the size is
    ((h - 3) // 2, (w - 3) // 2), and empty when a side is 8 pixels or less.
    """
    rows, cols = image.shape[:2]
    if rows <= 8 or cols <= 8:
        return np.zeros((0, 0) + image.shape[2:], dtype=np.uint8)
    out_rows, out_cols = (rows - 3) // 2, (cols - 3) // 2
    kernel = np.array([1, 4, 6, 4, 1], dtype=np.float32)
    # Integer weights summing to 256: float32 sums of uint8 values stay exact, so floor matches dlib.
    filtered = cv2.sepFilter2D(image, cv2.CV_32F, kernel, kernel, borderType=cv2.BORDER_REFLECT_101)
    picked = filtered[2 : 2 + 2 * out_rows : 2, 2 : 2 + 2 * out_cols : 2]
    return (picked.astype(np.uint16) >> 8).astype(np.uint8)


def _warp_bilinear(source: np.ndarray, matrix: np.ndarray, size: int) -> np.ndarray:
    """Bilinear samples at ``matrix @ (x, y, 1)``, truncated like dlib; 0 where dlib gives up."""
    sampled = cv2.warpAffine(
        source.astype(np.float32),
        matrix,
        (size, size),
        flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
        borderMode=cv2.BORDER_CONSTANT,
        borderValue=0,
    )
    # dlib casts its double result to uint8 (truncation); the epsilon keeps float32 noise on exact
    # integers (flat regions) from dropping a whole grey level.
    chip = np.floor(np.clip(sampled, 0, 255) + 1e-3).astype(np.uint8)
    corners = _chip_corners(matrix, size)
    # The map is affine, so if the four corners sample inside the image, every pixel does.
    if corners.min() < 0 or (corners.max(axis=0) >= (source.shape[1] - 1, source.shape[0] - 1)).any():
        chip[~_inside_mask(source.shape, matrix, size)] = 0
    return chip


def _inside_mask(shape: tuple[int, ...], matrix: np.ndarray, size: int) -> np.ndarray:
    """dlib's rule: a chip pixel is 0 unless all four neighbours of its source point exist."""
    ys, xs = np.mgrid[0:size, 0:size].astype(np.float64)
    left = np.floor(matrix[0, 0] * xs + matrix[0, 1] * ys + matrix[0, 2])
    top = np.floor(matrix[1, 0] * xs + matrix[1, 1] * ys + matrix[1, 2])
    return (left >= 0) & (top >= 0) & (left + 1 < shape[1]) & (top + 1 < shape[0])


# ----------------------------------------------------------------------------- public entry points


def align_face(
    image: np.ndarray, face: Face, *, chip: str = "dlib150", use_detector_landmarks: bool = True
) -> AlignedFace:
    """The ``chip`` geometry's crop of ``face``: from the detector's landmarks when it has them, else
    from dlib's predictors."""
    image = _checked(image)
    own = use_detector_landmarks and face.landmarks is not None
    if chip == "arcface112":
        if own:
            landmarks, method = np.asarray(face.landmarks, dtype=np.float64).reshape(5, 2), "arcface5"
        else:
            landmarks, method = semantic_5_points(image, face.box), "dlib68-arcface5"
        image_to_chip = similarity_transform(landmarks, ARCFACE_TEMPLATE)
        pixels = cv2.warpAffine(
            image, image_to_chip, (ARCFACE_CHIP_SIZE, ARCFACE_CHIP_SIZE), flags=cv2.INTER_LINEAR, borderValue=0
        )
        return AlignedFace(pixels, face, landmarks, method, cv2.invertAffineTransform(image_to_chip))
    if chip != "dlib150":
        raise ValueError(f"unknown chip geometry {chip!r}; choose one of: {', '.join(CHIP_VERSIONS)}")
    if own:
        landmarks = np.asarray(face.landmarks, dtype=np.float64).reshape(5, 2)
        template, method = MTCNN_5_TEMPLATE, "mtcnn5"
    else:
        landmarks = shape_5_points(image, face.box)
        template, method = DLIB_5_TEMPLATE, "dlib5"
    matrix = chip_transform(landmarks, template)
    return AlignedFace(extract_chip(image, matrix), face, landmarks, method, matrix)


def template_residual(aligned: AlignedFace) -> float:
    """RMS distance (chip pixels) between an ArcFace chip's landmarks, mapped into the chip, and the template."""
    image_to_chip = cv2.invertAffineTransform(np.asarray(aligned.chip_to_image, dtype=np.float64))
    mapped = aligned.landmarks @ image_to_chip[:, :2].T + image_to_chip[:, 2]
    return float(np.sqrt(np.mean(np.sum((mapped - ARCFACE_TEMPLATE) ** 2, axis=1))))


def align_faces(image: np.ndarray, faces: list[Face], *, chip: str = "dlib150") -> list[AlignedFace]:
    """``align_face`` for every face of one image, in order."""
    return [align_face(image, face, chip=chip) for face in faces]


def _checked(image: np.ndarray) -> np.ndarray:
    """A C-contiguous (H, W, 3) uint8 RGB array, which is what dlib and the warp expect."""
    if not isinstance(image, np.ndarray) or image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError("expected an (H, W, 3) uint8 RGB image")
    return np.ascontiguousarray(image)
