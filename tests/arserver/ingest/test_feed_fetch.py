"""Fetching feed documents: local files and http URLs on a loopback server, bounded in size."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from arserver.ingest.feed_fetch import fetch, is_url, resolve
from arserver.ingest.parking_feeds import FeedError
from arserver.ingest.spdp import read_spdp

SPDP = Path(__file__).resolve().parents[2] / "data" / "parking" / "spdp"

BIG = 5000  # bytes of the /big document; tests fetch it with a smaller bound


@dataclass
class Server:
    url: str
    requests: list[str]


@pytest.fixture(scope="module")
def http_server() -> Iterator[Server]:
    """A loopback HTTP server: /spdp/... serves the SPDP samples, /big a 5,000-byte body with a
    Content-Length, /big-chunked the same without one, /moved redirects, anything else is 404."""
    requests: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            requests.append(self.path)
            if self.path.startswith("/spdp/"):
                file = SPDP / self.path.removeprefix("/spdp/")
                if file.is_file():
                    self._send(200, file.read_bytes())
                    return
            if self.path == "/big":
                self._send(200, b"x" * BIG)
                return
            if self.path == "/big-chunked":
                self.send_response(200)
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                try:
                    for _ in range(BIG // 500):
                        self.wfile.write(b"1f4\r\n" + b"y" * 500 + b"\r\n")
                    self.wfile.write(b"0\r\n\r\n")
                except OSError:  # the client stopped reading at its bound
                    self.close_connection = True
                return
            if self.path == "/moved":
                self.send_response(302)
                self.send_header("Location", "/spdp/index.json")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self._send(404, b"not here")

        def _send(self, status: int, body: bytes) -> None:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            try:
                self.wfile.write(body)
            except OSError:  # the client stopped reading at its bound
                self.close_connection = True

        def log_message(self, format: str, *args: Any) -> None:
            pass

    class Quiet(ThreadingHTTPServer):
        def handle_error(self, request: Any, client_address: Any) -> None:
            """Clients that stop reading at their bound reset the connection: expected."""

    httpd = Quiet(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield Server(f"http://127.0.0.1:{httpd.server_address[1]}", requests)
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=10)


@pytest.fixture
def server(http_server: Server) -> Server:
    """The module's server with an empty request log."""
    http_server.requests.clear()
    return http_server


@pytest.fixture(autouse=True)
def no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    """Loopback requests never go through a proxy configured on the machine."""
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy"):
        monkeypatch.delenv(name, raising=False)


def test_a_local_file_is_read_whole(tmp_path: Path) -> None:
    path = tmp_path / "feed.json"
    path.write_bytes(b'{"ParkingFacilities": []}')
    assert fetch(str(path)) == b'{"ParkingFacilities": []}'
    assert fetch(path.as_uri()) == b'{"ParkingFacilities": []}'


def test_a_local_file_over_the_bound_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "big.json"
    path.write_bytes(b"x" * 101)
    assert fetch(str(path), max_bytes=101) == b"x" * 101
    with pytest.raises(FeedError, match="larger than 100 bytes"):
        fetch(str(path), max_bytes=100)


def test_a_missing_file_or_a_folder_is_a_feed_error(tmp_path: Path) -> None:
    with pytest.raises(FeedError, match="not found"):
        fetch(str(tmp_path / "absent.json"))
    with pytest.raises(FeedError, match="folder"):
        fetch(str(tmp_path))


def test_an_unsupported_scheme_is_refused() -> None:
    with pytest.raises(FeedError, match="unsupported feed scheme 'ftp'"):
        fetch("ftp://example.org/feed.xml")


def test_an_http_url_is_fetched(server: Server) -> None:
    assert fetch(f"{server.url}/spdp/index.json") == (SPDP / "index.json").read_bytes()


def test_a_redirect_is_followed(server: Server) -> None:
    assert fetch(f"{server.url}/moved") == (SPDP / "index.json").read_bytes()
    assert server.requests == ["/moved", "/spdp/index.json"]


def test_a_404_answer_is_a_feed_error(server: Server) -> None:
    with pytest.raises(FeedError, match="answered HTTP 404"):
        fetch(f"{server.url}/nothing.json")


def test_a_body_over_the_bound_is_refused_by_its_declared_length(server: Server) -> None:
    assert len(fetch(f"{server.url}/big", max_bytes=BIG)) == BIG
    with pytest.raises(FeedError, match=f"larger than {BIG - 1} bytes"):
        fetch(f"{server.url}/big", max_bytes=BIG - 1)


def test_a_streamed_body_over_the_bound_is_refused_while_reading(server: Server) -> None:
    assert len(fetch(f"{server.url}/big-chunked", max_bytes=BIG)) == BIG
    with pytest.raises(FeedError, match="larger than 1000 bytes"):
        fetch(f"{server.url}/big-chunked", max_bytes=1000)


def test_a_server_that_is_not_there_is_a_feed_error() -> None:
    with socket.socket() as bound:  # bound, never listening: connections are refused
        bound.bind(("127.0.0.1", 0))
        port = bound.getsockname()[1]
        with pytest.raises(FeedError, match="could not be fetched"):
            fetch(f"http://127.0.0.1:{port}/feed.json", timeout_s=5)


def test_relative_references_resolve_against_urls_and_paths() -> None:
    assert resolve("https://npropendata.rdw.nl/parkingdata/v2/", "static/abc") == (
        "https://npropendata.rdw.nl/parkingdata/v2/static/abc"
    )
    assert resolve("http://host/feeds/index.json", "../dynamic/a.json") == (
        "http://host/dynamic/a.json"
    )
    assert resolve("/data/spdp/index.json", "static/a.json") == "/data/spdp/static/a.json"
    assert resolve("/data/spdp/index.json", "https://x.nl/a.json") == "https://x.nl/a.json"
    assert resolve("file:///data/spdp/index.json", "dynamic/a.json") == "/data/spdp/dynamic/a.json"
    assert resolve("index.json", "static/a.json") == "static/a.json"


def test_a_remote_document_cannot_refer_to_local_files() -> None:
    with pytest.raises(FeedError, match="only refer to http"):
        resolve("https://host/index.json", "file:///etc/passwd")
    assert resolve("https://host/index.json", "/etc/passwd") == "https://host/etc/passwd"
    with pytest.raises(FeedError, match="empty reference"):
        resolve("https://host/index.json", "  ")


def test_urls_and_paths_are_told_apart() -> None:
    assert is_url("https://host/a.json")
    assert is_url("HTTP://host/a.json")
    assert not is_url("/data/a.json")
    assert not is_url("C:\\feeds\\a.json")


def test_an_spdp_index_over_http_reads_every_facility(server: Server) -> None:
    batch = read_spdp(f"{server.url}/spdp/index.json", fetch)
    assert len(batch.car_parks) == 3
    assert len(batch.statuses) == 3
    assert batch.problems == []
    assert sorted(server.requests)[:2] == [
        "/spdp/dynamic/3f1c2a9e-5b7d-4e21-9a63-0c8e7d54b1a2.json",
        "/spdp/dynamic/8a0d6b3c-1e4f-4c5a-b7d2-9f3e1a6c8b04.json",
    ]
    assert len(server.requests) == 7
