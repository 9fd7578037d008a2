"""How the application is served: one uvicorn configuration for ``arserver serve``, the demo
and the tests' servers, so that all behave the same on the wire, and a server in a background
thread for the demo and the tests."""

from __future__ import annotations

import copy
import gc
import logging
import socket
import sys
import threading
import time
from typing import Any

import uvicorn
from fastapi import FastAPI

from arserver.app import create_app
from arserver.commands.websocket_protocol import WebSocketProtocol
from arserver.config import Settings
from arserver.errors import ArserverError
from arserver.security.redaction import LogRedactionFilter

#: WebSocket heartbeats: a ping every 15 s; a client that does not answer within 15 s more is
#: disconnected (its live session can still be resumed within the retention window).
WS_PING_INTERVAL_S = 15.0
WS_PING_TIMEOUT_S = 15.0


def tune_gc() -> None:
    """Fewer, cheaper garbage collections for a long-running server: what exists at start is
    frozen out of collection, and the young generation is collected less often. Full
    collections over thousands of live sessions were the largest source of tail latency
    (bench/live.py, 2,000 clients: p99 490 ms -> 175 ms at 2,000 observations/s)."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 50, 100)


#: uvicorn's loggers: ``uvicorn.access`` (one line per request, with its target),
#: ``uvicorn.error`` (WebSocket handshakes with their target, errors) and ``uvicorn.asgi`` (every
#: ASGI message, headers included, at the ``trace`` level).
UVICORN_LOGGERS = ("uvicorn", "uvicorn.error", "uvicorn.access", "uvicorn.asgi")
_REDACTION = LogRedactionFilter()


def log_config() -> dict[str, Any]:
    """uvicorn's own logging configuration with :class:`LogRedactionFilter` on its handlers:
    nothing they write contains a token secret or a position, and client addresses are only
    networks (see docs/privacy.md)."""
    config: dict[str, Any] = copy.deepcopy(uvicorn.config.LOGGING_CONFIG)
    config["filters"] = {"redact": {"()": LogRedactionFilter}}
    for handler in config["handlers"].values():
        handler["filters"] = ["redact"]
    return config


def redact_uvicorn_loggers() -> None:
    """The redaction also on uvicorn's loggers (once each), so that handlers added to them
    later (an error tracker, a test's capture) get redacted records as well."""
    for name in UVICORN_LOGGERS:
        logger = logging.getLogger(name)
        if _REDACTION not in logger.filters:
            logger.addFilter(_REDACTION)


class _RedactedStandardError(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes records to whatever ``sys.stderr`` is when they come, through the redaction."""

    def __init__(self) -> None:
        super().__init__()
        self.addFilter(_REDACTION)
        self.setFormatter(logging.Formatter("%(levelname)s:%(name)s: %(message)s"))

    @property
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, _value: Any) -> None:
        pass


def redact_service_logs() -> None:
    """Every other record (``arserver.*`` and the libraries it uses, warnings and above as
    before) is written to standard error by one handler on the root logger, through the
    redaction, instead of Python's last-resort handler; installed once."""
    root = logging.getLogger()
    if not any(isinstance(handler, _RedactedStandardError) for handler in root.handlers):
        root.addHandler(_RedactedStandardError())


def uvicorn_config(app: FastAPI, host: str, port: int, log_level: str = "info") -> uvicorn.Config:
    """uvicorn serving ``app`` on ``host``:``port`` with the WebSocket settings of this
    service (heartbeats above, messages of at most 256 KiB, no per-message compression) and
    its logs redacted (:func:`log_config`)."""
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_config=log_config(),
        log_level=log_level,
        ws=WebSocketProtocol,  # websockets-sansio, which answers refused handshakes
        ws_ping_interval=WS_PING_INTERVAL_S,
        ws_ping_timeout=WS_PING_TIMEOUT_S,
        ws_max_size=256 * 1024,
        # Live messages are small JSON; deflating each one for each client cost more CPU than
        # anything else per message in bench/live.py. A compressing proxy can do it if needed.
        ws_per_message_deflate=False,
    )
    redact_uvicorn_loggers()  # after uvicorn.Config, which (re)configures its logging
    redact_service_logs()
    return config


class BackgroundServer:
    """uvicorn in a background thread."""

    def __init__(self, server: uvicorn.Server, thread: threading.Thread) -> None:
        self._server = server
        self._thread = thread

    def wait(self) -> None:
        """Block until the server stops or Ctrl-C."""
        try:
            while self._thread.is_alive():
                self._thread.join(0.5)
        except KeyboardInterrupt:
            pass

    def stop(self) -> None:
        """Ask the server to finish (graceful, as on SIGTERM) and wait up to 60 s for it."""
        self._server.should_exit = True
        self._thread.join(timeout=60)


def listening_socket(port: int) -> socket.socket:
    """A TCP socket bound to 127.0.0.1:``port`` (0: any free port) with ``SO_REUSEADDR``, as
    uvicorn binds its own, so that connections of a previous run still in TIME_WAIT do not
    make the port look taken; a port that another process listens on is an ``OSError``."""
    # IPPROTO_TCP, not 0: asyncio sets TCP_NODELAY only on sockets that say they are TCP, and
    # without it every response on a kept-alive connection waits ~40 ms for a delayed ACK.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(("127.0.0.1", port))
    except OSError:
        sock.close()
        raise
    return sock


def start_server(
    settings: Settings, port: int, *, any_port_if_taken: bool = True
) -> tuple[BackgroundServer, str]:
    """Start the application on 127.0.0.1:``port`` and wait until it listens; returns it and
    its base URL. When another process listens on ``port``, a free port is taken instead
    (``any_port_if_taken``; the URL tells which) or the ``OSError`` is raised. The socket is
    bound here and handed to uvicorn, so no other process can take the port in between. Not
    started within 60 s is an :class:`ArserverError`."""
    try:
        sock = listening_socket(port)
    except OSError:
        if not any_port_if_taken:
            raise
        sock = listening_socket(0)
    port = int(sock.getsockname()[1])
    config = uvicorn_config(create_app(settings), "127.0.0.1", port, log_level="warning")
    server = uvicorn.Server(config)
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": [sock]}, name="arserver-demo-server", daemon=True
    )
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            sock.close()
            raise ArserverError(f"the demo server did not start on port {port}")
        time.sleep(0.05)
    return BackgroundServer(server, thread), f"http://127.0.0.1:{port}"
