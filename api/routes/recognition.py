"""Recognition: ``/verify``, ``/verify/person/{id}``, ``/identify``, ``/embeddings``.

Contract: every decision comes from ``facecore.verification`` with the euclidean (L2) metric and the
threshold :func:`api.calibration.deciding` chooses (``?threshold=``, else the active operating point,
else the server's default); every answer names it (``operating_point``, ``threshold_source``) and gives
the confidence at its distance (:func:`api.calibration.confidence_out`).

* ``/verify`` is :func:`~facecore.verification.verify` on the two photos' largest faces.
* ``/verify/person/{id}`` is :func:`~facecore.verification.verify_against` of the photo's largest face
  against every face of the person embedded by this model, by ``?rule=``: ``mean`` (the default),
  ``nearest`` or ``majority``. Before this rule existed the endpoint always used ``nearest``.
* ``/identify`` is ``Gallery.identify`` (``facecore.verification.identify_decision``) per face, by
  ``?rule=``: ``nearest`` (the default) or ``majority``; both rules' answers are always reported.
* ``/embeddings`` returns ``FacePipeline.process``'s faces as they are.
"""

from __future__ import annotations

from typing import Annotated

import numpy as np
from fastapi import APIRouter, HTTPException, Query

from api.audit import AuditDep
from api.calibration import confidence_out, deciding
from api.config import METRIC
from api.errors import ERRORS, person_or_404, read_upload
from api.routes.common import (
    MAX_K,
    EngineDep,
    ImageUpload,
    PersonId,
    ThresholdQuery,
    detected_fields,
    person_out,
)
from api.schemas import (
    DetectedFace,
    EmbeddedFaceOut,
    EmbeddingsOut,
    IdentifiedFace,
    IdentifyOut,
    IdentifyRule,
    MatchOut,
    VerifyOut,
    VerifyPersonOut,
    VerifyRule,
)
from facecore.verification import DEFAULT_VOTING_RULE, IDENTIFY_RULES, verify, verify_against

router = APIRouter(tags=["recognition"])

DEFAULT_VERIFY_RULE = VerifyRule(DEFAULT_VOTING_RULE.value)  # mean
DEFAULT_IDENTIFY_RULE = IdentifyRule(IDENTIFY_RULES[0].value)  # nearest

VerifyRuleQuery = Annotated[
    VerifyRule,
    Query(
        description="How the distances to the person's faces decide: mean (the mean distance within the "
        "threshold), nearest (the nearest face within it) or majority (more than half of the faces within it)."
    ),
]
IdentifyRuleQuery = Annotated[
    IdentifyRule,
    Query(
        description="Which person `name` gives: nearest (the nearest face's, within the threshold) or "
        "majority (the winner of the k nearest faces' vote)."
    ),
]


@router.post("/verify", response_model=VerifyOut, responses={413: ERRORS[413]})
def verify_two(
    image_a: ImageUpload, image_b: ImageUpload, engine: EngineDep, audit: AuditDep, threshold: ThresholdQuery = None
) -> VerifyOut:
    """1:1: are the largest faces of two photos the same person?"""
    limit = engine.config.max_upload_bytes
    data_a, data_b = read_upload(image_a, "image_a", limit), read_upload(image_b, "image_b", limit)
    face_a, count_a = engine.largest_face(data_a, "image_a")
    face_b, count_b = engine.largest_face(data_b, "image_b")
    chosen = deciding(engine, threshold)
    verdict = verify(face_a.embedding, face_b.embedding, threshold=chosen.threshold, metric=METRIC)
    audit.record(
        {"same_person": verdict.same, "distance": verdict.distance, "operating_point": chosen.name},
        threshold=chosen.threshold,
    )
    return VerifyOut(
        operating_point=chosen.name,
        threshold_source=chosen.source,
        confidence=confidence_out(chosen, verdict.distance),
        same_person=verdict.same,
        distance=verdict.distance,
        threshold=verdict.threshold,
        decision=verdict.sentence(),
        face_a=DetectedFace(**detected_fields(face_a, count_a, engine.config.quality)),
        face_b=DetectedFace(**detected_fields(face_b, count_b, engine.config.quality)),
        faces_in_a=count_a,
        faces_in_b=count_b,
        model_version=engine.model_version,
    )


@router.post(
    "/verify/person/{person_id}",
    response_model=VerifyPersonOut,
    responses={404: ERRORS[404], 413: ERRORS[413]},
)
def verify_person(
    person_id: PersonId,
    image: ImageUpload,
    engine: EngineDep,
    audit: AuditDep,
    threshold: ThresholdQuery = None,
    rule: VerifyRuleQuery = DEFAULT_VERIFY_RULE,
) -> VerifyPersonOut:
    """1:1 against a gallery person: the photo's largest face against all of their faces, by ``rule``."""
    person = person_or_404(engine.gallery, person_id)
    face_ids, owners, vectors = engine.gallery.embeddings(engine.model_version)
    mine = owners == person.id
    if not mine.any():
        raise HTTPException(
            422,
            f"{person.name} has no faces embedded by {engine.model_version} to compare with; add a photo first.",
        )
    data = read_upload(image, "image", engine.config.max_upload_bytes)
    found, count = engine.largest_face(data, "image")
    chosen = deciding(engine, threshold)
    verdict = verify_against(found.embedding, vectors[mine], threshold=chosen.threshold, metric=METRIC, rule=rule.value)
    distances = np.asarray(verdict.distances)
    audit.record(
        {
            "same_person": verdict.same, "distance": verdict.distance, "rule": verdict.rule.value,
            "operating_point": chosen.name,
        },
        ids=[person.id],
        threshold=chosen.threshold,
    )
    return VerifyPersonOut(
        operating_point=chosen.name,
        threshold_source=chosen.source,
        confidence=confidence_out(
            chosen, verdict.distance, statistic=verdict.distance_name, comparisons=verdict.voters
        ),
        voter_confidence=verdict.votes / verdict.voters,
        same_person=verdict.same,
        rule=VerifyRule(verdict.rule.value),
        distance=verdict.distance,
        threshold=verdict.threshold,
        decision=verdict.sentence(),
        nearest_distance=float(distances.min()),
        mean_distance=float(distances.mean()),
        votes=verdict.votes,
        voters=verdict.voters,
        person=person_out(person),
        nearest_face_id=int(face_ids[mine][int(np.argmin(distances))]),
        faces_compared=verdict.voters,
        face=DetectedFace(**detected_fields(found, count, engine.config.quality)),
        faces_in_image=count,
        model_version=engine.model_version,
    )


@router.post("/identify", response_model=IdentifyOut, responses={413: ERRORS[413]})
def identify(
    image: ImageUpload,
    engine: EngineDep,
    audit: AuditDep,
    k: Annotated[
        int, Query(ge=1, le=MAX_K, description="Nearest gallery faces to return and vote with.")
    ] = 5,
    threshold: ThresholdQuery = None,
    rule: IdentifyRuleQuery = DEFAULT_IDENTIFY_RULE,
) -> IdentifyOut:
    """1:K: who is each face of the photo? (An image with no face gives an empty list.)"""
    data = read_upload(image, "image", engine.config.max_upload_bytes)
    _, found = engine.faces_of_upload(data, "image")
    chosen = deciding(engine, threshold)
    used = chosen.threshold
    gallery, version = engine.gallery, engine.model_version
    results = [
        gallery.identify(f.embedding, threshold=used, k=k, model_version=version, rule=rule.value)
        for f in found
    ]
    audit.record(
        {"faces": [{"name": r.name, "distance": r.distance} for r in results], "rule": rule.value},
        ids=[r.person_id for r in results if r.person_id is not None],
        threshold=used,
    )
    faces = [
        IdentifiedFace(
            **detected_fields(f, len(found), engine.config.quality),
            name=r.name,
            person_id=r.person_id,
            nearest_name=r.nearest_name,
            agrees=r.agrees,
            distance=r.distance,
            matches=[MatchOut(**vars(m)) for m in r.matches],
            votes=r.votes,
            vote_winner=r.vote_winner,
            confidence=confidence_out(chosen, r.distance, search=True),
        )
        for f, r in zip(found, results, strict=True)
    ]
    return IdentifyOut(
        operating_point=chosen.name,
        threshold_source=chosen.source,
        threshold=used,
        rule=rule,
        k=k,
        model_version=version,
        gallery_faces=gallery.index_size(version),
        faces=faces,
    )


@router.post("/embeddings", response_model=EmbeddingsOut, responses={413: ERRORS[413]})
def embeddings(image: ImageUpload, engine: EngineDep) -> EmbeddingsOut:
    """Every face of the photo with its box, landmarks and embedding (an empty list when none)."""
    data = read_upload(image, "image", engine.config.max_upload_bytes)
    (height, width), found = engine.faces_of_upload(data, "image")
    return EmbeddingsOut(
        width=int(width),
        height=int(height),
        detector=engine.detector,
        model_version=engine.model_version,
        faces=[
            EmbeddedFaceOut(**detected_fields(f, len(found), engine.config.quality), embedding=f.embedding.astype(float).tolist())
            for f in found
        ],
    )
