"""The PNG of ``arserver parking backtest --plot``: +30-minute forecasts against the actual free
spaces for a few lots over a few days, and the MAE per horizon and method (matplotlib, Agg)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import numpy.typing as npt

from arserver.errors import InputError
from arserver.insight.parking.backtest import METHODS, BacktestResult
from arserver.insight.parking.calendar import ZONE
from arserver.insight.parking.forecast import HORIZONS_MIN

FloatArray = npt.NDArray[np.float64]

#: Days of each lot's test period drawn.
PLOT_DAYS = 3


def _with_breaks(times: FloatArray, *columns: FloatArray) -> list[FloatArray]:
    """``times`` and ``columns`` with a NaN row put into every gap of over an hour, so the
    lines stop at gaps instead of bridging them."""
    gap = np.flatnonzero(np.diff(times) > 3600.0) + 1
    out = [np.insert(times, gap, times[np.maximum(gap - 1, 0)] + 1.0)]
    out += [np.insert(c, gap, np.nan) for c in columns]
    return out


def write_plot(result: BacktestResult, path: Path) -> None:
    """Write the figure to ``path`` as PNG (times in Europe/Amsterdam local time). Raises
    :class:`~arserver.errors.InputError` when the file cannot be written."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.dates as mdates
    import matplotlib.pyplot as plt

    traces = result.traces
    rows = max(1, len(traces)) + 1
    fig, axes = plt.subplots(rows, 1, figsize=(11, 2.6 * rows), squeeze=False)
    try:
        for ax, trace in zip(axes[:-1, 0], traces, strict=False):
            keep = trace.targets <= trace.targets[0] + PLOT_DAYS * 86400
            t, actual, model, low, high = _with_breaks(
                trace.targets[keep], trace.actual[keep], trace.model[keep], trace.low[keep],
                trace.high[keep],
            )  # fmt: skip
            when = [dt.datetime.fromtimestamp(v, ZONE) for v in t]
            ax.fill_between(when, low, high, color="tab:blue", alpha=0.2, label="80% interval")
            ax.plot(when, actual, color="black", lw=1.0, label="actual")
            ax.plot(when, model, color="tab:blue", lw=1.0, label="model, +30 min")
            ax.set_ylim(0, trace.capacity * 1.02)
            ax.set_ylabel("free spaces")
            ax.set_title(f"{trace.lot} (capacity {trace.capacity:g})", fontsize=9)
            ax.xaxis.set_major_formatter(mdates.DateFormatter("%a %H:%M", tz=ZONE))  # type: ignore[no-untyped-call]
            ax.legend(loc="upper right", fontsize=7)
        if not traces:
            axes[0, 0].text(0.5, 0.5, "no lot with enough test data", ha="center")
            axes[0, 0].set_axis_off()
        bars = axes[-1, 0]
        width = 0.8 / len(METHODS)
        x = np.arange(len(HORIZONS_MIN))
        for i, method in enumerate(METHODS):
            maes = [result.scores[h][method].mae for h in HORIZONS_MIN]
            bars.bar(x + (i - (len(METHODS) - 1) / 2) * width, maes, width, label=method)
        bars.set_xticks(x, [f"+{h} min" for h in HORIZONS_MIN])
        bars.set_ylabel("MAE, free spaces")
        bars.set_title("Error by horizon", fontsize=9)
        bars.legend(fontsize=7)
        fig.tight_layout()
        try:
            fig.savefig(path, format="png", dpi=90)
        except OSError as exc:
            raise InputError(f"cannot write the plot {path.name}: {exc.strerror}") from exc
    finally:
        plt.close(fig)
