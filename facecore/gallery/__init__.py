"""The persistent gallery of people and their faces (SQLite + content-hashed files + FAISS).

See :mod:`facecore.gallery.store` for the layout and the safety guarantees.
"""

from facecore.gallery.store import (
    Gallery,
    GalleryError,
    GalleryFace,
    Person,
    RepairReport,
    clean_name,
    default_gallery_dir,
)
from facecore.types import Match
from facecore.verification.decisions import UNKNOWN, Identification

__all__ = [
    "UNKNOWN",
    "Gallery",
    "GalleryError",
    "GalleryFace",
    "Identification",
    "Match",
    "Person",
    "RepairReport",
    "clean_name",
    "default_gallery_dir",
]
