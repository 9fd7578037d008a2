"""The OGC SensorThings API v1.1, read-only, at ``/sta/v1.1`` (for QGIS, Grafana and any STA
client): the service root, every entity set, single entities, navigation paths, properties
with ``$value``, ``$ref``, and the query options ``$filter``, ``$expand`` (nested, with its
own options and next links), ``$select``, ``$orderby``, ``$top``, ``$skip`` and ``$count``.

The data model and its queries are :mod:`arserver.store.sta`; this module resolves the path,
authorises, and writes the JSON: ``@iot.id``, ``@iot.selfLink``, ``<name>@iot.navigationLink``,
``@iot.count`` and ``@iot.nextLink`` (absolute URLs, ``$top`` and ``$skip`` written plainly
in them, every other parameter of the request kept, an ``access_token`` included). Readers see
every sensor's data; callers without a token see the public sensors' only.
"""

from __future__ import annotations

import json
from functools import lru_cache
from typing import Annotated, Any, Final
from urllib.parse import parse_qsl, quote, urlencode

import orjson
from fastapi import APIRouter, Depends, Request, Response
from sqlalchemy import Engine

from arserver.api.deps import get_engine, optional_token
from arserver.errors import NotFoundError, QueryError
from arserver.odata.options import Options, parse_options
from arserver.odata.paths import ResourcePath, parse_path
from arserver.security.policy import Action, authorize
from arserver.security.tokens import TokenRecord
from arserver.store.sta.model import BY_SET, TYPES, EntityType
from arserver.store.sta.reader import Collection, Constraint, Entity, Reader, reading

PREFIX: Final = "/sta/v1.1"
#: The conformance classes the service root lists (OGC 18-088: the read side).
CONFORMANCE: Final = (
    "http://www.opengis.net/spec/iot_sensing/1.1/req/datamodel",
    "http://www.opengis.net/spec/iot_sensing/1.1/req/resource-path/resource-path-to-entities",
    "http://www.opengis.net/spec/iot_sensing/1.1/req/request-data",
)
_SAFE: Final = "$'(),;:/*@"


class StaJSON(Response):
    """JSON written by orjson: a page of 1,000 entities with their links is 400 KB."""

    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


def sta_router() -> APIRouter:
    router = APIRouter(tags=["SensorThings API"])

    @router.get(
        PREFIX,
        summary="SensorThings API service root: the entity sets and the conformance classes",
    )
    def root(
        request: Request, token: Annotated[TokenRecord | None, Depends(optional_token)]
    ) -> dict[str, Any]:
        if token is not None:
            authorize(token, Action.READ)
        base = _root_url(request)
        return {
            "value": [{"name": t.plural, "url": f"{base}/{t.plural}"} for t in TYPES.values()],
            "serverSettings": {"conformance": list(CONFORMANCE)},
        }

    @router.get(
        PREFIX + "/{path:path}",
        summary="SensorThings API resources (Things, Datastreams(1)/Observations, ...)",
        description="Entity sets, entities by id (`Things(1)`), navigation paths, properties "
        "(`/name`, `/name/$value`) and `$ref`, with `$filter`, `$expand`, `$select`, "
        "`$orderby`, `$top` (at most 1,000 per page), `$skip` and `$count` (OGC 18-088).",
    )
    def resource(
        path: str,
        request: Request,
        engine: Annotated[Engine, Depends(get_engine)],
        token: Annotated[TokenRecord | None, Depends(optional_token)],
    ) -> Response:
        if token is not None:
            authorize(token, Action.READ)
        if path in ("", "/"):
            return StaJSON(root(request, token))
        resource_path = parse_path(path)
        options = parse_options(_single_params(request))
        with reading(engine) as connection:  # rows read whole: written after it is returned
            found = _resolve(Reader(connection, public_only=token is None), resource_path, options)
        writer = _Writer(_root_url(request), _token_param(request))
        if isinstance(found, _Property):
            if resource_path.ref:
                raise NotFoundError("$ref follows an entity or a collection, not a property")
            return _property_response(found, resource_path, writer)
        if resource_path.value:
            raise NotFoundError("$value follows a property, as in Things(1)/name/$value")
        if resource_path.ref:
            return StaJSON(writer.refs(found))
        if isinstance(found, Collection):
            return StaJSON(writer.collection(found, next_link=_next_link(request, found)))
        return StaJSON(writer.entity(found, options.select))

    return router


class _Property:
    """A property of one entity (``Things(1)/name``)."""

    def __init__(self, entity: Entity, name: str) -> None:
        self.entity, self.name = entity, name


def _single_params(request: Request) -> dict[str, str]:
    params: dict[str, str] = {}
    for name, value in request.query_params.multi_items():
        if name in params and name.startswith("$"):
            raise QueryError(f"the query option {name[:40]!r} is given twice")
        params[name] = value
    return params


def _resolve(
    reader: Reader, path: ResourcePath, options: Options
) -> Entity | Collection | _Property:
    """What ``path`` names, read with ``options`` (which apply to its last segment)."""
    first, rest = path.segments[0], path.segments[1:]
    entity_type = BY_SET.get(first.name)
    if entity_type is None:
        raise NotFoundError(f"no entity set {first.name!r}")
    last_options = options if not rest else Options()
    if first.key is None:
        if rest:
            raise NotFoundError(
                f"{first.name} is a collection: name one entity, as in {first.name}(1)"
            )
        return reader.collection(entity_type, options)
    current: Entity | Collection | None = reader.entity(entity_type, first.key, last_options)
    for index, segment in enumerate(rest):
        final = index == len(rest) - 1
        if not isinstance(current, Entity):
            raise NotFoundError(f"no resource {segment.name!r} here")
        navigation = current.type.navigations.get(segment.name)
        if navigation is None:
            if final and segment.key is None and segment.name in current.type.properties:
                return _Property(current, segment.name)
            raise NotFoundError(f"{current.type.plural} have no {segment.name!r}")
        step_options = options if final else Options()
        target = TYPES[navigation.target]
        if segment.key is not None:
            if not navigation.many:
                raise NotFoundError(f"{segment.name} is one entity: it takes no id")
            value = current.row[navigation.source_column]
            current = reader.entity(
                target, segment.key, step_options, Constraint(navigation.target_column, value)
            )
        else:
            current = reader.navigate(current, navigation, step_options)
    if current is None:
        raise NotFoundError("no such entity")
    return current


def _property_response(found: _Property, path: ResourcePath, writer: _Writer) -> Response:
    entity = found.entity
    if found.name == "id":
        value: Any = entity.id
    else:
        properties = entity.type.to_json(entity.row, writer.root)
        if found.name not in properties:
            raise NotFoundError(f"{entity.type.name} {entity.id} has no {found.name}")
        value = properties[found.name]
    if path.value:
        if isinstance(value, dict | list):
            return Response(json.dumps(value), media_type="application/json")
        text = (
            "null"
            if value is None
            else str(value).lower()
            if isinstance(value, bool)
            else str(value)
        )
        return Response(text, media_type="text/plain; charset=utf-8")
    key = "@iot.id" if found.name == "id" else found.name
    return StaJSON({key: value})


def _root_url(request: Request) -> str:
    return str(request.base_url).rstrip("/") + PREFIX


def _token_param(request: Request) -> str | None:
    return request.query_params.get("access_token")


def _encode(pairs: list[tuple[str, str]]) -> str:
    return urlencode(pairs, quote_via=quote, safe=_SAFE)


def _next_link(request: Request, page: Collection) -> str | None:
    """The request's own URL with ``$top`` and where the next page starts."""
    if not page.more:
        return None
    pairs = [
        (name, value)
        for name, value in parse_qsl(request.url.query, keep_blank_values=True)
        if name not in _PAGING
    ]
    base = str(request.url.replace(query=""))
    return f"{base}?{_encode(pairs + _paging(page))}"


#: The options a next link writes afresh.
_PAGING: Final = ("$top", "$skip", "$skiptoken")


def _paging(page: Collection) -> list[tuple[str, str]]:
    """``$top`` (plainly, for clients that change it) and ``$skiptoken`` or ``$skip``."""
    if page.next_token is not None:
        return [("$top", str(page.top)), ("$skiptoken", page.next_token)]
    return [("$top", str(page.top)), ("$skip", str(page.next_skip))]


class _Writer:
    """Entities and collections as SensorThings JSON, links under ``root``."""

    def __init__(self, root: str, token: str | None) -> None:
        self.root, self.token = root, token

    def self_link(self, entity: Entity) -> str:
        return f"{self.root}/{entity.type.plural}({entity.id})"

    def entity(self, entity: Entity, select: tuple[str, ...] | None) -> dict[str, Any]:
        kind = entity.type
        with_id, names, navigations = _shape(kind, select)
        out: dict[str, Any] = {}
        link = f"{self.root}/{kind.plural}({entity.id})"
        if with_id:
            out["@iot.id"] = entity.id
            out["@iot.selfLink"] = link
        properties = kind.to_json(entity.row, self.root)
        for name in names:
            if name in properties:
                out[name] = properties[name]
        for name in navigations:
            out[f"{name}@iot.navigationLink"] = f"{link}/{name}"
        for name, expanded in entity.expanded.items():
            if isinstance(expanded, Collection):
                if expanded.count is not None:
                    out[f"{name}@iot.count"] = expanded.count
                out[name] = [self.entity(item, expanded.options.select) for item in expanded.items]
                nested = self._expanded_next_link(expanded)
                if nested is not None:
                    out[f"{name}@iot.nextLink"] = nested
            elif isinstance(expanded, Entity):
                out[name] = self.entity(expanded, expanded.select)
        return out

    def collection(self, page: Collection, next_link: str | None) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if page.count is not None:
            out["@iot.count"] = page.count
        if next_link is not None:
            out["@iot.nextLink"] = next_link
        out["value"] = [self.entity(item, page.options.select) for item in page.items]
        return out

    def refs(self, found: Entity | Collection) -> dict[str, Any]:
        if isinstance(found, Entity):
            return {"@iot.selfLink": self.self_link(found)}
        out: dict[str, Any] = {}
        if found.count is not None:
            out["@iot.count"] = found.count
        out["value"] = [{"@iot.selfLink": self.self_link(item)} for item in found.items]
        return out

    def _expanded_next_link(self, page: Collection) -> str | None:
        """The next page of an expanded collection, as a navigation path with the
        expansion's own options."""
        if not page.more or page.owner is None:
            return None
        parent, navigation = page.owner
        pairs = [(n, v) for n, v in page.options.raw if n not in _PAGING] + _paging(page)
        if self.token is not None:
            pairs.append(("access_token", self.token))
        return f"{self.self_link(parent)}/{navigation.name}?{_encode(pairs)}"


@lru_cache(maxsize=512)
def _shape(
    kind: EntityType, select: tuple[str, ...] | None
) -> tuple[bool, tuple[str, ...], tuple[str, ...]]:
    """What an entity of ``kind`` shows under ``$select``: whether its id and self link, which
    properties, which navigation links (worked out once per type and selection)."""
    if select is not None:
        for name in select:
            if name not in kind.properties and name not in kind.navigations:
                raise QueryError(f"$select: {kind.plural} have no property {name!r}")
    chosen = set(select) if select is not None else None
    names = tuple(n for n in kind.properties if n != "id" and (chosen is None or n in chosen))
    navigations = tuple(n for n in kind.navigations if chosen is None or n in chosen)
    return chosen is None or "id" in chosen, names, navigations
