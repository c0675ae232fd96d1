"""People: list, create, read, rename, delete (``/people``, ``/people/{id}``).

Names are unique ignoring case (409 otherwise) and cleaned by ``facecore.gallery.clean_name`` (422
when empty or with control characters). Deleting a person deletes their faces. Bulk import from a
zip is ``POST /people/import`` (:mod:`api.routes.gallery_import`).
"""

from __future__ import annotations

from fastapi import APIRouter, HTTPException
from fastapi.responses import Response

from api.audit import AuditDep
from api.errors import ERRORS, checked_name, person_or_404
from api.routes.common import EngineDep, PersonId, person_out
from api.schemas import PersonIn, PersonOut
from facecore.gallery import GalleryError

router = APIRouter(tags=["people"])


@router.get("/people", response_model=list[PersonOut])
def list_people(engine: EngineDep) -> list[PersonOut]:
    """Everyone in the gallery, by name."""
    return [person_out(p) for p in engine.gallery.people()]


@router.post("/people", response_model=PersonOut, status_code=201, responses={409: ERRORS[409]})
def create_person(body: PersonIn, engine: EngineDep, audit: AuditDep) -> PersonOut:
    """Add a person (no faces yet). Names are unique ignoring case."""
    name = checked_name(body.name)
    try:
        person = engine.gallery.create_person(name)
    except GalleryError as exc:  # the name is valid, so only a duplicate is left
        raise HTTPException(409, str(exc)) from None
    audit.record({"created": person.name}, ids=[person.id])
    return person_out(person)


@router.get("/people/{person_id}", response_model=PersonOut, responses={404: ERRORS[404]})
def get_person(person_id: PersonId, engine: EngineDep) -> PersonOut:
    return person_out(person_or_404(engine.gallery, person_id))


@router.patch("/people/{person_id}", response_model=PersonOut, responses={404: ERRORS[404], 409: ERRORS[409]})
def rename_person(person_id: PersonId, body: PersonIn, engine: EngineDep, audit: AuditDep) -> PersonOut:
    """Rename a person (their faces keep their id)."""
    before = person_or_404(engine.gallery, person_id)
    name = checked_name(body.name)
    try:
        person = engine.gallery.rename_person(person_id, name)
    except GalleryError as exc:
        person_or_404(engine.gallery, person_id)  # deleted meanwhile: 404
        raise HTTPException(409, str(exc)) from None
    audit.record({"renamed_from": before.name, "renamed_to": person.name}, ids=[person.id])
    return person_out(person)


@router.delete("/people/{person_id}", status_code=204, responses={404: ERRORS[404]})
def delete_person(person_id: PersonId, engine: EngineDep, audit: AuditDep) -> Response:
    """Delete a person and all their faces."""
    try:
        engine.gallery.delete_person(person_id)
    except GalleryError as exc:
        raise HTTPException(404, str(exc)) from None
    audit.record({"deleted": "person"}, ids=[person_id])
    return Response(status_code=204)
