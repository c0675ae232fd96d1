"""The audit dependency: a route records its decision or change with one call.

Contract: ``audit: AuditDep`` in a route's parameters gives an :class:`Auditor` bound to the request;
``audit.record(result, ids=..., threshold=...)`` writes one :class:`facecore.gallery.audit.AuditEntry`
with the caller's key *name* (from :func:`api.access.authorize`), the route (method and path
template), the engine's model version, and the configured retention. Routes record after the
decision or change succeeded, so a refused request leaves no entry. No images, no keys.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Annotated, Any

from fastapi import Depends, Request

from api.access import NO_KEY_CALLER
from facecore.gallery.audit import AuditEntry, record


class Auditor:
    def __init__(self, request: Request) -> None:
        self._request = request

    def record(
        self, result: Mapping[str, Any], *, ids: Iterable[int] = (), threshold: float | None = None
    ) -> None:
        request = self._request
        engine = request.app.state.engine
        caller = getattr(request.state, "caller", None)
        route = request.scope.get("route")
        entry = AuditEntry(
            key_name=caller.key_name if caller is not None else NO_KEY_CALLER,
            route=f"{request.method} {getattr(route, 'path', request.url.path)}",
            result=result,
            ids=tuple(int(i) for i in ids),
            model_version=engine.model_version,
            threshold=threshold,
        )
        record(engine.gallery.database, entry, engine.config.audit_retention_days)


AuditDep = Annotated[Auditor, Depends(Auditor)]
