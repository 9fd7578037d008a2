"""A real ``arserver serve`` answers every request head promptly, however long its request line
or however many its headers: a WebSocket upgrade with an 8 KiB URL used to get no answer at all
(the refusal was queued by websockets and never written)."""

from __future__ import annotations

import base64
import contextlib
import os
import socket
from collections.abc import Iterator

import pytest

from arserver.config import Settings
from tests.arserver.processes import ServerProcess
from tests.arserver.support import tokens_for

#: How long a client waits for an answer: a deadline, not a measurement.
DEADLINE_S = 20.0
CLOSE = "Connection: close\r\n"


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ServerProcess, str]]:
    folder = tmp_path_factory.mktemp("serve-limits")
    settings = Settings(data_dir=folder / "data")
    (viewer,) = tokens_for(settings, "viewer")
    server = ServerProcess({"ARSERVER_DATA_DIR": str(settings.data_dir)}, folder / "serve.log")
    server.start()
    try:
        yield server, viewer
    finally:
        server.stop()


def exchange(server: ServerProcess, head: str) -> bytes:
    """Send one request head on a new connection; everything the server sends until it closes
    the connection or the deadline passes (then the test fails)."""
    port = int(server.url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=DEADLINE_S) as connection:
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            connection.sendall(head.encode("latin-1"))  # refused midway: the answer still counts
        received = b""
        while True:
            try:
                chunk = connection.recv(65536)
            except TimeoutError:
                pytest.fail(f"no answer within {DEADLINE_S:g} s; received {received[:120]!r}")
            except ConnectionResetError:
                return received
            if not chunk:
                return received
            received += chunk
            if b"\r\n\r\n" in received and received.startswith(b"HTTP/1.1 101"):
                return received  # an accepted WebSocket: the head is the answer


def upgrade(target: str, extra: str = "") -> str:
    key = base64.b64encode(os.urandom(16)).decode("ascii")
    return (
        f"GET {target} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
        f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
        f"{extra}\r\n"
    )


def status_of(received: bytes) -> int:
    assert received.startswith(b"HTTP/1.1 "), received[:120]
    return int(received[9:12])


@pytest.mark.parametrize("padding", [8 * 1024, 8 * 1024 + 100, 12 * 1024, 64 * 1024, 1 << 20])
def test_a_websocket_upgrade_with_a_long_url_is_refused_promptly(
    served: tuple[ServerProcess, str], padding: int
) -> None:
    server, viewer = served
    received = exchange(server, upgrade(f"/api/v1/live?access_token={viewer}&x={'a' * padding}"))
    assert 400 <= status_of(received) < 500


def test_a_websocket_upgrade_with_many_headers_is_refused_promptly(
    served: tuple[ServerProcess, str],
) -> None:
    server, viewer = served
    many = "".join(f"X-H{k}: v\r\n" for k in range(200))
    received = exchange(server, upgrade(f"/api/v1/live?access_token={viewer}", many))
    assert 400 <= status_of(received) < 500


def test_an_upgrade_websockets_cannot_use_is_closed_promptly(
    served: tuple[ServerProcess, str],
) -> None:
    server, viewer = served
    head = upgrade(f"/api/v1/live?access_token={viewer}", "Transfer-Encoding: chunked\r\n")
    received = exchange(server, head + "0\r\n\r\n")  # a clean close or a refusal, not silence
    assert received == b"" or 400 <= status_of(received) < 500


def test_plain_requests_with_long_urls_are_answered_too(served: tuple[ServerProcess, str]) -> None:
    server, _ = served
    for padding in (8 * 1024, 64 * 1024, 1 << 20):
        head = f"GET /healthz?x={'a' * padding} HTTP/1.1\r\nHost: 127.0.0.1\r\n{CLOSE}\r\n"
        assert status_of(exchange(server, head)) in (200, 400, 414, 431)


def test_a_websocket_with_an_ordinary_url_is_still_accepted(
    served: tuple[ServerProcess, str],
) -> None:
    server, viewer = served
    received = exchange(server, upgrade(f"/api/v1/live?access_token={viewer}&x={'a' * 2000}"))
    assert status_of(received) == 101
