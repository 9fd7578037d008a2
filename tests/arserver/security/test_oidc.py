"""Staff sign-in with OpenID Connect bearer JWTs: a real issuer on loopback (discovery and JWKS
over HTTP, with RSA and EC keys made here), tokens checked through the real application, the
live WebSocket and the JWKS cache's refetch limits."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from starlette.websockets import WebSocketDisconnect
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from arserver.app import create_app
from arserver.commands.server import start_server
from arserver.config import Settings
from arserver.security import oidc as oidc_module
from arserver.security.oidc import (
    JWKS_MAX_AGE_S,
    MAX_JWT_CHARS,
    OidcConfigError,
    OidcVerifier,
    RoleMapping,
    record_id,
    verifier_from_settings,
)
from arserver.security.tokens import Authenticator
from tests.arserver.support import token
from tests.support import wait_until

#: SQLite only: a JWT is checked above the database.
BACKENDS = ("sqlite",)

AUDIENCE = "arserver"
ROLES = {"arserver-admin": "admin", "arserver-gis": "gis", "arserver-viewer": "viewer"}
SENSOR = {"id": "no2-1", "name": "NO2", "kind": "no2", "unit": "ug/m3", "location": [4.9, 52.37]}


# -- keys and a small issuer on loopback ----------------------------------------------------


@dataclass(frozen=True)
class Key:
    kid: str
    alg: str
    private: Any

    def jwk(self) -> dict[str, Any]:
        algorithm = jwt.get_algorithm_by_name(self.alg)
        data: dict[str, Any] = json.loads(algorithm.to_jwk(self.private.public_key()))
        return {**data, "kid": self.kid, "use": "sig", "alg": self.alg}

    def public_pem(self) -> bytes:
        return bytes(
            self.private.public_key().public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
        )


@pytest.fixture(scope="module")
def keys() -> dict[str, Key]:
    """Two RSA keys (one to rotate in later) and an EC P-256 key."""
    return {
        "rsa-1": Key("rsa-1", "RS256", rsa.generate_private_key(65537, 2048)),
        "rsa-2": Key("rsa-2", "RS256", rsa.generate_private_key(65537, 2048)),
        "ec-1": Key("ec-1", "ES256", ec.generate_private_key(ec.SECP256R1())),
    }


@dataclass
class Issuer:
    """An OpenID Connect issuer's discovery document and JWKS on 127.0.0.1, serving the keys
    in ``published``; ``hits`` counts requests per path; ``down`` makes it answer 503.
    ``stall`` makes its JWKS hang: ``"hang"`` answers nothing until ``release`` is set,
    ``"trickle"`` sends headers a byte at a time (for minutes); ``stalling`` is set once a
    request stalls."""

    server: ThreadingHTTPServer
    published: list[Key]
    hits: dict[str, int] = field(default_factory=dict)
    down: bool = False
    claimed_issuer: str | None = None  # what discovery says the issuer is (default: itself)
    lock: threading.Lock = field(default_factory=threading.Lock)
    stall: str | None = None
    stalling: threading.Event = field(default_factory=threading.Event)
    release: threading.Event = field(default_factory=threading.Event)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/realms/gemeente"

    @property
    def jwks_url(self) -> str:
        return self.url + "/protocol/openid-connect/certs"

    def jwks_hits(self) -> int:
        with self.lock:
            return self.hits.get("/realms/gemeente/protocol/openid-connect/certs", 0)

    def answer(self, path: str) -> tuple[int, bytes]:
        with self.lock:
            self.hits[path] = self.hits.get(path, 0) + 1
            if self.down:
                return 503, b"{}"
            published = list(self.published)
        if path == "/realms/gemeente/.well-known/openid-configuration":
            document = {"issuer": self.claimed_issuer or self.url, "jwks_uri": self.jwks_url}
            return 200, json.dumps(document).encode()
        if path == "/realms/gemeente/protocol/openid-connect/certs":
            return 200, json.dumps({"keys": [key.jwk() for key in published]}).encode()
        return 404, b"{}"


@pytest.fixture
def issuer(keys: dict[str, Key]) -> Iterator[Issuer]:
    """A running issuer publishing ``rsa-1`` and ``ec-1``."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if running.stall is not None and self.path.endswith("/certs"):
                running.stalling.set()
                if running.stall == "trickle":
                    self.trickle()
                    return
                running.release.wait(60)
            status, body = running.answer(self.path)
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def trickle(self) -> None:
            """A status line, then a header one byte per 50 ms, for up to 3 minutes."""
            try:
                self.wfile.write(b"HTTP/1.1 200 OK\r\nX-Slow: ")
                for _ in range(3600):
                    if running.release.wait(0.05):
                        return
                    self.wfile.write(b"a")
            except OSError:  # the client gave up
                return

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    running = Issuer(server, [keys["rsa-1"], keys["ec-1"]])
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield running
    finally:
        running.release.set()
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def with_oidc(settings: Settings, issuer: Issuer, **changes: Any) -> Settings:
    """``settings`` accepting the issuer's JWTs (keys found by discovery, Keycloak-like
    realm roles), without the limit on failed authentications (the tests here make many)."""
    oidc: dict[str, Any] = {
        "rate_auth_failures_per_min": 0,
        "oidc_issuer": issuer.url,
        "oidc_audience": AUDIENCE,
        "oidc_role_claim": "realm_access.roles",
        "oidc_roles": ROLES,
    }
    return settings.model_copy(update={**oidc, **changes})


@pytest.fixture
def oidc_client(settings: Settings, issuer: Issuer) -> Iterator[TestClient]:
    """The application (SQLite and PostgreSQL) accepting the issuer's JWTs."""
    with TestClient(create_app(with_oidc(settings, issuer))) as client:
        yield client


# -- tokens ---------------------------------------------------------------------------------


def claims(issuer: Issuer, role: str | None = "arserver-gis", **changes: Any) -> dict[str, Any]:
    now = int(time.time())
    base: dict[str, Any] = {
        "iss": issuer.url, "aud": [AUDIENCE, "account"], "sub": str(uuid.uuid4()),
        "exp": now + 300, "iat": now, "preferred_username": "j.jansen",
        "realm_access": {"roles": ["offline_access"] + ([role] if role else [])},
    }  # fmt: skip
    base.update(changes)
    return {name: value for name, value in base.items() if value is not None}


def mint(key: Key, body: dict[str, Any], **header: Any) -> str:
    return jwt.encode(body, key.private, algorithm=key.alg, headers={"kid": key.kid, **header})


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def handmade(header: dict[str, Any], body: dict[str, Any], secret: bytes | None) -> str:
    """A JWT put together by hand: HMAC-SHA256 with ``secret``, or no signature at all."""
    signing_input = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(body).encode())}"
    signature = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest() if secret else b""
    return f"{signing_input}.{b64(signature)}"


def bearer(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


# -- through the application ----------------------------------------------------------------


def test_rs256_and_es256_jwts_act_with_their_mapped_roles(
    oidc_client: TestClient, issuer: Issuer, keys: dict[str, Key]
) -> None:
    gis = mint(keys["rsa-1"], claims(issuer, "arserver-gis"))
    viewer = mint(keys["ec-1"], claims(issuer, "arserver-viewer"))
    created = oidc_client.post("/api/v1/sensors", json=SENSOR, headers=bearer(gis))
    assert created.status_code == 201, created.text
    refused = oidc_client.post("/api/v1/sensors", json=SENSOR | {"id": "x"}, headers=bearer(viewer))
    assert refused.status_code == 403, refused.text
    assert oidc_client.get("/api/v1/sensors/no2-1", headers=bearer(viewer)).status_code == 200
    by_query = oidc_client.get(f"/api/v1/sensors/no2-1?access_token={viewer}")
    assert by_query.status_code == 200, by_query.text


def test_our_own_tokens_keep_working_beside_jwts(oidc_client: TestClient) -> None:
    reply = oidc_client.post("/api/v1/sensors", json=SENSOR, headers=bearer(token(oidc_client)))
    assert reply.status_code == 201, reply.text


def refused_tokens(issuer: Issuer, keys: dict[str, Key]) -> dict[str, str]:
    rsa_1, ec_1 = keys["rsa-1"], keys["ec-1"]
    now = int(time.time())
    valid = mint(rsa_1, claims(issuer))
    head, _, signature = valid.split(".")
    forged_body = b64(json.dumps(claims(issuer, "arserver-admin")).encode())
    unknown = Key("not-published", "RS256", keys["rsa-2"].private)
    return {
        "expired beyond the leeway": mint(rsa_1, claims(issuer, exp=now - 120)),
        "not valid before a later time": mint(rsa_1, claims(issuer, nbf=now + 600)),
        "issued in the future": mint(rsa_1, claims(issuer, iat=now + 600)),
        "wrong audience": mint(rsa_1, claims(issuer, aud="another-app")),
        "no audience": mint(rsa_1, claims(issuer, aud=None)),
        "wrong issuer": mint(rsa_1, claims(issuer, iss="https://evil.example/realms/gemeente")),
        "no exp": mint(rsa_1, claims(issuer, exp=None)),
        "no sub": mint(rsa_1, claims(issuer, sub=None)),
        "alg none": handmade({"alg": "none", "kid": "rsa-1"}, claims(issuer), None),
        "HS256 signed with the public key": handmade(
            {"alg": "HS256", "kid": "rsa-1", "typ": "JWT"}, claims(issuer), rsa_1.public_pem()
        ),
        "unknown kid": mint(unknown, claims(issuer)),
        "no kid": jwt.encode(claims(issuer), rsa_1.private, algorithm="RS256"),
        "ES256 header on an RSA key": mint(Key("rsa-1", "ES256", ec_1.private), claims(issuer)),
        "tampered payload": f"{head}.{forged_body}.{signature}",
        "no mapped role": mint(ec_1, claims(issuer, role=None)),
        "an unmapped role only": mint(ec_1, claims(issuer, role="arserver-superuser")),
        "critical extension": mint(rsa_1, claims(issuer), crit=["exp"], exp=1),
        "garbage shaped like a JWT": "eyJhbGciOiJSUzI1NiJ9.bm90IGpzb24.c2lnbmF0dXJl",
        "three dots of nothing": "a.b.c",
        "oversized": mint(rsa_1, claims(issuer, padding="x" * MAX_JWT_CHARS)),
    }


def test_invalid_jwts_get_401_on_reads_writes_and_the_live_socket(
    oidc_client: TestClient, issuer: Issuer, keys: dict[str, Key]
) -> None:
    cases = refused_tokens(issuer, keys)
    writes = {
        name: oidc_client.post("/api/v1/sensors", json=SENSOR, headers=bearer(secret)).status_code
        for name, secret in cases.items()
    }
    reads = {
        name: oidc_client.get("/api/v1/sensors/no2-1", headers=bearer(secret)).status_code
        for name, secret in cases.items()
    }
    assert writes == dict.fromkeys(cases, 401)
    assert reads == dict.fromkeys(cases, 401)
    for name in ("alg none", "HS256 signed with the public key", "tampered payload"):
        url = f"/api/v1/live?access_token={cases[name]}"
        with pytest.raises(WebSocketDisconnect), oidc_client.websocket_connect(url) as ws:
            ws.receive_json()


def test_a_jwt_expired_or_not_yet_valid_within_the_leeway_is_accepted(
    oidc_client: TestClient, issuer: Issuer, keys: dict[str, Key]
) -> None:
    now = int(time.time())
    late = mint(keys["rsa-1"], claims(issuer, "arserver-viewer", exp=now - 20))
    early = mint(keys["ec-1"], claims(issuer, "arserver-viewer", nbf=now + 20, iat=now + 20))
    for secret in (late, early):
        reply = oidc_client.get("/api/v1/sensors/absent", headers=bearer(secret))
        assert reply.status_code == 404, reply.text  # past authentication: the sensor is unknown


def test_of_several_mapped_roles_the_most_capable_wins(
    oidc_client: TestClient, issuer: Issuer, keys: dict[str, Key]
) -> None:
    body = claims(issuer, None)
    body["realm_access"]["roles"] = ["arserver-viewer", "arserver-admin", "arserver-gis"]
    admin = mint(keys["rsa-1"], body)
    assert oidc_client.get("/api/v1/tokens", headers=bearer(admin)).status_code == 200


def test_the_live_socket_accepts_a_valid_jwt_and_the_token_watch_keeps_it(
    oidc_client: TestClient, issuer: Issuer, keys: dict[str, Key]
) -> None:
    viewer = mint(keys["ec-1"], claims(issuer, "arserver-viewer"))
    with oidc_client.websocket_connect(f"/api/v1/live?access_token={viewer}") as ws:
        assert ws.receive_json()["type"] == "welcome"
        app: Any = oidc_client.app
        assert app.state.tokens.close_invalid(app.state.hub) == 0  # judged by its exp
        ws.send_json({"type": "subscribe", "id": "s1", "area": {"bbox": [4, 52, 5, 53]}})
        assert ws.receive_json()["type"] == "snapshot"


def test_a_live_connection_ends_when_its_jwt_expires(
    tmp_path: Path, issuer: Issuer, keys: dict[str, Key]
) -> None:
    settings = with_oidc(
        Settings(data_dir=tmp_path / "data", embedded_worker=False), issuer, oidc_leeway_s=0
    )
    server, url = start_server(settings, 0)
    try:
        body = claims(issuer, "arserver-viewer", exp=int(time.time()) + 2)
        ws_url = (
            url.replace("http://", "ws://")
            + f"/api/v1/live?access_token={mint(keys['rsa-1'], body)}"
        )
        with connect(ws_url, open_timeout=10) as ws:
            assert json.loads(ws.recv(timeout=10))["type"] == "welcome"
            closed = until_closed(ws)
        assert closed.rcvd is not None
        assert closed.rcvd.code == 4003
    finally:
        server.stop()


def test_a_flood_of_unknown_kids_fetches_the_jwks_at_most_once_per_interval(
    oidc_client: TestClient, issuer: Issuer, keys: dict[str, Key]
) -> None:
    valid = mint(keys["rsa-1"], claims(issuer, "arserver-viewer"))
    assert oidc_client.get("/api/v1/sensors/absent", headers=bearer(valid)).status_code == 404
    assert issuer.jwks_hits() == 1
    for n in range(30):
        forged = mint(Key(f"kid-{n}", "RS256", keys["rsa-2"].private), claims(issuer))
        assert oidc_client.get("/api/v1/sensors/x", headers=bearer(forged)).status_code == 401
    assert issuer.jwks_hits() == 1  # the default interval (60 s) has not passed


# -- the verifier and its key cache (with a clock of our own) -------------------------------


def until_closed(ws: ClientConnection, timeout_s: float = 15) -> ConnectionClosed:
    """Read until the server closes the connection (fails after ``timeout_s``)."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            ws.recv(timeout=max(deadline - time.monotonic(), 0.01))
        except ConnectionClosed as closed:
            return closed


class Clock:
    """Monotonic seconds that move only when told."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def verifier(tmp_path: Path, issuer: Issuer, clock: Clock, **changes: Any) -> OidcVerifier:
    settings = with_oidc(Settings(data_dir=tmp_path / "data"), issuer, **changes)
    made = verifier_from_settings(settings, clock=clock)
    assert made is not None
    return made


def test_a_key_rotated_in_is_picked_up_after_the_refetch_interval(
    tmp_path: Path, issuer: Issuer, keys: dict[str, Key]
) -> None:
    clock = Clock()
    oidc = verifier(tmp_path, issuer, clock, oidc_jwks_refetch_s=30)
    assert oidc.verify(mint(keys["rsa-1"], claims(issuer))) is not None
    issuer.published.append(keys["rsa-2"])
    rotated = mint(keys["rsa-2"], claims(issuer))
    clock.now += 10
    assert oidc.verify(rotated) is None  # too soon after the last fetch to ask again
    assert issuer.jwks_hits() == 1
    clock.now += 25
    assert oidc.verify(rotated) is not None
    assert issuer.jwks_hits() == 2


def test_unknown_kids_refetch_once_per_interval_however_many_arrive(
    tmp_path: Path, issuer: Issuer, keys: dict[str, Key]
) -> None:
    clock = Clock()
    oidc = verifier(tmp_path, issuer, clock, oidc_jwks_refetch_s=30)
    forged = [
        mint(Key(f"kid-{n}", "RS256", keys["rsa-2"].private), claims(issuer)) for n in range(50)
    ]
    for round_ in range(3):
        threads = [threading.Thread(target=oidc.verify, args=(secret,)) for secret in forged]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)
        assert issuer.jwks_hits() == round_ + 1
        clock.now += 31


def test_keys_held_keep_working_while_the_issuer_is_down_and_removed_keys_stop(
    tmp_path: Path, issuer: Issuer, keys: dict[str, Key]
) -> None:
    clock = Clock()
    oidc = verifier(tmp_path, issuer, clock, oidc_jwks_url=issuer.jwks_url)
    assert oidc.verify(mint(keys["ec-1"], claims(issuer))) is not None
    issuer.down = True
    clock.now += JWKS_MAX_AGE_S + 1
    assert oidc.verify(mint(keys["ec-1"], claims(issuer))) is not None
    assert issuer.jwks_hits() == 2  # it did try again, and failed
    issuer.down = False
    issuer.published.remove(keys["ec-1"])
    clock.now += JWKS_MAX_AGE_S + 1
    assert oidc.verify(mint(keys["ec-1"], claims(issuer))) is None
    assert oidc.verify(mint(keys["rsa-1"], claims(issuer))) is not None
    assert not any("openid-configuration" in path for path in issuer.hits)


def test_while_a_key_fetch_hangs_unknown_kids_are_refused_at_once_and_known_ones_work(
    tmp_path: Path, issuer: Issuer, keys: dict[str, Key], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Requests with made-up key ids must not queue behind a stalled fetch (each would hold
    one of the worker threads that every request of the server needs)."""
    monkeypatch.setattr(oidc_module, "FETCH_TIMEOUT_S", 60.0)  # the fetch outlasts the test
    clock = Clock()
    oidc = verifier(tmp_path, issuer, clock, oidc_jwks_url=issuer.jwks_url)
    known = mint(keys["rsa-1"], claims(issuer))
    assert oidc.verify(known) is not None
    issuer.stall = "hang"
    clock.now += JWKS_MAX_AGE_S + 1  # the keys are due for a refetch too
    fetching = threading.Thread(target=oidc.verify, args=(mint(keys["rsa-2"], claims(issuer)),))
    fetching.start()
    assert issuer.stalling.wait(30)
    answers: list[object] = []

    def unknown(n: int) -> None:
        answers.append(oidc.verify(mint(Key(f"kid-{n}", "RS256", keys["rsa-2"].private), {})))

    flood = [threading.Thread(target=unknown, args=(n,)) for n in range(40)]
    for thread in flood:
        thread.start()
    for thread in flood:
        thread.join(timeout=60)
    assert answers == [None] * 40
    assert oidc.verify(known) is not None  # from the keys held
    assert fetching.is_alive()  # all that while the fetch was still hanging
    assert issuer.jwks_hits() == 1  # the stalled request is not answered (or counted) yet
    issuer.release.set()
    fetching.join(timeout=60)
    assert issuer.jwks_hits() == 2


def test_a_key_fetch_from_an_issuer_that_trickles_ends_at_its_deadline(
    tmp_path: Path, issuer: Issuer, keys: dict[str, Key], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every read gets a byte in time, so only a deadline on the whole exchange ends it."""
    monkeypatch.setattr(oidc_module, "FETCH_TIMEOUT_S", 0.5)
    oidc = verifier(tmp_path, issuer, Clock(), oidc_jwks_url=issuer.jwks_url)
    issuer.stall = "trickle"
    result: list[object] = []
    fetching = threading.Thread(
        target=lambda: result.append(oidc.verify(mint(keys["rsa-1"], claims(issuer))))
    )
    fetching.start()
    assert issuer.stalling.wait(30)
    wait_until(lambda: not fetching.is_alive(), 60, "the fetch giving up")
    assert result == [None]


def test_keys_are_not_taken_from_a_discovery_document_of_another_issuer(
    tmp_path: Path, issuer: Issuer, keys: dict[str, Key]
) -> None:
    issuer.claimed_issuer = "https://evil.example/realms/gemeente"
    oidc = verifier(tmp_path, issuer, Clock())
    assert oidc.verify(mint(keys["rsa-1"], claims(issuer))) is None
    assert issuer.jwks_hits() == 0


def test_a_record_names_its_subject_and_expiry_never_the_token(
    tmp_path: Path, issuer: Issuer, keys: dict[str, Key]
) -> None:
    oidc = verifier(tmp_path, issuer, Clock())
    exp = int(time.time()) + 300
    secret = mint(keys["rsa-1"], claims(issuer, sub="f:1 x" * 100, exp=exp, name="x\x00" * 500))
    record = oidc.verify(secret)
    assert record is not None
    assert record.id.startswith("oidc:")
    assert record.id.endswith(f":{exp}")
    assert len(record.id) <= 100
    assert secret.split(".")[2] not in repr(record)
    assert (record.role, record.scope) == ("gis", None)
    assert record.expires_at is not None
    assert int(record.expires_at.timestamp()) == exp
    assert record.name == "j.jansen"
    assert record_id(issuer.url, "jdoe", exp) == record_id(issuer.url, "jdoe", exp)
    assert record_id(issuer.url, "jdoe", exp) != record_id("https://other.example", "jdoe", exp)


def test_the_token_watch_judges_jwts_by_their_own_expiry(
    tmp_path: Path, issuer: Issuer, engine: Engine
) -> None:
    authenticator = Authenticator(engine, verifier(tmp_path, issuer, Clock(), oidc_leeway_s=60))
    now = int(time.time())
    current = record_id(issuer.url, "jdoe", now + 300)
    within_leeway = record_id(issuer.url, "jdoe", now - 30)
    expired = record_id(issuer.url, "jdoe", now - 90)
    elsewhere = record_id("https://other.example", "jdoe", now + 300)
    ours = uuid.uuid4().hex
    found = authenticator.invalid_among({current, within_leeway, expired, elsewhere, ours})
    assert found == {expired, elsewhere, ours}


# -- configuration --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "named"),
    [
        ({"oidc_audience": None}, "ARSERVER_OIDC_AUDIENCE"),
        ({"oidc_roles": {}}, "ARSERVER_OIDC_ROLES"),
        ({"oidc_roles": {"staff": "root"}}, "ARSERVER_OIDC_ROLES"),
        ({"oidc_role_claim": "realm_access..roles"}, "ARSERVER_OIDC_ROLE_CLAIM"),
        ({"oidc_issuer": "http://idp.example.nl/realms/x"}, "ARSERVER_OIDC_ISSUER"),
        ({"oidc_jwks_url": "ftp://idp.example.nl/certs"}, "ARSERVER_OIDC_JWKS_URL"),
        ({"oidc_issuer": None}, "ARSERVER_OIDC_ISSUER"),
    ],
)
def test_settings_that_cannot_work_are_refused_at_start(
    tmp_path: Path, issuer: Issuer, changes: dict[str, Any], named: str
) -> None:
    settings = with_oidc(Settings(data_dir=tmp_path / "data"), issuer, **changes)
    with pytest.raises(OidcConfigError, match=named) as refused:
        create_app(settings)
    assert str(tmp_path) not in str(refused.value)


def test_without_an_issuer_jwts_are_refused_as_before(
    client: TestClient, issuer: Issuer, keys: dict[str, Key]
) -> None:
    valid_elsewhere = mint(keys["rsa-1"], claims(issuer))
    reply = client.get("/api/v1/sensors/no2-1", headers=bearer(valid_elsewhere))
    assert reply.status_code == 401
    assert issuer.hits == {}


def test_a_role_claim_may_be_a_string_or_a_list_at_a_dotted_path() -> None:
    mapping = RoleMapping.parse("resource_access.arserver.roles", {"editor": "gis", "r": "viewer"})
    assert mapping.role_of({"resource_access": {"arserver": {"roles": "editor"}}}) == "gis"
    assert mapping.role_of({"resource_access": {"arserver": {"roles": ["r", 7, None]}}}) == "viewer"
    assert mapping.role_of({"resource_access": {"arserver": {"roles": {"editor": 1}}}}) is None
    assert mapping.role_of({"resource_access": ["editor"]}) is None
