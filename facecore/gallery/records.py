"""What the gallery hands out and takes in: its error, its records, and the shapes it needs of faces and
pipelines (protocols, so this package imports no model library)."""

from __future__ import annotations

import operator
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, TypeVar

import numpy as np

from facecore.types import Face

T = TypeVar("T")


class GalleryError(ValueError):
    """A problem the person using the gallery can fix; ``str(error)`` is a sentence to show them."""


@dataclass(frozen=True)
class Person:
    id: int
    name: str
    created: float
    face_count: int


@dataclass(frozen=True)
class GalleryFace:
    id: int
    person_id: int
    person_name: str
    image_sha256: str
    chip_path: Path  # absolute path of the stored 150x150 chip (PNG)
    box: tuple[int, int, int, int]  # (x, y, w, h) in the original image
    score: float | None
    detector: str
    model_version: str
    created: float


@dataclass(frozen=True)
class RepairReport:
    faces_removed: int  # rows whose image file was missing
    files_removed: int  # images and chips no row referenced, and temp files left by dead writers
    chips_missing: int  # rows kept although their chip file is missing (the embedding is still valid)
    indexes_rebuilt: int


class EmbeddedFaceLike(Protocol):
    """What ``add_face`` needs of a face: ``facecore.types.EmbeddedFace`` fits."""

    @property
    def face(self) -> Face: ...
    @property
    def embedding(self) -> np.ndarray: ...
    @property
    def chip(self) -> np.ndarray | None: ...


class PipelineLike(Protocol):
    """What ``enrol`` needs of a pipeline: ``facecore.pipeline.FacePipeline`` fits."""

    embedder: Any  # has .version, the model version string

    def process(self, image: np.ndarray) -> Sequence[Any]: ...


class DatabaseLike(Protocol):
    """What the modules with their own tables (keys, audit) need of a database: ``Gallery.database``
    (``facecore.gallery.database.Database``) fits, and so must any other store's."""

    def write(self, action: Callable[[Any], T], *, bump: bool = True) -> T: ...

    def snapshot(self) -> AbstractContextManager[Any]: ...


# Argument checks shared by the stores (``store.Gallery``, ``postgres.PostgresGallery``).


def as_id(value: Any) -> int:
    """An id as an ``int`` (numpy integers too); floats and strings are refused."""
    return operator.index(value)


def as_bytes(data: Any) -> bytes:
    """Image bytes handed to a store, or ``TypeError`` / ``GalleryError`` (empty) saying why not."""
    if not isinstance(data, bytes | bytearray | memoryview):
        raise TypeError(f"expected the image as bytes, not {type(data).__name__}")
    if not data:
        raise GalleryError("The image file is empty.")
    return bytes(data)


def as_box(box: Sequence[Any]) -> tuple[int, int, int, int]:
    """A face box ``(x, y, w, h)`` as four ints."""
    if len(box) != 4:
        raise ValueError(f"expected a face box (x, y, w, h), got {box!r}")
    x, y, w, h = (int(v) for v in box)
    return x, y, w, h
