"""``arserver simulate``: believable sensor data for the demo area, sent to a running server
over HTTP or through an MQTT broker until Ctrl-C (or ``--count`` live rounds)."""

from __future__ import annotations

import click

from arserver.commands.options import server_option, token_option


@click.command("simulate")
@server_option
@token_option("A gis or admin token")
@click.option(
    "--interval", type=click.FloatRange(min=0.1), default=5.0, show_default=True, help="Seconds."
)
@click.option(
    "--backfill",
    type=click.FloatRange(min=0),
    default=24.0,
    show_default=True,
    help="Hours of history.",
)
@click.option("--count", type=click.IntRange(min=1), help="Stop after this many live rounds.")
@click.option(
    "--mqtt",
    "mqtt_url",
    metavar="URL",
    help="Publish through this MQTT broker (mqtt://host:1883) instead of posting over HTTP.",
)
@click.option(
    "--format",
    "uplink_format",
    type=click.Choice(["tts", "chirpstack"]),
    default="tts",
    show_default=True,
    help="Uplink format of the LoRaWAN sensors over MQTT.",
)
def simulate(
    server: str,
    token: str,
    interval: float,
    backfill: float,
    count: int | None,
    mqtt_url: str | None,
    uplink_format: str,
) -> None:
    """Send believable sensor data for the demo area until Ctrl-C: over HTTP, or with --mqtt as
    The Things Stack / ChirpStack uplinks through a broker (the server must consume the same
    broker: ARSERVER_MQTT_URL)."""
    from arserver.commands.client import ServerClient
    from arserver.commands.simulation import HttpSink, MqttSink, run

    client = ServerClient(server, token)
    sink: MqttSink | HttpSink
    sink = MqttSink(client, mqtt_url, uplink_format) if mqtt_url else HttpSink(client)
    try:
        taken = run(sink, interval_s=interval, backfill_hours=backfill, iterations=count)
    except KeyboardInterrupt:
        taken = -1
    finally:
        sink.close()
    if taken >= 0:
        verb = "published (acknowledged by the broker)" if mqtt_url else "accepted"
        click.echo(f"{taken} observations {verb}")
