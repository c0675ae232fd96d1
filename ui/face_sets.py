"""Choosing a labelled set of faces for the analysis pages: an LFW sample, gallery people or uploads.

Streamlit glue only: the embeddings come from ``facecore.evaluation.samples`` (through the on-disk cache) or
from the gallery's stored vectors. Failures become an ``st.error`` and a ``None`` result.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import streamlit as st

from facecore.evaluation.datasets import lfw_people
from facecore.evaluation.samples import lfw_sample
from facecore.images import load_image
from ui.data import lfw_panel
from ui.drawing import image_uri
from ui.feedback import progress_reporter, show_error
from ui.inputs import decode_or_error, find_faces, images_input
from ui.resources import embedding_cache, load_gallery, pipeline
from ui.settings import Settings

log = logging.getLogger(__name__)

SOURCES = ("LFW sample", "Gallery people", "Uploaded photos")
_STORE = "_analysis_face_sets"
_STORE_SIZE = 4  # face sets kept per session (each is at most a few hundred 128-D vectors)


@dataclass(frozen=True)
class FaceSet:
    """Faces with identities: ``images`` are file paths (LFW, gallery chips) or RGB chips (uploads)."""

    labels: list[str]
    images: list[Path | np.ndarray]
    embeddings: np.ndarray
    description: str

    def __len__(self) -> int:
        return len(self.labels)

    def with_extra(self, label: str, image: np.ndarray, embedding: np.ndarray) -> FaceSet:
        return FaceSet(
            labels=[*self.labels, label],
            images=[*self.images, image],
            embeddings=np.vstack([self.embeddings, embedding[None]]),
            description=self.description,
        )


@st.cache_data(max_entries=4096, show_spinner=False)
def _path_thumbnail(path: str, size: int, crop_center: bool) -> str:
    image = load_image(path)
    if crop_center:  # an LFW photo is 250x250 with the face in its middle half
        h, w = image.shape[:2]
        image = image[h // 4 : 3 * h // 4, w // 4 : 3 * w // 4]
    return image_uri(image, size)


def thumbnail(image: Path | np.ndarray, size: int = 48) -> str:
    """A data URI of the face: the middle of an LFW photo, or the whole chip."""
    if isinstance(image, np.ndarray):
        return image_uri(image, size)
    try:
        return _path_thumbnail(str(image), size, "lfw_funneled" in image.parts)
    except Exception:  # a missing or unreadable file shows no thumbnail rather than failing the chart
        log.exception("thumbnail failed for %s", image)
        return ""


def _remember(key: tuple, value: FaceSet) -> FaceSet:
    store = st.session_state.setdefault(_STORE, {})
    store[key] = value
    while len(store) > _STORE_SIZE:
        store.pop(next(iter(store)))
    return value


@st.cache_data(show_spinner=False)
def _most_images_per_person(home: str, mtime: float) -> int:
    """The most images any LFW person has in this copy (8 in the bundled pack, 530 in full LFW)."""
    return max((len(paths) for paths in lfw_people(home).values()), default=1)


def _lfw_face_set(key: str, settings: Settings, default_people: int, default_per_person: int) -> FaceSet | None:
    cols = st.columns(2)
    source = lfw_panel(key)
    if source is None:
        return None
    home = source.home
    # The widgets offer what this copy holds: the bundled pack has no one with more than 8 images.
    images = home / "lfw_home" / "lfw_funneled"
    most = min(20, _most_images_per_person(str(home), images.stat().st_mtime))
    people = cols[0].number_input("People", 2, 200, default_people, key=f"{key}_people")
    per_person = cols[1].number_input(
        "Images per person", 1, most, min(default_per_person, most), key=f"{key}_per_person",
        help=f"at most {most}: no one has more images in this copy of LFW" if most < 20 else None,
    )
    # The model and the LFW copy are in the key: a set embedded by one must not be shown for another.
    store_key = ("lfw", str(home), int(people), int(per_person), settings.config)
    if store_key in st.session_state.get(_STORE, {}):
        return st.session_state[_STORE][store_key]
    bar = st.progress(0.0, text="Embedding LFW images (cached on disk for next time)")
    try:
        sample = lfw_sample(
            home,
            pipeline(settings.config),
            n_people=int(people),
            per_person=int(per_person),
            cache=embedding_cache(),
            progress=progress_reporter(bar),
        )
    except Exception as exc:
        show_error("The LFW sample could not be embedded", exc)
        return None
    finally:
        bar.empty()
    description = sample.description
    if sample.no_face.any():
        description += f"; {int(sample.no_face.sum())} images with no face found used the centre box"
    return _remember(store_key, FaceSet(sample.labels, list(sample.paths), sample.embeddings, description))


def _gallery_face_set(key: str, settings: Settings) -> FaceSet | None:
    try:
        gallery = load_gallery()
        version = settings.config.model_version
        face_ids, _, vectors = gallery.embeddings(version)
        faces = {face.id: face for face in gallery.faces()}
    except Exception as exc:
        show_error("The gallery could not be read", exc)
        return None
    if len(face_ids) == 0:
        st.info(
            f"The gallery has no faces embedded with {version} (the sidebar's embedding model, "
            f"{settings.config.model_label}, and flip TTA). "
            "Enrol people on the Gallery page, or pick another source."
        )
        return None
    names = sorted({faces[int(i)].person_name for i in face_ids})
    chosen = st.multiselect("People", names, default=names, key=f"{key}_gallery_people")
    keep = [j for j, i in enumerate(face_ids) if faces[int(i)].person_name in chosen]
    if not keep:
        st.info("Choose at least one person.")
        return None
    return FaceSet(
        labels=[faces[int(face_ids[j])].person_name for j in keep],
        images=[faces[int(face_ids[j])].chip_path for j in keep],
        embeddings=vectors[keep],
        description=f"Gallery ({len(keep)} faces of {len(chosen)} people), {version}",
    )


def _upload_face_set(key: str, settings: Settings) -> FaceSet | None:
    files = images_input("Photos", f"{key}_photos", camera=False)
    labels: list[str] = []
    images: list[Path | np.ndarray] = []
    vectors: list[np.ndarray] = []
    for data, name in files:
        image = decode_or_error(data, name)
        found = find_faces(image, data, settings) if image is not None else None
        for k, face in enumerate(found or []):
            labels.append(Path(name).stem + (f" #{k + 1}" if len(found) > 1 else ""))
            images.append(face.chip if face.chip is not None else image)
            vectors.append(face.embedding)
    if not vectors:
        st.info("Add photos with faces (each face is labelled with its file name).")
        return None
    return FaceSet(
        labels=labels,
        images=images,
        embeddings=np.stack(vectors),
        description=f"Uploaded photos ({len(labels)} faces), {settings.detector} detector, {settings.config.model_label}",
    )


def face_set_picker(
    key: str, settings: Settings, *, default_people: int = 10, default_per_person: int = 4
) -> FaceSet | None:
    """Source radio plus its inputs; the chosen, embedded face set, or None (with a message)."""
    source = st.radio("Faces", SOURCES, key=f"{key}_source", horizontal=True)
    if source == "LFW sample":
        return _lfw_face_set(key, settings, default_people, default_per_person)
    if source == "Gallery people":
        return _gallery_face_set(key, settings)
    return _upload_face_set(key, settings)
