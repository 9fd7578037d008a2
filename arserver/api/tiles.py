"""``/tiles/{asset_id}/...``: published tilesets for 3D Tiles clients and CDNs.

The entry point ``tileset.json`` is revalidated (``no-cache`` + ETag: it changes when an asset is
converted again); everything under a revision folder is ``immutable``. Strong ETags are content
hashes; ``If-None-Match`` gives ``304``. Public assets need no token; others need a reading role,
by header or ``?access_token=``.

A caller who may not see an asset (no token for a private one, a narrowed token outside its
scope) gets the very answer an asset that does not exist gets: ``404``, same body, same headers.
A token whose role may not read assets at all is ``403`` before anything is looked up.

Files come from the tile store (:mod:`arserver.store.tilestore`: local disk or object storage,
the same answers from both); with ``tiles_redirect_s`` set on object storage, content is
answered by a ``307`` to a presigned URL of the object instead (entry points and documents that
carry a token are still served here).

A tileset JSON document (the entry point, a child tileset, a subtree, a glTF JSON) asked for with
``?access_token=`` comes back with that token written into its relative references
(:mod:`tiles.references`), for clients that do not pass the query string on; such answers are
``private, no-store`` with an ETag of their own. Without ``access_token`` the files are served
as stored.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Iterator
from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import FileResponse, RedirectResponse, StreamingResponse
from sqlalchemy import Engine

from arserver.api.deps import get_engine, optional_token
from arserver.api.guard import presented_secret
from arserver.datums import EPOCH_STEP, ClientDatum, client_datum
from arserver.errors import NotFoundError
from arserver.security.policy import Action, admits, authorize
from arserver.security.tokens import TokenRecord
from arserver.services.checks import storable_text
from arserver.store.assets import AssetRow, ready_assets_in_layer, tile_access
from arserver.store.tilestore import StoredFile, TileStore
from tiles.references import DOCUMENT_SUFFIXES, TemplateCache, with_parameter
from tiles.tileset import in_frame

REVALIDATE = "no-cache"
IMMUTABLE = "public, max-age=31536000, immutable"
#: Answers that carry a token in their body: never stored by any cache.
TOKENED = "private, no-store"
#: The query parameter a token comes in, and goes on in, for clients that cannot set headers.
TOKEN_PARAMETER = "access_token"

Datum = Annotated[
    str | None,
    Query(
        description="The datum of the positions: ETRS89 (as stored, the default), ITRF2020, "
        "ITRF2014 or WGS84 (G2296, as ITRF2020); only the root transform changes",
        examples=["ITRF2020"],
        max_length=20,
    ),
]
Epoch = Annotated[
    float | None,
    Query(
        description="The epoch of that datum as a decimal year (default: now), rounded to "
        f"{EPOCH_STEP:g} year",
        ge=1989,
        le=2100,
        examples=[2026.9],
    ),
]


def tiles_router(store: TileStore, redirect_s: float | None = None) -> APIRouter:
    """The tile routes over ``store``; ``redirect_s``: answer content with redirects to
    presigned URLs valid this long, where the store has them."""
    router = APIRouter(tags=["tiles"])
    errors = GeometricErrors(store)

    @router.get(
        "/tiles/scene/{layer}/tileset.json",
        summary="One tileset for a whole layer: every ready asset the caller may see",
        response_class=Response,
        responses={
            200: {"content": {"application/json": {}}},
            304: {"description": "Not modified"},
        },
    )
    def scene(
        layer: str,
        request: Request,
        engine: Annotated[Engine, Depends(get_engine)],
        token: Annotated[TokenRecord | None, Depends(optional_token)],
        datum: Datum = None,
        epoch: Epoch = None,
    ) -> Response:
        if token is not None:
            authorize(token, Action.READ_ASSETS)
        if not storable_text(layer):  # no layer can have this name
            raise NotFoundError("no such layer")
        rows = [
            row
            for row in ready_assets_in_layer(engine, layer, public_only=token is None)
            if row["public"] or admits(token, row["id"], row["layer"])
        ]
        secret = _query_token(request)
        wanted = client_datum(datum, epoch, step=EPOCH_STEP)
        document = scene_tileset(rows, errors, secret, wanted)
        body = json.dumps(document, separators=(",", ":")).encode("utf-8")
        etag = f'"{hashlib.sha256(body).hexdigest()[:32]}"'
        caching = TOKENED if secret is not None else "private, no-cache"
        headers = {"ETag": etag, "Cache-Control": caching, "Vary": "Authorization"}
        if etag in _tags(request.headers.get("if-none-match", "")):
            return Response(status_code=304, headers=headers)
        return Response(body, media_type="application/json", headers=headers)

    responses: dict[int | str, dict[str, object]] = {
        200: {"content": {"application/json": {}, "model/gltf-binary": {}}},
        304: {"description": "Not modified (If-None-Match matched)"},
        401: {"description": "The token is invalid or revoked"},
        403: {"description": "The token's role may not read tiles"},
        404: {"description": "No such asset or file, or one the caller may not see"},
    }
    documents = TemplateCache(TOKEN_PARAMETER)

    @router.head(
        "/tiles/{asset_id}/{path:path}",
        summary="Headers of a tileset file",
        response_class=Response,
        responses=responses,
        operation_id="head_tile_file",
    )
    @router.get(
        "/tiles/{asset_id}/{path:path}",
        summary="A file of an asset's tileset (tileset.json, GLB content, textures)",
        response_class=Response,
        responses=responses,
        operation_id="get_tile_file",
    )
    def tile_file(
        asset_id: str,
        path: str,
        request: Request,
        engine: Annotated[Engine, Depends(get_engine)],
        token: Annotated[TokenRecord | None, Depends(optional_token)],
        datum: Datum = None,
        epoch: Epoch = None,
    ) -> Response:
        store.check(asset_id)  # 404 for an id no asset can have, before the database
        if token is not None:  # a role that may not read assets: 403, whatever the id
            authorize(token, Action.READ_ASSETS)
        access = tile_access(engine, asset_id)
        if access is None or not _sees(token, asset_id, *access):
            raise NotFoundError(f"no asset {asset_id!r}")  # absent, or not this caller's to see
        public = access[0]
        file = store.file(asset_id, path)
        etag = file.etag
        entry_point = "/" not in path.strip("/")
        headers = {"ETag": etag, "Cache-Control": REVALIDATE if entry_point else IMMUTABLE}
        if not public:
            headers["Cache-Control"] = headers["Cache-Control"].replace("public", "private")
            headers["Vary"] = "Authorization"
        secret = _query_token(request)
        # Only the entry point's root moves: child tilesets and content follow it (and keep
        # the datum parameters clients pass on to them without moving twice).
        wanted = client_datum(datum, epoch, step=EPOCH_STEP) if entry_point else None
        if wanted is not None:
            return _in_datum(store, file, headers, secret, wanted, documents, request)
        if secret is not None and _is_document(file):
            document = documents.of_content((file.asset_id, file.relative, etag),
                                            lambda: store.read(file))  # fmt: skip
            if document is not None and document.references:
                return _tokened(document.render(secret), file.media_type, etag, secret, request)
        if etag in _tags(request.headers.get("if-none-match", "")):
            return Response(status_code=304, headers=headers)
        if redirect_s is not None and not entry_point:
            url = store.presign(file, timedelta(seconds=redirect_s))
            if url is not None:  # cached no longer than the URL works
                age = int(redirect_s // 2)
                moved = {**headers, "Cache-Control": f"{'public' if public else 'private'}, "
                         f"max-age={age}"}  # fmt: skip
                return RedirectResponse(url, 307, headers=moved)
        return _file_response(store, file, headers, request)

    return router


def scene_tileset(
    rows: list[AssetRow],
    geometric_errors: GeometricErrors,
    secret: str | None = None,
    datum: ClientDatum | None = None,
) -> dict[str, Any]:
    """A tileset whose children are the assets' tilesets, by reference (external tilesets), each
    bounded by its WGS 84 region and height range and named in its ``extras`` (``asset``,
    ``name``, ``lifecycle``); with ``secret``, each reference carries it as ``?access_token=``;
    with ``datum``, each asks for its tileset in that datum (``?datum=&epoch=``), so that every
    asset's root moves once."""
    children: list[dict[str, Any]] = []
    errors: list[float] = []
    for row in rows:
        summary = row["summary"]
        if summary is None:
            continue
        bbox, heights = summary["wgs84_bbox"], summary["height_range"]
        error = geometric_errors.of(row)
        if error is None:
            continue
        west, south, east, north = (math.radians(v) for v in bbox)
        errors.append(error)
        uri = f"/tiles/{row['id']}/tileset.json"
        if datum is not None:
            uri = with_parameter(
                with_parameter(uri, "datum", datum.name), "epoch", f"{datum.epoch:g}"
            )
        if secret is not None:
            uri = with_parameter(uri, TOKEN_PARAMETER, secret)
        children.append(
            {
                "boundingVolume": {"region": [west, south, east, north, heights[0], heights[1]]},
                "geometricError": error,
                "content": {"uri": uri},
                # what a viewer needs to show or hide one asset (3D Tiles allows extras anywhere)
                "extras": {"asset": row["id"], "name": row["name"], "lifecycle": row["lifecycle"]},
            }
        )
    if children:
        regions = [c["boundingVolume"]["region"] for c in children]
        region = [
            min(r[0] for r in regions), min(r[1] for r in regions),
            max(r[2] for r in regions), max(r[3] for r in regions),
            min(r[4] for r in regions), max(r[5] for r in regions),
        ]  # fmt: skip
        error = max(errors) * 2.0
    else:  # an empty layer: a valid tileset with nothing in it
        region, error = [0.0, 0.0, 0.0, 0.0, 0.0, 0.0], 0.0
    document: dict[str, Any] = {
        "asset": {"version": "1.1", "generator": "arserver"},
        "geometricError": error,
        "root": {
            "boundingVolume": {"region": region},
            "geometricError": error,
            "refine": "ADD",
            "children": children,
        },
    }
    if datum is not None:
        document["extras"] = _datum_extras(datum)
    return document


class GeometricErrors:
    """The geometric error of each asset's entry point, remembered per asset and the time its
    row last changed (publishing a revision changes it), so that a scene does not read every
    entry point from the store on every request."""

    def __init__(self, store: TileStore) -> None:
        self.store = store
        self._known: dict[tuple[str, str], float] = {}

    def of(self, row: AssetRow) -> float | None:
        key = (row["id"], row["updated_at"].isoformat())
        known = self._known.get(key)
        if known is None:
            try:
                entry = self.store.entry_point(row["id"])
                known = float(json.loads(entry or b"")["geometricError"])
            except (ValueError, KeyError, TypeError):
                return None  # not remembered: it may be published a moment later
            if len(self._known) > 100_000:
                self._known.clear()
            self._known[key] = known
        return known


def _datum_extras(datum: ClientDatum) -> dict[str, Any]:
    return {"datum": datum.name, "epoch": datum.epoch, "epoch_rounded_to_years": EPOCH_STEP}


def _in_datum(
    store: TileStore,
    file: StoredFile,
    headers: dict[str, str],
    secret: str | None,
    datum: ClientDatum,
    documents: TemplateCache,
    request: Request,
) -> Response:
    """An entry tileset with its root transform composed with ``datum``'s Helmert matrix
    (and, with ``secret``, the token in its references); ETag per file, datum and epoch."""
    etag = file.etag
    body = store.read(file)
    if secret is not None:
        template = documents.of_content((file.asset_id, file.relative, etag), lambda: body)
        if template is not None and template.references:
            body = template.render(secret)
    try:
        moved = in_frame(json.loads(body), datum.matrix)
    except ValueError:
        raise NotFoundError("this tileset cannot be given in another datum") from None
    moved["extras"] = {**moved.get("extras", {}), **_datum_extras(datum)}
    tag = hashlib.sha256(f"{etag}\n{datum.name}\n{datum.epoch}\n{secret}".encode()).hexdigest()
    headers = {**headers, "ETag": f'"{tag[:32]}"'}
    if secret is not None:
        headers["Cache-Control"] = TOKENED
    if headers["ETag"] in _tags(request.headers.get("if-none-match", "")):
        return Response(status_code=304, headers=headers)
    out = json.dumps(moved, separators=(",", ":")).encode("utf-8")
    return Response(out, media_type="application/json", headers=headers)


def _tokened(body: bytes, media_type: str, etag: str, secret: str, request: Request) -> Response:
    """The answer for a document with ``secret`` in its references: never stored by caches,
    with an ETag of its own (derived from the file's and the token, so it changes with both)."""
    tag = hashlib.sha256(f"{etag}\n{secret}".encode()).hexdigest()[:32]
    headers = {"ETag": f'"{tag}"', "Cache-Control": TOKENED}
    if headers["ETag"] in _tags(request.headers.get("if-none-match", "")):
        return Response(status_code=304, headers=headers)
    return Response(body, media_type=media_type, headers=headers)


def _sees(token: TokenRecord | None, asset_id: str, public: bool, layer: str) -> bool:
    """Whether the caller may know of this asset: it is public, or the (reading) token's scope
    takes it in."""
    return public or (token is not None and admits(token, asset_id, layer))


def _query_token(request: Request) -> str | None:
    """The token when it came as ``?access_token=`` and is the one the request was
    authenticated with (a token in the ``Authorization`` header goes first, and then the query
    parameter is not written anywhere)."""
    secret = request.query_params.get(TOKEN_PARAMETER)
    return secret if secret and presented_secret(request) == secret else None


def _tags(header: str) -> set[str]:
    return {t.strip().removeprefix("W/") for t in header.split(",") if t.strip()}


def _is_document(file: StoredFile) -> bool:
    name = file.relative.rsplit("/", 1)[-1].lower()
    return any(name.endswith(suffix) for suffix in DOCUMENT_SUFFIXES)


def _file_response(
    store: TileStore, file: StoredFile, headers: dict[str, str], request: Request
) -> Response:
    """The file's bytes: a local file as Starlette serves files (Range, If-Range), an object
    streamed from storage with a single byte range (``206``) or all of it; ``416`` for a
    range outside it. Several ranges are answered with the whole file (RFC 9110 allows it)."""
    if file.path is not None:
        return FileResponse(file.path, media_type=file.media_type, headers=headers)
    headers = {**headers, "Accept-Ranges": "bytes"}
    wanted = _single_range(request.headers.get("range"), file.size)
    if_range = request.headers.get("if-range")
    if wanted is not None and if_range is not None and if_range.strip() != file.etag:
        wanted = None  # the client's copy is another version: send it whole
    if isinstance(wanted, str):  # unsatisfiable
        return Response(
            status_code=416, headers={**headers, "Content-Range": f"bytes */{file.size}"}
        )
    start, end = (0, file.size) if wanted is None else wanted
    sized = {**headers, "Content-Length": str(end - start)}
    if wanted is not None:
        sized["Content-Range"] = f"bytes {start}-{end - 1}/{file.size}"
    status = 200 if wanted is None else 206
    if request.method == "HEAD":
        return Response(status_code=status, media_type=file.media_type, headers=sized)
    body: Iterator[bytes] = store.chunks(file, start, end)
    if wanted is None:
        return StreamingResponse(body, media_type=file.media_type, headers=sized)
    return StreamingResponse(body, status_code=206, media_type=file.media_type, headers=sized)


def _single_range(header: str | None, size: int) -> tuple[int, int] | str | None:
    """One ``bytes=`` range of a file of ``size`` bytes as (start, end exclusive),
    ``"unsatisfiable"``, or None (no header, several ranges, or one that is not understood:
    the whole file)."""
    if header is None or not header.startswith("bytes=") or "," in header:
        return None
    first, _, last = header[6:].strip().partition("-")
    try:
        if first == "":  # the last N bytes
            count = int(last)
            if count <= 0:
                return "unsatisfiable"
            return (max(size - count, 0), size)
        start = int(first)
        end = int(last) + 1 if last else size
    except ValueError:
        return None
    if start >= size:
        return "unsatisfiable"
    if start < 0 or end <= start:
        return None
    return (start, min(end, size))
