"""`arserver watch` against a running server: prints the snapshot and live updates, refuses a
bad token with one line, and asks for an area."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from arserver.cli import cli
from arserver.config import Settings
from tests.arserver.support import Live
from tests.support import wait_until


@pytest.fixture
def live(tmp_path: Path) -> Iterator[Live]:
    running = Live(Settings(data_dir=tmp_path, embedded_worker=False))
    yield running
    running.close()


def test_watch_prints_the_snapshot_then_updates(live: Live) -> None:
    live.register("air-1", [4.9, 52.37, 43.0])
    live.observe(("air-1", 21.0))
    results: list[Result] = []
    args = ["watch", "--server", live.url, "--token", live.viewer, "--center", "4.9,52.37"]
    args += ["--radius", "100", "--count", "2", "--max-rate", "10"]
    runner = threading.Thread(target=lambda: results.append(CliRunner().invoke(cli, args)))
    runner.start()
    # Its welcome and snapshot went out (a snapshot shows the state when it is sent).
    wait_until(lambda: live.stats()["messages_sent"] >= 2, 10, "watch's snapshot")
    live.observe(("air-1", 22.5))
    runner.join(timeout=20)
    [result] = results
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].startswith('       {"type": "welcome", "session": ')
    assert lines[1] == "     1 snapshot watch: 1 item(s)"
    assert lines[2].startswith("         sensor:air-1:no2 = 21.0 ug/m3 at [4.900, 52.370, 43.000]")
    assert lines[3] == "     2 update watch: 1 item(s)"
    assert "= 22.5 ug/m3" in lines[4]


def test_watch_refuses_a_bad_token_in_one_line(live: Live) -> None:
    result = CliRunner().invoke(
        cli, ["watch", "--server", live.url, "--token", "nope", "--bbox", "4,52,5,53"]
    )
    assert result.exit_code == 1
    assert result.stderr.strip() == (
        "arserver watch: error: the server refused the connection (403): is the token valid, "
        "with a reading role?"
    )


def test_watch_needs_one_area() -> None:
    result = CliRunner().invoke(cli, ["watch", "--token", "t", "--center", "4.9,52.3"])
    assert result.exit_code == 2
    assert "give --bbox W,S,E,N, or --center LON,LAT with --radius M" in result.stderr
