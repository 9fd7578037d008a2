"""What is live now: the newest change of every key, found by area (for snapshots).

Keys are filed under the grid cell of their position, and only occupied cells are kept. Finding
what is in an area walks the area's cells or the occupied ones, whichever are fewer, so a
snapshot costs what the area can match (at most every live item), never the area's size: the
whole world (2.6 billion cells) costs one pass over the occupied cells.
"""

from __future__ import annotations

from collections.abc import Iterator

from arserver.domain import Change
from arserver.live.area import Area, cell_of


class LiveState:
    """Newest change per key. A change older (by ``time``) than the one held is ignored, so
    late or replayed events never roll a value back; a ``removed`` change forgets its key."""

    def __init__(self) -> None:
        self._items: dict[str, Change] = {}
        self._cells: dict[tuple[int, int], set[str]] = {}  # occupied cells only

    def __len__(self) -> int:
        return len(self._items)

    @property
    def occupied_cells(self) -> int:
        """Cells holding at least one live item (never more than there are items)."""
        return len(self._cells)

    def get(self, key: str) -> Change | None:
        return self._items.get(key)

    def apply(self, change: Change) -> bool:
        """Take ``change`` in; False when it is older than what is held (then it is news to
        no one)."""
        held = self._items.get(change.key)
        if held is not None:
            if change.time < held.time:  # ISO 8601 UTC strings of one format sort as times
                return False
            cell = cell_of(held.lon, held.lat)
            keys = self._cells.get(cell)
            if keys is not None:
                keys.discard(held.key)
                if not keys:  # a moving sensor must not leave empty cells behind it
                    del self._cells[cell]
        if change.removed:
            self._items.pop(change.key, None)
            return True
        self._items[change.key] = change
        self._cells.setdefault(cell_of(change.lon, change.lat), set()).add(change.key)
        return True

    def items_in(
        self, area: Area, layers: frozenset[str], kinds: frozenset[str] | None = None
    ) -> list[Change]:
        """Live things in ``area`` on ``layers`` (and of ``kinds``, if given), by key."""
        found = []
        for keys in self._keys_near(area):
            for key in keys:
                change = self._items[key]
                if (
                    change.layer in layers
                    and (kinds is None or change.kind is None or change.kind in kinds)
                    and area.contains(change.lon, change.lat)
                ):
                    found.append(change)
        return sorted(found, key=lambda c: c.key)

    def _keys_near(self, area: Area) -> Iterator[set[str]]:
        """The keys of each occupied cell that ``area``'s bounding box touches, found by
        walking the area's cells or the occupied cells, whichever are fewer."""
        if area.cell_count <= len(self._cells):
            for cell in area.cells():
                keys = self._cells.get(cell)
                if keys:
                    yield keys
            return
        x0, y0, x1, y1 = area.cell_range
        for (x, y), keys in self._cells.items():
            if x0 <= x <= x1 and y0 <= y <= y1:
                yield keys
