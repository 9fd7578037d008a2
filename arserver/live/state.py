"""What is live now: the newest change of every key, found by area (for snapshots)."""

from __future__ import annotations

from collections import defaultdict

from arserver.domain import Change
from arserver.live.area import Area, cell_of


class LiveState:
    """Newest change per key. A change older (by ``time``) than the one held is ignored, so
    late or replayed events never roll a value back; a ``removed`` change forgets its key."""

    def __init__(self) -> None:
        self._items: dict[str, Change] = {}
        self._cells: dict[tuple[int, int], set[str]] = defaultdict(set)

    def __len__(self) -> int:
        return len(self._items)

    def get(self, key: str) -> Change | None:
        return self._items.get(key)

    def apply(self, change: Change) -> bool:
        """Take ``change`` in; False when it is older than what is held (then it is news to
        no one)."""
        held = self._items.get(change.key)
        if held is not None:
            if change.time < held.time:  # ISO 8601 UTC strings of one format sort as times
                return False
            self._cells[cell_of(held.lon, held.lat)].discard(change.key)
        if change.removed:
            self._items.pop(change.key, None)
            return True
        self._items[change.key] = change
        self._cells[cell_of(change.lon, change.lat)].add(change.key)
        return True

    def items_in(
        self, area: Area, layers: frozenset[str], kinds: frozenset[str] | None = None
    ) -> list[Change]:
        """Live things in ``area`` on ``layers`` (and of ``kinds``, if given), by key."""
        found = []
        for cell in area.cells():
            for key in self._cells.get(cell, ()):
                change = self._items[key]
                if (
                    change.layer in layers
                    and (kinds is None or change.kind is None or change.kind in kinds)
                    and area.contains(change.lon, change.lat)
                ):
                    found.append(change)
        return sorted(found, key=lambda c: c.key)
