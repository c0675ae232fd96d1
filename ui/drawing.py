"""Pictures for the pages: faces boxed and numbered on a photo, and small images as data URIs."""

from __future__ import annotations

import base64
from collections.abc import Sequence

import cv2
import numpy as np
import streamlit as st

from facecore.images import downscale_to_max_side
from facecore.types import EmbeddedFace, Face

_OTHER = (255, 165, 0)  # RGB orange
_SELECTED = (0, 200, 0)
_LANDMARK = (0, 160, 255)


def draw_faces(
    image: np.ndarray,
    faces: Sequence[Face | EmbeddedFace],
    selected: int | None = None,
    *,
    labels: Sequence[str] | None = None,
    max_side: int = 1000,
) -> np.ndarray:
    """An annotated copy for display: boxes, landmarks and numbers (1-based) or ``labels``.

    The ``selected`` face (index) is drawn thicker in green, the others in orange. Images larger
    than ``max_side`` are shrunk first, so drawing stays cheap and lines stay visible.
    """
    small, scale = downscale_to_max_side(image, max_side)
    canvas = np.ascontiguousarray(small).copy()
    thickness = max(2, round(max(canvas.shape[:2]) / 300))
    font_scale = max(0.5, max(canvas.shape[:2]) / 900)
    for i, item in enumerate(faces):
        face = item.face if isinstance(item, EmbeddedFace) else item
        colour = _SELECTED if i == selected else _OTHER
        x, y, w, h = (round(v * scale) for v in face.box)
        cv2.rectangle(canvas, (x, y), (x + w, y + h), colour, thickness + (1 if i == selected else 0))
        if face.landmarks is not None:
            for px, py in np.asarray(face.landmarks) * scale:
                cv2.circle(canvas, (round(px), round(py)), thickness + 1, _LANDMARK, -1)
        text = labels[i] if labels is not None and i < len(labels) else str(i + 1)
        (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, font_scale, thickness)
        top = y - th - base - 4 if y - th - base - 4 >= 0 else y + h
        cv2.rectangle(canvas, (x, top), (x + tw + 6, top + th + base + 4), colour, -1)
        cv2.putText(
            canvas,
            text,
            (x + 3, top + th + 2),
            cv2.FONT_HERSHEY_SIMPLEX,
            font_scale,
            (0, 0, 0),
            thickness,
            cv2.LINE_AA,
        )
    return canvas


def face_label(index: int, count: int) -> str:
    """``Face 1 (largest)``-style names for a face picker (numbers as drawn by :func:`draw_faces`)."""
    return f"Face {index + 1}{' (largest)' if index == 0 and count > 1 else ''}"


def image_uri(image: np.ndarray, size: int = 48) -> str:
    """A small PNG of an RGB array as a data URI (for Plotly layout images)."""
    small, _ = downscale_to_max_side(image, size)
    ok, png = cv2.imencode(".png", cv2.cvtColor(np.ascontiguousarray(small), cv2.COLOR_RGB2BGR))
    return f"data:image/png;base64,{base64.b64encode(png.tobytes()).decode()}" if ok else ""


@st.cache_data(max_entries=2048, show_spinner=False)
def thumbnail_uri(path: str, size: int = 64) -> str | None:
    """A small PNG of the image at ``path`` as a data URI (for table image columns); None if unreadable."""
    from facecore.images import load_image

    try:
        image = load_image(path)
    except Exception:
        return None
    return image_uri(image, size) or None
