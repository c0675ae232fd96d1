"""Every error the API answers, as JSON ``{"detail": "<a sentence>"}`` with a 4xx status.

Contract: 400 unparseable body; 404 unknown id; 405 wrong method, with an ``Allow`` header listing
every method of the path (Starlette's own names only the first route's); 409 duplicate name or face;
413 an upload or a body over its limit (a body is refused by :class:`BodySizeLimit` before anything
parses it, chunked or not); 422 bad image, no face, invalid input (then ``errors`` lists each field).
``ERRORS`` documents these for the OpenAPI schema; the small helpers turn gallery errors into them.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Mapping, MutableMapping
from typing import Any

from fastapi import FastAPI, HTTPException, Request, UploadFile
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from api.schemas import ErrorOut
from facecore.gallery import Gallery, GalleryError, GalleryFace, Person, clean_name

HTTP_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")

ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorOut, "description": description}
    for status, description in (
        (400, "The body could not be parsed (malformed JSON or multipart)."),
        (401, "No API key, or an unknown or revoked one (or no key exists and the caller is not local)."),
        (403, "The API key's role does not allow this."),
        (404, "No person or face with this id."),
        (409, "The name is taken, or this face is already stored for the person."),
        (413, "An upload is larger than the limit."),
        (422, "A bad image or zip, no face found, or invalid parameters."),
        (429, "Too many requests for this API key; retry after the Retry-After header's seconds."),
    )
}


def install(app: FastAPI, body_limit: Callable[[str], int], reserved: Mapping[str, Iterable[str]]) -> None:
    """The JSON error handlers, the body size limit (``body_limit(path)`` in bytes) and the reserved paths."""
    app.add_middleware(BodySizeLimit, body_limit=body_limit)
    app.add_middleware(ReservedPaths, methods=reserved)
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(StarletteHTTPException, http_error)


# ----------------------------------------------------------------------------- helpers for routes


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


# ----------------------------------------------------------------------------- handlers


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
        return method_not_allowed(request.method, allowed_methods(request.app, request.scope))
    return await http_exception_handler(request, exc)


def method_not_allowed(method: str, allowed: Iterable[str]) -> JSONResponse:
    names = sorted(allowed)
    return JSONResponse(
        status_code=405,
        content={"detail": f"{method} is not allowed here; use {', '.join(names)}."},
        headers={"Allow": ", ".join(names)},
    )


def allowed_methods(app: FastAPI, scope: Scope) -> set[str]:
    """Every method some route serves at the request's path (Starlette's own 405 names only the first
    route's). Asks each route whether it would take the request with that method, so routes inside
    included routers count too."""
    return {
        method
        for method in HTTP_METHODS
        if any(route.matches({**scope, "method": method})[0] is Match.FULL for route in app.router.routes)
    }


# ----------------------------------------------------------------------------- middleware

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class ReservedPaths:
    """A fixed path that a parametric route also matches answers 405 for the methods it does not serve.

    ``/people/import`` would otherwise reach ``GET/PATCH/DELETE /people/{person_id}`` and fail there
    validating ``"import"`` as an id (a 422 where a 405 is right).
    """

    def __init__(self, app: ASGIApp, methods: Mapping[str, Iterable[str]]):
        self.app = app
        self.methods = {path: frozenset(allowed) for path, allowed in methods.items()}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        allowed = self.methods.get(scope.get("path", "")) if scope["type"] == "http" else None
        if allowed is not None and scope["method"] not in allowed:
            await method_not_allowed(scope["method"], allowed)(scope, receive, send)
            return
        await self.app(scope, receive, send)


class BodySizeLimit:
    """Refuse a request body over ``body_limit(path)`` with 413 before anything parses it."""

    def __init__(self, app: ASGIApp, body_limit: Callable[[str], int]):
        self.app = app
        self.body_limit = body_limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.body_limit(scope.get("path", ""))
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
