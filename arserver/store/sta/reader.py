"""Reading SensorThings collections, entities and expansions from the database.

The query options apply in the order the standard gives: ``$filter``, then ``$count`` (of the
filtered collection), ``$orderby``, ``$skip``, ``$top``; ``$expand`` then reads, for each
entity of the page, its expanded navigation properties with their own options (a collection
per entity, each a bounded page with its own count and next page, read by one indexed query).
Every page holds at most :data:`MAX_TOP` entities, whatever ``$top`` asks; every statement of
one request runs under a time budget (PostgreSQL ``statement_timeout``, a SQLite progress
handler), so that no request can hold the database for long.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Final

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Connection,
    Engine,
    RowMapping,
    Select,
    bindparam,
    column,
    func,
    select,
    text,
    true,
    union_all,
    values,
)
from sqlalchemy.exc import OperationalError

from arserver.errors import BusyError, QueryError
from arserver.odata.options import Expand, Options
from arserver.store.sta.filters import (
    Scope,
    SortColumns,
    after,
    decode_position,
    encode_position,
    keyset,
    order_by,
    where,
)
from arserver.store.sta.model import TYPES, EntityType, Navigation

#: The most entities one page (of a collection or of an expanded one) holds.
MAX_TOP: Final = 1_000
#: A page's size when ``$top`` is not given.
DEFAULT_TOP: Final = 100
#: The longest a request's statements may run together, in seconds.
BUDGET_S: Final = 10.0


@dataclass
class Entity:
    """One entity: its type, its row and its expanded navigation properties (by name: an
    :class:`Entity`, a :class:`Collection`, or None for a to-one link to nothing)."""

    type: EntityType
    row: RowMapping
    expanded: dict[str, Entity | Collection | None] = field(default_factory=dict)
    #: The ``$select`` of the expansion that read it, if it was read as one.
    select: tuple[str, ...] | None = None

    @property
    def id(self) -> int:
        return int(self.row["id"])


@dataclass
class Collection:
    """A page of a collection. ``count``: the size of the whole filtered collection when
    ``$count=true``; the next page starts after ``next_token`` (a ``$skiptoken``: the
    position of this page's last row, when the sort allows) or at ``next_skip``; both are
    None on the last page;
    ``owner``: for an expanded collection, the entity and navigation property it belongs to
    (for its next link)."""

    type: EntityType
    items: list[Entity]
    options: Options
    top: int
    count: int | None = None
    next_skip: int | None = None
    next_token: str | None = None
    owner: tuple[Entity, Navigation] | None = None

    @property
    def more(self) -> bool:
        """Whether another page follows (by ``next_token`` or ``next_skip``)."""
        return self.next_token is not None or self.next_skip is not None


@dataclass(frozen=True)
class _Prepared:
    """The statements of one collection's pages: its count (None unless ``$count=true``) and
    its page (None for ``$top=0``), both taking the parameter ``key`` when constrained."""

    entity: EntityType
    options: Options
    top: int
    count: Select[Any] | None
    page: Select[Any] | None
    #: The sort columns, when the next page can start after the last row (``$skiptoken``).
    sort: SortColumns | None = None


@dataclass(frozen=True)
class Constraint:
    """Rows whose ``column`` equals ``value`` (a navigation from a parent entity)."""

    column: str
    value: Any


class Reader:
    """The queries of one request, on one connection, as one caller sees the data
    (``public_only``: only entities of sensors whose data is public)."""

    def __init__(self, connection: Connection, *, public_only: bool) -> None:
        self.connection = connection
        self.public_only = public_only
        self.dialect = connection.dialect.name

    def scopes(self, entity: EntityType) -> list[Scope]:
        """One scope per arm of ``entity``'s entity set."""
        return [
            Scope(entity, arm.subquery(), self.dialect, self.public_only)
            for arm in entity.arms(self.public_only, self.dialect)
        ]

    def collection(
        self, entity: EntityType, options: Options, constraint: Constraint | None = None
    ) -> Collection:
        """A page of ``entity``'s collection (optionally within ``constraint``) with the
        expansions ``options`` ask for."""
        prepared = self._prepare(entity, options, constraint.column if constraint else None)
        page = self._run(prepared, constraint.value if constraint else None)
        self.expand(page.items, options.expand)
        return page

    def _prepare(
        self,
        entity: EntityType,
        options: Options,
        column: str | None,
        key: ColumnElement[Any] | None = None,
    ) -> _Prepared:
        """The statements of a page of ``entity``, built once: with ``column``, constrained to
        rows whose ``column`` equals ``key`` (default: the bound parameter ``key``; one
        statement for the pages of every parent of an expansion)."""
        scopes = self.scopes(entity)
        queries = [self._filtered(scope, options, column, key) for scope in scopes]
        count = None
        if options.count:
            counts = [
                select(func.count()).select_from(query.subquery()).scalar_subquery()
                for query in queries
            ]
            total: ColumnElement[Any] = counts[0]
            for more in counts[1:]:
                total = total + more
            count = select(total)
        top = min(options.top if options.top is not None else DEFAULT_TOP, MAX_TOP)
        sort = keyset(options.orderby, scopes[0])
        if options.skiptoken is not None:
            if sort is None:
                raise QueryError("$skiptoken is not one this server wrote for this $orderby")
            position = decode_position(options.skiptoken, sort, scopes[0].source)
            queries = [
                query.where(after(sort, scope.source, position))
                for query, scope in zip(queries, scopes, strict=True)
            ]
        page = self._page(entity, scopes, queries, options, top) if top > 0 else None
        return _Prepared(entity, options, top, count, page, sort)

    def _run(self, prepared: _Prepared, key: Any) -> Collection:
        """One page of ``prepared`` for the parameter ``key`` (no expansions)."""
        parameters = {"key": key}
        count = None
        if prepared.count is not None:
            count = int(self.connection.execute(prepared.count, parameters).scalar_one())
        rows: list[RowMapping] = []
        if prepared.page is not None:
            rows = list(self.connection.execute(prepared.page, parameters).mappings())
        return self._finish(prepared, rows, count)

    def _finish(self, prepared: _Prepared, rows: list[RowMapping], count: int | None) -> Collection:
        """The page of ``rows`` (at most one more than ``$top``: that one says another page
        follows) and where the next one starts."""
        top, skip = prepared.top, prepared.options.skip
        more = len(rows) > top  # never for $top=0: a count alone has no next page
        items = [Entity(prepared.entity, row) for row in rows[:top]]
        page = Collection(prepared.entity, items, prepared.options, top, count)
        if more and prepared.sort is not None:
            page.next_token = encode_position(prepared.sort, rows[top - 1])
        elif more:
            page.next_skip = skip + top
        return page

    def _page(
        self,
        entity: EntityType,
        scopes: list[Scope],
        queries: list[Select[Any]],
        options: Options,
        top: int,
    ) -> Select[Any]:
        """The page's query: ordered, skipped, one more than ``top`` (to know whether another
        page follows). A union of arms is ordered and limited in each arm first, so that each
        reads its own index and the union sorts no more than the page needs."""
        if len(scopes) == 1:
            ordered = queries[0].order_by(*order_by(options.orderby, scopes[0]))
            return ordered.offset(options.skip).limit(top + 1)
        enough = options.skip + top + 1
        arms = [
            select(query.order_by(*order_by(options.orderby, scope)).limit(enough).subquery())
            for query, scope in zip(queries, scopes, strict=True)
        ]
        union = union_all(*arms).subquery()
        merged = Scope(entity, union, self.dialect, self.public_only)
        ordered = select(union).order_by(*order_by(options.orderby, merged))
        return ordered.offset(options.skip).limit(top + 1)

    def entity(
        self, entity: EntityType, key: int, options: Options, constraint: Constraint | None = None
    ) -> Entity | None:
        """One entity by id (None if there is none, or the caller may not see it)."""
        for scope in self.scopes(entity):
            if not _holds(scope.source.c.id.type, key):
                continue
            query = select(scope.source).where(scope.source.c.id == key)
            for name, value in (entity.locate(key) if entity.locate else {}).items():
                query = query.where(scope.source.c[name] == value)  # an index finds it
            if constraint is not None:
                query = query.where(scope.source.c[constraint.column] == constraint.value)
            row = self.connection.execute(query).mappings().first()
            if row is not None:
                found = Entity(entity, row)
                self.expand([found], options.expand)
                return found
        return None

    def navigate(
        self, parent: Entity, navigation: Navigation, options: Options
    ) -> Entity | Collection | None:
        """What ``navigation`` of ``parent`` leads to: a collection page, or one entity."""
        target = TYPES[navigation.target]
        value = parent.row[navigation.source_column]
        if navigation.many:
            collection = self.collection(
                target, options, Constraint(navigation.target_column, value)
            )
            collection.owner = (parent, navigation)
            return collection
        if value is None:
            return None
        return self.entity(target, int(value), options)

    def expand(self, parents: list[Entity], expands: tuple[Expand, ...]) -> None:
        """Read the expanded navigation properties of ``parents`` into their ``expanded``."""
        if not parents:
            return
        for item in expands:
            entity = parents[0].type
            navigation = entity.navigations.get(item.name)
            if navigation is None:
                raise QueryError(
                    f"{entity.plural} have no navigation property {item.name!r} to expand"
                )
            if navigation.many:
                self._expand_many(parents, navigation, item.options)
            else:
                self._expand_single(parents, navigation, item.options)

    def _expand_many(self, parents: list[Entity], navigation: Navigation, options: Options) -> None:
        """A to-many expansion: a page per parent, all read with one prepared statement (an
        index lookup each), then their own expansions for all of them at once."""
        target = TYPES[navigation.target]
        if self.dialect == "postgresql" and len(parents) > 1 and not options.count:
            pages = self._pages_lateral(target, navigation, options, parents)
        else:
            prepared = self._prepare(target, options, navigation.target_column)
            pages = [self._run(prepared, p.row[navigation.source_column]) for p in parents]
        children: list[Entity] = []
        for parent, page in zip(parents, pages, strict=True):
            page.owner = (parent, navigation)
            parent.expanded[navigation.name] = page
            children += page.items
        self.expand(children, options.expand)

    def _pages_lateral(
        self, target: EntityType, navigation: Navigation, options: Options, parents: list[Entity]
    ) -> list[Collection]:
        """Every parent's page in one round trip on PostgreSQL: the page's statement joined
        LATERAL to the parents' keys (an index lookup per key, as one query)."""
        keys = sorted({p.row[navigation.source_column] for p in parents} - {None})
        parent_keys = values(column("key", BigInteger), name="parent_keys").data(
            [(k,) for k in keys]
        )
        prepared = self._prepare(target, options, navigation.target_column, parent_keys.c.key)
        rows: dict[Any, list[RowMapping]] = {k: [] for k in keys}
        if prepared.page is not None and keys:
            page = prepared.page.subquery().lateral("page")
            query = select(parent_keys.c.key.label("parent_key"), page).select_from(
                parent_keys.join(page, true())
            )
            for row in self.connection.execute(query).mappings():
                rows[row["parent_key"]].append(row)
        return [
            self._finish(prepared, rows.get(p.row[navigation.source_column], []), None)
            for p in parents
        ]

    def _expand_single(
        self, parents: list[Entity], navigation: Navigation, options: Options
    ) -> None:
        """A to-one expansion of all ``parents`` in one query."""
        target = TYPES[navigation.target]
        keys = {parent.row[navigation.source_column] for parent in parents} - {None}
        found: dict[Any, Entity] = {}
        for scope in self.scopes(target) if keys else []:
            query = select(scope.source).where(
                scope.source.c[navigation.target_column].in_(sorted(keys))
            )
            if options.filter is not None:
                query = query.where(where(options.filter, scope))
            for row in self.connection.execute(query).mappings():
                found[row[navigation.target_column]] = Entity(target, row, select=options.select)
        self.expand(list(found.values()), options.expand)
        for parent in parents:
            parent.expanded[navigation.name] = found.get(parent.row[navigation.source_column])

    def _filtered(
        self,
        scope: Scope,
        options: Options,
        column: str | None,
        key: ColumnElement[Any] | None = None,
    ) -> Select[Any]:
        query = select(scope.source)
        if column is not None:
            value = key if key is not None else bindparam("key")
            query = query.where(scope.source.c[column] == value)
            if key is not None:  # the parents' keys of a LATERAL join, not a FROM of its own
                query = query.correlate(*_tables_of(key))
        if options.filter is not None:
            query = query.where(where(options.filter, scope))
        return query


def _tables_of(expression: ColumnElement[Any]) -> list[Any]:
    table = getattr(expression, "table", None)
    return [table] if table is not None else []


def _holds(column_type: Any, key: int) -> bool:
    """Whether a column of ``column_type`` can hold ``key`` (PostgreSQL's ``integer`` is
    32-bit: a larger key is no entity, not an error)."""
    limit = 1 << (63 if isinstance(column_type, BigInteger) else 31)
    return -limit <= key < limit


@contextmanager
def reading(engine: Engine, budget_s: float = BUDGET_S) -> Iterator[Connection]:
    """A read-only transaction whose statements together may run ``budget_s`` seconds; a
    statement still running then is stopped and :class:`BusyError` raised."""
    with engine.connect() as connection:
        if connection.dialect.name == "postgresql":
            with connection.begin():
                connection.execute(text("SET TRANSACTION READ ONLY"))
                connection.execute(text(f"SET LOCAL statement_timeout = {int(budget_s * 1000)}"))
                with _stopped_as_busy(budget_s):
                    yield connection
            return
        raw = connection.connection.driver_connection
        deadline = time.monotonic() + budget_s
        raw.set_progress_handler(lambda: int(time.monotonic() > deadline), 10_000)  # type: ignore[union-attr]
        try:
            with _stopped_as_busy(budget_s):
                yield connection
        finally:
            raw.set_progress_handler(None, 0)  # type: ignore[union-attr]
            connection.rollback()


@contextmanager
def _stopped_as_busy(budget_s: float) -> Iterator[None]:
    try:
        yield
    except OperationalError as exc:
        message = str(exc.orig).lower()
        if (
            "interrupted" in message
            or "statement timeout" in message
            or "canceling statement" in message
        ):
            raise BusyError(
                f"the query took longer than {budget_s:g} s; narrow it with $filter or a "
                "smaller $top"
            ) from None
        raise
