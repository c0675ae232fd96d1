"""The lab's HTTP API: the dashboard's engine and gallery for apps and websites.

Start it with ``uvicorn api.main:app`` (docs/api.md). It opens the same gallery as the dashboard
(``$FACECORE_GALLERY_DIR``, else ``./gallery``): SQLite in WAL mode with per-process FAISS indexes that
resync from the database revision, so the API and the dashboard can run at the same time.

The models load once, at startup. Endpoints that run them are plain ``def`` functions, which FastAPI
runs in its thread pool, so a slow image never blocks the event loop; one model call runs at a time
(TensorFlow does not promise thread-safe inference, and the machine has few cores anyway) and at most
``MAX_IMAGES_IN_FLIGHT`` decoded images are held at once, which bounds memory under load.

Every error is JSON ``{"detail": "<a sentence>"}`` with a 4xx status: 404 unknown id, 409 duplicate
name or face, 413 upload too large, 422 bad image, no face or invalid input.
"""

from __future__ import annotations

import logging
import math
import os
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import numpy as np
from fastapi import Depends, FastAPI, File, HTTPException, Query, Request, UploadFile
from fastapi import Path as PathParam
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Route

from api.schemas import (
    Box,
    DetectedFace,
    EmbeddedFaceOut,
    EmbeddingsOut,
    ErrorOut,
    GalleryFaceOut,
    HealthOut,
    IdentifiedFace,
    IdentifyOut,
    MatchOut,
    PersonIn,
    PersonOut,
    VerifyOut,
    VerifyPersonOut,
)
from facecore.alignment import align_face
from facecore.detection import DETECTORS, INTERACTIVE_MAX_SIDE
from facecore.gallery import Gallery, GalleryError, GalleryFace, Person, clean_name, default_gallery_dir
from facecore.images import MAX_PIXELS, ImageError, decode_image
from facecore.pipeline import EmbeddedFace, FacePipeline
from facecore.verification.thresholds import DLIB_DEFAULT_THRESHOLD, calibrated

log = logging.getLogger(__name__)

DEFAULT_MAX_UPLOAD_MB = 10.0
MAX_IMAGES_PER_REQUEST = 2  # /verify takes two
MULTIPART_OVERHEAD_BYTES = 64 * 1024  # boundaries and part headers around the files
MAX_ID = 2**63 - 1  # SQLite's INTEGER range: larger ids cannot exist (and would not bind)
MAX_K = 50
MAX_IMAGES_IN_FLIGHT = 4  # decoded images held at once: bounds memory (40 MP is 120 MB as RGB)
# As the dashboard (ui.common.DETECTION_MAX_SIDE): detectors see photos shrunk to this longest side, so
# the API finds the same faces, with the same boxes and embeddings, as the pages do.
DETECTION_MAX_SIDE = INTERACTIVE_MAX_SIDE

ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorOut, "description": description}
    for status, description in (
        (400, "The body could not be parsed (malformed JSON or multipart)."),
        (404, "No person or face with this id."),
        (409, "The name is taken, or this face is already stored for the person."),
        (413, "An upload is larger than the limit."),
        (422, "A bad image, no face found, or invalid parameters."),
    )
}


# ----------------------------------------------------------------------------- configuration


@dataclass(frozen=True)
class ApiConfig:
    gallery_root: Path
    detector: str = "hog"
    flip_tta: bool = False
    threshold: float | None = None  # None: the LFW-calibrated euclidean threshold of this configuration
    max_upload_bytes: int = int(DEFAULT_MAX_UPLOAD_MB * 1024 * 1024)
    max_pixels: int = MAX_PIXELS
    detection_max_side: int = DETECTION_MAX_SIDE

    @classmethod
    def from_env(cls) -> ApiConfig:
        """``$FACECORE_GALLERY_DIR`` and ``$FACECORE_API_*`` (docs/api.md lists them)."""
        env = os.environ
        threshold = env.get("FACECORE_API_THRESHOLD")
        return cls(
            gallery_root=default_gallery_dir(),
            detector=env.get("FACECORE_API_DETECTOR", "hog"),
            flip_tta=env.get("FACECORE_API_FLIP_TTA", "0").strip().lower() in ("1", "true", "yes", "on"),
            threshold=float(threshold) if threshold else None,
            max_upload_bytes=int(
                float(env.get("FACECORE_API_MAX_UPLOAD_MB", DEFAULT_MAX_UPLOAD_MB)) * 1024 * 1024
            ),
            max_pixels=int(env.get("FACECORE_API_MAX_PIXELS", MAX_PIXELS)),
            detection_max_side=int(env.get("FACECORE_API_DETECTION_MAX_SIDE", DETECTION_MAX_SIDE)),
        )

    def checked(self) -> ApiConfig:
        if self.detector not in DETECTORS.names():
            raise ValueError(f"unknown detector {self.detector!r}; choose one of {DETECTORS.names()}")
        if self.threshold is not None and not (math.isfinite(self.threshold) and self.threshold >= 0):
            raise ValueError(f"the threshold must be a finite distance >= 0, got {self.threshold}")
        if self.detection_max_side < 32:
            raise ValueError(
                f"the detection max side must be at least 32 pixels, got {self.detection_max_side}"
            )
        if self.max_upload_bytes < 1 or self.max_pixels < 1:
            raise ValueError("the upload and pixel limits must be positive")
        return self

    def build_pipeline(self) -> FacePipeline:
        """The models, configured as the dashboard configures them."""
        return FacePipeline(
            self.detector,
            "dlib-keras",
            flip_tta=self.flip_tta,
            detector_options={"max_side": self.detection_max_side},
        )

    @property
    def max_body_bytes(self) -> int:
        return MAX_IMAGES_PER_REQUEST * self.max_upload_bytes + MULTIPART_OVERHEAD_BYTES


def default_threshold(detector: str, flip_tta: bool) -> tuple[float, str]:
    """The dashboard's default: LFW-calibrated euclidean threshold, else dlib's published 0.6."""
    cal = calibrated(detector, "euclidean", flip_tta)
    if cal is not None:
        return float(cal.threshold), cal.describe()
    return (
        DLIB_DEFAULT_THRESHOLD,
        f"{DLIB_DEFAULT_THRESHOLD}: dlib's published threshold (no LFW calibration)",
    )


# ----------------------------------------------------------------------------- the engine


@dataclass(frozen=True)
class FoundFace:
    """A face of an uploaded image with its embedding and the landmarks it was aligned to."""

    embedded: EmbeddedFace
    landmarks: np.ndarray
    landmarks_order: str


class Engine:
    """The pipeline, the gallery and the decision threshold, shared by every request."""

    def __init__(self, config: ApiConfig, pipeline: FacePipeline | None = None) -> None:
        self.config = config.checked()
        self.pipeline = pipeline or self.config.build_pipeline()
        self.gallery = Gallery(config.gallery_root)
        calibrated_threshold, source = default_threshold(
            self.pipeline.detector.name, self.pipeline.embedder.flip_tta
        )
        self.threshold = calibrated_threshold if config.threshold is None else config.threshold
        self.threshold_source = source if config.threshold is None else "set by FACECORE_API_THRESHOLD"
        self._model_lock = threading.Lock()
        self._image_slots = threading.BoundedSemaphore(MAX_IMAGES_IN_FLIGHT)

    @property
    def model_version(self) -> str:
        return self.pipeline.embedder.version

    def decode(self, data: bytes, field: str) -> np.ndarray:
        try:
            return decode_image(data, max_pixels=self.config.max_pixels)
        except ImageError as exc:
            raise HTTPException(422, f"{field}: {exc}") from None

    def find_faces(self, image: np.ndarray) -> list[FoundFace]:
        """Every face, largest first: the same steps as ``FacePipeline.process``, keeping the landmarks."""
        pipeline = self.pipeline
        with self._model_lock:
            faces = pipeline.detector.detect(image)
            aligned = [
                align_face(image, f, use_detector_landmarks=pipeline.use_detector_landmarks) for f in faces
            ]
            vectors = pipeline.embedder.embed(np.stack([a.chip for a in aligned])) if aligned else []
        return [
            FoundFace(EmbeddedFace(a.face, v, a.chip, a.method), a.landmarks, a.method)
            for a, v in zip(aligned, vectors, strict=True)
        ]

    def faces_of_upload(self, data: bytes, field: str) -> tuple[tuple[int, int], list[FoundFace]]:
        """The decoded image's (height, width) and its faces."""
        with self._image_slots:
            image = self.decode(data, field)
            return image.shape[:2], self.find_faces(image)

    def largest_face(self, data: bytes, field: str) -> tuple[FoundFace, int]:
        """The largest face of an upload and how many faces it has; 422 when it has none."""
        _, found = self.faces_of_upload(data, field)
        if not found:
            raise HTTPException(
                422,
                f"{field}: no face found with the {self.pipeline.detector.name} detector. Use a photo where "
                "the face is larger, frontal and well lit.",
            )
        return found[0], len(found)


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


# ----------------------------------------------------------------------------- helpers


def read_upload(upload: UploadFile, field: str, limit: int) -> bytes:
    """The upload's bytes; 413 when over ``limit`` (read at most one byte past it)."""
    upload.file.seek(0)
    data = upload.file.read(limit + 1)
    if len(data) > limit:
        raise HTTPException(413, f"{field} is larger than the {limit / 1024 / 1024:g} MB upload limit.")
    return data


def person_or_404(gallery: Gallery, person_id: int) -> Person:
    try:
        return gallery.person(person_id)
    except GalleryError as exc:
        raise HTTPException(404, str(exc)) from None


def face_or_404(gallery: Gallery, face_id: int) -> GalleryFace:
    try:
        return gallery.face(face_id)
    except GalleryError as exc:
        raise HTTPException(404, str(exc)) from None


def checked_name(name: str) -> str:
    try:
        return clean_name(name)
    except GalleryError as exc:
        raise HTTPException(422, str(exc)) from None


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


def detected_fields(found: FoundFace) -> dict[str, Any]:
    face = found.embedded.face
    return {
        "box": box_out(face.box),
        "score": float(face.score),
        "landmarks": np.asarray(found.landmarks, np.float64).round(2).tolist(),
        "landmarks_order": found.landmarks_order,
    }


def distance(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.linalg.norm(np.asarray(a, np.float64) - np.asarray(b, np.float64)))


# ----------------------------------------------------------------------------- the app


def create_app(config: ApiConfig | None = None, pipeline: FacePipeline | None = None) -> FastAPI:
    """The API; ``config`` defaults to the environment (read at startup), ``pipeline`` to a new one."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = Engine(config or ApiConfig.from_env(), pipeline)
        app.state.engine = engine
        log.info(
            "face API ready: gallery %s, %s, threshold %.3f",
            engine.gallery.root,
            engine.model_version,
            engine.threshold,
        )
        yield
        engine.gallery.close()

    app = FastAPI(
        title="Face Verification Lab API",
        version="0.1.0",
        summary="Verify, identify and embed faces against the lab's gallery (the dashboard's engine).",
        lifespan=lifespan,
        responses={400: ERRORS[400], 422: ERRORS[422]},
    )
    app.add_middleware(BodySizeLimit, max_body_bytes=lambda: app.state.engine.config.max_body_bytes)
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(StarletteHTTPException, http_error)
    add_routes(app)
    return app


async def validation_error(request: Request, exc: Exception) -> JSONResponse:
    """422 with one readable sentence (FastAPI's default gives only a list)."""
    errors = exc.errors() if isinstance(exc, RequestValidationError) else []
    parts = [f"{'.'.join(str(p) for p in e.get('loc', ()))}: {e.get('msg', 'invalid')}" for e in errors]
    return JSONResponse(
        status_code=422,
        content={
            "detail": "Invalid request. " + "; ".join(parts),
            "errors": [{"loc": [str(p) for p in e.get("loc", ())], "msg": str(e.get("msg"))} for e in errors],
        },
    )


async def http_error(request: Request, exc: Exception) -> Response:
    """FastAPI's JSON errors, except that a 405 lists every method of the path in ``Allow``."""
    if isinstance(exc, StarletteHTTPException) and exc.status_code == 405:
        allowed = sorted(allowed_methods(request.app, request.url.path))
        return JSONResponse(
            status_code=405,
            content={"detail": f"{request.method} is not allowed here; use {', '.join(allowed)}."},
            headers={"Allow": ", ".join(allowed)},
        )
    return await http_exception_handler(request, exc)


def allowed_methods(app: FastAPI, path: str) -> set[str]:
    """Every method some route serves at ``path`` (Starlette's own 405 names only the first route's)."""
    methods: set[str] = set()
    for route in app.routes:
        if isinstance(route, Route) and route.methods and route.path_regex.match(path):
            methods |= route.methods
    return methods


Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


class BodySizeLimit:
    """Refuse a request body over the limit with 413 before anything parses it (uploads included)."""

    def __init__(
        self, app: Callable[[Scope, Receive, Send], Awaitable[None]], max_body_bytes: Callable[[], int]
    ):
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.max_body_bytes()
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            await self.too_large(send, limit)
            return
        # Read the body here, counting, so that a chunked upload without a length is bounded too.
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return  # the client went away
            chunks.append(message.get("body", b""))
            size += len(chunks[-1])
            if size > limit:
                await self.too_large(send, limit)
                return
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    @staticmethod
    async def too_large(send: Send, limit: int) -> None:
        response = JSONResponse(
            status_code=413,
            content={"detail": f"The request body is larger than the {limit / 1024 / 1024:.1f} MB limit."},
            headers={"Connection": "close"},
        )
        await response({"type": "http"}, _no_body, send)


async def _no_body() -> Message:
    return {"type": "http.disconnect"}


def add_routes(app: FastAPI) -> None:
    add_service_routes(app)
    add_people_routes(app)
    add_face_routes(app)
    add_recognition_routes(app)


def add_service_routes(app: FastAPI) -> None:
    @app.get("/health", response_model=HealthOut, tags=["service"])
    def health(engine: EngineDep) -> HealthOut:
        """The engine's configuration and the gallery's size (also a readiness check)."""
        stats = engine.gallery.stats()
        return HealthOut(
            status="ok",
            detector=engine.pipeline.detector.name,
            model_version=engine.model_version,
            threshold=engine.threshold,
            threshold_source=engine.threshold_source,
            people=stats["people"],
            faces=stats["faces"],
            max_upload_bytes=engine.config.max_upload_bytes,
            max_pixels=engine.config.max_pixels,
        )


def add_people_routes(app: FastAPI) -> None:
    tags = ["people"]

    @app.get("/people", response_model=list[PersonOut], tags=tags)
    def list_people(engine: EngineDep) -> list[PersonOut]:
        """Everyone in the gallery, by name."""
        return [person_out(p) for p in engine.gallery.people()]

    @app.post("/people", response_model=PersonOut, status_code=201, tags=tags, responses={409: ERRORS[409]})
    def create_person(body: PersonIn, engine: EngineDep) -> PersonOut:
        """Add a person (no faces yet). Names are unique ignoring case."""
        name = checked_name(body.name)
        try:
            return person_out(engine.gallery.create_person(name))
        except GalleryError as exc:  # the name is valid, so only a duplicate is left
            raise HTTPException(409, str(exc)) from None

    @app.get("/people/{person_id}", response_model=PersonOut, tags=tags, responses={404: ERRORS[404]})
    def get_person(person_id: PersonId, engine: EngineDep) -> PersonOut:
        return person_out(person_or_404(engine.gallery, person_id))

    @app.patch(
        "/people/{person_id}",
        response_model=PersonOut,
        tags=tags,
        responses={404: ERRORS[404], 409: ERRORS[409]},
    )
    def rename_person(person_id: PersonId, body: PersonIn, engine: EngineDep) -> PersonOut:
        """Rename a person (their faces keep their id)."""
        person_or_404(engine.gallery, person_id)
        name = checked_name(body.name)
        try:
            return person_out(engine.gallery.rename_person(person_id, name))
        except GalleryError as exc:
            person_or_404(engine.gallery, person_id)  # deleted meanwhile: 404
            raise HTTPException(409, str(exc)) from None

    @app.delete("/people/{person_id}", status_code=204, tags=tags, responses={404: ERRORS[404]})
    def delete_person(person_id: PersonId, engine: EngineDep) -> Response:
        """Delete a person and all their faces."""
        try:
            engine.gallery.delete_person(person_id)
        except GalleryError as exc:
            raise HTTPException(404, str(exc)) from None
        return Response(status_code=204)


def add_face_routes(app: FastAPI) -> None:
    tags = ["faces"]

    @app.get(
        "/people/{person_id}/faces",
        response_model=list[GalleryFaceOut],
        tags=tags,
        responses={404: ERRORS[404]},
    )
    def list_person_faces(person_id: PersonId, engine: EngineDep) -> list[GalleryFaceOut]:
        """A person's faces, oldest first."""
        person_or_404(engine.gallery, person_id)
        return [gallery_face_out(f) for f in engine.gallery.faces(person_id)]

    @app.post(
        "/people/{person_id}/faces",
        response_model=GalleryFaceOut,
        status_code=201,
        tags=tags,
        responses={404: ERRORS[404], 409: ERRORS[409], 413: ERRORS[413]},
    )
    def add_face(
        person_id: PersonId,
        engine: EngineDep,
        image: Annotated[
            UploadFile, File(description="A photo of the person (JPEG, PNG, WebP, GIF, BMP, TIFF).")
        ],
        face_index: Annotated[
            int,
            Query(
                ge=0, le=1000, description="Which face to store when the photo has several: 0 is the largest."
            ),
        ] = 0,
    ) -> GalleryFaceOut:
        """Detect the faces of a photo and store one (the largest by default) for the person."""
        person_or_404(engine.gallery, person_id)  # before the slow part
        data = read_upload(image, "image", engine.config.max_upload_bytes)
        _, found = engine.faces_of_upload(data, "image")
        if not found:
            raise HTTPException(
                422, f"image: no face found with the {engine.pipeline.detector.name} detector."
            )
        if face_index >= len(found):
            raise HTTPException(
                422, f"face_index {face_index} is out of range: the photo has {len(found)} face(s)."
            )
        try:
            stored = engine.gallery.add_face(
                person_id, data, found[face_index].embedded, engine.model_version
            )
        except GalleryError as exc:
            person_or_404(engine.gallery, person_id)  # deleted meanwhile: 404
            raise HTTPException(409, str(exc)) from None
        return gallery_face_out(stored)

    @app.get("/faces", response_model=list[GalleryFaceOut], tags=tags, responses={404: ERRORS[404]})
    def list_faces(
        engine: EngineDep,
        person_id: Annotated[
            int | None, Query(ge=1, le=MAX_ID, description="Only this person's faces.")
        ] = None,
    ) -> list[GalleryFaceOut]:
        """Every gallery face (or one person's), oldest first."""
        if person_id is not None:
            person_or_404(engine.gallery, person_id)
        return [gallery_face_out(f) for f in engine.gallery.faces(person_id)]

    @app.get("/faces/{face_id}", response_model=GalleryFaceOut, tags=tags, responses={404: ERRORS[404]})
    def get_face(face_id: FaceId, engine: EngineDep) -> GalleryFaceOut:
        return gallery_face_out(face_or_404(engine.gallery, face_id))

    @app.get(
        "/faces/{face_id}/chip",
        tags=tags,
        response_class=FileResponse,
        responses={200: {"content": {"image/png": {}}}, 404: ERRORS[404]},
    )
    def get_face_chip(face_id: FaceId, engine: EngineDep) -> FileResponse:
        """The aligned 150x150 chip the embedding was made from, as PNG."""
        face = face_or_404(engine.gallery, face_id)
        if not face.chip_path.is_file():
            raise HTTPException(404, f"The chip of face {face_id} is missing (repair the gallery).")
        return FileResponse(face.chip_path, media_type="image/png")

    @app.delete("/faces/{face_id}", status_code=204, tags=tags, responses={404: ERRORS[404]})
    def delete_face(face_id: FaceId, engine: EngineDep) -> Response:
        try:
            engine.gallery.delete_face(face_id)
        except GalleryError as exc:
            raise HTTPException(404, str(exc)) from None
        return Response(status_code=204)


ImageUpload = Annotated[UploadFile, File(description="A photo (JPEG, PNG, WebP, GIF, BMP, TIFF).")]


def add_recognition_routes(app: FastAPI) -> None:
    tags = ["recognition"]

    @app.post("/verify", response_model=VerifyOut, tags=tags, responses={413: ERRORS[413]})
    def verify(
        image_a: ImageUpload, image_b: ImageUpload, engine: EngineDep, threshold: ThresholdQuery = None
    ) -> VerifyOut:
        """1:1: are the largest faces of two photos the same person?"""
        limit = engine.config.max_upload_bytes
        data_a, data_b = read_upload(image_a, "image_a", limit), read_upload(image_b, "image_b", limit)
        face_a, count_a = engine.largest_face(data_a, "image_a")
        face_b, count_b = engine.largest_face(data_b, "image_b")
        used = engine.threshold if threshold is None else threshold
        dist = distance(face_a.embedded.embedding, face_b.embedded.embedding)
        return VerifyOut(
            same_person=dist <= used,
            distance=dist,
            threshold=used,
            face_a=DetectedFace(**detected_fields(face_a)),
            face_b=DetectedFace(**detected_fields(face_b)),
            faces_in_a=count_a,
            faces_in_b=count_b,
            model_version=engine.model_version,
        )

    @app.post(
        "/verify/person/{person_id}",
        response_model=VerifyPersonOut,
        tags=tags,
        responses={404: ERRORS[404], 413: ERRORS[413]},
    )
    def verify_person(
        person_id: PersonId, image: ImageUpload, engine: EngineDep, threshold: ThresholdQuery = None
    ) -> VerifyPersonOut:
        """1:1 against a gallery person: is the photo's largest face within the threshold of their nearest face?"""
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
        dists = np.linalg.norm(
            vectors[mine].astype(np.float64) - found.embedded.embedding.astype(np.float64), axis=1
        )
        nearest = int(np.argmin(dists))
        used = engine.threshold if threshold is None else threshold
        return VerifyPersonOut(
            same_person=float(dists[nearest]) <= used,
            distance=float(dists[nearest]),
            threshold=used,
            person=person_out(person),
            nearest_face_id=int(face_ids[mine][nearest]),
            faces_compared=int(mine.sum()),
            face=DetectedFace(**detected_fields(found)),
            faces_in_image=count,
            model_version=engine.model_version,
        )

    @app.post("/identify", response_model=IdentifyOut, tags=tags, responses={413: ERRORS[413]})
    def identify(
        image: ImageUpload,
        engine: EngineDep,
        k: Annotated[
            int, Query(ge=1, le=MAX_K, description="Nearest gallery faces to return and vote with.")
        ] = 5,
        threshold: ThresholdQuery = None,
    ) -> IdentifyOut:
        """1:K: who is each face of the photo? (An image with no face gives an empty list.)"""
        data = read_upload(image, "image", engine.config.max_upload_bytes)
        _, found = engine.faces_of_upload(data, "image")
        used = engine.threshold if threshold is None else threshold
        gallery, version = engine.gallery, engine.model_version
        results = [
            gallery.identify(f.embedded.embedding, threshold=used, k=k, model_version=version) for f in found
        ]
        faces = [
            IdentifiedFace(
                **detected_fields(f),
                name=r.name,
                person_id=r.best.person_id if r.best is not None and r.best.distance <= used else None,
                distance=r.distance,
                matches=[MatchOut(**vars(m)) for m in r.matches],
                votes=r.votes,
                vote_winner=r.vote_winner,
            )
            for f, r in zip(found, results, strict=True)
        ]
        return IdentifyOut(
            threshold=used, k=k, model_version=version, gallery_faces=gallery.index_size(version), faces=faces
        )

    @app.post("/embeddings", response_model=EmbeddingsOut, tags=tags, responses={413: ERRORS[413]})
    def embeddings(image: ImageUpload, engine: EngineDep) -> EmbeddingsOut:
        """Every face of the photo with its box, landmarks and 128-D embedding (an empty list when none)."""
        data = read_upload(image, "image", engine.config.max_upload_bytes)
        (height, width), found = engine.faces_of_upload(data, "image")
        return EmbeddingsOut(
            width=int(width),
            height=int(height),
            detector=engine.pipeline.detector.name,
            model_version=engine.model_version,
            faces=[
                EmbeddedFaceOut(**detected_fields(f), embedding=f.embedded.embedding.astype(float).tolist())
                for f in found
            ],
        )


app = create_app()
