"""Helpers shared by tests of every package (import them; never from conftest.py)."""

from __future__ import annotations

import socket
import subprocess
import time
import urllib.request
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def wait_until(
    condition: Callable[[], T | None],
    timeout_s: float = 30.0,
    what: str = "the condition",
    *,
    max_interval_s: float = 0.2,
) -> T:
    """Poll ``condition`` until it returns something truthy (which is returned); fail with
    ``what`` after ``timeout_s``. Synchronisation by condition and deadline, never by a sleep
    of a guessed length. The polls start 5 ms apart and back off to ``max_interval_s``."""
    deadline = time.monotonic() + timeout_s
    delay = min(0.005, max_interval_s)
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} did not happen within {timeout_s:g} s")
        time.sleep(delay)
        delay = min(delay * 2, max_interval_s)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def answers(url: str) -> bool:
    """Whether ``url`` answers 200 now (refused, timed out or any other status: no)."""
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return bool(response.status == 200)
    except OSError:
        return False


def accepts_connections(port: int, host: str = "127.0.0.1") -> bool:
    """Whether something listens on ``host:port`` now."""
    try:
        socket.create_connection((host, port), timeout=1).close()
    except OSError:
        return False
    return True


def wait_until_ready(
    ready: Callable[[], bool],
    process: subprocess.Popen[bytes],
    what: str,
    timeout_s: float = 30.0,
    output: Callable[[], str] = lambda: "",
) -> None:
    """Wait until ``ready()`` while ``process`` runs: a process that exits first fails the
    test at once, with ``output()`` (e.g. its log) as the message."""

    def up() -> bool:
        if ready():
            return True
        assert process.poll() is None, f"{what} exited while starting:\n{output()}"
        return False

    wait_until(up, timeout_s, f"{what} becoming ready", max_interval_s=0.1)
