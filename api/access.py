"""Who may call what: API keys with roles, the loopback-only mode, and per-key rate limits.

Contract:

* :data:`ROUTE_ROLES` is the one table of the role each route needs (``read`` < ``enrol`` < ``admin``,
  :func:`facecore.gallery.keys.role_allows`). A route missing from it needs ``admin`` (fail closed);
  ``tests/test_api_access.py`` checks that every route of the app is in it.
* A key comes in ``Authorization: Bearer <key>`` or ``X-API-Key: <key>``. :class:`Authenticate`
  (middleware, before any body is read; the docs and the schema stay open) answers 401 (JSON,
  ``WWW-Authenticate: Bearer``) with no key or an unknown or revoked one. :func:`authorize`, a
  dependency of the whole app (it also declares both schemes for OpenAPI), answers 403 when the key's
  role is too low and 429 with ``Retry-After`` when the key's token bucket is empty. The caller is left
  in ``request.state.caller`` for the audit log.
* **No active key at all**: the API answers loopback clients only (127.0.0.0/8, ::1, and Starlette's
  in-process ``TestClient``, whose client host is ``"testclient"``: it never crosses a network), with
  every role, as the caller ``"(no key: loopback)"``, without rate limit; anyone else gets 401 naming
  the command that creates a key. ``ApiConfig.insecure`` (``python -m api --insecure``) lifts the
  loopback restriction. As soon as one key exists every caller needs one, loopback included.
* A key's secret is hashed at once and never logged, stored or echoed; only its *name* goes further.
"""

from __future__ import annotations

import functools
import ipaddress
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated

import anyio.to_thread
from fastapi import HTTPException, Request, Security
from fastapi.responses import JSONResponse
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from starlette.datastructures import Headers
from starlette.routing import compile_path

from api.engine import Engine
from api.errors import ASGIApp, Receive, Scope, Send
from facecore.gallery.keys import authenticate, has_active_keys, role_allows

READ, ENROL, ADMIN = "read", "enrol", "admin"
NO_KEY_CALLER = "(no key: loopback)"
IN_PROCESS_CLIENTS = frozenset({"testclient"})  # Starlette's TestClient: an in-process call, no network
CREATE_KEY_HINT = "python -m facecore api-key create --role read --name <name>"

ROUTE_ROLES: dict[tuple[str, str], str] = {
    ("GET", "/health"): READ,
    ("GET", "/people"): READ,
    ("GET", "/people/{person_id}"): READ,
    ("GET", "/people/{person_id}/faces"): READ,
    ("GET", "/faces"): READ,
    ("GET", "/faces/{face_id}"): READ,
    ("GET", "/faces/{face_id}/chip"): READ,
    ("GET", "/faces/{face_id}/embedding"): READ,
    ("POST", "/verify"): READ,
    ("POST", "/verify/person/{person_id}"): READ,
    ("POST", "/identify"): READ,
    ("POST", "/embeddings"): READ,
    ("POST", "/verify/batch"): READ,
    ("GET", "/operating-points"): READ,
    ("POST", "/people"): ENROL,
    ("PATCH", "/people/{person_id}"): ENROL,
    ("POST", "/people/{person_id}/faces"): ENROL,
    ("POST", "/people/import"): ENROL,
    ("PATCH", "/faces/{face_id}"): ENROL,
    ("DELETE", "/people/{person_id}"): ADMIN,
    ("DELETE", "/faces/{face_id}"): ADMIN,
    # Operating points are settings: they change every later decision.
    ("POST", "/operating-points"): ADMIN,
    ("PUT", "/operating-points/active"): ADMIN,
}

bearer_scheme = HTTPBearer(auto_error=False, description="An API key: `Authorization: Bearer <key>`.")
header_scheme = APIKeyHeader(name="X-API-Key", auto_error=False, description="An API key: `X-API-Key: <key>`.")


@dataclass(frozen=True)
class Caller:
    """Who is calling: the key's name (never its secret), its role, whether its rate is limited."""

    key_name: str
    role: str
    limited: bool = True


def needed_role(method: str, path: str) -> str:
    """The role a route needs; unknown routes need ``admin``."""
    return ROUTE_ROLES.get(("GET" if method == "HEAD" else method, path), ADMIN)


def is_loopback(host: str | None) -> bool:
    if host in IN_PROCESS_CLIENTS:
        return True
    try:
        return host is not None and ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def unauthorized(sentence: str) -> HTTPException:
    return HTTPException(401, sentence, headers={"WWW-Authenticate": "Bearer"})


def _engine(request: Request) -> Engine:
    return request.app.state.engine


class Unauthenticated(Exception):
    """No usable key (401); the message is for the caller."""


def identify_caller(engine: Engine, secret: str | None, client_host: str | None) -> Caller:
    """Who is calling, from the key's secret and the client's address; ``Unauthenticated`` for a 401."""
    database = engine.gallery.database
    if not secret:
        if has_active_keys(database):
            raise Unauthenticated("An API key is needed: send it as 'Authorization: Bearer <key>' or 'X-API-Key'.")
        if not (engine.config.insecure or is_loopback(client_host)):
            raise Unauthenticated(
                "This API has no keys yet, so it answers on this machine only. "
                f"Create a key with '{CREATE_KEY_HINT}' and send it."
            )
        return Caller(NO_KEY_CALLER, ADMIN, limited=False)
    key = authenticate(database, secret)
    if key is None:
        raise Unauthenticated("This API key is not valid (unknown or revoked).")
    return Caller(key.name, key.role)


def secret_of(headers: Mapping[str, str]) -> str | None:
    """The key a request sends: ``X-API-Key``, else ``Authorization: Bearer``."""
    if headers.get("x-api-key"):
        return headers["x-api-key"].strip()
    scheme, _, credentials = headers.get("authorization", "").partition(" ")
    return credentials.strip() if scheme.lower() == "bearer" and credentials.strip() else None


class Authenticate:
    """Pure ASGI: 401 before anything reads the body (so a malformed upload without a key is a 401,
    not a 400), except for the interactive docs and the schema. The caller goes to ``state``."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        app = scope.get("app")
        open_paths = {app.docs_url, app.redoc_url, app.openapi_url, app.swagger_ui_oauth2_redirect_url} if app else set()
        if scope["type"] != "http" or scope.get("path") in open_paths:
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        client = scope.get("client")
        try:
            caller = await anyio.to_thread.run_sync(
                identify_caller, app.state.engine, secret_of(headers), client[0] if client else None
            )
        except Unauthenticated as exc:
            response = JSONResponse({"detail": str(exc)}, status_code=401, headers={"WWW-Authenticate": "Bearer"})
            await response(scope, receive, send)
            return
        scope.setdefault("state", {})["caller"] = caller
        refusal = _refusal(scope, caller)
        if refusal is not None:  # a key without the role is refused before its upload is read, too
            await JSONResponse({"detail": refusal}, status_code=403)(scope, receive, send)
            return
        await self.app(scope, receive, send)


@functools.lru_cache(maxsize=1)
def _route_patterns() -> tuple[tuple[str, re.Pattern[str], str], ...]:
    """``(method, compiled path, role)`` for every route in :data:`ROUTE_ROLES`."""
    return tuple((method, compile_path(path)[0], role) for (method, path), role in ROUTE_ROLES.items())


def _refusal(scope: Scope, caller: Caller) -> str | None:
    """The 403 sentence when the route ``scope`` asks for needs a higher role than ``caller``'s, else None.

    Only routes in :data:`ROUTE_ROLES` are judged here; any other path is left to the router (404, 405)
    and to :func:`authorize` (unknown routes need ``admin``).
    """
    method = "GET" if scope["method"] == "HEAD" else scope["method"]
    for route_method, pattern, needed in _route_patterns():
        if route_method == method and pattern.fullmatch(scope["path"]):
            return None if role_allows(caller.role, needed) else refused(caller, needed)
    return None


def refused(caller: Caller, needed: str) -> str:
    return f"The key '{caller.key_name}' has the role '{caller.role}'; this needs the role '{needed}' or higher."


def authorize(
    request: Request,
    bearer: Annotated[HTTPAuthorizationCredentials | None, Security(bearer_scheme)],
    header_key: Annotated[str | None, Security(header_scheme)],
) -> Caller:
    """The caller (authenticated by :class:`Authenticate`), or 403/429; declares the schemes for OpenAPI."""
    engine = _engine(request)
    caller = getattr(request.state, "caller", None)
    if caller is None:  # an app built without the middleware: authenticate here
        try:
            secret = header_key or (bearer.credentials if bearer is not None else None)
            caller = identify_caller(engine, secret, request.client.host if request.client else None)
        except Unauthenticated as exc:
            raise unauthorized(str(exc)) from None
    route = request.scope.get("route")
    needed = needed_role(request.method, getattr(route, "path", request.url.path))
    if not role_allows(caller.role, needed):
        raise HTTPException(403, refused(caller, needed))
    wait = engine.rate_limiter.take(caller.key_name) if caller.limited else 0.0
    if wait > 0:
        retry = max(1, math.ceil(wait))
        raise HTTPException(
            429,
            f"Too many requests for the key '{caller.key_name}'; try again in {retry} s.",
            headers={"Retry-After": str(retry)},
        )
    request.state.caller = caller
    return caller


def startup_notice(engine: Engine) -> str:
    """What the server says at startup about who may call it."""
    if has_active_keys(engine.gallery.database):
        return "API keys exist: every request needs one (Authorization: Bearer or X-API-Key)."
    if engine.config.insecure:
        return "No API key exists and --insecure is set: ANYONE who reaches this port can use the API."
    return f"No API key exists: answering on loopback only. Create one with '{CREATE_KEY_HINT}'."
