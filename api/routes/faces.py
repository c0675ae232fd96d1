"""Gallery faces: add one from a photo, list, read, move to another person, the embedding, the chip, delete.

``POST /people/{id}/faces`` stores one face of ``FacePipeline.process``'s answer (the largest by
default, ``?face_index=n`` otherwise) with the engine's model version; a failed upload changes nothing
(404 unknown person, 409 the same face already stored, 413 over the limit, 422 bad image or no face).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, File, HTTPException, Query, UploadFile
from fastapi.responses import FileResponse, Response

from api.audit import AuditDep
from api.errors import ERRORS, face_or_404, person_or_404, read_upload
from api.routes.common import MAX_ID, EngineDep, FaceId, PersonId, gallery_face_out, quality_out
from api.schemas import EnrolledFaceOut, FaceEmbeddingOut, FaceMoveIn, GalleryFaceOut
from facecore.gallery import GalleryError

router = APIRouter(tags=["faces"])


@router.get("/people/{person_id}/faces", response_model=list[GalleryFaceOut], responses={404: ERRORS[404]})
def list_person_faces(person_id: PersonId, engine: EngineDep) -> list[GalleryFaceOut]:
    """A person's faces, oldest first."""
    person_or_404(engine.gallery, person_id)
    return [gallery_face_out(f) for f in engine.gallery.faces(person_id)]


@router.post(
    "/people/{person_id}/faces",
    response_model=EnrolledFaceOut,
    status_code=201,
    responses={404: ERRORS[404], 409: ERRORS[409], 413: ERRORS[413]},
)
def add_face(
    person_id: PersonId,
    engine: EngineDep,
    audit: AuditDep,
    image: Annotated[
        UploadFile, File(description="A photo of the person (JPEG, PNG, WebP, GIF, BMP, TIFF).")
    ],
    face_index: Annotated[
        int,
        Query(ge=0, le=1000, description="Which face to store when the photo has several: 0 is the largest."),
    ] = 0,
    allow_low_quality: Annotated[
        bool,
        Query(description="Store the face even when it misses the quality minimums (small, blurred, turned)."),
    ] = False,
) -> EnrolledFaceOut:
    """Detect the faces of a photo and store one (the largest by default) for the person."""
    person_or_404(engine.gallery, person_id)  # before the slow part
    data = read_upload(image, "image", engine.config.max_upload_bytes)
    _, found = engine.faces_of_upload(data, "image")
    if not found:
        raise HTTPException(422, f"image: no face found with the {engine.detector} detector.")
    if face_index >= len(found):
        raise HTTPException(
            422, f"face_index {face_index} is out of range: the photo has {len(found)} face(s)."
        )
    quality = quality_out(found[face_index], len(found), engine.config.quality)
    if quality.warnings and not allow_low_quality:
        raise HTTPException(
            422,
            "image: not enrolled: " + "; ".join(quality.warnings) + ". Send a better photo, or pass "
            "allow_low_quality=true to store it anyway.",
        )
    try:
        stored = engine.gallery.add_face(person_id, data, found[face_index], engine.model_version)
    except GalleryError as exc:
        person_or_404(engine.gallery, person_id)  # deleted meanwhile: 404
        raise HTTPException(409, str(exc)) from None
    audit.record(
        {"added_face": stored.id, "person": stored.person_name, "quality_warnings": quality.warnings},
        ids=[stored.id, person_id],
    )
    return EnrolledFaceOut(**gallery_face_out(stored).model_dump(), quality=quality)


@router.get("/faces", response_model=list[GalleryFaceOut], responses={404: ERRORS[404]})
def list_faces(
    engine: EngineDep,
    person_id: Annotated[int | None, Query(ge=1, le=MAX_ID, description="Only this person's faces.")] = None,
) -> list[GalleryFaceOut]:
    """Every gallery face (or one person's), oldest first."""
    if person_id is not None:
        person_or_404(engine.gallery, person_id)
    return [gallery_face_out(f) for f in engine.gallery.faces(person_id)]


@router.get("/faces/{face_id}", response_model=GalleryFaceOut, responses={404: ERRORS[404]})
def get_face(face_id: FaceId, engine: EngineDep) -> GalleryFaceOut:
    return gallery_face_out(face_or_404(engine.gallery, face_id))


@router.patch("/faces/{face_id}", response_model=GalleryFaceOut, responses={404: ERRORS[404]})
def move_face(face_id: FaceId, body: FaceMoveIn, engine: EngineDep, audit: AuditDep) -> GalleryFaceOut:
    """Move a face to another person (a face enrolled under the wrong name); its vector stays."""
    before = face_or_404(engine.gallery, face_id)
    person_or_404(engine.gallery, body.person_id)
    try:
        moved = engine.gallery.move_face(face_id, body.person_id)
    except GalleryError as exc:  # deleted meanwhile
        raise HTTPException(404, str(exc)) from None
    audit.record(
        {"moved_face": face_id, "from": before.person_name, "to": moved.person_name},
        ids=[face_id, before.person_id, moved.person_id],
    )
    return gallery_face_out(moved)


@router.get("/faces/{face_id}/embedding", response_model=FaceEmbeddingOut, responses={404: ERRORS[404]})
def get_face_embedding(face_id: FaceId, engine: EngineDep) -> FaceEmbeddingOut:
    """The stored vector of a face, as the model that made it gave it (compare only within one model)."""
    face = face_or_404(engine.gallery, face_id)
    try:
        vector = engine.gallery.face_embedding(face_id)
    except GalleryError as exc:
        raise HTTPException(404, str(exc)) from None
    return FaceEmbeddingOut(
        face_id=face.id,
        person_id=face.person_id,
        model_version=face.model_version,
        dimension=int(vector.size),
        embedding=vector.astype(float).tolist(),
    )


@router.get(
    "/faces/{face_id}/chip",
    response_class=FileResponse,
    responses={200: {"content": {"image/png": {}}}, 404: ERRORS[404]},
)
def get_face_chip(face_id: FaceId, engine: EngineDep) -> FileResponse:
    """The aligned 150x150 chip the embedding was made from, as PNG."""
    face = face_or_404(engine.gallery, face_id)
    if not face.chip_path.is_file():
        raise HTTPException(404, f"The chip of face {face_id} is missing (repair the gallery).")
    return FileResponse(face.chip_path, media_type="image/png")


@router.delete("/faces/{face_id}", status_code=204, responses={404: ERRORS[404]})
def delete_face(face_id: FaceId, engine: EngineDep, audit: AuditDep) -> Response:
    try:
        engine.gallery.delete_face(face_id)
    except GalleryError as exc:
        raise HTTPException(404, str(exc)) from None
    audit.record({"deleted": "face"}, ids=[face_id])
    return Response(status_code=204)
