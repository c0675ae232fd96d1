"""The lab's HTTP API: the dashboard's engine and gallery for apps and websites.

Start it with ``uvicorn api.main:app`` or ``python -m api`` (docs/api.md). It opens the same gallery as
the dashboard, the store ``$FACECORE_GALLERY_URL`` names (``sqlite:///...``, the default, from
``$FACECORE_GALLERY_DIR`` or ``./gallery``; or ``postgresql://...``). Both stores see other processes'
writes (SQLite in WAL mode with per-process FAISS indexes that resync from the database revision;
PostgreSQL searched in SQL), so several API servers and the dashboard can run at the same time.

Contract of :func:`create_app`: the configuration is read at startup (``ApiConfig.from_env()`` unless
one is given) and the pipeline is built once per app, at its first startup, unless one is given (it
must then be built from ``config.pipeline``). Endpoints that run the models are plain ``def``
functions, which FastAPI runs in its thread pool, so a slow image never blocks the event loop.

The package: :mod:`api.config` (settings), :mod:`api.engine` (pipeline, gallery, guards),
:mod:`api.errors` (JSON errors, the body limit), :mod:`api.schemas` (bodies), :mod:`api.routes`
(one module per resource), :mod:`api.access` (keys, roles, loopback-only mode, rate limits),
:mod:`api.audit` (the audit log dependency), :mod:`api.cors`.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI

from api import errors
from api.access import Authenticate, authorize, startup_notice
from api.config import IMPORT_PATH, ApiConfig
from api.cors import ConfiguredCors
from api.engine import Engine
from api.errors import ERRORS
from api.routes import ROUTERS
from facecore.config import PipelineConfig
from facecore.pipeline import FacePipeline

log = logging.getLogger(__name__)


def create_app(config: ApiConfig | None = None, pipeline: FacePipeline | None = None) -> FastAPI:
    """The API; ``config`` defaults to the environment (read at startup), ``pipeline`` to one built once."""
    built: dict[PipelineConfig, FacePipeline] = {}  # the app's one cache: its pipeline, built once

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        settings = config or ApiConfig.from_env()
        engine = Engine(settings, pipeline if pipeline is not None else built.get(settings.pipeline))
        built[settings.pipeline] = engine.pipeline
        app.state.engine = engine
        log.info(
            "face API ready: gallery %s, %s, threshold %.3f",
            engine.gallery.location,
            engine.model_version,
            engine.threshold,
        )
        log.warning(startup_notice(engine))
        yield
        engine.close()

    app = FastAPI(
        title="Face Verification Lab API",
        version="0.2.0",
        summary="Verify, identify and embed faces against the lab's gallery (the dashboard's engine).",
        lifespan=lifespan,
        responses={400: ERRORS[400], 401: ERRORS[401], 403: ERRORS[403], 422: ERRORS[422], 429: ERRORS[429]},
        dependencies=[Depends(authorize)],
    )
    errors.install(
        app,
        body_limit=lambda path: app.state.engine.config.body_limit(path),
        reserved={IMPORT_PATH: ["POST"]},
    )
    app.add_middleware(Authenticate)  # 401 before the body limit or any parsing
    app.add_middleware(ConfiguredCors)  # outermost: errors carry CORS headers too
    for router in ROUTERS:
        app.include_router(router)
    return app


app = create_app()
