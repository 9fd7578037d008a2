"""Polling configured car-park feeds from a loopback HTTP server, the settings that configure
it, and the refusal of private addresses unless they are allowed."""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError
from sqlalchemy import Engine

from arserver.config import ParkingFeed, Settings
from arserver.ingest.feed_fetch import fetch_public, public_address
from arserver.ingest.parking_feeds import FeedError
from arserver.ingest.parking_sources import polled_sources
from arserver.services.observations import ObservationWriter
from arserver.services.parking import ParkingService
from arserver.services.parking_feeds import FeedImporter
from arserver.services.parking_poller import FeedPoller
from arserver.services.sensors import SensorService

#: The poller sits above the database; the importer's tests cover both backends.
BACKENDS = ("sqlite",)

DATA = Path(__file__).resolve().parents[2] / "data" / "parking"


@dataclass
class Server:
    url: str
    requests: list[str]


@pytest.fixture(scope="module")
def http_server() -> Iterator[Server]:
    """A loopback HTTP server of the files under tests/data/parking; anything else is 404."""
    requests: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            requests.append(self.path)
            file = (DATA / self.path.lstrip("/")).resolve()
            if file.is_file() and DATA in file.parents:
                body = file.read_bytes()
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
            else:
                self.send_error(404)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield Server(f"http://127.0.0.1:{server.server_address[1]}", requests)
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


def _importer(engine: Engine) -> tuple[FeedImporter, ParkingService]:
    parking = ParkingService(engine)
    writer = ObservationWriter(engine, parking=parking)
    return FeedImporter(parking, SensorService(engine), writer), parking


def test_poller_imports_every_feed_at_once_and_goes_on_after_a_failing_one(
    engine: Engine, http_server: Server, caplog: pytest.LogCaptureFixture
) -> None:
    importer, parking = _importer(engine)
    base = http_server.url
    feeds = polled_sources(
        [
            ParkingFeed("spdp", f"{base}/spdp/missing.json?key=secret"),
            ParkingFeed("spdp", f"{base}/spdp/index.json"),
            ParkingFeed("datex2", f"{base}/datex2/v3_table.xml", f"{base}/datex2/v3_status.xml"),
        ],
        allow_private=True,
    )
    poller = FeedPoller(importer, feeds, interval_s=3600)
    stop = threading.Event()
    caplog.set_level(logging.INFO, logger="arserver.services.parking_poller")
    thread = threading.Thread(target=poller.run, args=(stop,), daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while len(parking.places(kind="car_park")) < 6 and time.monotonic() < deadline:
        time.sleep(0.05)
    stop.set()
    thread.join(timeout=10)
    assert not thread.is_alive()
    assert len(parking.places(kind="car_park")) == 6
    assert parking.get("datex2:NL-AMF-STADHUISPLEIN").place["capacity"] == 580
    failed = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(failed) == 1
    assert "HTTP 404" in failed[0].getMessage()
    assert "secret" not in caplog.text  # a feed's query is left out of the log
    assert any("3 stored" in r.getMessage() for r in caplog.records)
    # the index's documents came from the same server, relative to the index
    assert any(path.startswith("/spdp/dynamic/") for path in http_server.requests)


def test_private_addresses_are_refused_unless_allowed(http_server: Server) -> None:
    before = len(http_server.requests)
    (feed,) = polled_sources([ParkingFeed("spdp", f"{http_server.url}/spdp/index.json")])
    with pytest.raises(FeedError, match="loopback, link-local or private address"):
        feed.read()
    port = http_server.url.rsplit(":", 1)[1]
    with pytest.raises(FeedError, match=r"localhost .*127\.0\.0\.1|localhost .*::1"):
        fetch_public(f"http://localhost:{port}/spdp/index.json")
    assert len(http_server.requests) == before  # nothing reached the server
    (allowed,) = polled_sources(
        [ParkingFeed("spdp", f"{http_server.url}/spdp/index.json")], allow_private=True
    )
    assert len(allowed.read().car_parks) == 3


def test_the_guarded_fetch_connects_to_the_address_it_checked(
    http_server: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    checked: list[str] = []

    def loopback_counts_as_public(address: str) -> bool:
        checked.append(address)
        return True

    monkeypatch.setattr("arserver.ingest.feed_fetch.public_address", loopback_counts_as_public)
    port = http_server.url.rsplit(":", 1)[1]
    body = fetch_public(f"http://localhost:{port}/spdp/index.json", timeout_s=5)
    assert b"ParkingFacilities" in body
    assert "127.0.0.1" in checked


def test_a_polled_feed_never_reads_files() -> None:
    for source in (str(DATA / "spdp" / "index.json"), "file:///etc/passwd", "ftp://x.nl/f"):
        with pytest.raises(FeedError, match="must be an http"):
            fetch_public(source, allow_private=True)


def test_a_public_name_that_resolves_to_a_private_address_is_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    asked: list[str] = []

    def resolve(host: str, port: int, *args: Any, **kwargs: Any) -> list[Any]:
        asked.append(host)
        return [
            (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("145.97.39.155", port)),
            (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("10.20.30.40", port)),
        ]

    monkeypatch.setattr(socket, "getaddrinfo", resolve)
    with pytest.raises(FeedError, match=r"10\.20\.30\.40"):
        fetch_public("https://parkeren.gemeente.example/spdp/index.json", timeout_s=2)
    assert asked == ["parkeren.gemeente.example"]


@pytest.mark.parametrize(
    ("address", "public"),
    [
        ("127.0.0.1", False), ("10.1.2.3", False), ("172.16.0.1", False),
        ("192.168.1.1", False), ("169.254.169.254", False), ("100.64.0.1", False),
        ("0.0.0.0", False), ("224.0.0.1", False), ("::1", False), ("fe80::1%eth0", False),
        ("fd00::1", False), ("::ffff:127.0.0.1", False), ("::ffff:10.0.0.1", False),
        ("145.97.39.155", True), ("2001:610:1908::1", True),
    ],
)  # fmt: skip
def test_public_addresses(address: str, public: bool) -> None:
    assert public_address(address) is public


def test_feed_settings_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    assert Settings().parking_feeds == []
    assert Settings().parking_feed_interval_s == 300
    assert Settings().parking_feeds_allow_private is False
    monkeypatch.setenv(
        "ARSERVER_PARKING_FEEDS",
        " spdp:https://npr.example/index.json , datex2:https://d.example/t.xml|https://d.example/s.xml,",
    )
    monkeypatch.setenv("ARSERVER_PARKING_FEED_INTERVAL_S", "60")
    monkeypatch.setenv("ARSERVER_PARKING_FEEDS_ALLOW_PRIVATE", "true")
    settings = Settings()
    assert settings.parking_feeds == [
        ParkingFeed("spdp", "https://npr.example/index.json"),
        ParkingFeed("datex2", "https://d.example/t.xml", "https://d.example/s.xml"),
    ]
    assert settings.parking_feed_interval_s == 60
    assert settings.parking_feeds_allow_private is True
    for bad in ("https://x.example/i.json", "spdp:file:///etc/passwd", "spdp:https://a|https://b",
                "wfs:https://x.example", "datex2:https://t.example|ftp://s.example"):  # fmt: skip
        monkeypatch.setenv("ARSERVER_PARKING_FEEDS", bad)
        with pytest.raises(ValidationError, match="parking feed 1"):
            Settings()
    monkeypatch.setenv("ARSERVER_PARKING_FEEDS", "")
    monkeypatch.setenv("ARSERVER_PARKING_FEED_INTERVAL_S", "10")
    with pytest.raises(ValidationError, match="greater than or equal to 30"):
        Settings()
