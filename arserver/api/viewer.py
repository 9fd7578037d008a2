"""``/viewer``: the web and WebXR viewer, static files built from ``viewer/`` by the set-up.

The pages carry no data and no token: they read the token from the address fragment (which
browsers never send) and call the API with it, so the routes are open like ``/docs``. Only
files of the built folder are served (no dotfiles, nothing outside it), each with the page
Content-Security-Policy of :func:`arserver.api.headers.page_policy`: everything from this
origin only. The bundles' names do not change between builds, so every answer is revalidated
(ETag); without a build, ``/viewer`` answers 503 with how to build it.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, HTMLResponse, Response

from arserver.api.headers import page_policy
from arserver.errors import NotFoundError

#: The pages and the file each one serves.
PAGES = {"": "index.html", "assets": "assets.html"}
#: What may be served from the build, by suffix, and as which media type.
MEDIA_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".json": "application/json",
}
POLICY = page_policy(inline_styles=True, blob_images=True)
HEADERS = {"Content-Security-Policy": POLICY, "Cache-Control": "no-cache"}

NOT_BUILT = """<!doctype html><html lang="en"><meta charset="utf-8">
<title>arserver viewer: not built</title>
<body style="font-family: system-ui, sans-serif; max-width: 40em; margin: 3em auto">
<h1>The viewer is not built on this server</h1>
<p>Build it with <code>make viewer</code> (it needs Node.js 20 or newer and npm, for example
<code>apt-get install nodejs npm</code>), then reload this page. The API, the tiles and the live
overlay work without it: see <a href="/docs">the API docs</a>.</p></body></html>
"""


def _resolve(root: Path, name: str) -> Path:
    """The file ``name`` inside ``root``; :class:`NotFoundError` for anything else."""
    parts = name.split("/")
    if any(not part or part.startswith(".") for part in parts) or "\\" in name:
        raise NotFoundError("no such file")
    path = root.joinpath(*parts)
    if path.suffix not in MEDIA_TYPES or not path.is_file():
        raise NotFoundError("no such file")
    if not path.resolve().is_relative_to(root.resolve()):  # a symbolic link out of the build
        raise NotFoundError("no such file")
    return path


def viewer_router(root: Path) -> APIRouter:
    """The viewer's pages and files from ``root`` (the build folder); not in the OpenAPI
    schema, open to everyone."""
    router = APIRouter(include_in_schema=False)

    def serve(name: str, request: Request) -> Response:
        path = _resolve(root, name)
        stat = path.stat()
        # weak: the same tag stands for the file gzipped or not (GZipMiddleware)
        etag = f'W/"{stat.st_mtime_ns:x}-{stat.st_size:x}"'  # a new build is a new tag
        headers = {**HEADERS, "ETag": etag}
        if etag in (t.strip() for t in request.headers.get("if-none-match", "").split(",")):
            return Response(status_code=304, headers=headers)
        return FileResponse(
            path, media_type=MEDIA_TYPES[path.suffix], headers=headers, stat_result=stat
        )

    @router.get("/viewer")
    def viewer_page(request: Request) -> Response:
        if not (root / PAGES[""]).is_file():
            return HTMLResponse(NOT_BUILT, status_code=503, headers=HEADERS)
        return serve(PAGES[""], request)

    @router.get("/viewer/{name:path}")
    def viewer_file(name: str, request: Request) -> Response:
        if name == "":
            return viewer_page(request)
        return serve(PAGES.get(name, name), request)

    return router
