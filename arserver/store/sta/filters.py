"""``$filter`` and ``$orderby`` of the SensorThings API as SQL on SQLite and PostgreSQL.

A filter (an ``odata-query`` AST, checked for size by :mod:`arserver.odata.options`) becomes a
boolean SQL expression over an entity type's selectable. Property paths may go through to-one
navigation properties (``Datastream/Thing/name`` on Observations: a correlated subquery per
step); comparisons coerce a literal to the other side's type (``result gt '3'`` compares
numbers, ``phenomenonTime ge '2026-01-01T00:00:00Z'`` instants); the string, date, math and
geospatial functions of SensorThings v1.1 map to each backend's SQL (the spatial ones through
:mod:`arserver.store.spatial`). Anything else is an :class:`~arserver.errors.QueryError` that
names the construct, never a server error. Literal values are always bound parameters, so text
in a filter never becomes SQL.
"""

from __future__ import annotations

import base64
import json
import math
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final, Literal

import shapely
from odata_query import ast
from shapely import wkt as shapely_wkt
from sqlalchemy import (
    BigInteger,
    Boolean,
    ColumnElement,
    Float,
    FromClause,
    Integer,
    Numeric,
    String,
    and_,
    case,
    cast,
    extract,
    func,
    literal,
    not_,
    null,
    or_,
    select,
)

from arserver.errors import QueryError
from arserver.odata.options import OrderKey, bool_chain
from arserver.store import spatial
from arserver.store.sta.model import TYPES, EntityType
from arserver.store.types import UTCDateTime

Kind = Literal["number", "text", "time", "bool", "null", "geometry", "date"]

#: The longest WKT literal (characters) a filter may hold.
MAX_WKT_CHARS: Final = 4_000


@dataclass(frozen=True)
class Scope:
    """Where a filter is evaluated: an entity type, the FROM clause of its selectable, the
    backend's dialect name and whether only public sensors' entities are visible."""

    entity: EntityType
    source: FromClause
    dialect: str
    public_only: bool

    def to(self, name: str) -> Scope:
        """The scope of entity type ``name`` (a fresh alias of its selectable)."""
        target = TYPES[name]
        arms = target.arms(self.public_only, self.dialect)
        if len(arms) != 1:  # only single entities are navigated to, and none of them is a union
            raise QueryError(f"a path cannot go through {target.plural}")
        return Scope(target, arms[0].subquery(), self.dialect, self.public_only)


@dataclass(frozen=True)
class Term:
    """A translated sub-expression: its SQL, what kind of value it is, and, for geometries,
    the operand for the spatial functions. ``value`` holds a literal's Python value (None
    for column expressions), so that it can be coerced to the other side's kind."""

    sql: Any
    kind: Kind
    shape: spatial.Shape | None = None
    value: Any = None
    is_literal: bool = False


def where(tree: ast._Node, scope: Scope) -> ColumnElement[bool]:
    """The filter ``tree`` as a boolean SQL expression in ``scope``."""
    term = _term(tree, scope)
    if term.kind != "bool":
        raise QueryError("$filter must be a condition (a comparison, a function that is true "
                         "or false, or conditions joined by and/or)")  # fmt: skip
    return term.sql  # type: ignore[no-any-return]


def order_by(keys: tuple[OrderKey, ...], scope: Scope) -> list[ColumnElement[Any]]:
    """``$orderby`` as ORDER BY clauses, then the id (so that pages never overlap)."""
    clauses: list[ColumnElement[Any]] = []
    for key in keys:
        term = _path(key.path, scope)
        if term.kind == "geometry":
            raise QueryError(f"$orderby cannot sort by the geometry {'/'.join(key.path)!r}")
        clauses.append(term.sql.desc() if key.descending else term.sql.asc())
    clauses.append(scope.source.c.id.asc())
    return clauses


# -- paths ---------------------------------------------------------------------------------------


def _flatten(node: ast._Node) -> tuple[str, ...] | None:
    steps: list[str] = []
    while isinstance(node, ast.Attribute):
        steps.append(node.attr)
        node = node.owner
    if not isinstance(node, ast.Identifier) or node.namespace:
        return None
    steps.append(node.name)
    return tuple(reversed(steps))


def _path(path: tuple[str, ...], scope: Scope) -> Term:
    entity = scope.entity
    navigation = entity.navigations.get(path[0])
    if navigation is not None:
        if navigation.many:
            raise QueryError(
                f"a filter or $orderby on {entity.plural} cannot go through the collection "
                f"{navigation.name!r} (only through single entities such as Datastream/Thing)"
            )
        if len(path) == 1:
            raise QueryError(f"{navigation.name!r} is an entity, not a value to compare")
        target = scope.to(navigation.target)
        inner = _path(path[1:], target)
        if inner.kind == "geometry":
            raise QueryError("a geometry is compared on its own entity, not through a path")
        joined = (
            target.source.c[navigation.target_column] == scope.source.c[navigation.source_column]
        )
        subquery = select(inner.sql).where(joined).limit(1).scalar_subquery()
        return Term(subquery, inner.kind)
    source = scope.source
    if entity.geometry is not None and path[0] == entity.geometry:
        if len(path) == 1:
            shape = spatial.Shape(lon=source.c.lon, lat=source.c.lat, area=source.c.area)
            return Term(None, "geometry", shape=shape)
        if path[1:] == ("type",):
            kind = case(
                (source.c.lon.is_not(None), literal("Point")),
                else_=source.c.area["type"].as_string(),
            )
            return Term(kind, "text")
        if path[1:] == ("geometry", "type"):  # a geometry stored as a GeoJSON Feature: none here
            return Term(literal(None, String), "text")
    column_name = entity.columns.get(path)
    if column_name is None:
        raise QueryError(
            f"{entity.plural} have no property {'/'.join(path)[:80]!r} to filter or sort by"
        )
    column = source.c[column_name]
    return Term(column, _kind_of(column.type))


def _kind_of(column_type: Any) -> Kind:
    if isinstance(column_type, Boolean):
        return "bool"
    if isinstance(column_type, UTCDateTime):
        return "time"
    if isinstance(column_type, Integer | BigInteger | Float | Numeric):
        return "number"
    return "text"


# -- literals ------------------------------------------------------------------------------------


def _literal(node: ast._Node) -> Term | None:
    if isinstance(node, ast.Null):
        return Term(null(), "null", is_literal=True)
    if isinstance(node, ast.Boolean):
        value = node.val.lower() == "true"
        return Term(literal(value, Boolean), "bool", value=value, is_literal=True)
    if isinstance(node, ast.Integer):
        number = int(node.val)
        if abs(number) >= 2**63:
            raise QueryError(f"the number {node.val[:30]} is out of range")
        return Term(literal(number, BigInteger), "number", value=number, is_literal=True)
    if isinstance(node, ast.Float):
        real = float(node.val)
        if not math.isfinite(real):
            raise QueryError(f"the number {node.val[:30]} is out of range")
        return Term(literal(real, Float), "number", value=real, is_literal=True)
    if isinstance(node, ast.String):
        return Term(literal(node.val, String), "text", value=node.val, is_literal=True)
    if isinstance(node, ast.DateTime):
        moment = _instant(node.val)
        return Term(literal(moment, UTCDateTime()), "time", value=moment, is_literal=True)
    if isinstance(node, ast.Date):
        return Term(literal(node.val, String), "date", value=node.val, is_literal=True)
    if isinstance(node, ast.Geography):
        return Term(None, "geometry", shape=spatial.Shape(wkt=_wkt(node.val)), is_literal=True)
    if isinstance(node, ast.Duration | ast.Time | ast.GUID):
        raise QueryError(f"$filter: {type(node).__name__.lower()} literals are not supported")
    return None


def _instant(text: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text)
    except (ValueError, OverflowError):
        raise QueryError(f"{text[:40]!r} is not an ISO 8601 instant") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    try:
        return moment.astimezone(UTC)
    except OverflowError:
        raise QueryError(f"{text[:40]!r} is out of range") from None


def _wkt(text: str) -> str:
    """A WKT literal checked and written canonically (WGS 84 lon lat)."""
    if len(text) > MAX_WKT_CHARS:
        raise QueryError(f"a geography literal is longer than {MAX_WKT_CHARS:,} characters")
    try:
        geometry = shapely_wkt.loads(text)
    except (shapely.errors.ShapelyError, ValueError, TypeError):
        raise QueryError(f"geography'{text[:60]}' is not WKT (e.g. POINT(4.9 52.37))") from None
    if geometry.is_empty or not all(math.isfinite(v) for v in geometry.bounds):
        raise QueryError("a geography literal must be a non-empty geometry of finite coordinates")
    return str(geometry.wkt)


def _coerce(term: Term, kind: Kind) -> Term:
    """A text literal read as ``kind`` (a number or an instant), for comparisons such as
    ``result gt '3'``."""
    if not term.is_literal or term.kind != "text" or kind not in ("number", "time"):
        return term
    if kind == "number":
        try:
            number = float(term.value)
        except ValueError:
            raise QueryError(f"{term.value[:40]!r} is not a number") from None
        if not math.isfinite(number):
            raise QueryError(f"{term.value[:40]!r} is not a finite number")
        return Term(literal(number, Float), "number", value=number, is_literal=True)
    moment = _instant(term.value)
    return Term(literal(moment, UTCDateTime()), "time", value=moment, is_literal=True)


# -- expressions ---------------------------------------------------------------------------------


def _term(node: ast._Node, scope: Scope) -> Term:
    constant = _literal(node)
    if constant is not None:
        return constant
    if isinstance(node, ast.Identifier | ast.Attribute):
        path = _flatten(node)
        if path is None:
            raise QueryError("$filter names something that is no property path")
        return _path(path, scope)
    if isinstance(node, ast.Compare):
        return _compare(node, scope)
    if isinstance(node, ast.BoolOp):
        word = "and" if isinstance(node.op, ast.And) else "or"
        operands = [_term(operand, scope) for operand in bool_chain(node)]
        if any(operand.kind != "bool" for operand in operands):
            raise QueryError(f"both sides of '{word}' must be conditions")
        combine = and_ if word == "and" else or_
        return Term(combine(*(operand.sql for operand in operands)), "bool")
    if isinstance(node, ast.UnaryOp):
        operand = _term(node.operand, scope)
        if isinstance(node.op, ast.Not):
            if operand.kind != "bool":
                raise QueryError("'not' takes a condition")
            return Term(not_(operand.sql), "bool")
        if operand.kind != "number":
            raise QueryError("'-' takes a number")
        return Term(-operand.sql, "number")
    if isinstance(node, ast.BinOp):
        return _arithmetic(node, scope)
    if isinstance(node, ast.Call):
        return _call(node, scope)
    if isinstance(node, ast.CollectionLambda):
        raise QueryError("$filter: any() and all() are not supported")
    if isinstance(node, ast.List):
        raise QueryError("$filter: a list belongs on the right of 'in'")
    raise QueryError(f"$filter: {type(node).__name__} is not supported")


_COMPARATORS: Final = {
    ast.Eq: "__eq__", ast.NotEq: "__ne__", ast.Lt: "__lt__", ast.LtE: "__le__",
    ast.Gt: "__gt__", ast.GtE: "__ge__",
}  # fmt: skip


def _compare(node: ast.Compare, scope: Scope) -> Term:
    left = _term(node.left, scope)
    if isinstance(node.comparator, ast.In):
        if not isinstance(node.right, ast.List):
            raise QueryError("'in' takes a list, as in result in (1, 2, 3)")
        items = [_coerce(_term(item, scope), left.kind) for item in node.right.val]
        if len(items) > 100 or any(not i.is_literal or i.kind != left.kind for i in items):
            raise QueryError("'in' takes at most 100 values of the same kind as its left side")
        return Term(left.sql.in_([i.sql for i in items]), "bool")
    right = _term(node.right, scope)
    left, right = _coerce(left, right.kind), _coerce(right, left.kind)
    method = _COMPARATORS[type(node.comparator)]
    if "geometry" in (left.kind, right.kind):
        raise QueryError("geometries are compared with geo.intersects, st_within and the like")
    if "null" in (left.kind, right.kind):
        other = right if left.kind == "null" else left
        if method == "__eq__":
            return Term(other.sql.is_(None), "bool")
        if method == "__ne__":
            return Term(other.sql.is_not(None), "bool")
        raise QueryError("null can only be compared with eq or ne")
    if left.kind != right.kind:
        raise QueryError(f"cannot compare a {left.kind} with a {right.kind}")
    if left.kind == "bool" and method not in ("__eq__", "__ne__"):
        raise QueryError("true and false can only be compared with eq or ne")
    return Term(getattr(left.sql, method)(right.sql), "bool")


def _arithmetic(node: ast.BinOp, scope: Scope) -> Term:
    left, right = (
        _coerce(_term(node.left, scope), "number"),
        _coerce(_term(node.right, scope), "number"),
    )
    if left.kind != "number" or right.kind != "number":
        raise QueryError("add, sub, mul, div and mod take numbers")
    if isinstance(node.op, ast.Add):
        return Term(left.sql + right.sql, "number")
    if isinstance(node.op, ast.Sub):
        return Term(left.sql - right.sql, "number")
    if isinstance(node.op, ast.Mult):
        return Term(left.sql * right.sql, "number")
    if isinstance(node.op, ast.Div):  # real division on both backends; NULL for division by 0
        return Term(cast(left.sql, Float) / func.nullif(cast(right.sql, Float), 0), "number")
    if scope.dialect == "postgresql":
        return Term(cast(left.sql, Numeric) % func.nullif(cast(right.sql, Numeric), 0), "number")
    return Term(left.sql % func.nullif(right.sql, 0), "number")


def _call(node: ast.Call, scope: Scope) -> Term:
    name = ".".join((*node.func.namespace, node.func.name))
    args = [_term(arg, scope) for arg in node.args]
    if name in spatial.PREDICATES or name in ("geo.distance", "geo.length", "st_relate"):
        return _spatial(name, args, scope)
    if name in ("substringof", "contains", "startswith", "endswith", "indexof", "concat"):
        a, b = (args[1], args[0]) if name == "substringof" else (args[0], args[1])
        _expect(name, [a, b], "text")
        return _two_strings(name, a.sql, b.sql, scope.dialect)
    if name in ("length", "tolower", "toupper", "trim"):
        _expect(name, args, "text")
        if name == "length":
            length = func.char_length if scope.dialect == "postgresql" else func.length
            return Term(length(args[0].sql), "number")
        function = {"tolower": func.lower, "toupper": func.upper, "trim": func.trim}[name]
        return Term(function(args[0].sql), "text")
    if name == "substring":
        _expect(name, args[:1], "text")
        _expect(name, args[1:], "number")
        start = cast(args[1].sql, Integer) + 1
        if len(args) == 3:
            return Term(func.substr(args[0].sql, start, cast(args[2].sql, Integer)), "text")
        return Term(func.substr(args[0].sql, start), "text")
    if name in ("year", "month", "day", "hour", "minute", "second", "fractionalseconds",
                "date", "time", "totaloffsetminutes"):  # fmt: skip
        _expect(name, args, "time")
        return _date_part(name, args[0].sql, scope.dialect)
    if name == "now":
        moment = datetime.now(UTC)
        return Term(literal(moment, UTCDateTime()), "time", value=moment, is_literal=True)
    if name in ("mindatetime", "maxdatetime"):
        moment = (
            datetime(1, 1, 1, tzinfo=UTC)
            if name == "mindatetime"
            else datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC)
        )
        return Term(literal(moment, UTCDateTime()), "time", value=moment, is_literal=True)
    if name in ("round", "floor", "ceiling"):
        _expect(name, args, "number")
        if scope.dialect == "postgresql":  # numeric: round() takes halves away from zero
            function = {"round": func.round, "floor": func.floor, "ceiling": func.ceil}[name]
            return Term(cast(function(cast(args[0].sql, Numeric)), Float), "number")
        function = {"round": func.round, "floor": func.sta_floor, "ceiling": func.sta_ceiling}[name]
        return Term(function(cast(args[0].sql, Float)), "number")
    raise QueryError(f"$filter: the function {name[:60]!r} is not supported")


def _expect(name: str, args: list[Term], kind: Kind) -> None:
    for arg in args:
        if arg.kind != kind and not (kind == "text" and arg.kind == "null"):
            raise QueryError(
                f"{name}() takes {'text' if kind == 'text' else kind + 's'}, got a {arg.kind}"
            )


def _two_strings(name: str, a: Any, b: Any, dialect: str) -> Term:
    """Case-sensitive string functions (SQLite's LIKE ignores case, so none use it)."""
    position = func.strpos(a, b) if dialect == "postgresql" else func.instr(a, b)
    if name in ("substringof", "contains"):
        return Term(position > 0, "bool")
    if name == "indexof":
        return Term(position - 1, "number")
    if name == "concat":
        return Term(a + b, "text")
    if name == "startswith":
        return Term(func.substr(a, 1, func.length(b)) == b, "bool")
    return Term(func.substr(a, func.length(a) - func.length(b) + 1) == b, "bool")  # endswith


def _date_part(name: str, moment: Any, dialect: str) -> Term:
    """Parts of an instant in UTC (every instant here is stored in UTC)."""
    if name == "totaloffsetminutes":
        return Term(literal(0, Integer), "number")
    if dialect == "postgresql":
        utc = func.timezone("UTC", moment)
        if name == "date":
            return Term(func.to_char(utc, "YYYY-MM-DD"), "date")
        if name == "time":
            return Term(func.to_char(utc, "HH24:MI:SS"), "text")
        if name == "fractionalseconds":
            seconds = extract("second", utc)
            return Term(seconds - func.floor(seconds), "number")
        return Term(cast(func.floor(extract(name, utc)), Integer), "number")
    if name == "date":
        return Term(func.date(moment), "date")
    if name == "time":
        return Term(func.strftime("%H:%M:%S", moment), "text")
    if name == "fractionalseconds":
        return Term(
            cast(func.strftime("%f", moment), Float) - cast(func.strftime("%S", moment), Integer),
            "number",
        )
    pattern = {
        "year": "%Y",
        "month": "%m",
        "day": "%d",
        "hour": "%H",
        "minute": "%M",
        "second": "%S",
    }[name]
    return Term(cast(func.strftime(pattern, moment), Integer), "number")


def _spatial(name: str, args: list[Term], scope: Scope) -> Term:
    shapes = args[:2] if name != "geo.length" else args[:1]
    for arg in shapes:
        if arg.kind != "geometry" or arg.shape is None:
            raise QueryError(f"{name}() takes geometries: a geometry property such as location, "
                             "or a literal such as geography'POINT(4.9 52.37)'")  # fmt: skip
    if all(arg.is_literal for arg in shapes):
        raise QueryError(f"{name}() needs a geometry property of the entity, not only literals")
    if name == "geo.length":
        return Term(spatial.length(scope.dialect, shapes[0].shape), "number")  # type: ignore[arg-type]
    a, b = shapes[0].shape, shapes[1].shape
    assert a is not None
    assert b is not None
    if name == "geo.distance":
        return Term(spatial.distance(scope.dialect, a, b), "number")
    pattern = None
    if name == "st_relate":
        if not args[2].is_literal or args[2].kind != "text" or not _de9im(args[2].value):
            raise QueryError("st_relate() takes a DE-9IM pattern such as 'T*T***FF*'")
        pattern = args[2].value
    return Term(spatial.predicate(scope.dialect, name, a, b, pattern), "bool")


def _de9im(pattern: str) -> bool:
    return len(pattern) == 9 and all(c in "TF*012" for c in pattern.upper())


# -- continuing after the last row of a page ($skiptoken) ----------------------------------------

SortColumns = list[tuple[str, bool]]


def keyset(keys: tuple[OrderKey, ...], scope: Scope) -> SortColumns | None:
    """The (column, descending) pairs a page is sorted by (its ``$orderby``, then the id)
    when every key is a never-NULL column of the entity itself, so that the next page can
    start after the last row; None when it cannot (it then skips rows as ``$skip`` says)."""
    columns: SortColumns = []
    for key in keys:
        name = scope.entity.columns.get(key.path)
        if name is None or name not in scope.entity.keyset:
            return None
        columns.append((name, key.descending))
        if name == "id":
            return columns  # nothing sorts after a unique key
    return [*columns, ("id", False)]


def after(columns: SortColumns, source: FromClause, values: list[Any]) -> ColumnElement[bool]:
    """Rows that sort after ``values`` (the sort columns' values of a page's last row)."""
    alternatives = []
    for index, (name, descending) in enumerate(columns):
        column = source.c[name]
        beyond = column < values[index] if descending else column > values[index]
        same = [source.c[n] == values[j] for j, (n, _) in enumerate(columns[:index])]
        alternatives.append(and_(*same, beyond))
    return or_(*alternatives)


def encode_position(columns: SortColumns, row: Any) -> str:
    """A ``$skiptoken``: the sort columns' values of ``row``, as base64url JSON."""
    values = []
    for name, _ in columns:
        value = row[name]
        values.append(["t", value.isoformat()] if isinstance(value, datetime) else value)
    text = json.dumps(values, separators=(",", ":"))
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def decode_position(token: str, columns: SortColumns, source: FromClause) -> list[Any]:
    """The values of a ``$skiptoken`` for ``columns``, each of its column's kind;
    :class:`QueryError` for a token this server did not write for this sort."""
    refused = QueryError("$skiptoken is not one this server wrote for this $orderby")
    try:
        values = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    except (ValueError, TypeError):
        raise refused from None
    if not isinstance(values, list) or len(values) != len(columns):
        raise refused
    decoded: list[Any] = []
    for value, (name, _) in zip(values, columns, strict=True):
        kind = _kind_of(source.c[name].type)
        if kind == "time" and isinstance(value, list) and len(value) == 2 and value[0] == "t":
            decoded.append(_instant(str(value[1])))
        elif kind == "number" and isinstance(value, int | float) and not isinstance(value, bool):
            if not math.isfinite(value) or abs(value) >= 2**63:
                raise refused
            decoded.append(value)
        elif kind == "text" and isinstance(value, str) and len(value) <= 1000:
            decoded.append(value)
        else:
            raise refused
    return decoded
