"""Rate limits: writes per token, refused credentials per client address; 429 with a whole
``Retry-After``; buckets driven by an injected clock; memory bounded however many keys."""

from __future__ import annotations

import tracemalloc
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from starlette.testclient import WebSocketDenialResponse
from starlette.websockets import WebSocketDisconnect

from arserver.api.ratelimit import (
    RateLimits,
    RecentCredentials,
    TokenBuckets,
    client_key,
    retry_after,
)
from arserver.app import create_app
from arserver.config import Settings
from tests.arserver.support import engine_of, insert_asset, token

#: SQLite only: the limits are counted in memory, above the database.
BACKENDS = ("sqlite",)


class Clock:
    """Seconds that pass only when a test says so."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


def limited_client(settings: Settings, clock: Clock, **limits: Any) -> TestClient:
    """The application for ``settings`` with ``limits`` (Settings fields), on ``clock``."""
    app = create_app(settings.model_copy(update=limits))
    rate_limits: RateLimits = app.state.rate_limits
    for buckets in (rate_limits.writes, rate_limits.failures, rate_limits.joins):
        if buckets is not None:
            buckets.clock = clock
    return TestClient(app)


SENSOR = {"name": "n", "kind": "no2", "unit": "ug/m3", "location": [4.76, 52.31]}


def post_sensor(client: TestClient, secret: str, n: int) -> Any:
    return client.post(
        "/api/v1/sensors",
        json={**SENSOR, "id": f"s-{secret[-6:]}-{n}"},
        headers={"Authorization": f"Bearer {secret}"},
    )


def test_writes_beyond_the_burst_get_429_while_another_token_writes_on(
    settings: Settings, clock: Clock
) -> None:
    with limited_client(settings, clock, rate_writes_per_s=0.5, rate_writes_burst=3) as client:
        busy, other = token(client, "gis"), token(client, "gis")
        assert [post_sensor(client, busy, n).status_code for n in range(3)] == [201] * 3
        refused = post_sensor(client, busy, 3)
        assert refused.status_code == 429
        assert refused.headers["retry-after"] == "2"  # one unit at 0.5 per second
        assert "too many writes" in refused.json()["detail"]
        assert post_sensor(client, other, 0).status_code == 201
        assert (
            client.get(f"/api/v1/sensors/s-{busy[-6:]}-3", headers=bearer(busy)).status_code == 404
        )


def test_joins_of_a_round_count_per_address_not_against_the_shared_link(
    settings: Settings, clock: Clock
) -> None:
    """Residents all present the round's one link token: joining is limited per address, and
    a flood of joins does not use up the link's write limit for everybody."""
    now = datetime.now(UTC)
    ring = [[4.89, 52.36], [4.91, 52.36], [4.91, 52.38], [4.89, 52.36]]
    with limited_client(
        settings, clock, rate_round_joins_per_hour=2, rate_writes_per_s=0.5, rate_writes_burst=1
    ) as client:
        made = client.post(
            "/api/v1/rounds",
            json={
                "title": "Plein", "privacy_notice": "p", "mode": "public",
                "area": {"type": "Polygon", "coordinates": [ring]}, "assets": [],
                "starts_at": now.isoformat(), "ends_at": (now + timedelta(days=1)).isoformat(),
            },
            headers=bearer(token(client, "planner")),
        ).json()  # fmt: skip
        join = f"/api/v1/rounds/{made['id']}/participants"
        link = bearer(made["link_token"])
        statuses = [client.post(join, headers=link).status_code for _ in range(3)]
        assert statuses == [201, 201, 429]
        refused = client.post(join, headers=link)
        assert "too many joins" in refused.json()["detail"]
        assert refused.headers["retry-after"] == "1800"  # one join at 2 per hour
        clock.now += 1800
        assert client.post(join, headers=link).status_code == 201


def test_the_write_limit_recovers_as_its_clock_runs(settings: Settings, clock: Clock) -> None:
    with limited_client(settings, clock, rate_writes_per_s=0.5, rate_writes_burst=2) as client:
        secret = token(client, "gis")
        assert [post_sensor(client, secret, n).status_code for n in range(3)] == [201, 201, 429]
        clock.now += 1.0  # half a unit back
        assert post_sensor(client, secret, 3).status_code == 429
        clock.now += 1.0
        assert post_sensor(client, secret, 4).status_code == 201


def test_reads_are_not_counted_as_writes(settings: Settings, clock: Clock) -> None:
    with limited_client(settings, clock, rate_writes_per_s=0.5, rate_writes_burst=1) as client:
        secret = token(client, "gis")
        for _ in range(5):
            assert client.get("/api/v1/alerts", headers=bearer(secret)).status_code == 200
        assert post_sensor(client, secret, 0).status_code == 201


def test_a_write_refused_for_its_rate_is_answered_before_its_body_is_read(
    settings: Settings, clock: Clock
) -> None:
    with limited_client(settings, clock, rate_writes_per_s=0.5, rate_writes_burst=1) as client:
        headers = bearer(token(client, "ingest"))
        empty: dict[str, list[Any]] = {"observations": []}
        assert client.post("/api/v1/observations", json=empty, headers=headers).status_code == 200
        pulled = []

        def chunks() -> Iterator[bytes]:
            for n in range(100):
                pulled.append(n)
                yield b"x" * 65536

        refused = client.post("/api/v1/observations", content=chunks(), headers=headers)
        assert refused.status_code == 429
        assert refused.headers["connection"] == "close"
        assert len(pulled) <= 1


def bearer(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


def test_refused_credentials_from_one_address_get_429_but_other_addresses_do_not(
    settings: Settings, clock: Clock
) -> None:
    with limited_client(settings, clock, rate_auth_failures_per_min=6) as client:
        answers = [
            client.get("/api/v1/alerts", headers=bearer(f"ars_guess{n}")).status_code
            for n in range(7)
        ]
        assert answers == [401] * 6 + [429]
        refused = client.get("/api/v1/alerts", headers=bearer("ars_guess7"))
        assert refused.headers["retry-after"] == "10"  # one unit at 6 per minute
        assert "too many refused credentials" in refused.json()["detail"]
        # The same running application, seen from another address (no second lifespan).
        elsewhere = TestClient(client.app, client=("192.0.2.7", 50000))
        try:
            assert elsewhere.get("/api/v1/alerts", headers=bearer("ars_x")).status_code == 401
        finally:
            elsewhere.close()


def test_a_throttled_address_still_admits_tokens_it_accepted_before(
    settings: Settings, clock: Clock
) -> None:
    """Colleagues behind the same NAT as an attacker keep working with the tokens they used;
    a token this process never accepted waits for Retry-After (checking it would cost the
    database lookup the limit is there to save)."""
    with limited_client(settings, clock, rate_auth_failures_per_min=3) as client:
        colleague, newcomer = token(client, "viewer"), token(client, "viewer")
        assert client.get("/api/v1/alerts", headers=bearer(colleague)).status_code == 200
        for n in range(3):
            assert client.get("/api/v1/alerts", headers=bearer(f"ars_{n}")).status_code == 401
        assert client.get("/api/v1/alerts", headers=bearer("ars_more")).status_code == 429
        assert client.get("/api/v1/alerts", headers=bearer(colleague)).status_code == 200
        assert client.get("/api/v1/alerts", headers=bearer(newcomer)).status_code == 429
        assert client.get("/api/v1/alerts").status_code == 401  # no credential: not throttled
        clock.now += 21.0  # one refusal forgiven (3 per minute)
        assert client.get("/api/v1/alerts", headers=bearer(newcomer)).status_code == 200


def test_a_headset_that_only_reads_tiles_keeps_working_from_a_throttled_address(
    settings: Settings, clock: Clock
) -> None:
    with limited_client(settings, clock, rate_auth_failures_per_min=2) as client:
        insert_asset(engine_of(client), "a1")
        folder = client.app.state.store.asset_dir("a1")  # type: ignore[attr-defined]
        folder.mkdir(parents=True)
        (folder / "tileset.json").write_text('{"asset": {"version": "1.1"}}')
        url = f"/tiles/a1/tileset.json?access_token={token(client, 'viewer')}"
        assert client.get(url).status_code == 200
        for n in range(3):
            client.get("/tiles/a1/tileset.json", headers=bearer(f"ars_{n}"))
        assert client.get("/tiles/a1/tileset.json", headers=bearer("ars_x")).status_code == 429
        assert client.get(url).status_code == 200


def test_retrying_one_stale_token_does_not_lock_out_its_address(
    settings: Settings, clock: Clock
) -> None:
    """A gateway with a revoked token that retries for hours is refused (401) each time, but
    it is no guessing: only distinct refused credentials count."""
    with limited_client(settings, clock, rate_auth_failures_per_min=3) as client:
        for _ in range(10):
            assert client.get("/api/v1/alerts", headers=bearer("ars_revoked")).status_code == 401
        assert (
            client.get("/api/v1/alerts", headers=bearer(token(client, "viewer"))).status_code == 200
        )
        for n in range(2):
            assert client.get("/api/v1/alerts", headers=bearer(f"ars_{n}")).status_code == 401
        assert client.get("/api/v1/alerts", headers=bearer("ars_guess")).status_code == 429


def test_anonymous_requests_do_not_count_as_refused_credentials(
    settings: Settings, clock: Clock
) -> None:
    with limited_client(settings, clock, rate_auth_failures_per_min=2) as client:
        for _ in range(5):
            assert client.get("/api/v1/alerts").status_code == 401
            assert client.post("/api/v1/sensors", json=SENSOR).status_code == 401
        assert client.get("/api/v1/alerts", headers=bearer("ars_wrong")).status_code == 401


def test_write_tokens_refused_by_the_guard_count_as_refused_credentials(
    settings: Settings, clock: Clock
) -> None:
    with limited_client(settings, clock, rate_auth_failures_per_min=2) as client:
        for n in range(2):
            assert post_sensor(client, f"ars_forged{n}", n).status_code == 401
        assert post_sensor(client, "ars_forged2", 2).status_code == 429


def test_refused_live_handshakes_count_and_a_throttled_address_gets_429(
    settings: Settings, clock: Clock
) -> None:
    with limited_client(settings, clock, rate_auth_failures_per_min=2) as client:
        for n in range(2):  # refused by the live endpoint (HTTP 403 on a real server)
            with (
                pytest.raises(WebSocketDisconnect),
                client.websocket_connect(f"/api/v1/live?access_token=ars_bad{n}"),
            ):
                pass
        with (
            pytest.raises(WebSocketDenialResponse) as throttled,
            client.websocket_connect("/api/v1/live?access_token=ars_bad2"),
        ):
            pass
        assert throttled.value.status_code == 429
        assert throttled.value.headers["retry-after"] == "30"


def live_refused(client: TestClient, secret: str) -> None:
    """Open the live socket with ``secret`` and expect the handshake to be refused."""
    with (
        pytest.raises(WebSocketDisconnect),
        client.websocket_connect(f"/api/v1/live?access_token={secret}"),
    ):
        pass


def test_a_valid_token_refused_on_the_live_socket_for_its_role_costs_nothing(
    settings: Settings, clock: Clock
) -> None:
    with limited_client(settings, clock, rate_auth_failures_per_min=1) as client:
        gateway = token(client, "ingest")  # may post observations, not subscribe
        for _ in range(3):
            live_refused(client, gateway)
        assert client.get("/api/v1/alerts", headers=bearer("ars_guess")).status_code == 401


def test_a_token_refused_on_the_live_socket_for_its_role_stays_accepted(
    settings: Settings, clock: Clock
) -> None:
    """A gateway behind the same NAT as a scanner that once tried the live socket keeps
    posting."""
    with limited_client(settings, clock, rate_auth_failures_per_min=2) as client:
        gateway = bearer(token(client, "ingest"))
        empty: dict[str, list[Any]] = {"observations": []}
        assert client.post("/api/v1/observations", json=empty, headers=gateway).status_code == 200
        live_refused(client, gateway["Authorization"][7:])
        for n in range(2):
            assert client.get("/api/v1/alerts", headers=bearer(f"ars_{n}")).status_code == 401
        assert client.get("/api/v1/alerts", headers=bearer("ars_more")).status_code == 429
        assert client.post("/api/v1/observations", json=empty, headers=gateway).status_code == 200


def test_limits_set_to_0_are_off(settings: Settings, clock: Clock) -> None:
    with limited_client(
        settings, clock, rate_writes_per_s=0, rate_auth_failures_per_min=0
    ) as client:
        assert client.app.state.rate_limits.writes is None  # type: ignore[attr-defined]
        for n in range(40):
            assert client.get("/api/v1/alerts", headers=bearer(f"ars_{n}")).status_code == 401


def test_the_defaults_allow_a_gateway_posting_batches_as_fast_as_it_can(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data", embedded_worker=False)
    with TestClient(create_app(settings)) as client:
        headers = bearer(token(client, "ingest"))
        for _ in range(150):
            reply = client.post("/api/v1/observations", json={"observations": []}, headers=headers)
            assert reply.status_code == 200


# -- the buckets and keys alone -------------------------------------------------------------


def test_a_bucket_gives_its_burst_then_its_rate(clock: Clock) -> None:
    buckets = TokenBuckets(2.0, 3, clock=clock)
    assert [buckets.take("k") for _ in range(3)] == [0.0, 0.0, 0.0]
    assert buckets.take("k") == pytest.approx(0.5)
    assert buckets.wait_s("k") == pytest.approx(0.5)
    clock.now += 0.5
    assert buckets.take("k") == 0.0
    clock.now += 100.0  # never more than the burst
    assert [buckets.take("k") for _ in range(4)][-1] > 0


def test_a_bucket_does_not_refill_when_the_clock_goes_back(clock: Clock) -> None:
    buckets = TokenBuckets(1.0, 1, clock=clock)
    assert buckets.take("k") == 0.0
    clock.now -= 50.0
    assert buckets.take("k") > 0


def test_memory_stays_bounded_with_100000_distinct_keys(clock: Clock) -> None:
    buckets = TokenBuckets(1.0, 1, max_keys=1000, clock=clock)
    accepted = RecentCredentials(max_entries=1000)
    tracemalloc.start()
    try:
        for n in range(100_000):
            buckets.take(f"2001:db8:{n:x}::/64")
            accepted.add(f"ars_random_{n}")
            if n == 10_000:
                settled, _ = tracemalloc.get_traced_memory()
        grown, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert len(buckets) == 1000
    assert len(accepted) == 1000
    assert grown - settled < 200_000  # ninety thousand more keys, no more memory
    assert buckets.wait_s("2001:db8:1869f::/64") > 0  # the newest is kept (its unit spent)
    assert buckets.wait_s("2001:db8:0::/64") == 0.0  # the oldest forgotten (a full bucket)
    assert "ars_random_99999" in accepted
    assert "ars_random_0" not in accepted


def test_the_least_recently_used_key_is_forgotten_first(clock: Clock) -> None:
    buckets = TokenBuckets(0.001, 1, max_keys=2, clock=clock)
    buckets.take("attacker-1")
    buckets.take("user")
    buckets.take("user")  # used again: the most recent
    buckets.take("attacker-2")  # one too many: attacker-1 goes
    assert buckets.wait_s("user") > 0
    assert buckets.wait_s("attacker-1") == 0.0


@pytest.mark.parametrize(
    ("host", "key"),
    [
        ("192.0.2.1", "192.0.2.1"),
        ("2001:db8:1:2:aaaa::1", "2001:db8:1::/56"),
        ("2001:db8:1:ff:bbbb::9", "2001:db8:1::/56"),
        ("2001:db8:1:100::1", "2001:db8:1:100::/56"),
        ("::ffff:192.0.2.1", "192.0.2.1"),
        ("fe80::1%eth0", "fe80::/56"),
        ("testclient", "testclient"),
    ],
)
def test_ipv6_clients_count_per_56(host: str, key: str) -> None:
    assert client_key({"client": (host, 1234)}) == key


def test_an_ipv6_client_hopping_between_its_64s_shares_one_budget(
    settings: Settings, clock: Clock
) -> None:
    """Each /64 of one /56 is the same subscriber; the next /56 is someone else."""
    with limited_client(settings, clock, rate_auth_failures_per_min=3) as client:
        answers = []
        for n in range(4):
            hopping = TestClient(client.app, client=(f"2001:db8:7:{n:x}::1", 50000))
            try:
                answers.append(hopping.get("/api/v1/alerts", headers=bearer(f"ars_{n}")))
            finally:
                hopping.close()
        assert [reply.status_code for reply in answers] == [401, 401, 401, 429]
        neighbour = TestClient(client.app, client=("2001:db8:7:100::1", 50000))
        try:
            assert neighbour.get("/api/v1/alerts", headers=bearer("ars_y")).status_code == 401
        finally:
            neighbour.close()


def test_an_unknown_client_has_one_key() -> None:
    assert client_key({"client": None}) == client_key({}) == "unknown"


def test_retry_after_is_whole_seconds_rounded_up() -> None:
    assert [retry_after(s) for s in (0.0, 0.01, 1.0, 1.2, 59.9)] == [1, 1, 1, 2, 60]


def test_accepted_credentials_keep_no_secret() -> None:
    accepted = RecentCredentials()
    accepted.add("ars_the-secret")
    assert "ars_the-secret" in accepted
    assert all(b"the-secret" not in digest for digest in accepted._seen)
    accepted.discard("ars_the-secret")
    assert "ars_the-secret" not in accepted
