"""``POST /people/import``: enrol a zip of photos with one folder per person.

Contract:

* The zip (form field ``archive``, at most ``FACECORE_API_MAX_ZIP_MB``) holds ``<person>/<photo>``
  entries, optionally all inside one top folder; ``_`` in a folder name becomes a space (LFW's
  ``George_W_Bush`` is enrolled as ``George W Bush``). Jobs come from
  ``facecore.gallery.importing.zip_jobs`` and are enrolled by ``enrol_many`` (the dashboard's import):
  the largest face of each photo, people created as needed, existing people (same name ignoring case)
  extended.
* One bad file never stops the batch: each file not enrolled is answered in ``skipped_files`` with its
  reason (not an image, no face, already stored, over the per-image upload limit, or not a
  ``<person>/<photo>`` image entry at all). Hidden entries (``.*``, ``__MACOSX``) are ignored silently.
* 413 when the zip is over its limit, 422 when it is not a zip, is over facecore's zip limits, or holds
  no ``<person>/<photo>`` image. A person folder whose photos all fail may still have been created.
"""

from __future__ import annotations

import dataclasses
import io
import zipfile
from pathlib import PurePosixPath
from typing import Annotated

from fastapi import APIRouter, File, HTTPException, Query, UploadFile

from api.audit import AuditDep
from api.config import IMPORT_PATH
from api.errors import ERRORS, read_upload
from api.routes.common import EngineDep, gallery_face_out
from api.schemas import ImportOut, SkippedFileOut
from facecore.gallery import GalleryError, GalleryFace
from facecore.gallery.importing import ImportJob, enrol_many, zip_jobs
from facecore.quality import QualityGate

router = APIRouter(tags=["people"])

NOT_A_PERSON_PHOTO = "ignored: not an image file inside a person folder (<person>/<photo>.jpg)"


@router.post(
    IMPORT_PATH,
    response_model=ImportOut,
    responses={413: ERRORS[413], 422: ERRORS[422]},
)
def import_people(
    engine: EngineDep,
    audit: AuditDep,
    archive: Annotated[UploadFile, File(description="A zip with one folder of photos per person.")],
    allow_low_quality: Annotated[
        bool, Query(description="Enrol faces that miss the quality minimums too (else they are skipped).")
    ] = False,
) -> ImportOut:
    """Enrol every photo of a zip with one folder per person; answers what was enrolled and what was skipped."""
    data = read_upload(archive, "archive", engine.config.max_zip_bytes)
    try:
        jobs = zip_jobs(data)
    except GalleryError as exc:
        raise HTTPException(422, f"archive: {exc}") from None
    sizes, hidden = _entries(data)
    if not jobs:
        raise HTTPException(422, "archive: the zip holds no photos in person folders (<person>/<photo>.jpg).")
    limit = engine.config.max_upload_bytes
    skipped = [
        SkippedFileOut(file=name, reason=NOT_A_PERSON_PHOTO)
        for name in sizes
        if name not in {job.source for job in jobs} and name not in hidden
    ]

    def record(job: ImportJob, face: GalleryFace | None, problem: str | None) -> None:
        if face is None:
            reason = (problem or "failed").removeprefix(f"{job.source}: ")
            skipped.append(SkippedFileOut(file=job.source, reason=reason))

    report = enrol_many(
        engine.gallery,
        engine.guarded_pipeline() if allow_low_quality else QualityGate(engine.guarded_pipeline(), engine.config.quality),
        [_within_limit(job, sizes.get(job.source, 0), limit) for job in jobs],
        on_result=record,
    )
    audit.record(
        {"people": report.people, "enrolled": len(report.enrolled), "skipped": len(skipped)},
        ids=[f.id for f in report.enrolled],
    )
    return ImportOut(
        people=report.people,
        enrolled=len(report.enrolled),
        skipped=len(skipped),
        faces=[gallery_face_out(f) for f in report.enrolled],
        skipped_files=skipped,
        summary=f"Enrolled {len(report.enrolled)} face(s) for {report.people} person(s)."
        + (f" Skipped {len(skipped)} file(s)." if skipped else ""),
    )


def _entries(data: bytes) -> tuple[dict[str, int], set[str]]:
    """Every file entry of the (already opened once) zip with its unpacked size, and the hidden ones."""
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        files = [info for info in archive.infolist() if not info.is_dir()]
    hidden = {
        info.filename
        for info in files
        if any(part.startswith((".", "__MACOSX")) for part in PurePosixPath(info.filename).parts)
    }
    return {info.filename: info.file_size for info in files}, hidden


def _within_limit(job: ImportJob, size: int, limit: int) -> ImportJob:
    """The job, refusing (as a skipped file) a photo over the per-image upload limit before unpacking it."""
    if not size > limit:
        return job

    def refuse() -> bytes:
        raise ValueError(
            f"larger than the {limit / 1024 / 1024:g} MB upload limit ({size / 1024 / 1024:.1f} MB)"
        )

    return dataclasses.replace(job, read=refuse)
