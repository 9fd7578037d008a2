"""Security headers on every response, and no caching of API answers that may be personal.

- ``X-Content-Type-Options: nosniff``, ``Referrer-Policy: no-referrer`` and
  ``X-Frame-Options: DENY`` everywhere;
- ``Content-Security-Policy: default-src 'none'; frame-ancestors 'none'`` on everything but the
  interactive API docs (``/docs``, ``/redoc``), which load their scripts and styles;
- ``Cache-Control: private, no-store`` on ``/api/v1`` answers that set no caching of their own
  (tiles set theirs: immutable content, revalidated entry points).
"""

from __future__ import annotations

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

DOC_PATHS = ("/docs", "/redoc")
_ALWAYS = {
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "x-frame-options": "DENY",
}
_CSP = "default-src 'none'; frame-ancestors 'none'"


class SecurityHeaders:
    """ASGI middleware that adds the headers above to HTTP responses."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        documentation = path.startswith(DOC_PATHS)
        api = path.startswith("/api/")

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in _ALWAYS.items():
                    headers.setdefault(name, value)
                if not documentation:
                    headers.setdefault("content-security-policy", _CSP)
                if api:
                    headers.setdefault("cache-control", "private, no-store")
            await send(message)

        await self.app(scope, receive, send_with_headers)
