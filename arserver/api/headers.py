"""Security headers on every response, and no caching of API answers that may be personal.

- ``X-Content-Type-Options: nosniff``, ``Referrer-Policy: no-referrer`` and
  ``X-Frame-Options: DENY`` everywhere;
- ``Content-Security-Policy`` :data:`STRICT_POLICY` (nothing may load, nothing may frame it) on
  every answer that sets none of its own; the HTML pages we serve (the API docs) set
  :func:`page_policy`, which lets them load scripts, styles and images from this origin only;
- ``Cache-Control: private, no-store`` on ``/api/v1`` answers that set no caching of their own
  (tiles set theirs: immutable content, revalidated entry points).
"""

from __future__ import annotations

from collections.abc import Iterable

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

_ALWAYS = {
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "x-frame-options": "DENY",
}
STRICT_POLICY = "default-src 'none'; frame-ancestors 'none'"


def page_policy(
    *,
    script_hashes: Iterable[str] = (),
    inline_styles: bool = False,
    workers: bool = False,
    blob_images: bool = False,
) -> str:
    """The Content-Security-Policy of an HTML page of ours: scripts, styles, fonts and images
    from this origin only (images also as ``data:`` URLs), fetches to this origin only; inline
    scripts only those whose base64 SHA-256 is in ``script_hashes``; ``inline_styles``: also
    styles written at run time (ReDoc's styled-components need them); ``workers``: workers
    from ``blob:`` URLs (ReDoc's search); ``blob_images``: images from ``blob:`` URLs, and
    fetches of them (textures that a glTF carries inside itself, which its loader reads that
    way). No plugins, frames, form posts or ``<base>``.
    ``connect-src 'self'`` also admits WebSockets to this origin (CSP Level 3)."""
    scripts = " ".join(["'self'", *(f"'sha256-{digest}'" for digest in script_hashes)])
    directives = [
        "default-src 'none'",
        f"script-src {scripts}",
        "style-src 'self' 'unsafe-inline'" if inline_styles else "style-src 'self'",
        "img-src 'self' data: blob:" if blob_images else "img-src 'self' data:",
        "font-src 'self'",
        "connect-src 'self' blob:" if blob_images else "connect-src 'self'",
        *(["worker-src blob:"] if workers else []),
        "base-uri 'none'",
        "form-action 'none'",
        "frame-ancestors 'none'",
    ]
    return "; ".join(directives)


class SecurityHeaders:
    """ASGI middleware that adds the headers above to HTTP responses."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        api = str(scope["path"]).startswith("/api/")

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in _ALWAYS.items():
                    headers.setdefault(name, value)
                headers.setdefault("content-security-policy", STRICT_POLICY)
                if api:
                    headers.setdefault("cache-control", "private, no-store")
            await send(message)

        await self.app(scope, receive, send_with_headers)
