"""Getting photos and faces from a person: uploads, the camera, example photos, and the face to use.

Every helper turns a bad file or a failure into a readable ``st.error`` and a ``None`` (or empty)
result, never a traceback. :func:`pick_face` is the one face picker: a photo in, the chosen face out
as a :class:`PickedFace`.

Example photos: the one-photo chooser (:func:`image_input`, so Verify, Identify and every other page
that takes one photo) offers the portraits of ``samples/faces_small`` as ``person/file.jpg`` and the
group photos of ``samples/faces_group`` as ``group/file.jpg`` (listed as "Group photo: file.jpg"; a
page that takes one photo must handle several faces in it). The several-photo chooser
(:func:`images_input`: enrolment, reference sets) offers the portraits only, since those photos are
meant to show one person each.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import streamlit as st

from facecore.config import PipelineConfig
from facecore.evaluation.datasets import SAMPLES_DIR
from facecore.images import ImageError, decode_image
from facecore.types import EmbeddedFace
from ui.drawing import draw_faces, face_label
from ui.feedback import show_error
from ui.quality import show_quality_warnings
from ui.resources import pipeline
from ui.settings import Settings

log = logging.getLogger(__name__)

#: What the uploaders accept (the browser filters on these; facecore.images checks the content).
IMAGE_TYPES = ["jpg", "jpeg", "png", "webp", "bmp", "gif", "tiff", "tif"]


# ----------------------------------------------------------------------------- example photos


def examples_dir() -> Path:
    """The example portraits bundled with the lab: ``samples/faces_small/<person>/<n>.jpg``."""
    return SAMPLES_DIR / "faces_small"


def group_examples_dir() -> Path:
    """The example group photos bundled with the lab (several faces each): ``samples/faces_group/<name>.jpg``."""
    return SAMPLES_DIR / "faces_group"


#: How group photos are named among the example photos: ``group/<file>``.
GROUP_PREFIX = "group/"


def _images(paths) -> list[Path]:
    suffixes = {f".{t}" for t in IMAGE_TYPES}
    return [p for p in paths if p.is_file() and p.suffix.lower() in suffixes and not p.name.startswith(".")]


def _example_files(groups: bool) -> dict[str, Path]:
    """Example photo name -> file: the portraits (``person/file.jpg``), then the group photos if asked."""
    files: dict[str, Path] = {}
    folder = examples_dir()
    if folder.is_dir():
        files.update(sorted((str(p.relative_to(folder)), p) for p in _images(folder.glob("*/*"))))
    folder = group_examples_dir()
    if groups and folder.is_dir():
        files.update(sorted((GROUP_PREFIX + p.name, p) for p in _images(folder.iterdir())))
    return files


def example_photos(*, groups: bool = False) -> list[str]:
    """Example photo names: portraits as ``person/file.jpg`` (relative to :func:`examples_dir`), then,
    with ``groups``, the group photos as ``group/file.jpg``."""
    return list(_example_files(groups))


def example_label(name: str) -> str:
    """An example photo as listed: ``obama/1.jpg``, or ``Group photo: obama_and_biden.jpg``."""
    return f"Group photo: {name.removeprefix(GROUP_PREFIX)}" if name.startswith(GROUP_PREFIX) else name


def _read_example(name: str) -> tuple[bytes, str] | None:
    path = _example_files(groups=name.startswith(GROUP_PREFIX)).get(name)
    if path is None:
        st.error(f"The example photo {name} is no longer among the bundled samples.")
        return None
    try:
        return path.read_bytes(), name
    except OSError as exc:
        st.error(f"The example photo {name} cannot be read ({exc}).")
        return None


# ----------------------------------------------------------------------------- photos


def _sources(camera: bool, groups: bool) -> list[str]:
    sources = ["Upload"]
    if camera:
        sources.append("Camera")
    if example_photos(groups=groups):
        sources.append("Example photo")
    return sources


def image_input(label: str, key: str, *, camera: bool = True) -> tuple[bytes, str] | None:
    """One image from an upload, the camera or an example photo (portraits and group photos):
    ``(bytes, name)`` or None."""
    source = st.radio(label, _sources(camera, groups=True), key=f"{key}_source", horizontal=True)
    if source == "Camera":
        shot = st.camera_input("Take a photo", key=f"{key}_camera")
        return (shot.getvalue(), shot.name or "camera.jpg") if shot is not None else None
    if source == "Example photo":
        name = st.selectbox(
            "Example photo",
            example_photos(groups=True),
            index=None,
            format_func=example_label,
            key=f"{key}_example",
            placeholder="Choose a photo (the group photos have several faces)",
        )
        return _read_example(name) if name else None
    upload = st.file_uploader("Image file", type=IMAGE_TYPES, key=f"{key}_upload")
    return (upload.getvalue(), upload.name) if upload is not None else None


def images_input(label: str, key: str, *, camera: bool = True) -> list[tuple[bytes, str]]:
    """Several images (multi-file upload, one camera shot, or example portraits) as ``(bytes, name)``."""
    source = st.radio(label, _sources(camera, groups=False), key=f"{key}_source", horizontal=True)
    if source == "Camera":
        shot = st.camera_input("Take a photo", key=f"{key}_camera")
        return [(shot.getvalue(), shot.name or "camera.jpg")] if shot is not None else []
    if source == "Example photo":
        names = st.multiselect("Example photos", example_photos(), key=f"{key}_examples")
        return [item for name in names if (item := _read_example(name)) is not None]
    uploads = st.file_uploader("Image files", type=IMAGE_TYPES, accept_multiple_files=True, key=f"{key}_upload")
    return [(u.getvalue(), u.name) for u in uploads or []]


def decode_or_error(data: bytes, name: str | None = None) -> np.ndarray | None:
    """The RGB image in ``data``, or None after an ``st.error`` saying what is wrong with the file."""
    try:
        return decode_image(data)
    except ImageError as exc:
        st.error(f"{name}: {exc}" if name else str(exc))
    except Exception as exc:  # never let a file crash a page
        log.exception("decoding failed")
        st.error(f"{name + ': ' if name else ''}This file could not be read as an image ({type(exc).__name__}).")
    return None


# ----------------------------------------------------------------------------- faces


@st.cache_data(max_entries=64, show_spinner=False)
def _faces_cached(digest: str, config: PipelineConfig, _image: np.ndarray) -> list[EmbeddedFace]:
    return pipeline(config).process(_image)


def find_faces(image: np.ndarray, data: bytes, settings: Settings) -> list[EmbeddedFace] | None:
    """Every face in ``image`` (decoded from ``data``), largest first; None after showing an error."""
    try:
        pipeline(settings.config)  # the models load once, with their own spinner
    except Exception as exc:
        show_error(
            f"The {settings.detector} detector or the {settings.config.model_label} model could not be loaded", exc
        )
        return None
    digest = hashlib.sha256(data).hexdigest()
    try:
        with st.spinner("Finding and embedding faces..."):
            return _faces_cached(digest, settings.config, image)
    except Exception as exc:  # a page must survive anything a strange image triggers
        show_error("Face detection failed on this image", exc)
        return None


def no_face_warning(name: str, settings: Settings) -> None:
    st.warning(
        f"No face found in {name} with the {settings.detector} detector. Try a photo where the face "
        "is larger, frontal and well lit, or another detector in the sidebar."
    )


@dataclass(frozen=True)
class PickedFace:
    """The face a person chose: ``index`` of ``count`` faces found in ``image`` (the photo ``name``)."""

    face: EmbeddedFace
    name: str
    image: np.ndarray
    index: int
    count: int

    @property
    def embedding(self) -> np.ndarray:
        return self.face.embedding


def pick_face(label: str, key: str, settings: Settings) -> PickedFace | None:
    """A photo input, the photo with its faces drawn, and the face to use (the largest by default).

    With several faces a picker (``{key}_face``) chooses one. None, after a message, when there is no
    photo yet, the file is not an image, or no face was found.
    """
    item = image_input(label, key)
    if item is None:
        return None
    data, name = item
    image = decode_or_error(data, name)
    if image is None:
        return None
    faces = find_faces(image, data, settings)
    if faces is None:
        return None
    if not faces:
        st.image(draw_faces(image, []), caption=name, width="stretch")
        no_face_warning(name, settings)
        return None
    index = 0
    if len(faces) > 1:
        index = st.selectbox(
            f"{len(faces)} faces found; compare this one",
            range(len(faces)),
            format_func=lambda i: face_label(i, len(faces)),
            key=f"{key}_face",
        )
        index = index if index is not None and index < len(faces) else 0
    st.image(draw_faces(image, faces, index), caption=name, width="stretch")
    show_quality_warnings(faces[index], len(faces))
    return PickedFace(faces[index], name, image, index, len(faces))
