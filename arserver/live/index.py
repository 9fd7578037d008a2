"""The subscription index: which subscriptions an event at a point may concern.

Subscriptions are filed under the grid cells their area covers; a point looks up one cell.
Very large areas (more than ``LARGE_CELLS`` cells, e.g. a planner watching the whole city) are
kept in a short list every event checks, so registering them stays cheap.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from typing import Generic, Protocol, TypeVar

from arserver.live.area import Area, cell_of

LARGE_CELLS = 2_500


class Indexed(Protocol):
    @property
    def area(self) -> Area: ...


T = TypeVar("T", bound=Indexed)


class SubscriptionIndex(Generic[T]):
    def __init__(self) -> None:
        self._cells: dict[tuple[int, int], set[T]] = defaultdict(set)
        self._large: set[T] = set()
        self._where: dict[T, Area] = {}

    def __len__(self) -> int:
        return len(self._where)

    def add(self, item: T) -> None:
        self.remove(item)
        area = item.area
        self._where[item] = area
        if area.cell_count > LARGE_CELLS:
            self._large.add(item)
            return
        for cell in area.cells():
            self._cells[cell].add(item)

    def remove(self, item: T) -> None:
        area = self._where.pop(item, None)
        if area is None:
            return
        if item in self._large:
            self._large.discard(item)
            return
        for cell in area.cells():
            members = self._cells.get(cell)
            if members is not None:
                members.discard(item)
                if not members:
                    del self._cells[cell]

    def candidates(self, lon: float, lat: float) -> Iterator[T]:
        """Subscriptions whose area's bounding box holds the point's cell (test ``contains``
        for the exact answer)."""
        yield from self._cells.get(cell_of(lon, lat), ())
        yield from self._large
