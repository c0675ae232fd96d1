"""SCRFD-500M (insightface, ``scrfd_500m_bnkps.onnx``) as a project ``Detector``: boxes and 5 keypoints.

Contract: ``ScrfdDetector().detect(rgb_uint8_image)`` returns ``Face``s (largest first) whose
``landmarks`` are ``(5, 2)`` float32 in MTCNN's order (left eye, right eye, nose, mouth left,
mouth right, as seen in the image), which is SCRFD's own order, so they align straight onto
``facecore.alignment.ARCFACE_TEMPLATE``. Scores are SCRFD's face probability (0..1).

onnxruntime runs the network; everything else is numpy here: letterbox (keep aspect, scale the
longer side to ``input_size``, pad right/bottom), insightface's normalisation ((x - 127.5) / 128,
RGB), anchor decoding at strides 8/16/32 with 2 anchors per location (distances to the box sides
and offsets to the keypoints, in stride units), score threshold and greedy NMS.

Small photos: the letterbox enlarges any photo to ``input_size``, so a face that fills a small
portrait becomes larger than the biggest anchors (~512 px) and is missed or poorly boxed. Photos
whose longer side is below ``input_size / max_upscale`` are therefore enlarged at most
``max_upscale`` times and padded instead; if nothing is found the full letterbox is tried as well.
``spinning`` lets onnxruntime's idle threads busy-wait between runs (faster for SCRFD alone); it is
off by default because in the pipeline TensorFlow's embedding runs right after detection on the same
cores, and spinning threads slow it (``bench/verify_latency.py``).
``square=False`` runs the network on the scaled photo padded only to multiples of 32 instead of
the full ``input_size`` square: less time on small or oblong photos; on faces_small, faces_group
and 80 LFW photos (also at 80x80 and 50x50) it found the same faces, give or take a background face.

Weights: insightface buffalo_s, non-commercial research use only (``facecore.insightface_files``).
"""

from __future__ import annotations

import functools
import threading
from typing import Any

import cv2
import numpy as np

from facecore.detection.base import DETECTORS, Detector, _Candidate
from facecore.insightface_files import LICENCE, onnx_session, scrfd_onnx_path

STRIDES = (8, 16, 32)
ANCHORS_PER_LOCATION = 2
INPUT_MEAN = 127.5
INPUT_STD = 128.0


# ----------------------------------------------------------------------------- decoding (numpy)


def letterbox(
    image: np.ndarray, size: int, max_upscale: float | None = None, square: bool = True
) -> tuple[np.ndarray, float]:
    """``image`` scaled (aspect kept, longer side ``size`` or ``max_upscale`` x) on a black canvas.

    The canvas is ``size`` x ``size`` when ``square``, else the scaled image padded right and down
    to multiples of 32 (the network accepts any such size; fewer pixels, same anchors).
    """
    height, width = image.shape[:2]
    scale = size / max(height, width)
    if max_upscale is not None:
        scale = min(scale, max_upscale)
    new_w, new_h = max(1, round(width * scale)), max(1, round(height * scale))
    interpolation = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    canvas_h, canvas_w = (size, size) if square else (-(-new_h // 32) * 32, -(-new_w // 32) * 32)
    canvas = np.zeros((canvas_h, canvas_w, 3), np.uint8)
    canvas[:new_h, :new_w] = cv2.resize(image, (new_w, new_h), interpolation=interpolation)
    return canvas, new_h / height


def anchor_centers(height: int, width: int, stride: int) -> np.ndarray:
    """(x, y) of every anchor of one level, row-major, each location repeated per anchor: (H*W*2, 2)."""
    ys, xs = np.mgrid[:height, :width]
    centers = np.stack([xs, ys], axis=-1).reshape(-1, 2).astype(np.float32) * stride
    return np.repeat(centers, ANCHORS_PER_LOCATION, axis=0)


def decode_level(
    scores: np.ndarray, boxes: np.ndarray, keypoints: np.ndarray, centers: np.ndarray, stride: int, threshold: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One level's detections above ``threshold``: scores (K,), boxes (K, 4) x1y1x2y2, keypoints (K, 5, 2)."""
    keep = scores.reshape(-1) >= threshold
    c = centers[keep]
    d = boxes.reshape(-1, 4)[keep] * stride
    k = keypoints.reshape(-1, 10)[keep].reshape(-1, 5, 2) * stride
    xyxy = np.stack([c[:, 0] - d[:, 0], c[:, 1] - d[:, 1], c[:, 0] + d[:, 2], c[:, 1] + d[:, 3]], axis=1)
    return scores.reshape(-1)[keep], xyxy, k + c[:, None, :]


def nms(boxes: np.ndarray, scores: np.ndarray, iou_threshold: float) -> list[int]:
    """Greedy non-maximum suppression; indices of the kept boxes, best first."""
    x1, y1, x2, y2 = boxes.T
    areas = np.maximum(x2 - x1, 0) * np.maximum(y2 - y1, 0)
    order = np.argsort(-scores, kind="stable")
    kept: list[int] = []
    while order.size:
        best, rest = order[0], order[1:]
        kept.append(int(best))
        w = np.maximum(0.0, np.minimum(x2[best], x2[rest]) - np.maximum(x1[best], x1[rest]))
        h = np.maximum(0.0, np.minimum(y2[best], y2[rest]) - np.maximum(y1[best], y1[rest]))
        inter = w * h
        iou = inter / np.maximum(areas[best] + areas[rest] - inter, 1e-9)
        order = rest[iou <= iou_threshold]
    return kept


# ----------------------------------------------------------------------------- detector


@functools.cache
def _shared_session(threads: int | None, spinning: bool) -> tuple[Any, threading.Lock]:
    return onnx_session(str(scrfd_onnx_path()), threads, spinning), threading.Lock()


@DETECTORS.register("scrfd")
class ScrfdDetector(Detector):
    """insightface's SCRFD-500M with five keypoints (onnxruntime, CPU); fast, finds small faces."""

    summary = "SCRFD-500M (insightface, 2021): fast, finds small and turned faces, gives 5 keypoints"
    order = 40
    gives_landmarks = True
    licence = LICENCE

    def __init__(
        self,
        *,
        input_size: int = 640,
        score_threshold: float = 0.5,
        nms_threshold: float = 0.4,
        max_upscale: float | None = 2.0,
        square: bool = True,
        threads: int | None = None,
        spinning: bool = False,
        **base: Any,
    ) -> None:
        # SCRFD enlarges small photos itself (capped letterbox, then the full one): no second pass.
        super().__init__(**{"upscale_below": None, **base})
        if input_size < 32 or input_size % 32:
            raise ValueError(f"input_size must be a multiple of 32 (at least 32), got {input_size}")
        if max_upscale is not None and max_upscale < 1:
            raise ValueError(f"max_upscale must be at least 1 (or None), got {max_upscale}")
        self.input_size = int(input_size)
        self.score_threshold = float(score_threshold)
        self.nms_threshold = float(nms_threshold)
        self.max_upscale = max_upscale
        self.square = bool(square)
        self._session, self._lock = _shared_session(threads, bool(spinning))
        self._names = [o.name for o in self._session.get_outputs()]
        self._input = self._session.get_inputs()[0].name

    def _detect(self, image: np.ndarray, min_size: int) -> list[_Candidate]:
        found = self._detect_scaled(image, self.max_upscale)
        if not found and self.max_upscale is not None and self._upscale(image) > self.max_upscale:
            found = self._detect_scaled(image, None)  # retry with the full letterbox
        return found

    def _upscale(self, image: np.ndarray) -> float:
        return self.input_size / max(image.shape[:2])

    def _detect_scaled(self, image: np.ndarray, max_upscale: float | None) -> list[_Candidate]:
        canvas, scale = letterbox(image, self.input_size, max_upscale, self.square)
        blob = ((canvas.astype(np.float32) - INPUT_MEAN) / INPUT_STD).transpose(2, 0, 1)[None]
        outputs = dict(zip(self._names, self._session.run(None, {self._input: blob}), strict=True))
        scores, boxes, points = [], [], []
        for stride in STRIDES:
            s, b, k = decode_level(
                outputs[f"score_{stride}"],
                outputs[f"bbox_{stride}"],
                outputs[f"kps_{stride}"],
                anchor_centers(canvas.shape[0] // stride, canvas.shape[1] // stride, stride),
                stride,
                self.score_threshold,
            )
            scores.append(s)
            boxes.append(b)
            points.append(k)
        all_scores, all_boxes, all_points = np.concatenate(scores), np.concatenate(boxes), np.concatenate(points)
        kept = nms(all_boxes, all_scores, self.nms_threshold)
        return [
            _Candidate(*(float(v) for v in all_boxes[i] / scale), float(all_scores[i]), all_points[i] / scale)
            for i in kept
        ]
