"""The generator: both variants are reproducible, and the realistic one has the irregularities
it promises (lots full for hours, counters that report only on change, a restricted mix)."""

from __future__ import annotations

import numpy as np
import pytest

from arserver.insight.parking.synthetic import (
    DEFAULT_START,
    DEFAULT_VARIANT,
    generate_series,
    make_lots,
    simulate_lot,
)


def test_the_default_is_realistic_and_every_variant_is_reproducible() -> None:
    assert DEFAULT_VARIANT == "realistic"
    for variant in ("regular", "realistic"):
        a = generate_series(3, 8, seed=9, variant=variant)
        b = generate_series(3, 8, seed=9, variant=variant)
        for name in a:
            assert np.array_equal(a[name].times, b[name].times)
            assert np.array_equal(a[name].free, b[name].free)
    regular = generate_series(3, 8, seed=9, variant="regular")
    realistic = generate_series(3, 8, seed=9)
    assert any(not np.array_equal(regular[n].free, realistic[n].free) for n in regular)


def test_an_unknown_variant_or_lot_type_is_refused() -> None:
    lot = make_lots(1, 0)[0]
    with pytest.raises(ValueError, match="unknown variant"):
        simulate_lot(lot, DEFAULT_START, 2, 0, variant="tidy")
    with pytest.raises(ValueError, match="lot types"):
        make_lots(2, 0, kinds=["stadium"])


def test_kinds_restrict_the_mix() -> None:
    lots = make_lots(30, 4, kinds=["commuter", "shopping"])
    assert {lot.kind for lot in lots} <= {"commuter", "shopping"}
    assert len({lot.kind for lot in lots}) == 2


def test_realistic_lots_sit_full_for_hours_and_some_report_only_on_change() -> None:
    lots = generate_series(24, 14, seed=6, variant="realistic")
    regular = generate_series(24, 14, seed=6, variant="regular")

    def full_hours(s) -> float:  # type: ignore[no-untyped-def]
        gaps = np.diff(s.times)
        return float(gaps[(s.free[:-1] == 0) & (gaps < 3600)].sum()) / 3600.0

    def repeats(s) -> float:  # type: ignore[no-untyped-def]
        return float(np.mean(s.free[1:] == s.free[:-1]))

    assert sum(full_hours(s) for s in lots.values()) > 1.3 * sum(
        full_hours(s) for s in regular.values()
    )
    # A counter that reports only on change never repeats a value (with an hourly heartbeat
    # it rarely does); the regular variant has none of those.
    assert sum(repeats(s) < 0.02 for s in lots.values()) >= 3
    assert sum(repeats(s) < 0.02 for s in regular.values()) < sum(
        repeats(s) < 0.02 for s in lots.values()
    )
