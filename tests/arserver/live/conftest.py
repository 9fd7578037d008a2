"""A running server for the live tests that talk to it over real sockets."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from arserver.config import Settings
from tests.arserver.support import Live


@pytest.fixture
def live(settings: Settings) -> Iterator[Live]:
    """``arserver``'s application serving on a free port of 127.0.0.1, with tokens."""
    running = Live(settings)
    yield running
    running.close()
