"""Car-park feed sources: where a feed's documents are and how to read them into one batch.

A :class:`FeedSource` names an SPDP document (an index, a static or a dynamic document) or a
DATEX II publication (a table or a combined publication, and optionally a separate status
publication), together with the fetch that gets its bytes. The CLI builds sources on the
operator's files and URLs with :func:`~arserver.ingest.feed_fetch.fetch`; the server builds the
configured ones with :func:`polled_sources`, whose fetch reaches public http(s) addresses only
(unless private ones are allowed).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from urllib.parse import urlsplit, urlunsplit

from arserver.config import ParkingFeed
from arserver.ingest.datex2 import read_datex2
from arserver.ingest.feed_fetch import fetch, fetch_public, is_url
from arserver.ingest.parking_feeds import FeedBatch, FeedError, merge
from arserver.ingest.spdp import read_spdp

KINDS = ("spdp", "datex2")


@dataclass(frozen=True)
class FeedSource:
    """One feed: ``kind`` "spdp" or "datex2", ``location`` a file path or URL, ``status`` a
    separate DATEX II status publication (datex2 only), ``fetch`` what gets their bytes (it
    raises FeedError for a document it cannot get)."""

    kind: str
    location: str
    status: str | None = None
    fetch: Callable[[str], bytes] = field(default=fetch, compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise FeedError(f"unknown feed kind {self.kind!r}: expected spdp or datex2")
        if self.status is not None and self.kind != "datex2":
            raise FeedError("only a DATEX II feed has a separate status publication")

    @property
    def source(self) -> str:
        """The standard, as the car parks of this feed record it."""
        return self.kind

    @property
    def name(self) -> str:
        """The feed for logs and messages: URLs without their query (which may hold a key)."""
        shown = _shown(self.location)
        return f"{self.kind}:{shown}" + (f"|{_shown(self.status)}" if self.status else "")

    def read(self, capacities: Mapping[str, int] | None = None) -> FeedBatch:
        """The feed's car parks and statuses. ``capacities``: car-park id -> capacity known
        from before, for a DATEX II status publication that gives only occupied spaces or a
        percentage (the capacities in the table publication read here take precedence).
        FeedError when a document as a whole cannot be fetched or used. URLs in the problem
        lines and in the error's message are shown without their query."""
        try:
            batch = self._read(capacities)
        except FeedError as exc:
            raise FeedError(without_queries(str(exc))) from None
        return replace(batch, problems=[without_queries(line) for line in batch.problems])

    def _read(self, capacities: Mapping[str, int] | None) -> FeedBatch:
        if self.kind == "spdp":
            return read_spdp(self.location, self.fetch)
        table = read_datex2(self.fetch(self.location), capacities=capacities)
        if self.status is None:
            return table
        known = dict(capacities or {})
        known.update({c.id: c.capacity for c in table.car_parks if c.capacity is not None})
        try:
            status = read_datex2(self.fetch(self.status), capacities=known)
        except FeedError as exc:
            raise FeedError(f"status publication: {exc}") from None
        return merge(table, status)


def polled_sources(
    feeds: Sequence[ParkingFeed],
    *,
    allow_private: bool = False,
    timeout_s: float = 20.0,
) -> list[FeedSource]:
    """Sources for the feeds of ``ARSERVER_PARKING_FEEDS``: fetched with
    :func:`~arserver.ingest.feed_fetch.fetch_public` (http(s) only; public addresses only
    unless ``allow_private``)."""
    get = functools.partial(fetch_public, allow_private=allow_private, timeout_s=timeout_s)
    return [FeedSource(f.kind, f.url, f.status_url, fetch=get) for f in feeds]


_QUERY = re.compile(r"(https?://[^\s?#'\"]+)[?#][^\s'\"]*", re.IGNORECASE)


def without_queries(text: str) -> str:
    """``text`` with the query and fragment of every http(s) URL in it left out."""
    return _QUERY.sub(r"\1", text)


def _shown(location: str) -> str:
    if not is_url(location):
        return location
    parts = urlsplit(location)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path, "", ""))
