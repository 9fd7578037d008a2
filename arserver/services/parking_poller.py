"""Polling the configured car-park feeds: each one is read and imported every interval.

:class:`FeedPoller` runs in a thread of the server (``ARSERVER_PARKING_FEEDS``,
``ARSERVER_PARKING_FEED_INTERVAL_S``). A feed that cannot be fetched or read, or whose import
fails, is logged and tried again at the next round; the other feeds go on, and the loop never
raises. The feeds are objects with a ``source`` ("spdp", "datex2"), a ``name`` for the log and
a ``read(capacities)`` that gives a batch (``arserver.ingest.parking_sources.FeedSource``).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Mapping, Sequence
from typing import Protocol

from arserver.errors import ArserverError
from arserver.services.parking_feeds import FeedBatchLike, FeedImporter, FeedSummary

log = logging.getLogger(__name__)


class PolledFeed(Protocol):
    """A feed the poller reads (see the module docstring)."""

    @property
    def source(self) -> str: ...
    @property
    def name(self) -> str: ...
    def read(self, capacities: Mapping[str, int] | None = None) -> FeedBatchLike: ...


class FeedPoller:
    """Imports each of ``feeds`` through ``importer`` every ``interval_s`` seconds (counted
    from the start of one round to the start of the next; a round that takes longer is
    followed at once by the next)."""

    def __init__(
        self, importer: FeedImporter, feeds: Sequence[PolledFeed], interval_s: float
    ) -> None:
        if not interval_s > 0:
            raise ValueError("the polling interval must be positive")
        self.importer = importer
        self.feeds = list(feeds)
        self.interval_s = interval_s

    def poll_once(self, stop: threading.Event | None = None) -> list[FeedSummary]:
        """Read and import every feed once (the ones left when ``stop`` is set are not); the
        summaries of those that worked."""
        summaries: list[FeedSummary] = []
        for feed in self.feeds:
            if stop is not None and stop.is_set():
                break
            try:
                batch = feed.read(self.importer.capacities(feed.source))
                summary = self.importer.import_batch(batch, feed.source)
            except ArserverError as exc:
                log.warning("parking feed %s failed: %s", feed.name, exc)
                continue
            except Exception:
                log.exception("parking feed %s failed", feed.name)
                continue
            log.info("parking feed %s: %s", feed.name, summary.line())
            summaries.append(summary)
        return summaries

    def run(self, stop: threading.Event) -> None:
        """Poll at once and then every interval until ``stop`` is set; never raises."""
        if not self.feeds:
            return
        while not stop.is_set():
            started = time.monotonic()
            try:
                self.poll_once(stop)
            except Exception:  # poll_once handles each feed; this guards the loop itself
                log.exception("parking feeds: polling round failed")
            stop.wait(max(0.0, self.interval_s - (time.monotonic() - started)))
