"""Benchmark: what one live ``subscribe`` costs the hub's event loop, by the size of its area.

A live state of ``--items`` sensors spread over the Netherlands, 200 more around one street
and a few at the edges of the world; one session subscribes to areas from a street to the
whole world, and each subscribe is timed as the hub runs it: the message handled, the
subscription filed in the index, and the snapshot made and encoded. "before" finds the
snapshot's items as the hub did before the work was bounded, by walking every grid cell of the
area; where that takes more than ``--budget`` seconds, the figure is extrapolated from the
measured cost per cell (marked ~).

A second table: a client that sends ``--moves`` moves of a country-wide box before the hub
sends anything. Before, each move made its snapshot at once; now one snapshot is made, when it
is sent.

    python bench/live_area.py [--items 10000] [--repeats 5] [--budget 3]
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from _harness import machine

from arserver.domain import Change
from arserver.live.area import Area
from arserver.live.index import SubscriptionIndex
from arserver.live.protocol import Limits, Session, Subscription
from arserver.live.state import LiveState

AREAS: list[tuple[str, dict[str, Any]]] = [
    ("street, circle r = 250 m", {"center": [4.761, 52.3095], "radius_m": 250}),
    ("municipality, 0.3 x 0.2 deg", {"bbox": [4.73, 52.25, 5.03, 52.45]}),
    ("the Netherlands, 3.5 x 3.5 deg", {"bbox": [3.6, 50.4, 7.1, 53.9]}),
    ("20 x 20 deg", {"bbox": [-5.0, 42.0, 15.0, 62.0]}),
    ("whole world, 360 x 180 deg", {"bbox": [-180, -90, 180, 90]}),
]


def live_state(items: int, seed: int = 1) -> LiveState:
    rng = random.Random(seed)
    state = LiveState()
    places = [(rng.uniform(3.4, 7.2), rng.uniform(50.8, 53.5)) for _ in range(items)]
    places += [(rng.gauss(4.761, 0.003), rng.gauss(52.3095, 0.002)) for _ in range(200)]
    places += [(180.0, 90.0), (-180.0, -90.0), (179.99, 0.0), (0.0, 89.99)]
    for k, (lon, lat) in enumerate(places):
        state.apply(
            Change(
                "sensors", f"sensor:s{k}:no2", "no2", lon, lat, 2.0,
                "2026-11-28T10:00:00.000000+00:00",
                {"sensor": f"s{k}", "value": 1.0, "unit": "ug/m3"},
            )
        )  # fmt: skip
    return state


class CellWalk:
    """The live state as the hub searched it before: every cell of the area's box, looked
    up in the state's grid (extrapolated past ``budget`` seconds)."""

    def __init__(self, state: LiveState, budget: float) -> None:
        self.state = state
        self.budget = budget
        self.estimated = False
        self.extra_s = 0.0  # the extrapolated rest of a walk cut short

    def items_in(
        self, area: Area, layers: frozenset[str], kinds: frozenset[str] | None = None
    ) -> list[Change]:
        grid = self.state._cells  # the same grid, walked the old way
        found, start = [], time.perf_counter()
        for walked, cell in enumerate(area.cells(), 1):
            for key in grid.get(cell, ()):
                change = self.state.get(key)
                if (
                    change is not None
                    and change.layer in layers
                    and area.contains(change.lon, change.lat)
                ):
                    found.append(change)
            if walked % 100_000 == 0 and time.perf_counter() - start > self.budget:
                self.estimated = True
                rate = (time.perf_counter() - start) / walked
                self.extra_s = rate * (area.cell_count - walked)
                break
        return sorted(found, key=lambda c: c.key)


def subscribe_ms(world: LiveState | CellWalk, area: dict[str, Any], repeats: int) -> float:
    """Median ms of one subscribe: message, index, snapshot made and encoded."""
    times = []
    for _ in range(repeats):
        session = Session("bench", "token", world, Limits())
        index: SubscriptionIndex[Subscription] = SubscriptionIndex()
        message = json.dumps({"type": "subscribe", "id": "s", "area": area, "max_rate_hz": None})
        if isinstance(world, CellWalk):
            world.estimated, world.extra_s = False, 0.0
        start = time.perf_counter()
        for sub in session.receive(message, 0.0).added:
            index.add(sub)
        texts, _ = session.take(0.0, 0.0)
        seconds = time.perf_counter() - start
        if isinstance(world, CellWalk) and world.estimated:
            seconds += world.extra_s
            times.append(seconds * 1000)
            break  # one extrapolated run is enough
        assert json.loads(texts[0])["type"] == "snapshot"
        times.append(seconds * 1000)
    return statistics.median(times)


def moves_ms(state: LiveState, moves: int, eager: bool) -> float:
    session = Session("bench", "token", state, Limits())
    session.receive(json.dumps({"type": "subscribe", "id": "s", "area": AREAS[2][1]}), 0.0)
    session.take(0.0, 0.0)
    box = AREAS[2][1]["bbox"]
    start = time.perf_counter()
    for _ in range(moves):
        session.receive(json.dumps({"type": "move", "id": "s", "bbox": box}), 0.0)
        if eager:  # the snapshot made at once, as before
            session.take(0.0, 0.0)
    session.take(0.0, 0.0)
    return (time.perf_counter() - start) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=10_000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--budget", type=float, default=3.0)
    parser.add_argument("--moves", type=int, default=100)
    args = parser.parse_args()
    state = live_state(args.items)
    before = CellWalk(state, args.budget)
    print(f"# one live subscribe, {len(state):,} live items, {machine()}")
    print()
    print("| area | grid cells | items | before ms | after ms | before / after |")
    print("|---|---:|---:|---:|---:|---:|")
    for label, area in AREAS:
        parsed = Area.parse(area)
        matched = len(state.items_in(parsed, frozenset({"sensors"})))
        old = subscribe_ms(before, area, args.repeats)
        mark = "~" if before.estimated else ""
        new = subscribe_ms(state, area, args.repeats)
        print(
            f"| {label} | {parsed.cell_count:,} | {matched:,} | {mark}{old:,.1f} | {new:,.1f} "
            f"| {mark}{old / new:,.1f}x |"
        )
    print()
    eager, lazy = moves_ms(state, args.moves, True), moves_ms(state, args.moves, False)
    print(f"# {args.moves} moves of the Netherlands box before the hub sends")
    print()
    print("| snapshots | ms | per move |")
    print("|---|---:|---:|")
    print(f"| made at each move (before) | {eager:,.1f} | {eager / args.moves:,.2f} |")
    print(f"| made when sent (after) | {lazy:,.1f} | {lazy / args.moves:,.2f} |")


if __name__ == "__main__":
    main()
