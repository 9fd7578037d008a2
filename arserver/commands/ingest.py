"""``arserver ingest``: a process that only consumes sensor uplinks over MQTT (no HTTP), for
ingest that scales apart from the servers."""

from __future__ import annotations

import click

from arserver.commands.options import current_settings
from arserver.errors import InputError


@click.command("ingest")
@click.option(
    "--client-id", default=None,
    help="This consumer's MQTT client id (default ARSERVER_MQTT_CLIENT_ID); keep it across "
    "restarts, and give every consumer its own.",
)  # fmt: skip
@click.option(
    "--leave", is_flag=True,
    help="Retire this client id for good: store what the broker still holds for it, then end "
    "its session (the broker gives it no more uplinks). For fewer consumers in a group.",
)  # fmt: skip
def ingest(client_id: str | None, leave: bool) -> None:
    """Consume uplinks from ARSERVER_MQTT_URL (The Things Stack, ChirpStack, our own topic)
    until SIGTERM or Ctrl-C. With ARSERVER_MQTT_SHARED_GROUP several such processes (and
    servers) share the subscription, each uplink stored by one of them; with
    ARSERVER_REDIS_URL their observations reach the servers' live overlays."""
    import signal
    import threading

    from arserver.ingest.mqtt import MqttIngest
    from arserver.ingest.writer import observation_writer
    from arserver.live.bus import RedisBus
    from arserver.store.database import open_database

    settings = current_settings()
    if not settings.mqtt_url:
        raise InputError("arserver ingest needs ARSERVER_MQTT_URL (mqtt://host:1883)")
    identity = client_id or settings.mqtt_client_id
    engine = open_database(settings)
    bus = RedisBus(settings.redis_url) if settings.redis_url else None
    consumer = MqttIngest(
        observation_writer(settings, engine, bus), settings.mqtt_url, identity,
        shared_group=settings.mqtt_shared_group,
    )  # fmt: skip
    if leave:
        try:
            drained = consumer.leave()
        finally:
            if bus is not None:
                bus.close()
            engine.dispose()
        click.echo(f"arserver ingest {identity}: left, after storing {drained} messages it held")
        return
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    group = f" in shared group {settings.mqtt_shared_group}" if settings.mqtt_shared_group else ""
    click.echo(f"arserver ingest {identity}{group}: consuming uplinks", err=True)
    consumer.start()
    said = False
    try:
        while not stop.wait(0.2):
            if consumer.connected.is_set() and not said:
                click.echo(f"arserver ingest {identity}: subscribed", err=True)
                said = True
            if consumer.state == "stopped":
                raise InputError("the MQTT consumer stopped; see the log above")
    except KeyboardInterrupt:
        pass
    finally:
        consumer.stop()
        if bus is not None:
            bus.close()
        engine.dispose()
