"""`arserver transform`: stdin to stdout, full precision, one error line naming the line."""

from __future__ import annotations

import subprocess

import numpy as np
import pytest
from click.testing import CliRunner

from arserver.cli import cli
from tests.arserver.support import arserver_command
from tiles.crs import Transformer


def run(args: list[str], stdin: str = "") -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, ["transform", *args], input=stdin)
    return result.exit_code, result.stdout, result.stderr


def test_transforms_rd_nap_to_etrs89_with_full_precision() -> None:
    code, out, err = run(
        ["--from", "EPSG:7415", "--to", "EPSG:4979"], "155000 463000 0\n121400 487400 2.5\n"
    )
    assert code == 0, err
    lines = out.splitlines()
    assert len(lines) == 2
    expected = Transformer.from_crs("EPSG:7415", "EPSG:4979").transform(
        [155000.0, 121400.0], [463000.0, 487400.0], [0.0, 2.5]
    )
    for row, line in enumerate(lines):
        values = [float(v) for v in line.split()]
        assert values == [float(column[row]) for column in expected if column is not None]


def test_keeps_blank_and_comment_lines_and_mixes_2d_and_3d_points() -> None:
    text = "# Amersfoort\n155000 463000\n\n121400 487400 0\n"
    code, out, _ = run(["--from", "EPSG:7415", "--to", "EPSG:4937"], text)
    assert code == 0
    lines = out.split("\n")
    assert lines[0] == "# Amersfoort"
    assert len(lines[1].split()) == 2
    assert lines[2] == ""
    assert len(lines[3].split()) == 3


def test_geocentric_output_in_metres() -> None:
    code, out, _ = run(["--from", "EPSG:7415", "--to", "EPSG:4978"], "155000 463000 0\n")
    assert code == 0
    x, y, z = (float(v) for v in out.split())
    assert np.hypot(np.hypot(x, y), z) == pytest.approx(6_364_000, abs=10_000)


@pytest.mark.parametrize(
    ("text", "line", "fragment"),
    [
        ("155000 463000 0\nabc 463000 0\n", 2, "'abc' is not a number"),
        ("155000 463000 0\n155000 463000 nan\n", 2, "not a finite number"),
        ("155000 463000 inf\n", 1, "not a finite number"),
        ("155000\n", 1, "expected 2 or 3 numbers"),
        ("1 2 3 4\n", 1, "expected 2 or 3 numbers"),
        ("155000 463000 0\n155000 463000 0\n900000 463000 0\n", 3, "outside the area"),
    ],
)
def test_bad_lines_give_one_error_line_with_the_line_number_and_no_output(
    text: str, line: int, fragment: str
) -> None:
    code, out, err = run(["--from", "EPSG:7415", "--to", "EPSG:4979"], text)
    assert code == 1
    assert out == ""
    assert err.count("\n") == 1
    assert err.startswith(f"arserver transform: error: line {line}: ")
    assert fragment in err


def test_unknown_crs_is_a_usage_error() -> None:
    code, out, err = run(["--from", "EPSG:99999", "--to", "EPSG:4979"], "1 2\n")
    assert code == 2
    assert out == ""
    assert "unknown CRS 'EPSG:99999'" in err


def test_missing_grid_is_refused_unless_allowed() -> None:
    code, _, err = run(["--from", "EPSG:4289", "--to", "EPSG:4258"], "5 52\n")
    assert code == 1
    assert "nl_nsgi_rdtrans2018.tif" in err
    code, out, _ = run(["--from", "EPSG:4289", "--to", "EPSG:4258", "--allow-ballpark"], "5 52\n")
    assert code == 0
    assert len(out.split()) == 2


def test_heights_missing_for_geocentric_output_name_the_line() -> None:
    code, _, err = run(["--from", "EPSG:7415", "--to", "EPSG:4978"], "155000 463000\n")
    assert code == 1
    assert "line 1:" in err
    assert "heights" in err


def test_describe_prints_the_operation_and_its_accuracy() -> None:
    code, out, _ = run(["--from", "EPSG:7415", "--to", "EPSG:4978", "--describe"])
    assert code == 0
    assert "RDNAPTRANS(TM)2018" in out
    assert "accuracy 0.001 m" in out


def test_empty_input_gives_empty_output() -> None:
    code, out, _ = run(["--from", "EPSG:7415", "--to", "EPSG:4979"], "")
    assert (code, out) == (0, "")


def run_installed(stdin: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [arserver_command(), "transform", "--from", "EPSG:7415", "--to", "EPSG:4979"],
        input=stdin,
        capture_output=True,
        text=True,
        check=False,
    )


def test_installed_command_streams_stdin_to_stdout() -> None:
    ok = run_installed("155000 463000 0\n")
    assert ok.returncode == 0
    assert ok.stderr == ""
    assert float(ok.stdout.split()[2]) == pytest.approx(43.28, abs=0.01)


def test_installed_command_fails_with_one_line_and_writes_nothing() -> None:
    bad = run_installed("155000 463000 0\nx y z\n")
    assert bad.returncode == 1
    assert bad.stdout == ""
    assert bad.stderr.strip() == "arserver transform: error: line 2: 'x' is not a number"


def test_itrf2020_at_an_epoch_and_refused_without_one() -> None:
    code, out, err = run(
        ["--from", "EPSG:7415", "--to", "EPSG:9989", "--epoch", "2026.9"], "155000 463000 0\n"
    )
    assert code == 0, err
    expected = Transformer.from_crs("EPSG:7415", "EPSG:9989", epoch=2026.9).transform(
        [155000.0], [463000.0], [0.0]
    )
    assert [float(v) for v in out.split()] == [float(c[0]) for c in expected if c is not None]
    code, out, err = run(["--from", "EPSG:7415", "--to", "EPSG:9989"], "155000 463000 0\n")
    assert code == 1
    assert out == ""
    assert "epoch" in err
    assert len(err.strip().splitlines()) == 1
