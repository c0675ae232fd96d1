"""Moving a gallery: every person and face of one store copied into another, then checked.

``python -m facecore gallery copy --from URL --to URL`` calls :func:`copy_gallery`. Each face is
added to the target with its original upload, its chip, box, score, detector, model version and its
vector exactly as stored (no model runs), for the person of the same name (created when missing).
A face the target already has (same person, image, box and model version) is skipped, so running
the copy again, or after an interruption, finishes it without doubling anything. Face ids and
creation times are the target's own.

After the copy every source face is looked up in the target and its vector compared bit for bit;
:class:`CopyReport` says what was copied and whether the check passed (``GalleryError`` if not).
"""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image

from facecore.gallery.names import name_key
from facecore.gallery.records import GalleryError, GalleryFace
from facecore.types import EmbeddedFace, Face

Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class CopyReport:
    people_created: int
    faces_copied: int
    faces_already_there: int
    faces_checked: int  # source faces found in the target with the same vector, bit for bit

    def summary(self) -> str:
        return (
            f"Copied {self.faces_copied} face(s) ({self.faces_already_there} already there), created "
            f"{self.people_created} person(s); {self.faces_checked} face(s) checked, vectors identical."
        )


def _key(face: GalleryFace) -> tuple[str, str, tuple[int, ...], str]:
    return name_key(face.person_name), face.image_sha256, tuple(face.box), face.model_version


def _vectors(gallery: Any) -> dict[int, np.ndarray]:
    """Face id -> stored vector, over every model version."""
    found: dict[int, np.ndarray] = {}
    for version in gallery.model_versions():
        ids, _, vectors = gallery.embeddings(version)
        found.update(zip(ids.tolist(), vectors, strict=True))
    return found


def copy_gallery(source: Any, target: Any, *, progress: Progress | None = None) -> CopyReport:
    """Copy ``source`` into ``target`` (both opened by :func:`facecore.gallery.open_gallery`)."""
    people = {name_key(p.name): p for p in target.people()}
    created = 0
    for person in source.people():
        if name_key(person.name) not in people:
            people[name_key(person.name)] = target.create_person(person.name)
            created += 1
    have = {_key(f) for f in target.faces()}
    faces = source.faces()
    vectors = _vectors(source)
    copied = skipped = 0
    for done, face in enumerate(faces, 1):
        if _key(face) in have:
            skipped += 1
        else:
            chip = np.asarray(Image.open(io.BytesIO(face.chip_path.read_bytes())).convert("RGB"))
            embedded = EmbeddedFace(Face(face.box, face.score, None, face.detector), vectors[face.id], chip)
            person = people[name_key(face.person_name)]
            target.add_face(person.id, source.image_bytes(face.image_sha256), embedded, face.model_version)
            copied += 1
        if progress is not None:
            progress(done, len(faces))
    return CopyReport(created, copied, skipped, verify_copy(source, target, faces, vectors))


def verify_copy(
    source: Any, target: Any, faces: list[GalleryFace] | None = None, vectors: dict[int, np.ndarray] | None = None
) -> int:
    """How many source faces the target holds with identical vectors; ``GalleryError`` naming the first
    face missing or different."""
    faces = source.faces() if faces is None else faces
    vectors = _vectors(source) if vectors is None else vectors
    copies = {_key(f): f.id for f in target.faces()}
    target_vectors = _vectors(target)
    for face in faces:
        found = copies.get(_key(face))
        if found is None:
            raise GalleryError(f"Face #{face.id} of {face.person_name} is missing from the copy.")
        if not np.array_equal(target_vectors[found], vectors[face.id]):
            raise GalleryError(f"Face #{face.id} of {face.person_name} has another vector in the copy.")
    source_counts, target_counts = source.model_versions(), target.model_versions()
    short = [v for v, n in source_counts.items() if target_counts.get(v, 0) < n]
    if short:
        raise GalleryError(f"The copy has fewer faces of {short[0]} than the original.")
    return len(faces)
