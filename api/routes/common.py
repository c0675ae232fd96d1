"""What the route modules share: the engine dependency, typed parameters, and record -> schema converters."""

from __future__ import annotations

from typing import Annotated, Any

import numpy as np
from fastapi import Depends, File, Query, Request, UploadFile
from fastapi import Path as PathParam

from api.engine import Engine
from api.schemas import Box, FaceQualityOut, GalleryFaceOut, PersonOut
from facecore.gallery import GalleryFace, Person
from facecore.quality import QualityMinimums, face_quality
from facecore.types import EmbeddedFace

MAX_ID = 2**63 - 1  # SQLite's INTEGER range: larger ids cannot exist (and would not bind)
MAX_K = 50


def get_engine(request: Request) -> Engine:
    return request.app.state.engine


EngineDep = Annotated[Engine, Depends(get_engine)]
PersonId = Annotated[int, PathParam(ge=1, le=MAX_ID, description="A person's id.")]
FaceId = Annotated[int, PathParam(ge=1, le=MAX_ID, description="A face's id.")]
ThresholdQuery = Annotated[
    float | None,
    Query(
        ge=0,
        le=10,
        allow_inf_nan=False,
        description="Euclidean (L2) decision threshold; default: the LFW-calibrated one (see /health).",
    ),
]
ImageUpload = Annotated[UploadFile, File(description="A photo (JPEG, PNG, WebP, GIF, BMP, TIFF).")]


def person_out(person: Person) -> PersonOut:
    return PersonOut(id=person.id, name=person.name, face_count=person.face_count, created=person.created)


def box_out(box: tuple[int, int, int, int]) -> Box:
    x, y, w, h = (int(v) for v in box)
    return Box(x=x, y=y, w=w, h=h)


def gallery_face_out(face: GalleryFace) -> GalleryFaceOut:
    return GalleryFaceOut(
        id=face.id,
        person_id=face.person_id,
        person_name=face.person_name,
        box=box_out(face.box),
        score=face.score,
        detector=face.detector,
        model_version=face.model_version,
        image_sha256=face.image_sha256,
        created=face.created,
        chip_url=f"/faces/{face.id}/chip",
    )


def quality_out(found: EmbeddedFace, faces_in_photo: int, minimums: QualityMinimums) -> FaceQualityOut:
    quality = face_quality(found, faces_in_photo)
    return FaceQualityOut(**quality.as_dict(), warnings=minimums.problems(quality))


def detected_fields(found: EmbeddedFace, faces_in_photo: int, minimums: QualityMinimums) -> dict[str, Any]:
    """Box, score, quality and the landmarks the face was aligned to (``FacePipeline.process`` sets them)."""
    landmarks = [] if found.landmarks is None else np.asarray(found.landmarks, np.float64).round(2).tolist()
    return {
        "box": box_out(found.face.box),
        "score": float(found.face.score),
        "landmarks": landmarks,
        "landmarks_order": found.alignment or "",
        "quality": quality_out(found, faces_in_photo, minimums),
    }
