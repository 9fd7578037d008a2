"""`arserver simulate` against a real server: sensors registered, history backfilled, live
rounds sent, a sensor ball that moves; running it again adds no duplicates."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from arserver.cli import cli
from arserver.commands.server import start_server
from arserver.config import Settings
from tests.arserver.processes import Mosquitto
from tests.arserver.support import tokens_for
from tests.support import free_port, wait_until


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[str, str, str]]:
    settings = Settings(data_dir=tmp_path / "data", embedded_worker=False)
    gis, viewer = tokens_for(settings, "gis", "viewer")
    running, url = start_server(settings, free_port())
    try:
        yield url, gis, viewer
    finally:
        running.stop()


def test_simulate_backfills_and_sends_live_rounds(server: tuple[str, str, str]) -> None:
    import httpx

    url, gis, viewer = server
    args = [
        "simulate",
        "--server",
        url,
        "--token",
        gis,
        "--backfill",
        "2",
        "--count",
        "2",
        "--interval",
        "0.1",
    ]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.stderr
    # 2 hours at 15 minutes = 8 moments of 11 values (6 bays, NO2 + PM2.5, noise, water level,
    # the ball), plus 2 live rounds of 11
    assert result.stdout.strip() == f"{8 * 11 + 2 * 11} observations accepted"
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {viewer}"}) as client:
        bays = client.get(
            "/api/v1/observations/latest?bbox=4.7,52.3,4.8,52.4&kinds=parking_bay"
        ).json()["latest"]
        assert len(bays) == 6
        assert {b["value"] for b in bays} <= {0.0, 1.0}
        track = client.get("/api/v1/sensors/ball-1/trajectory").json()
        assert track["geometry"]["type"] == "LineString"
        assert len(track["geometry"]["coordinates"]) == 10
        hourly = client.get(
            "/api/v1/sensors/air-plaza/observations/buckets?bucket=1h&kind=no2"
        ).json()
        assert 2 <= len(hourly["buckets"]) <= 3
    again = CliRunner().invoke(
        cli, ["simulate", "--server", url, "--token", gis, "--backfill", "2", "--count", "1"]
    )
    assert again.exit_code == 0, again.stderr
    assert again.stdout.strip() == "11 observations accepted"  # the backfill was there already


@pytest.mark.parametrize("uplink_format", ["tts", "chirpstack"])
def test_simulate_over_mqtt_sends_lorawan_uplinks_the_server_consumes(
    tmp_path: Path, uplink_format: str
) -> None:
    import httpx

    broker = Mosquitto(tmp_path / "broker")
    broker.start()
    settings = Settings(
        data_dir=tmp_path / "data",
        embedded_worker=False,
        mqtt_url=broker.url,
        mqtt_client_id=f"simulate-test-{uplink_format}",
    )
    [gis] = tokens_for(settings, "gis")
    running, url = start_server(settings, free_port())
    try:
        result = CliRunner().invoke(
            cli,
            ["simulate", "--server", url, "--token", gis, "--backfill", "2", "--count", "1"]
            + ["--interval", "0.1", "--mqtt", broker.url, "--format", uplink_format],
        )
        assert result.exit_code == 0, result.stderr
        expected = 8 * 11 + 11
        assert result.stdout.strip() == (
            f"{expected} observations published (acknowledged by the broker)"
        )
        with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {gis}"}) as client:

            def all_consumed() -> dict[str, int] | None:
                counts: dict[str, int] = client.get("/api/v1/ingest/stats").json()["counts"]
                return counts if counts.get("accepted", 0) >= expected else None

            counts = wait_until(all_consumed, 30, f"{expected} uplinks counted as accepted")
            assert counts == {"accepted": expected}  # nothing unknown, unmapped or malformed
            # the LoRaWAN devices' decoded fields became their datastreams
            no2 = client.get("/api/v1/sensors/air-plaza/observations?kind=no2").json()
            noise = client.get("/api/v1/sensors/noise-plaza/observations").json()
            assert len(no2["observations"]) == len(noise["observations"]) == 9
    finally:
        running.stop()
        broker.stop()
