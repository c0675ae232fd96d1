"""``GET /health``: the engine's configuration and the gallery's size (also a readiness check)."""

from __future__ import annotations

from fastapi import APIRouter

from api.calibration import deciding
from api.routes.common import EngineDep
from api.schemas import HealthOut

router = APIRouter(tags=["service"])


@router.get("/health", response_model=HealthOut)
def health(engine: EngineDep) -> HealthOut:
    """The engine's configuration and the gallery's size (also a readiness check)."""
    stats = engine.gallery.stats()
    chosen = deciding(engine)
    return HealthOut(
        status="ok",
        detector=engine.detector,
        embedder=engine.config.pipeline.embedder,
        model_version=engine.model_version,
        licence=engine.config.pipeline.licence,
        threshold=chosen.threshold,
        threshold_source=chosen.source,
        people=stats["people"],
        faces=stats["faces"],
        max_upload_bytes=engine.config.max_upload_bytes,
        max_zip_bytes=engine.config.max_zip_bytes,
        max_pixels=engine.config.max_pixels,
    )
