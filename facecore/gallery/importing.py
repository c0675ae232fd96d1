"""Enrolling many photos at once: from a zip, a folder with one sub-folder per person, or LFW.

A source becomes a list of :class:`ImportJob` (person name, where the photo came from, how to read its
bytes); :func:`enrol_many` enrols them with one pipeline, creating people as needed, and reports what
was enrolled and what was skipped and why. A bad file or a photo without a face never stops the batch.
The dashboard and the API call the same functions.
"""

from __future__ import annotations

import contextlib
import io
import os
import zipfile
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from facecore.gallery.records import GalleryError, GalleryFace, PipelineLike
from facecore.gallery.store import Gallery

ZIP_MAX_FILES = 5000
ZIP_MAX_BYTES = 1_000_000_000  # uncompressed total
IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif", ".tif", ".tiff"})

Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class ImportJob:
    """One photo to enrol: for ``person``, from ``source`` (a file name to show), bytes from ``read()``."""

    person: str
    source: str
    read: Callable[[], bytes] = field(repr=False, compare=False)


@dataclass(frozen=True)
class ImportReport:
    """What an import did: the faces enrolled, the files skipped (each with the reason) and how many
    people received faces."""

    enrolled: list[GalleryFace]
    problems: list[str]
    people: int

    def summary(self) -> str:
        parts = [f"Enrolled {len(self.enrolled)} face(s) for {self.people} person(s)."]
        if self.problems:
            parts.append(f"Skipped {len(self.problems)} file(s).")
        return " ".join(parts)


def person_name(folder: str) -> str:
    """A folder name as a person's name (LFW's ``George_W_Bush`` becomes ``George W Bush``)."""
    return folder.replace("_", " ")


def zip_jobs(data: bytes) -> list[ImportJob]:
    """Jobs from a zip with one folder per person (optionally all inside one top folder).

    Raises :class:`GalleryError` for a file that is not a zip or one over the size limits.
    """
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        infos = archive.infolist()
    except (zipfile.BadZipFile, ValueError, OSError) as exc:
        raise GalleryError(f"This file cannot be read as a zip file ({exc}).") from None
    entries = [
        info
        for info in infos
        if not info.is_dir()
        and PurePosixPath(info.filename).suffix.lower() in IMAGE_SUFFIXES
        and not any(part.startswith((".", "__MACOSX")) for part in PurePosixPath(info.filename).parts)
    ]
    if len(entries) > ZIP_MAX_FILES or sum(i.file_size for i in entries) > ZIP_MAX_BYTES:
        raise GalleryError(
            f"The zip is too large (limit {ZIP_MAX_FILES} images, {ZIP_MAX_BYTES / 1e9:g} GB unpacked)."
        )
    parts = [PurePosixPath(i.filename).parts for i in entries]
    # A single top folder wrapping the person folders ("people/<name>/x.jpg") is skipped.
    strip = 1 if parts and all(len(p) >= 3 for p in parts) and len({p[0] for p in parts}) == 1 else 0
    jobs = []
    for info, p in zip(entries, parts, strict=True):
        p = p[strip:]
        if len(p) != 2:  # not <person>/<image>
            continue
        jobs.append(ImportJob(person_name(p[0]), info.filename, lambda info=info: archive.read(info)))
    return jobs


def folder_jobs(people: dict[str, Sequence[str | os.PathLike[str]]], per_person: int | None = None) -> list[ImportJob]:
    """Jobs from ``{folder name: [image path, ...]}`` (``facecore.evaluation.datasets.image_folder``
    or ``lfw_people``), at most ``per_person`` photos each."""
    return [
        ImportJob(person_name(name), Path(path).name, lambda path=path: Path(path).read_bytes())
        for name, paths in people.items()
        for path in list(paths)[:per_person]
    ]


def photo_jobs(person: str, photos: Iterable[tuple[bytes, str]]) -> list[ImportJob]:
    """Jobs for uploaded ``(bytes, file name)`` photos of one person."""
    return [ImportJob(person, name, lambda data=data: data) for data, name in photos]


def enrol_many(
    gallery: Gallery,
    pipeline: PipelineLike,
    jobs: Sequence[ImportJob],
    *,
    progress: Progress | None = None,
    on_result: Callable[[ImportJob, GalleryFace | None, str | None], None] | None = None,
) -> ImportReport:
    """Enrol the largest face of each job's photo, creating people as needed.

    ``progress(done, total)`` is called after each photo; ``on_result(job, face, problem)`` too, with
    the stored face or the reason it was skipped. A person this call created is removed again when none
    of their photos could be enrolled (and nobody added a face meanwhile), so a bad batch leaves the
    gallery as it was.
    """
    ids: dict[str, int] = {}
    created: set[int] = set()
    enrolled: list[GalleryFace] = []
    problems: list[str] = []
    for done, job in enumerate(jobs, start=1):
        face, problem = None, None
        try:
            if job.person not in ids:
                found = gallery.find_person(job.person)
                if found is None:
                    found = gallery.create_person(job.person)
                    created.add(found.id)
                ids[job.person] = found.id
            face = gallery.enrol(ids[job.person], job.read(), pipeline)
        except (GalleryError, ValueError, OSError) as exc:  # ImageError is a ValueError
            problem = f"{job.source}: {exc}"
        except Exception as exc:  # never let one file stop the batch
            problem = f"{job.source}: failed ({type(exc).__name__}: {exc})"
        if face is not None:
            enrolled.append(face)
        else:
            problems.append(problem or f"{job.source}: failed")
        if on_result is not None:
            on_result(job, face, problem)
        if progress is not None:
            progress(done, len(jobs))
    for person_id in created - {face.person_id for face in enrolled}:
        with contextlib.suppress(GalleryError):  # deleted meanwhile
            if gallery.person(person_id).face_count == 0:
                gallery.delete_person(person_id)
    return ImportReport(enrolled, problems, len({face.person_id for face in enrolled}))
