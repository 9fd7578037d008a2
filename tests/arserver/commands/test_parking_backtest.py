"""`arserver parking backtest`: the table, the exact JSON, the PNG, and bad input."""

from __future__ import annotations

import json
import tracemalloc
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from PIL import Image

from arserver.cli import cli
from arserver.insight.parking.backtest import read_csv_lines
from arserver.insight.parking.synthetic import generate_rows, write_csv

HEADER = "timestamp,lot_id,capacity,free,lat,lon\n"


@pytest.fixture(scope="module")
def data_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("parking") / "counters.csv"
    with path.open("w", encoding="utf-8") as out:
        write_csv(generate_rows(5, 21, seed=4), out)
        out.write("2026-03-05T10:00:00Z,LONELY,80,12,,\n")  # a lot with one row
        out.write("2026-03-05T10:00:00Z,P0001,100,lots,,\n")  # a non-numeric count
    return path


def _run(*args: str):  # type: ignore[no-untyped-def]
    return CliRunner().invoke(cli, ["parking", "backtest", *args])


def test_backtest_prints_a_table_with_every_method_and_the_model_gain(data_file: Path) -> None:
    result = _run("--data", str(data_file))
    assert result.exit_code == 0, result.output
    out = result.stdout
    for word in ("model", "last_value", "seasonal_naive", "profile_delta", "+15 min", "+60 min"):
        assert word in out
    assert "origins" in out
    assert "6 lots" in out
    assert "LONELY" in out  # named as not scored
    assert "%" in out
    assert "bad_free" in result.stderr


def test_json_is_exactly_the_documented_object(data_file: Path) -> None:
    result = _run("--data", str(data_file), "--json")
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert list(payload) == ["15", "30", "60"]
    for by_method in payload.values():
        assert set(by_method) == {"model", "last_value", "seasonal_naive", "profile_delta"}
        for score in by_method.values():
            assert set(score) == {"mae", "rmse"}
            assert isinstance(score["mae"], float)
            assert score["rmse"] >= score["mae"] >= 0


def test_plot_writes_a_png(data_file: Path, tmp_path: Path) -> None:
    png = tmp_path / "backtest.png"
    result = _run("--data", str(data_file), "--json", "--plot", str(png))
    assert result.exit_code == 0, result.output
    json.loads(result.stdout)
    with Image.open(png) as image:
        assert image.format == "PNG"
        assert image.size[0] > 500
        assert image.size[1] > 500


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("", "empty"),
        ("timestamp,lot_id,free\n2026-03-02T09:00:00Z,A,3\n", "missing column capacity"),
        (HEADER + "2026-03-02T09:00:00Z,A,100,three,,\n", "bad_free"),
        (HEADER + "2026-03-02T09:00:00Z,A,100,3,,\n", "at least 2 days"),
    ],
)
def test_bad_input_gets_one_clear_error_line(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "bad.csv"
    path.write_text(content, encoding="utf-8")
    result = _run("--data", str(path))
    assert result.exit_code == 1
    assert result.stderr.startswith("arserver parking backtest: error: ")
    assert message in result.stderr
    assert "Traceback" not in result.output


def test_reading_streams_so_memory_does_not_grow_with_rows() -> None:
    def lines(n: int) -> Iterator[str]:
        yield HEADER
        for i in range(n):  # 3 lots over 2 days, many readings per 5-minute bucket
            yield f"{1772438400 + (i * 3) % 172800},L{i % 3},300,{i % 300},52.3,4.9\n"

    peaks = []
    for n in (2_000, 20_000):
        tracemalloc.start()
        data = read_csv_lines(lines(n))
        peaks.append(tracemalloc.get_traced_memory()[1])
        tracemalloc.stop()
        assert data.report.rows == n
    assert peaks[1] < 1.5 * peaks[0] + 200_000
