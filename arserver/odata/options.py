"""The system query options of a SensorThings request (``$filter``, ``$expand``, ``$select``,
``$orderby``, ``$top``, ``$skip``, ``$count``), parsed and checked.

``$filter`` expressions are parsed by ``odata-query`` (a maintained OData v4 grammar) into its
AST (:mod:`odata_query.ast`); function names are checked against :data:`FUNCTIONS` here, so
that the SensorThings functions (``st_within``, ``substringof``, ...) parse and an unknown one
is refused by name. The AST is checked for size and depth before anyone walks it: a filter
nested a thousand deep, or one of 100 KB, is an :class:`~arserver.errors.QueryError`, never a
recursion error. Every refusal is an ``QueryError`` whose message names the option and the
construct.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final

from odata_query import ast
from odata_query import exceptions as odata_errors
from odata_query.grammar import ODataLexer, ODataParser

from arserver.errors import QueryError

#: The longest ``$filter`` (characters) and ``$expand`` accepted.
MAX_FILTER_CHARS: Final = 8_000
MAX_EXPAND_CHARS: Final = 4_000
#: The most nodes and the deepest nesting a parsed filter may have.
MAX_FILTER_NODES: Final = 2_000
MAX_FILTER_DEPTH: Final = 40
#: The deepest ``$expand`` (``Things`` -> ``Datastreams`` -> ``Observations`` is 2) and the most
#: navigation properties one level may expand.
MAX_EXPAND_DEPTH: Final = 4
MAX_EXPAND_ITEMS: Final = 10
#: ``$skip`` beyond this is refused (an offset that large means walking pages of a filter that
#: should have been narrower).
MAX_SKIP: Final = 10_000_000

#: Functions a filter may call, with their argument counts (SensorThings API v1.1, 18-088,
#: table 18: string, date, math and geospatial functions).
FUNCTIONS: Final[Mapping[str, tuple[int, int]]] = {
    "substringof": (2, 2), "contains": (2, 2), "endswith": (2, 2), "startswith": (2, 2),
    "length": (1, 1), "indexof": (2, 2), "substring": (2, 3), "tolower": (1, 1),
    "toupper": (1, 1), "trim": (1, 1), "concat": (2, 2),
    "year": (1, 1), "month": (1, 1), "day": (1, 1), "hour": (1, 1), "minute": (1, 1),
    "second": (1, 1), "fractionalseconds": (1, 1), "date": (1, 1), "time": (1, 1),
    "totaloffsetminutes": (1, 1), "now": (0, 0), "mindatetime": (0, 0), "maxdatetime": (0, 0),
    "round": (1, 1), "floor": (1, 1), "ceiling": (1, 1),
    "geo.distance": (2, 2), "geo.length": (1, 1), "geo.intersects": (2, 2),
    "st_equals": (2, 2), "st_disjoint": (2, 2), "st_touches": (2, 2), "st_within": (2, 2),
    "st_overlaps": (2, 2), "st_crosses": (2, 2), "st_intersects": (2, 2),
    "st_contains": (2, 2), "st_relate": (3, 3),
}  # fmt: skip

_KNOWN_OPTIONS: Final = frozenset(
    {"$filter", "$expand", "$select", "$orderby", "$top", "$skip", "$count", "$skiptoken"}
)
#: The longest ``$skiptoken`` (the server writes them into next links; see the reader).
MAX_SKIPTOKEN_CHARS: Final = 2_000


@dataclass(frozen=True)
class OrderKey:
    """One ``$orderby`` key: a property path (``("phenomenonTime",)``,
    ``("Datastream", "name")``) and its direction."""

    path: tuple[str, ...]
    descending: bool = False


@dataclass(frozen=True)
class Options:
    """The query options of one collection (or of one expanded navigation property).

    ``top`` None means the server's default page size; ``select`` None means every property;
    ``filter`` is an ``odata-query`` AST node or None."""

    filter: ast._Node | None = None
    expand: tuple[Expand, ...] = ()
    select: tuple[str, ...] | None = None
    orderby: tuple[OrderKey, ...] = ()
    top: int | None = None
    skip: int = 0
    count: bool = False
    #: Where the previous page ended (opaque to clients; written by the server into next
    #: links so that the next page starts there instead of counting ``$skip`` rows again).
    skiptoken: str | None = None
    #: The options as text, by name (``"$filter"`` -> ``"result gt 3"``), for next links.
    raw: tuple[tuple[str, str], ...] = field(default=(), compare=False)


@dataclass(frozen=True)
class Expand:
    """``$expand`` of one navigation property (``Datastreams``) with its own options, which
    may expand further."""

    name: str
    options: Options


def parse_options(params: Mapping[str, str]) -> Options:
    """The options of a request's query string (other parameters, e.g. ``access_token``,
    are not options and are ignored). An unknown ``$`` option is refused by name."""
    options = {name: value for name, value in params.items() if name.startswith("$")}
    unknown = sorted(set(options) - _KNOWN_OPTIONS)
    if unknown:
        raise QueryError(
            f"unsupported query option {unknown[0][:40]!r}; supported: "
            + ", ".join(sorted(_KNOWN_OPTIONS))
        )
    return _options(options, depth=0)


def _options(options: Mapping[str, str], depth: int) -> Options:
    raw = tuple(sorted(options.items()))
    top = _count_option(options, "$top", MAX_SKIP) if "$top" in options else None
    skip = _count_option(options, "$skip", MAX_SKIP) if "$skip" in options else 0
    count = False
    if "$count" in options:
        text = options["$count"].strip().lower()
        if text not in ("true", "false"):
            raise QueryError(f"$count is true or false, got {options['$count'][:40]!r}")
        count = text == "true"
    token = options.get("$skiptoken")
    if token is not None and (len(token) > MAX_SKIPTOKEN_CHARS or not token.isascii()):
        raise QueryError("$skiptoken is not one this server wrote")
    return Options(
        filter=parse_filter(options["$filter"]) if "$filter" in options else None,
        expand=_expand(options["$expand"], depth) if "$expand" in options else (),
        select=_select(options["$select"]) if "$select" in options else None,
        orderby=_orderby(options["$orderby"]) if "$orderby" in options else (),
        top=top,
        skip=skip,
        count=count,
        skiptoken=token,
        raw=raw,
    )


def _count_option(options: Mapping[str, str], name: str, largest: int) -> int:
    text = options[name].strip()
    if not text.isdigit() or not text.isascii():
        raise QueryError(f"{name} is a whole number of 0 or more, got {text[:40]!r}")
    value = int(text[:20])
    if len(text) > 19 or value > largest:
        if name == "$top":
            return largest  # capped by the page size anyway
        raise QueryError(f"{name} is at most {largest:,}; narrow the request with $filter")
    return value


def parse_filter(text: str) -> ast._Node:
    """A ``$filter`` expression as an ``odata-query`` AST, checked for length, size and depth
    and for known functions."""
    stripped = text.strip()
    if not stripped:
        raise QueryError("$filter is empty")
    if len(stripped) > MAX_FILTER_CHARS:
        raise QueryError(f"$filter is longer than {MAX_FILTER_CHARS:,} characters")
    if _paren_depth(stripped) > MAX_FILTER_DEPTH:
        raise QueryError(f"$filter nests deeper than {MAX_FILTER_DEPTH} levels")
    parser = ODataParser()
    parser._function_call = _function_call  # type: ignore[method-assign]  # STA's functions
    try:
        tree = parser.parse(ODataLexer().tokenize(stripped))
    except _FunctionError as exc:
        raise QueryError(str(exc)) from None
    except (odata_errors.ODataException, ValueError, TypeError, IndexError) as exc:
        raise QueryError(f"$filter cannot be parsed: {_syntax_message(exc)}") from None
    if not isinstance(tree, ast._Node):
        raise QueryError("$filter cannot be parsed")
    _check_size(tree)
    return tree


class _FunctionError(Exception):
    pass


def _function_call(func: ast.Identifier, args: list[ast._Node]) -> ast.Call:
    name = ".".join((*func.namespace, func.name))
    arity = FUNCTIONS.get(name)
    if arity is None:
        raise _FunctionError(f"$filter calls the unknown or unsupported function {name[:60]!r}")
    if not arity[0] <= len(args) <= arity[1]:
        expected = str(arity[0]) if arity[0] == arity[1] else f"{arity[0]} or {arity[1]}"
        raise _FunctionError(f"{name} takes {expected} arguments, got {len(args)}")
    return ast.Call(func, args)


def _syntax_message(exc: Exception) -> str:
    token = getattr(exc, "token", None)
    position = getattr(token, "index", None)
    if position is not None:
        return f"unexpected text at character {position + 1}"
    return type(exc).__name__


def _paren_depth(text: str) -> int:
    """The deepest parenthesis nesting of ``text`` outside string literals."""
    depth = deepest = 0
    quoted = False
    for char in text:
        if char == "'":
            quoted = not quoted
        elif not quoted and char == "(":
            depth += 1
            deepest = max(deepest, depth)
        elif not quoted and char == ")":
            depth -= 1
    return deepest


def children(node: ast._Node) -> list[ast._Node]:
    """The direct sub-expressions of a filter node."""
    if isinstance(node, ast.Compare | ast.BoolOp | ast.BinOp):
        return [node.left, node.right]
    if isinstance(node, ast.UnaryOp):
        return [node.operand]
    if isinstance(node, ast.Call):
        return list(node.args)
    if isinstance(node, ast.Attribute):
        return [node.owner]
    if isinstance(node, ast.List):
        return list(node.val)
    if isinstance(node, ast.CollectionLambda):
        return [node.owner]
    return []


def _check_size(tree: ast._Node) -> None:
    """Refuse trees with more than :data:`MAX_FILTER_NODES` nodes or nested deeper than
    :data:`MAX_FILTER_DEPTH` (walked without recursion). A chain of one boolean operator
    (``a or b or c ...``) counts as one level: it is translated as a list, not recursively."""
    stack = [(tree, 1)]
    nodes = 0
    while stack:
        node, depth = stack.pop()
        nodes += 1
        if nodes > MAX_FILTER_NODES:
            raise QueryError(f"$filter has more than {MAX_FILTER_NODES} terms")
        if depth > MAX_FILTER_DEPTH:
            raise QueryError(f"$filter nests deeper than {MAX_FILTER_DEPTH} levels")
        for child in children(node):
            same_chain = (
                isinstance(node, ast.BoolOp)
                and isinstance(child, ast.BoolOp)
                and type(child.op) is type(node.op)
            )
            stack.append((child, depth if same_chain else depth + 1))


def bool_chain(node: ast.BoolOp) -> list[ast._Node]:
    """The operands of a chain of one boolean operator (``a and b and c``), in order,
    gathered without recursion."""
    operands: list[ast._Node] = []
    stack: list[ast._Node] = [node]
    while stack:
        current = stack.pop()
        if isinstance(current, ast.BoolOp) and type(current.op) is type(node.op):
            stack.extend((current.right, current.left))
        else:
            operands.append(current)
    return operands


def split_top_level(text: str, separator: str) -> list[str]:
    """``text`` split at ``separator`` outside parentheses and string literals."""
    parts: list[str] = []
    depth = 0
    quoted = False
    current: list[str] = []
    for char in text:
        if char == "'":
            quoted = not quoted
        elif not quoted and char == "(":
            depth += 1
        elif not quoted and char == ")":
            depth -= 1
            if depth < 0:
                raise QueryError("unbalanced parentheses in the query options")
        if char == separator and depth == 0 and not quoted:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    if depth != 0 or quoted:
        raise QueryError("unbalanced parentheses or quotes in the query options")
    parts.append("".join(current))
    return parts


def _name(text: str, what: str) -> str:
    name = text.strip()
    if not name or not all(c.isalnum() or c in "_@." for c in name) or len(name) > 60:
        raise QueryError(f"{what} names {name[:60]!r}, which is no property")
    return name


def _select(text: str) -> tuple[str, ...]:
    names = [_name(part, "$select") for part in split_top_level(text, ",")]
    return tuple("id" if name == "@iot.id" else name for name in names)


def _orderby(text: str) -> tuple[OrderKey, ...]:
    keys = []
    for part in split_top_level(text, ","):
        words = part.split()
        if not words or len(words) > 2:
            raise QueryError(f"$orderby takes 'property [asc|desc]', got {part.strip()[:60]!r}")
        direction = words[1].lower() if len(words) == 2 else "asc"
        if direction not in ("asc", "desc"):
            raise QueryError(f"$orderby direction is asc or desc, got {words[1][:20]!r}")
        path = tuple(_name(step, "$orderby") for step in words[0].split("/"))
        keys.append(OrderKey(path, direction == "desc"))
    if len(keys) > 10:
        raise QueryError("$orderby takes at most 10 keys")
    return tuple(keys)


def _expand(text: str, depth: int) -> tuple[Expand, ...]:
    if len(text) > MAX_EXPAND_CHARS:
        raise QueryError(f"$expand is longer than {MAX_EXPAND_CHARS:,} characters")
    merged: dict[str, Expand] = {}
    items = split_top_level(text, ",")
    if len(items) > MAX_EXPAND_ITEMS:
        raise QueryError(f"$expand names more than {MAX_EXPAND_ITEMS} navigation properties")
    for item in items:
        expand = _expand_item(item.strip(), depth + 1)
        earlier = merged.get(expand.name)
        merged[expand.name] = expand if earlier is None else _merge(earlier, expand)
    return tuple(merged.values())


def _expand_item(text: str, depth: int) -> Expand:
    """``Datastreams($top=1)``, or a path ``Datastreams/Observations($top=3)`` (the options
    belong to the last step)."""
    if depth > MAX_EXPAND_DEPTH:
        raise QueryError(f"$expand goes deeper than {MAX_EXPAND_DEPTH} levels")
    head, nested = text, ""
    if "(" in text:
        head, rest = text.split("(", 1)
        if not rest.endswith(")"):
            raise QueryError(f"$expand item {text[:60]!r} is not 'Name(options)'")
        nested = rest[:-1]
    steps = [_name(step, "$expand") for step in head.split("/")]
    if len(steps) + depth - 1 > MAX_EXPAND_DEPTH:
        raise QueryError(f"$expand goes deeper than {MAX_EXPAND_DEPTH} levels")
    options = _options(_nested_options(nested), depth + len(steps) - 1) if nested else Options()
    expand = Expand(steps[-1], options)
    for step in reversed(steps[:-1]):
        expand = Expand(step, Options(expand=(expand,)))
    return expand


def _nested_options(text: str) -> dict[str, str]:
    options: dict[str, str] = {}
    for part in split_top_level(text, ";"):
        if not part.strip():
            continue
        name, sep, value = part.partition("=")
        name = name.strip()
        if not sep or name not in _KNOWN_OPTIONS:
            raise QueryError(f"$expand option {part.strip()[:60]!r} is not one of "
                             + ", ".join(sorted(_KNOWN_OPTIONS)))  # fmt: skip
        if name in options:
            raise QueryError(f"$expand gives {name} twice for one navigation property")
        options[name] = value
    return options


def _merge(first: Expand, second: Expand) -> Expand:
    """``Datastreams,Datastreams/Observations``: one expansion with both."""
    a, b = first.options, second.options
    nested = {e.name: e for e in a.expand}
    for item in b.expand:
        nested[item.name] = _merge(nested[item.name], item) if item.name in nested else item
    given = b if b.raw else a
    return Expand(
        first.name,
        Options(
            filter=given.filter, expand=tuple(nested.values()), select=given.select,
            orderby=given.orderby, top=given.top, skip=given.skip, count=given.count,
            raw=given.raw,
        ),
    )  # fmt: skip
