"""Where the gallery lives, named by one URL, and the one function that opens it.

``$FACECORE_GALLERY_URL`` picks the store:

* ``sqlite:///path/to/folder`` (the default: ``sqlite://`` + ``$FACECORE_GALLERY_DIR``, else ``./gallery``):
  the embedded gallery, :class:`facecore.gallery.store.Gallery`. After ``sqlite://`` comes the folder:
  ``sqlite:///srv/gallery`` is ``/srv/gallery``, ``sqlite://gallery`` is ``./gallery``.
* ``postgresql://user:password@host:port/db`` (``postgres://`` too, and libpq's query parameters such as
  ``?host=/socket/dir``): :class:`facecore.gallery.postgres.PostgresGallery`.

Both implement :class:`GalleryStore`; the registry :data:`STORES` maps a URL scheme to the store
(one module per store in :mod:`facecore.gallery.backends`). The dashboard, the API, the command line
and the benchmarks open galleries with :func:`open_gallery` and nothing else.
"""

from __future__ import annotations

import os
import re
from typing import Any, Protocol

import numpy as np

from facecore.gallery.records import GalleryError, GalleryFace, Person
from facecore.registry import Registry
from facecore.types import Match

GALLERY_URL_ENV = "FACECORE_GALLERY_URL"
STORES: Registry[Any] = Registry("gallery store", "facecore.gallery.backends")
_ALIASES = {"postgres": "postgresql"}


class GalleryStore(Protocol):
    """What every store offers: the rules they share are written once in
    :class:`facecore.gallery.base.GalleryBase`, the storage in each store's module."""

    def people(self) -> list[Person]: ...
    def person(self, person_id: int) -> Person: ...
    def find_person(self, name: str) -> Person | None: ...
    def create_person(self, name: str) -> Person: ...
    def rename_person(self, person_id: int, new_name: str) -> Person: ...
    def delete_person(self, person_id: int) -> None: ...
    def add_face(self, person_id: int, image_bytes: bytes, face: Any, model_version: str) -> GalleryFace: ...
    def enrol(self, person_id: int, image_bytes: bytes, pipeline: Any) -> GalleryFace: ...
    def face(self, face_id: int) -> GalleryFace: ...
    def faces(self, person_id: int | None = None) -> list[GalleryFace]: ...
    def move_face(self, face_id: int, person_id: int) -> GalleryFace: ...
    def face_embedding(self, face_id: int) -> np.ndarray: ...
    def delete_face(self, face_id: int) -> None: ...
    def image_bytes(self, image_sha256: str) -> bytes: ...
    def embeddings(self, model_version: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]: ...
    def model_versions(self) -> dict[str, int]: ...
    def search(
        self, embedding: np.ndarray, k: int = 5, *, model_version: str, exact: bool = False
    ) -> list[Match]: ...
    def identify(self, embedding: np.ndarray, *, threshold: float, k: int = 5, model_version: str) -> Any: ...
    def index_size(self, model_version: str) -> int: ...
    def revision(self) -> int: ...
    def stats(self) -> dict[str, Any]: ...
    def repair(self) -> Any: ...
    def close(self) -> None: ...

    @property
    def location(self) -> str: ...
    @property
    def database(self) -> Any: ...


def gallery_url() -> str:
    """``$FACECORE_GALLERY_URL``, else the SQLite gallery in ``$FACECORE_GALLERY_DIR`` (else ``./gallery``)."""
    from facecore.gallery.store import default_gallery_dir

    return os.environ.get(GALLERY_URL_ENV) or f"sqlite://{default_gallery_dir().resolve()}"


def redact_url(url: str) -> str:
    """``url`` with its password (if any) replaced by ``***``, to show or log."""
    return re.sub(r"(://[^:/@?]*:)[^@/?]*@", r"\1***@", url)


def split_url(url: str) -> tuple[str, str]:
    """``(store name, what the store opens)``: the folder for SQLite, the whole URL for PostgreSQL."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        raise GalleryError(f"'{url}' is not a gallery URL: write sqlite:///folder or postgresql://user@host/db.")
    name = _ALIASES.get(scheme.lower(), scheme.lower())
    if name not in STORES:
        known = ", ".join(f"{n}://" for n in STORES.names())
        raise GalleryError(f"No gallery store for '{scheme}://'; use one of {known}.")
    return name, rest if name == "sqlite" else url


def open_gallery(url: str | None = None) -> GalleryStore:
    """The gallery at ``url`` (default: :func:`gallery_url`), opened by the store its scheme names."""
    name, location = split_url(url or gallery_url())
    return STORES.get(name).open(location)
