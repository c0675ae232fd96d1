"""CORS for browser front ends on other origins: ``ApiConfig.cors_origins`` (none by default).

Contract: with no origins configured no CORS header is ever sent (browsers then refuse cross-origin
calls); with some, Starlette's ``CORSMiddleware`` answers preflights for exactly those origins, with
the methods the API serves and the headers a key needs (``Authorization``, ``X-API-Key``); a page may read the answer headers in
``EXPOSED_HEADERS``. The
middleware is built at the first request from the engine's configuration (read at startup), so
importing the app reads no settings. It wraps everything, so 401, 413 and 429 answers carry the
headers too and a browser can show them.
"""

from __future__ import annotations

from starlette.middleware.cors import CORSMiddleware

from api.errors import HTTP_METHODS, ASGIApp, Receive, Scope, Send

ALLOWED_HEADERS = ("Authorization", "X-API-Key", "Content-Type")
#: Answer headers a page on another origin may read: the rate limit's wait, and what decided a batch.
EXPOSED_HEADERS = ("Retry-After", "X-Operating-Point", "X-Threshold", "X-Threshold-Source", "X-Total-Pairs")


class ConfiguredCors:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._inner: ASGIApp | None = None

    def _build(self, scope: Scope) -> ASGIApp:
        origins = scope["app"].state.engine.config.cors_origins
        if not origins:
            return self.app
        return CORSMiddleware(
            self.app,
            allow_origins=list(origins),
            allow_methods=list(HTTP_METHODS),
            allow_headers=list(ALLOWED_HEADERS),
            expose_headers=list(EXPOSED_HEADERS),
            max_age=600,
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if self._inner is None:
            self._inner = self._build(scope)
        await self._inner(scope, receive, send)
