"""Several server processes on one port: ``arserver serve --workers N``.

The supervisor starts N worker processes (spawned, not forked: no thread or connection of the
supervisor is inherited), each running the whole application on a listening socket of its own
bound to the same port with ``SO_REUSEPORT``, so that the kernel spreads new connections
evenly over them (one shared socket would let whichever process wakes first take most). They share
the state that matters through PostgreSQL and Redis (the live hub's events and session
mirrors), which is why both are required. Worker ``i`` keeps its number for life: a worker that
dies is started again with the same number, so its MQTT client id (``ARSERVER_MQTT_CLIENT_ID``
+ ``-i``) and with it its persistent session (what it had not acknowledged) come back with it.
SIGTERM or Ctrl-C stops them all gracefully.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import socket
import threading
import time
from multiprocessing.process import BaseProcess

import click

from arserver.config import Settings
from arserver.errors import InputError

log = logging.getLogger(__name__)

#: A worker that died is started again after this long (and no sooner than this after its
#: previous start), so a worker that cannot start does not spin.
RESTART_DELAY_S = 1.0
#: How long a graceful stop may take before the workers are killed.
STOP_TIMEOUT_S = 60.0


def check_scalable(settings: Settings) -> None:
    """:class:`InputError` unless ``settings`` let several processes share their state."""
    missing = []
    if settings.database_url is None:
        missing.append("ARSERVER_DATABASE_URL (PostgreSQL; SQLite takes one writer process)")
    if settings.redis_url is None:
        missing.append("ARSERVER_REDIS_URL (the live events between the processes)")
    if missing:
        raise InputError("serve --workers N needs " + " and ".join(missing))


def bind(host: str, port: int, *, listen: bool = True) -> socket.socket:
    """A socket on ``host``:``port`` that other processes can bind too (``SO_REUSEPORT``);
    ``OSError`` when another program holds the port."""
    if not hasattr(socket, "SO_REUSEPORT"):
        raise InputError("serve --workers N needs SO_REUSEPORT (Linux, BSD)")
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    try:
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    if listen:
        sock.listen(2048)
    return sock


def run_worker(index: int, host: str, port: int) -> None:
    """One worker process: the application on its own socket, with worker ``index``'s MQTT
    client id."""
    import uvicorn

    from arserver.app import create_app
    from arserver.commands.server import tune_gc, uvicorn_config

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the supervisor says when to stop
    os.environ["ARSERVER_WORKER_INDEX"] = str(index)
    base = Settings()
    settings = base.model_copy(update={"mqtt_client_id": f"{base.mqtt_client_id}-{index}"})
    tune_gc()
    config = uvicorn_config(create_app(settings), host, port)
    uvicorn.Server(config).run(sockets=[bind(host, port)])


def serve_workers(count: int, host: str, port: int) -> None:
    """Run ``count`` workers on ``host``:``port`` until SIGTERM or Ctrl-C."""
    try:  # the port is free (or held by an earlier supervisor's workers only)
        bind(host, port, listen=False).close()
    except OSError as exc:
        raise InputError(f"cannot listen on {host}:{port}: {exc.strerror}") from None
    context = multiprocessing.get_context("spawn")
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    workers: dict[int, BaseProcess] = {}
    started: dict[int, float] = {}

    def start(index: int) -> None:
        process = context.Process(
            target=run_worker, args=(index, host, port), name=f"arserver-serve-{index}"
        )
        process.start()
        workers[index], started[index] = process, time.monotonic()

    for index in range(1, count + 1):
        start(index)
    click.echo(f"arserver serve: {count} workers on http://{host}:{port}")
    try:
        while not stop.wait(0.5):
            for index, process in list(workers.items()):
                if process.is_alive():
                    continue
                if time.monotonic() - started[index] < RESTART_DELAY_S:
                    continue
                log.warning("worker %d ended (exit %s); starting it again", index, process.exitcode)
                click.echo(f"arserver serve: worker {index} ended; starting it again")
                start(index)
    except KeyboardInterrupt:
        pass
    finally:
        for process in workers.values():
            if process.is_alive() and process.pid is not None:
                os.kill(process.pid, signal.SIGTERM)
        deadline = time.monotonic() + STOP_TIMEOUT_S
        for process in workers.values():
            process.join(max(deadline - time.monotonic(), 0.1))
            if process.is_alive():
                process.kill()
                process.join()
