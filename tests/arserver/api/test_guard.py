"""What is refused before a byte of the body is read: writes without a valid token, and bodies
over their route's limit, declared or chunked."""

from __future__ import annotations

import select
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from arserver.config import Settings
from arserver.security.tokens import create_token
from arserver.store.database import open_database
from tests.arserver.processes import ServerProcess
from tests.arserver.support import auth

HUNDRED_MB = 100 * 1024 * 1024


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[ServerProcess, str]]:
    """A real ``arserver serve`` on SQLite, and an ingest token for it."""
    settings = Settings(data_dir=tmp_path / "data")
    engine = open_database(settings)
    secret, _ = create_token(engine, "ingest")
    engine.dispose()
    process = ServerProcess({"ARSERVER_DATA_DIR": str(settings.data_dir)}, tmp_path / "log")
    process.start()
    try:
        yield process, secret
    finally:
        process.stop()


def answer_to_headers_alone(url: str, path: str, headers: dict[str, str]) -> tuple[int, bytes]:
    """Send a request's head that announces a 100 MB body, send none of it, and read what
    the server answers (status, body); the server must not wait for the body."""
    host, port = url.removeprefix("http://").split(":")
    lines = [f"POST {path} HTTP/1.1", f"Host: {host}", f"Content-Length: {HUNDRED_MB}"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    with socket.create_connection((host, int(port)), timeout=10) as connection:
        connection.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("ascii"))
        reply = b""
        while b"\r\n\r\n" not in reply or not reply.rstrip().endswith(b"}"):
            chunk = connection.recv(65536)  # times out (fails) if the server waits for a body
            if not chunk:
                break
            reply += chunk
    head, _, body = reply.partition(b"\r\n\r\n")
    return int(head.split(b" ")[1]), body


@pytest.mark.parametrize(
    ("headers", "detail"),
    [
        ({}, b"a token is required"),
        ({"Authorization": "Bearer ars_not-a-token"}, b"invalid or revoked token"),
    ],
)
def test_an_unauthenticated_write_is_refused_before_its_body_arrives(
    server: tuple[ServerProcess, str], headers: dict[str, str], detail: bytes
) -> None:
    process, _ = server
    status, body = answer_to_headers_alone(process.url, "/api/v1/observations", headers)
    assert status == 401
    assert detail in body


def test_a_declared_oversize_body_is_refused_before_it_arrives(
    server: tuple[ServerProcess, str],
) -> None:
    process, secret = server
    headers = {"Authorization": f"Bearer {secret}", "Content-Type": "application/json"}
    status, body = answer_to_headers_alone(process.url, "/api/v1/observations", headers)
    assert status == 413
    assert b"larger than" in body


def test_an_anonymous_write_with_a_token_in_the_query_is_let_through(client: TestClient) -> None:
    token = auth(client, "ingest")["Authorization"].removeprefix("Bearer ")
    response = client.post(f"/api/v1/observations?access_token={token}", json={"observations": []})
    assert response.status_code == 200, response.text


def test_a_chunked_json_body_is_cut_off_at_its_limit(client: TestClient) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"observations": ['
        for _ in range(20_000):  # about 10 MB, over the 8 MiB of this route
            yield (
                b'{"sensor": "s", "time": "2026-05-01T12:00:00Z", "value": 1.0, "id": "'
                + (b"x" * 420)
                + b'"},'
            )
        yield b"]}"

    headers = {**auth(client, "ingest"), "Content-Type": "application/json"}
    response = client.post("/api/v1/observations", content=chunks(), headers=headers)
    assert response.status_code == 413
    assert "larger than" in response.json()["detail"]


def test_a_chunked_upload_is_cut_off_at_the_upload_limit(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data")
    engine = open_database(settings)
    secret, _ = create_token(engine, "gis")
    engine.dispose()
    env = {"ARSERVER_DATA_DIR": str(settings.data_dir), "ARSERVER_MAX_UPLOAD_MIB": "1"}
    process = ServerProcess(env, tmp_path / "log")
    process.start()
    host, port = process.url.removeprefix("http://").split(":")
    boundary = "arserverboundary"
    head = (
        f"POST /api/v1/assets HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {secret}\r\n"
        f"Content-Type: multipart/form-data; boundary={boundary}\r\n"
        "Transfer-Encoding: chunked\r\n\r\n"
    )
    part = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="big.xyz"\r\n'
        "Content-Type: text/plain\r\n\r\n"
    ).encode()
    points = b"1 2 3\n" * 10_000  # 60 kB a chunk; 400 chunks would be 24 MB
    sent = 0
    try:
        with socket.create_connection((host, int(port)), timeout=10) as connection:
            connection.sendall(head.encode("ascii"))
            connection.sendall(b"%x\r\n%s\r\n" % (len(part), part))
            try:
                while sent < 400:
                    readable, _, _ = select.select([connection], [], [], 0)
                    if readable:
                        break  # the server answered before the upload ended
                    connection.sendall(b"%x\r\n%s\r\n" % (len(points), points))
                    sent += 1
            except (BrokenPipeError, ConnectionResetError):
                pass  # it stopped reading
            reply = connection.recv(65536)
    finally:
        process.stop()
    assert reply.startswith(b"HTTP/1.1 413"), reply[:200]
    assert sent < 100, f"{sent} chunks of 60 kB went in before the refusal"
