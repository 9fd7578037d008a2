"""Helpers shared by tests of every package (import them; never from conftest.py)."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def wait_until(
    condition: Callable[[], T | None], timeout_s: float = 30.0, what: str = "the condition"
) -> T:
    """Poll ``condition`` until it returns something truthy (which is returned); fail with
    ``what`` after ``timeout_s``. Synchronisation by condition and deadline, never by a sleep
    of a guessed length."""
    deadline = time.monotonic() + timeout_s
    delay = 0.005
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} did not happen within {timeout_s:g} s")
        time.sleep(delay)
        delay = min(delay * 2, 0.2)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
