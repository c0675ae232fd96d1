"""Thin Streamlit helpers shared by every page: settings, cached loaders, image input and drawing.

Nothing here decides anything about faces; it calls ``facecore`` and shows the result. The rule for
every helper that touches user input: a bad file or an unexpected failure becomes a readable
``st.error`` and a ``None`` result, never a traceback on the page.
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import streamlit as st

from facecore.detection import DETECTORS, INTERACTIVE_MAX_SIDE, Face
from facecore.images import ImageError, decode_image, downscale_to_max_side
from facecore.pipeline import EmbeddedFace, FacePipeline
from facecore.verification.metrics import METRICS
from facecore.verification.thresholds import DLIB_DEFAULT_THRESHOLD, Calibration, calibrated

log = logging.getLogger(__name__)

# OpenCV's worker threads spin while TensorFlow, dlib and other sessions hold the cores: in the
# server a 2,000 px resize took ~100 ms with them against ~10 ms without. Sessions give the
# parallelism here, so OpenCV runs on the calling thread.
cv2.setNumThreads(1)

REPO_ROOT = Path(__file__).resolve().parents[1]

#: What the uploaders accept (the browser filters on these; facecore.images checks the content).
IMAGE_TYPES = ["jpg", "jpeg", "png", "webp", "bmp", "gif", "tiff", "tif"]

DETECTOR_HELP = {
    "haar": "OpenCV Haar cascade: fastest, no landmarks, more false detections",
    "hog": "dlib HOG + SVM: fast, frontal faces from about 40 px",
    "mtcnn": "MTCNN (TensorFlow): slower, finds smaller and turned faces, gives 5 landmarks",
}
DEFAULT_DETECTOR = "hog"
PRETRAINED_MODEL = "dlib-keras (pretrained)"
DEFAULT_METRIC = "euclidean"

# Threshold slider range per metric: (min, max, step).
THRESHOLD_RANGES = {
    "euclidean": (0.0, 1.5, 0.005),
    "sqeuclidean": (0.0, 2.0, 0.005),
    "cosine": (0.0, 0.5, 0.001),
    "l1": (0.0, 15.0, 0.05),
}
# Used only when facecore/data/calibration.json has no entry, and for every kept model (whose
# vectors LFW never measured: a starting point to tune, not a calibrated value). Only the euclidean
# value is published (by dlib); the others are rough equivalents of it for dlib's vectors (length ~1.45).
FALLBACK_THRESHOLDS = {
    "euclidean": DLIB_DEFAULT_THRESHOLD,
    "sqeuclidean": DLIB_DEFAULT_THRESHOLD**2,
    "cosine": 0.085,
    "l1": 5.0,
}

# Session-state keys (the widget keys are the public ones: detector, metric, flip_tta, threshold).
_USER_SET = "_threshold_user_set"
_THRESHOLD_FOR = "_threshold_for"


# ----------------------------------------------------------------------------- settings


@dataclass(frozen=True)
class Settings:
    detector: str
    metric: str
    flip_tta: bool
    threshold: float
    calibration: Calibration | None
    #: ``PRETRAINED_MODEL`` or the file name of a kept ``.keras`` model (see ``embedder_options``).
    model: str
    #: One line on where the default threshold comes from.
    source: str
    user_set: bool


def default_threshold(
    detector: str, metric: str, flip_tta: bool, model: str = PRETRAINED_MODEL
) -> tuple[float, Calibration | None, str]:
    """The LFW-calibrated threshold for this configuration, else a documented fallback."""
    if model != PRETRAINED_MODEL:
        # The LFW calibration measured the pretrained model; its threshold means nothing for another one.
        value = FALLBACK_THRESHOLDS[metric]
        return value, None, (
            f"{value:.3f} (dlib's fallback), not calibrated for {model}; "
            "tune it in the Threshold lab on gallery pairs."
        )
    cal = calibrated(detector, metric, flip_tta)
    if cal is not None:
        return float(cal.threshold), cal, cal.describe()
    value = FALLBACK_THRESHOLDS[metric]
    if metric == "euclidean":
        why = "dlib's published threshold for its embedder with euclidean distance"
    else:
        why = f"a rough equivalent of dlib's {DLIB_DEFAULT_THRESHOLD} for {metric} distance, not measured"
    note = (
        f"{value:.3f}: {why}. No LFW calibration for {detector}/{metric}"
        f"{'/flip TTA' if flip_tta else ''} yet (bench/lfw_benchmark.py --write-calibration writes it)."
    )
    return value, None, note


def _clamp(value: float, metric: str) -> float:
    low, high, _ = THRESHOLD_RANGES[metric]
    return float(min(max(value, low), high))


def _init_state() -> None:
    state = st.session_state
    detectors = DETECTORS.names()
    if state.get("detector") not in detectors:
        state["detector"] = DEFAULT_DETECTOR if DEFAULT_DETECTOR in detectors else detectors[0]
    if state.get("metric") not in METRICS:
        state["metric"] = DEFAULT_METRIC
    if not isinstance(state.get("flip_tta"), bool):
        state["flip_tta"] = False
    if state.get("model") not in embedder_options():
        if state.get("model") not in (None, PRETRAINED_MODEL):
            state["_model_missing"] = state["model"]
        state["model"] = PRETRAINED_MODEL
    state.setdefault(_USER_SET, False)
    config = (state["detector"], state["metric"], state["flip_tta"], state["model"])
    previous = state.get(_THRESHOLD_FOR)
    if previous == config and isinstance(state.get("threshold"), float | int):
        return
    # The configuration changed (or this is the first run): move the threshold to the new default,
    # unless the person chose one. A chosen value means nothing on another metric's scale, so a
    # metric change always resets it.
    metric_changed = previous is None or previous[1] != config[1]
    if metric_changed or not state[_USER_SET] or not isinstance(state.get("threshold"), float | int):
        state["threshold"] = _clamp(default_threshold(*config)[0], config[1])
        state[_USER_SET] = False
    state[_THRESHOLD_FOR] = config


def _mark_user_threshold() -> None:
    st.session_state[_USER_SET] = True


def _reset_threshold() -> None:
    state = st.session_state
    state["threshold"] = _clamp(
        default_threshold(state["detector"], state["metric"], state["flip_tta"], state["model"])[0],
        state["metric"],
    )
    state[_USER_SET] = False


def current_settings() -> Settings:
    """The settings the sidebar holds (defaults when a page runs before the sidebar ever did)."""
    _init_state()
    state = st.session_state
    _, cal, source = default_threshold(state["detector"], state["metric"], state["flip_tta"], state["model"])
    return Settings(
        detector=state["detector"],
        metric=state["metric"],
        flip_tta=bool(state["flip_tta"]),
        threshold=float(state["threshold"]),
        calibration=cal,
        model=state["model"],
        source=source,
        user_set=bool(state[_USER_SET]),
    )


def settings_sidebar() -> Settings:
    """Detector, metric, flip TTA and threshold in the sidebar; call once per run, before the page."""
    _init_state()
    state = st.session_state
    with st.sidebar:
        st.header("Settings")
        st.selectbox(
            "Face detector",
            DETECTORS.names(),
            key="detector",
            format_func=lambda name: name.upper() if name != "haar" else "Haar",
            help="\n\n".join(f"**{k}**: {v}" for k, v in DETECTOR_HELP.items()),
        )
        st.selectbox(
            "Distance metric",
            METRICS,
            key="metric",
            help="How two 128-D embeddings are compared; smaller means more alike.",
        )
        st.checkbox(
            "Flip test-time augmentation",
            key="flip_tta",
            help="Average each face's embedding with its mirror image's (twice the embedding work).",
        )
        st.selectbox(
            "Embedding model",
            embedder_options(),
            key="model",
            help="The pretrained dlib ResNet, or a model kept from 'Train your own' (or uploaded there). "
            "The gallery keeps each model's faces apart: Identify searches only faces embedded by this one.",
        )
        if missing := state.pop("_model_missing", None):
            st.warning(f"The kept model {missing} is gone; using the pretrained model.")
        _init_state()  # apply a detector/metric/TTA change made in this run before the slider exists
        low, high, step = THRESHOLD_RANGES[state["metric"]]
        st.slider(
            f"Decision threshold ({state['metric']})",
            min_value=low,
            max_value=high,
            step=step,
            format="%.3f",
            key="threshold",
            on_change=_mark_user_threshold,
            help="Two faces are the same person when their distance is at most this value.",
        )
        settings = current_settings()
        if settings.user_set:
            st.caption(f"Your threshold. Default: {settings.source}")
        else:
            st.caption(f"Default: {settings.source}")
        st.button(
            "Reset to calibrated" if settings.calibration is not None else "Reset to default",
            on_click=_reset_threshold,
            disabled=not settings.user_set,
            key="reset_threshold",
            width="stretch",
        )
    return settings


def identification_threshold(settings: Settings) -> tuple[float, str]:
    """The euclidean (L2) threshold for gallery search, and a note when it is not the sidebar's."""
    if settings.metric == "euclidean":
        return settings.threshold, ""
    value, _, source = default_threshold(settings.detector, "euclidean", settings.flip_tta, settings.model)
    return value, (
        f"The gallery is searched with euclidean (L2) distance; the sidebar's threshold is on the "
        f"{settings.metric} scale, so the euclidean default is used: {source}"
    )


# ----------------------------------------------------------------------------- cached resources


DETECTION_MAX_SIDE = INTERACTIVE_MAX_SIDE  # detectors see photos shrunk to this longest side


@st.cache_resource(show_spinner="Loading the face models (TensorFlow)...")
def load_pipeline(detector: str, flip_tta: bool) -> FacePipeline:
    """One pipeline per detector and TTA setting, shared by every session."""
    return FacePipeline(
        detector, "dlib-keras", flip_tta=flip_tta, detector_options={"max_side": DETECTION_MAX_SIDE}
    )


def gallery_root() -> Path:
    """Where the gallery lives: ``$FACECORE_GALLERY_DIR``, else ``./gallery``."""
    return Path(os.environ.get("FACECORE_GALLERY_DIR") or "gallery").expanduser().resolve()


@st.cache_resource(show_spinner=False)
def _gallery_at(root: str):
    from facecore.gallery import Gallery

    return Gallery(Path(root))


def load_gallery():
    """The shared ``Gallery`` for the current ``$FACECORE_GALLERY_DIR`` (one instance per folder)."""
    return _gallery_at(str(gallery_root()))


def settings_pipeline(settings: Settings) -> FacePipeline:
    """The pipeline the sidebar chose: its detector, embedding model and flip TTA."""
    return load_pipeline_with(settings.detector, settings.model, settings.flip_tta)


@st.cache_data(max_entries=64, show_spinner=False)
def _faces_cached(
    digest: str, detector: str, model: str, flip_tta: bool, _image: np.ndarray
) -> list[EmbeddedFace]:
    return load_pipeline_with(detector, model, flip_tta).process(_image)


def find_faces(image: np.ndarray, data: bytes, settings: Settings) -> list[EmbeddedFace] | None:
    """Every face in ``image`` (decoded from ``data``), largest first; None after showing an error."""
    try:
        settings_pipeline(settings)  # the models load once, with their own spinner
    except Exception as exc:
        log.exception("model loading failed")
        st.error(
            f"The {settings.detector} detector or the {settings.model} model could not be loaded "
            f"({type(exc).__name__}: {exc})."
        )
        return None
    digest = hashlib.sha256(data).hexdigest()
    try:
        with st.spinner("Finding and embedding faces..."):
            return _faces_cached(digest, settings.detector, settings.model, settings.flip_tta, image)
    except Exception as exc:  # a page must survive anything a strange image triggers
        log.exception("face pipeline failed")
        st.error(f"Face detection failed on this image ({type(exc).__name__}: {exc}).")
        return None


# ----------------------------------------------------------------------------- image input


def examples_dir() -> Path | None:
    """``faces_small`` of the shared data (``$FACECORE_SHARED_DATA`` or ``../shared/data``), if present."""
    shared = os.environ.get("FACECORE_SHARED_DATA")
    root = Path(shared).expanduser() if shared else REPO_ROOT.parent / "shared" / "data"
    folder = root / "faces_small"
    return folder if folder.is_dir() else None


def example_photos() -> list[str]:
    """Example photos as ``person/file.jpg`` names, relative to :func:`examples_dir`."""
    folder = examples_dir()
    if folder is None:
        return []
    suffixes = {f".{t}" for t in IMAGE_TYPES}
    return sorted(
        str(p.relative_to(folder))
        for p in folder.glob("*/*")
        if p.is_file() and p.suffix.lower() in suffixes and not p.name.startswith(".")
    )


def _read_example(name: str) -> tuple[bytes, str] | None:
    folder = examples_dir()
    path = (folder / name) if folder else None
    try:
        return path.read_bytes(), name  # type: ignore[union-attr]
    except (OSError, AttributeError) as exc:
        st.error(f"The example photo {name} cannot be read ({exc}).")
        return None


def _sources(camera: bool) -> list[str]:
    sources = ["Upload"]
    if camera:
        sources.append("Camera")
    if example_photos():
        sources.append("Example photo")
    return sources


def image_input(label: str, key: str, *, camera: bool = True) -> tuple[bytes, str] | None:
    """One image from an upload, the camera or an example photo: ``(bytes, name)`` or None."""
    source = st.radio(label, _sources(camera), key=f"{key}_source", horizontal=True)
    if source == "Camera":
        shot = st.camera_input("Take a photo", key=f"{key}_camera")
        return (shot.getvalue(), shot.name or "camera.jpg") if shot is not None else None
    if source == "Example photo":
        name = st.selectbox(
            "Example photo", example_photos(), index=None, key=f"{key}_example", placeholder="Choose a photo"
        )
        return _read_example(name) if name else None
    upload = st.file_uploader("Image file", type=IMAGE_TYPES, key=f"{key}_upload")
    return (upload.getvalue(), upload.name) if upload is not None else None


def images_input(label: str, key: str, *, camera: bool = True) -> list[tuple[bytes, str]]:
    """Several images (multi-file upload, one camera shot, or example photos) as ``(bytes, name)``."""
    source = st.radio(label, _sources(camera), key=f"{key}_source", horizontal=True)
    if source == "Camera":
        shot = st.camera_input("Take a photo", key=f"{key}_camera")
        return [(shot.getvalue(), shot.name or "camera.jpg")] if shot is not None else []
    if source == "Example photo":
        names = st.multiselect("Example photos", example_photos(), key=f"{key}_examples")
        return [item for name in names if (item := _read_example(name)) is not None]
    uploads = st.file_uploader(
        "Image files", type=IMAGE_TYPES, accept_multiple_files=True, key=f"{key}_upload"
    )
    return [(u.getvalue(), u.name) for u in uploads or []]


def decode_or_error(data: bytes, name: str | None = None) -> np.ndarray | None:
    """The RGB image in ``data``, or None after an ``st.error`` saying what is wrong with the file."""
    try:
        return decode_image(data)
    except ImageError as exc:
        st.error(f"{name}: {exc}" if name else str(exc))
    except Exception as exc:  # never let a file crash a page
        log.exception("decoding failed")
        st.error(
            f"{name + ': ' if name else ''}This file could not be read as an image ({type(exc).__name__})."
        )
    return None


# ----------------------------------------------------------------------------- drawing

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


# ----------------------------------------------------------------------------- charts


def lfw_distance_chart(settings: Settings, marks: dict[str, float], *, height: int = 300) -> None:
    """LFW genuine vs impostor distances with the threshold and ``marks`` (label -> distance).

    Says so instead when the LFW distances for this configuration were never measured.
    """
    import plotly.graph_objects as go

    from facecore.verification.metrics import rates_at_threshold
    from facecore.verification.thresholds import lfw_distances

    if settings.model != PRETRAINED_MODEL:
        st.info(
            f"The LFW distances were measured with the pretrained model, not {settings.model}, so this "
            "distance is not placed on them. The Threshold lab measures your model on gallery pairs."
        )
        return
    found = lfw_distances(settings.detector, settings.metric, settings.flip_tta)
    if found is None:
        st.info(
            f"No LFW distances for {settings.detector}/{settings.metric}"
            f"{'/flip TTA' if settings.flip_tta else ''} yet, so there is no chart to place this "
            "distance on (bench/lfw_benchmark.py writes facecore/data/lfw_distances.npz)."
        )
        return
    distances, same = found
    fig = go.Figure()
    for name, mask, colour in (
        ("same person (LFW)", same, "#2ca02c"),
        ("different people (LFW)", ~same, "#d62728"),
    ):
        fig.add_trace(
            go.Histogram(
                x=distances[mask],
                name=name,
                opacity=0.55,
                histnorm="probability density",
                marker_color=colour,
            )
        )
    fig.add_vline(
        x=settings.threshold,
        line_dash="dash",
        line_color="black",
        annotation_text="threshold",
        annotation_position="top",
    )
    for label, value in marks.items():
        fig.add_vline(
            x=value,
            line_color="#1f77b4",
            line_width=3,
            annotation_text=label,
            annotation_position="top right",
        )
    fig.update_layout(
        barmode="overlay",
        height=height,
        margin=dict(l=10, r=10, t=60, b=10),
        xaxis_title=f"{settings.metric} distance",
        yaxis_title="density",
        legend=dict(orientation="h", yanchor="bottom", y=1.12, x=0),
    )
    st.plotly_chart(fig, width="stretch")
    rates = rates_at_threshold(distances, same, settings.threshold)
    st.caption(
        f"At this threshold on LFW's {len(same):,} pairs: {100 * rates.tar:.1f}% of same-person pairs "
        f"accepted, {100 * rates.far:.2f}% of different-people pairs wrongly accepted (FAR), "
        f"accuracy {100 * rates.accuracy:.2f}%."
    )


# ----------------------------------------------------------------------------- small things


@st.cache_data(max_entries=2048, show_spinner=False)
def thumbnail_uri(path: str, size: int = 64) -> str | None:
    """A small PNG of the image at ``path`` as a data URI (for table image columns); None if unreadable."""
    import base64

    try:
        from facecore.images import load_image

        image, _ = downscale_to_max_side(load_image(path), size)
    except Exception:
        return None
    ok, png = cv2.imencode(".png", cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    return f"data:image/png;base64,{base64.b64encode(png.tobytes()).decode()}" if ok else None


def flash(kind: str, message: str) -> None:
    """Queue a message to show at the top of the page on the next run (for widget callbacks)."""
    st.session_state.setdefault("_flash", []).append((kind, message))


def show_flashes() -> None:
    # Always one container, even when empty: a message that comes and goes must not shift the
    # elements after it, or Streamlit sees them as new and resets them (e.g. the selected tab).
    with st.container():
        for kind, message in st.session_state.pop("_flash", []):
            getattr(st, kind)(message)


# ----------------------------------------------------------------------------- analysis pages


def apply_threshold(value: float) -> None:
    """Make ``value`` the sidebar's threshold, as if the person had set it (an ``on_click`` callback)."""
    _init_state()
    st.session_state["threshold"] = _clamp(float(value), st.session_state["metric"])
    st.session_state[_USER_SET] = True


@st.cache_resource(show_spinner=False)
def _embedding_cache_at(directory: str):
    from facecore.cache import EmbeddingCache

    return EmbeddingCache(directory)


def embedding_cache():
    """The on-disk embedding cache (``$FACECORE_CACHE_DIR``, else ``~/.cache/facecore``)."""
    from facecore.cache import default_cache_dir

    return _embedding_cache_at(str(default_cache_dir()))


def lfw_home_or_error() -> Path | None:
    """LFW's data home, or None after an ``st.error`` saying how to point the app at it."""
    from facecore.evaluation.datasets import default_lfw_home

    home = default_lfw_home()
    if home is None or not (home / "lfw_home" / "lfw_funneled").is_dir():
        st.error(
            "LFW was not found. Set FACECORE_LFW_HOME to a folder holding lfw_home/lfw_funneled "
            "(scikit-learn's layout), or FACECORE_SHARED_DATA to the shared data folder."
        )
        return None
    return home


def progress_reporter(bar, what: str = "Embedding images"):
    """A ``progress(done, total)`` callback that moves an ``st.progress`` bar."""

    def report(done: int, total: int) -> None:
        bar.progress(done / total if total else 1.0, text=f"{what}: {done:,} / {total:,}")

    return report


def image_uri(image: np.ndarray, size: int = 48) -> str:
    """A small PNG of an RGB array as a data URI (for Plotly layout images)."""
    import base64

    small, _ = downscale_to_max_side(image, size)
    ok, png = cv2.imencode(".png", cv2.cvtColor(np.ascontiguousarray(small), cv2.COLOR_RGB2BGR))
    return f"data:image/png;base64,{base64.b64encode(png.tobytes()).decode()}" if ok else ""


# ----------------------------------------------------------------------------- bring-your-own embedders



def embedder_options() -> list[str]:
    """The pretrained embedder plus every kept ``.keras`` model (file names), for a model picker."""
    from facecore.embedding.keras_file import saved_models

    return [PRETRAINED_MODEL, *(path.name for path in saved_models())]


@st.cache_resource(show_spinner="Loading the face models (TensorFlow)...")
def load_pipeline_with(detector: str, model: str, flip_tta: bool) -> FacePipeline:
    """Like :func:`load_pipeline`, with the embedder named as in :func:`embedder_options`.

    Raises ``KerasModelError`` when a kept model file is missing or unusable.
    """
    if model == PRETRAINED_MODEL:
        return load_pipeline(detector, flip_tta)
    from facecore.embedding.keras_file import KerasFileEmbedder, default_models_dir

    embedder = KerasFileEmbedder(path=str(default_models_dir() / Path(model).name), flip_tta=flip_tta)
    # Detect exactly as load_pipeline does, so only the embedder differs.
    return FacePipeline(detector, embedder, detector_options={"max_side": DETECTION_MAX_SIDE})
