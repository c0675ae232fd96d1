"""Operating points: ``GET /operating-points``, ``POST /operating-points``, ``PUT /operating-points/active``.

Contract: every point belongs to the engine's configuration (embedder version, detector) and the API's
metric; they are stored in the gallery database (``facecore.gallery.operating_points``), shared with
the dashboard and the CLI. A point is created from labelled distances and a target
(``facecore.verification.operating_points.from_pairs``), which chooses the threshold; bad bodies get a
422 with a sentence.
"""

from __future__ import annotations

from fastapi import APIRouter, HTTPException

from api.audit import AuditDep
from api.config import METRIC
from api.errors import ERRORS
from api.routes.common import EngineDep
from api.schemas_calibration import ActivateIn, OperatingPointIn, OperatingPointOut
from facecore.gallery.operating_points import OperatingPoints
from facecore.gallery.records import GalleryError
from facecore.verification.operating_points import OperatingPoint, from_pairs

router = APIRouter(tags=["operating points"])


def point_out(point: OperatingPoint) -> OperatingPointOut:
    return OperatingPointOut(
        name=point.name, model_version=point.model_version, detector=point.detector, metric=point.metric,
        threshold=point.threshold, source=point.source, set_name=point.set_name, set_size=point.set_size,
        target=point.target, active=point.active, created=point.created, description=point.describe(),
        caveat=point.caveat,
    )


@router.get("/operating-points", response_model=list[OperatingPointOut])
def list_points(engine: EngineDep) -> list[OperatingPointOut]:
    """The operating points of this API's configuration, newest first (at most one is active)."""
    points = OperatingPoints(engine.gallery.database).list(engine.pipeline.config, METRIC)
    return [point_out(p) for p in points]


@router.post("/operating-points", response_model=OperatingPointOut, status_code=201)
def create_point(body: OperatingPointIn, engine: EngineDep, audit: AuditDep) -> OperatingPointOut:
    """Choose a threshold for ``target`` on labelled distances and store it (active when asked)."""
    if len(body.distances) != len(body.same):
        raise HTTPException(422, f"{len(body.distances)} distances but {len(body.same)} labels; give one label per distance.")
    try:
        point = from_pairs(
            body.name, engine.pipeline.config, METRIC, body.distances, body.same, target=body.target,
            source=body.source, set_name=body.set_name, threshold=body.threshold,
        )
        saved = OperatingPoints(engine.gallery.database).save(point, activate=body.activate)
    except (ValueError, GalleryError) as exc:
        raise HTTPException(422, str(exc)) from None
    audit.record(
        {"operating_point": saved.name, "target": saved.target, "active": saved.active}, threshold=saved.threshold
    )
    return point_out(saved)


@router.put("/operating-points/active", response_model=OperatingPointOut | None, responses={404: ERRORS[404]})
def activate_point(body: ActivateIn, engine: EngineDep, audit: AuditDep) -> OperatingPointOut | None:
    """Decide with the named point from now on (null: with the configuration's default threshold)."""
    try:
        active = OperatingPoints(engine.gallery.database).activate(engine.pipeline.config, METRIC, body.name)
    except GalleryError as exc:
        raise HTTPException(404, str(exc)) from None
    audit.record(
        {"operating_point": None if active is None else active.name, "activated": True},
        threshold=None if active is None else active.threshold,
    )
    return None if active is None else point_out(active)
