"""Who may call what: API keys with roles, the loopback-only mode, and per-key rate limits.

Contract:

* :data:`ROUTE_ROLES` is the one table of the role each route needs (``read`` < ``enrol`` < ``admin``,
  :func:`facecore.gallery.keys.role_allows`). A route missing from it needs ``admin`` (fail closed);
  ``tests/test_api_access.py`` checks that every route of the app is in it.
* :func:`authorize` is a dependency of the whole app. A key comes in ``Authorization: Bearer <key>``
  or ``X-API-Key: <key>``. Answers: 401 (JSON, ``WWW-Authenticate: Bearer``) with no key or an unknown
  or revoked one, 403 when the key's role is too low, 429 with ``Retry-After`` when the key's token
  bucket is empty. The caller is left in ``request.state.caller`` for the audit log.
* **No active key at all**: the API answers loopback clients only (127.0.0.0/8, ::1, and Starlette's
  in-process ``TestClient``, whose client host is ``"testclient"``: it never crosses a network), with
  every role, as the caller ``"(no key: loopback)"``, without rate limit; anyone else gets 401 naming
  the command that creates a key. ``ApiConfig.insecure`` (``python -m api --insecure``) lifts the
  loopback restriction. As soon as one key exists every caller needs one, loopback included.
* A key's secret is hashed at once and never logged, stored or echoed; only its *name* goes further.
"""

from __future__ import annotations

import ipaddress
import math
from dataclasses import dataclass
from typing import Annotated

from fastapi import HTTPException, Request, Security
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from api.engine import Engine
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
    ("POST", "/people"): ENROL,
    ("PATCH", "/people/{person_id}"): ENROL,
    ("POST", "/people/{person_id}/faces"): ENROL,
    ("POST", "/people/import"): ENROL,
    ("PATCH", "/faces/{face_id}"): ENROL,
    ("DELETE", "/people/{person_id}"): ADMIN,
    ("DELETE", "/faces/{face_id}"): ADMIN,
}

bearer_scheme = HTTPBearer(auto_error=False, description="An API key: `Authorization: Bearer <key>`.")
header_scheme = APIKeyHeader(name="X-API-Key", auto_error=False, description="An API key: `X-API-Key: <key>`.")


@dataclass(frozen=True)
class Caller:
    """Who is calling: the key's name (never its secret) and role."""

    key_name: str
    role: str


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


def authorize(
    request: Request,
    bearer: Annotated[HTTPAuthorizationCredentials | None, Security(bearer_scheme)],
    header_key: Annotated[str | None, Security(header_scheme)],
) -> Caller:
    """The caller of this request, or 401/403/429 (see the module docstring)."""
    engine = _engine(request)
    route = request.scope.get("route")
    needed = needed_role(request.method, getattr(route, "path", request.url.path))
    secret = header_key or (bearer.credentials if bearer is not None else None)
    database = engine.gallery.database
    if not secret:
        if has_active_keys(database):
            raise unauthorized("An API key is needed: send it as 'Authorization: Bearer <key>' or 'X-API-Key'.")
        if not (engine.config.insecure or is_loopback(request.client.host if request.client else None)):
            raise unauthorized(
                "This API has no keys yet, so it answers on this machine only. "
                f"Create a key with '{CREATE_KEY_HINT}' and send it."
            )
        caller = Caller(NO_KEY_CALLER, ADMIN)
    else:
        key = authenticate(database, secret)
        if key is None:
            raise unauthorized("This API key is not valid (unknown or revoked).")
        if not role_allows(key.role, needed):
            raise HTTPException(
                403, f"The key '{key.name}' has the role '{key.role}'; this needs the role '{needed}' or higher."
            )
        wait = engine.rate_limiter.take(key.name)
        if wait > 0:
            retry = max(1, math.ceil(wait))
            raise HTTPException(
                429,
                f"Too many requests for the key '{key.name}'; try again in {retry} s.",
                headers={"Retry-After": str(retry)},
            )
        caller = Caller(key.name, key.role)
    request.state.caller = caller
    return caller


def startup_notice(engine: Engine) -> str:
    """What the server says at startup about who may call it."""
    if has_active_keys(engine.gallery.database):
        return "API keys exist: every request needs one (Authorization: Bearer or X-API-Key)."
    if engine.config.insecure:
        return "No API key exists and --insecure is set: ANYONE who reaches this port can use the API."
    return f"No API key exists: answering on loopback only. Create one with '{CREATE_KEY_HINT}'."
