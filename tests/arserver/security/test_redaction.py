"""What the logs may not contain: token secrets and positions in request targets and text, and
client addresses beyond their network."""

from __future__ import annotations

import logging
import sys

import pytest

from arserver.security.redaction import (
    MAX_VALUE_CHARS,
    REDACTED,
    REMOVED,
    TRUNCATED,
    LogRedactionFilter,
    classify,
    redact_query,
    redact_record,
    redact_target,
    redact_text,
    truncate_client,
)

SECRET = "ars_Xq3v9TgS2pLk0wE7yB1nM4cH8dJ6fR5uZ2aQ0sV9tW8"


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        ("/healthz", "/healthz"),
        ("/", "/"),
        ("", ""),
        ("/api/v1/sensors?", "/api/v1/sensors?"),
        ("/api/v1/sensors?layer=a&limit=10", "/api/v1/sensors?layer=a&limit=10"),
        (f"/tiles/a/tileset.json?access_token={SECRET}",
         "/tiles/a/tileset.json?access_token=[redacted]"),
        ("/x?token=abc", "/x?token=[redacted]"),
        ("/x?Access_Token=abc", "/x?Access_Token=[redacted]"),
        ("/x?ACCESS_TOKEN=abc", "/x?ACCESS_TOKEN=[redacted]"),
        ("/x?accessToken=abc&access-token=def",
         "/x?accessToken=[redacted]&access-token=[redacted]"),
        ("/x?access%5Ftoken=abc", "/x?access%5Ftoken=[redacted]"),
        ("/x?access%5ftoken=abc", "/x?access%5ftoken=[redacted]"),
        ("/x?access%255Ftoken=abc", "/x?access%255Ftoken=[redacted]"),  # encoded twice
        ("/x?%61ccess_token=abc", "/x?%61ccess_token=[redacted]"),
        ("/x?access+token=abc", "/x?access+token=[redacted]"),
        ("/x?access_token[]=abc", "/x?access_token[]=[redacted]"),
        ("/x?refresh_token=a&api_key=b&apikey=c&password=d&client_secret=e&sig=f",
         "/x?refresh_token=[redacted]&api_key=[redacted]&apikey=[redacted]&password=[redacted]"
         "&client_secret=[redacted]&sig=[redacted]"),
        ("/api/v1/live?access_token=a&session=s1&last_seq=12",
         "/api/v1/live?access_token=[redacted]&session=[redacted]&last_seq=12"),
        # repeated parameters: every occurrence
        ("/x?access_token=a&access_token=b&layer=c&access_token=",
         "/x?access_token=[redacted]&access_token=[redacted]&layer=c&access_token="),
        # ; separates too (some parsers and proxies split on it)
        ("/x?layer=a;access_token=b", "/x?layer=a;access_token=[redacted]"),
        # a secret of ours under any name, or as a bare value, or as a name
        (f"/x?t={SECRET}", "/x?t=[redacted]"),
        (f"/x?{SECRET}", "/x?[redacted]"),
        (f"/x?{SECRET}=1", "/x?[redacted]=[redacted]"),
        (f"/x?{SECRET}=", "/x?[redacted]=[redacted]"),
        (f"/x?q=Bearer%20{SECRET[:8]}", "/x?q=[redacted]"),
        ("/x?auth=Bearer+abc", "/x?auth=[redacted]"),
        # positions
        ("/api/v1/observations/latest?center=4.7538,52.3166&radius_m=200&kinds=no2",
         "/api/v1/observations/latest?center=[removed]&radius_m=[removed]&kinds=no2"),
        ("/x?bbox=4.70%2C52.30%2C4.80%2C52.40&layer=a", "/x?bbox=[removed]&layer=a"),
        ("/x?lon=4.7538&lat=52.3166&origin=4.75,52.31,0&position=1,2,3",
         "/x?lon=[removed]&lat=[removed]&origin=[removed]&position=[removed]"),
        ("/x?CENTER=4.7538,52.3166&Radius_M=5", "/x?CENTER=[removed]&Radius_M=[removed]"),
        ("/x?%63enter=4.7538,52.3166", "/x?%63enter=[removed]"),
        ("/x?where=4.7538%2C52.3166", "/x?where=[removed]"),  # coordinates under any name
        ("/x?4.7538,52.3166", "/x?[removed]"),
        # fragments (never sent by browsers, but a raw target may carry one)
        ("/x?layer=a#access_token=b&center=4.75,52.31",
         "/x?layer=a#access_token=[redacted]&center=[removed]"),
        ("/x#frag", "/x#frag"),
        ("/x?layer=a#", "/x?layer=a#"),
        # bad percent-encoding is judged as it stands, never fails
        ("/x?access%5token=abc&%ZZ=1&center=%E0%A4",
         "/x?access%5token=[redacted]&%ZZ=1&center=[removed]"),
        ("/x?%=%&%%=", "/x?%=%&%%="),
        ("/x?token=%FF%FE", "/x?token=[redacted]"),
        # empty and odd shapes
        ("/x?&&=&a", "/x?&&=&a"),
        ("/x?=abc", "/x?=abc"),
        ("/x?token", "/x?token"),
        ("/x??token=a", "/x??token=[redacted]"),
        ("/x?a=b=c&token=d=e", "/x?a=b=c&token=[redacted]"),
        # secrets and positions in the path
        (f"/api/v1/{SECRET}/x", "/api/v1/[redacted]/x"),
        ("/api/v1/near/4.7538%2C52.3166", "/api/v1/near/[removed]"),
        ("/x;access_token=abc/y", "/x;access_token=[redacted]/y"),
    ],
)  # fmt: skip
def test_targets_lose_their_secrets_and_positions(target: str, expected: str) -> None:
    assert redact_target(target) == expected
    assert redact_target(expected) == expected  # and redacting again changes nothing


def test_very_long_values_are_redacted_whole_or_cut_short() -> None:
    long = "x" * 100_000
    assert redact_target(f"/x?access_token={long}") == "/x?access_token=[redacted]"
    assert redact_target(f"/x?center={long}") == "/x?center=[removed]"
    assert redact_target(f"/x?q={long}") == f"/x?q={'x' * MAX_VALUE_CHARS}{TRUNCATED}"
    assert redact_query(f"a={'y' * MAX_VALUE_CHARS}") == f"a={'y' * MAX_VALUE_CHARS}"
    many = "&".join(f"access_token={k}" for k in range(10_000))
    assert set(redact_query(many).split("&")) == {"access_token=[redacted]"}


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("access_token", "secret"), ("ACCESS_TOKEN", "secret"), ("access%5Ftoken", "secret"),
        ("token", "secret"), ("id_token", "secret"), ("X-Api-Key", "secret"),
        ("session", "secret"), ("code", "secret"), ("\uff54\uff4f\uff4b\uff45\uff4e", "secret"),
        ("center", "position"), ("bbox", "position"), ("origin", "position"), ("lon", "position"),
        ("lat", "position"), ("radius_m", "position"), ("position", "position"),
        ("Longitude", "position"),
        ("layer", None), ("limit", None), ("format", None), ("kinds", None), ("from", None),
        ("to", None), ("last_seq", None), ("bucket", None), ("kind", None), ("", None),
    ],
)  # fmt: skip
def test_parameter_names_are_classified(name: str, kind: str | None) -> None:
    assert classify(name) == kind


@pytest.mark.parametrize(
    ("address", "expected"),
    [
        ("203.0.113.77:51234", "203.0.113.0/24"),
        ("127.0.0.1:8000", "127.0.0.0/24"),
        ("203.0.113.77", "203.0.113.0/24"),
        ("2001:db8:1234:5678::9:443", "2001:db8:1234::/48"),  # uvicorn: no brackets
        ("[2001:db8:1234:5678::9]:443", "2001:db8:1234::/48"),
        ("2001:db8:1234:5678::9", "2001:db8:1234::/48"),
        ("::1:40000", "::/48"),
        ("::ffff:198.51.100.9:80", "198.51.100.0/24"),  # IPv4-mapped: as IPv4
        ("fe80::1%eth0:22", "fe80::/48"),
        ("203.0.113.0/24", "203.0.113.0/24"),  # already truncated
        ("2001:db8:1234::/48", "2001:db8:1234::/48"),
        ("", ""),
        ("testclient:50000", REMOVED),
        ("someone@example.org", REMOVED),
    ],
)
def test_client_addresses_keep_only_their_network(address: str, expected: str) -> None:
    assert truncate_client(address) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Application startup complete.", "Application startup complete."),
        ("Uvicorn running on http://127.0.0.1:8000 (Press CTRL+C to quit)",
         "Uvicorn running on http://127.0.0.1:8000 (Press CTRL+C to quit)"),
        (f"cannot fetch http://h/x?layer=a&access_token={SECRET}: refused",
         "cannot fetch http://h/x?layer=a&access_token=[redacted]: refused"),
        ("token='abc' center=\"4.7538,52.3166\"", "token='[redacted]' center=\"[removed]\""),
        ("Authorization: Bearer abc.def-ghi", "Authorization: [redacted]"),
        ("(b'authorization', b'Token xyz'), (b'host', b'h')",
         "(b'authorization', b'[redacted]'), (b'host', b'h')"),
        ("{'Authorization': 'Basic Zm9vOmJhcg=='}", "{'Authorization': '[redacted]'}"),
        ("sent bearer abcdefgh to it", "sent bearer [redacted] to it"),
        (f"unknown token {SECRET}", "unknown token [redacted]"),
        ("the user is at 4.7538, 52.3166 now", "the user is at [removed] now"),
        ("took 1.5 s, 2 retries", "took 1.5 s, 2 retries"),
        ("cannot reach Redis at redis://:hunter2@127.0.0.1:6379/0: refused",
         "cannot reach Redis at redis://[redacted]@127.0.0.1:6379/0: refused"),
        ("broker 'mqtts://ingest:p%40ss:w0rd@mq.example.org:8883' refused",
         "broker 'mqtts://[redacted]@mq.example.org:8883' refused"),
        ("postgresql+psycopg://arserver:geheim@db/arserver", "postgresql+psycopg://[redacted]@db/arserver"),
        ("mail a@b.example or see http://h/x?y=a@b", "mail a@b.example or see http://h/x?y=a@b"),
    ],
)  # fmt: skip
def test_free_text_loses_secrets_and_positions(text: str, expected: str) -> None:
    assert redact_text(text) == expected


def record(name: str, msg: str, *args: object, **extra: object) -> logging.LogRecord:
    made = logging.LogRecord(name, logging.INFO, __file__, 1, msg, args, None)
    made.__dict__.update(extra)
    return made


def test_an_access_record_keeps_its_shape_for_uvicorns_formatter() -> None:
    from uvicorn.logging import AccessFormatter

    access = record(
        "uvicorn.access",
        '%s - "%s %s HTTP/%s" %d',
        "198.51.100.23:50123",
        "GET",
        f"/api/v1/observations/latest?center=4.7538,52.3166&access_token={SECRET}",
        "1.1",
        200,
    )
    assert LogRedactionFilter().filter(access) is True
    line = AccessFormatter(fmt='%(client_addr)s - "%(request_line)s" %(status_code)s').format(
        access
    )
    assert line == (
        '198.51.100.0/24 - "GET /api/v1/observations/latest?center=[removed]'
        '&access_token=[redacted] HTTP/1.1" 200 OK'
    )


def test_a_websocket_handshake_record_is_redacted() -> None:
    for suffix, args in ((" [accepted]", ()), (" 403", ()), (" %d", (401,))):
        handshake = record(
            "uvicorn.error",
            '%s - "WebSocket %s"' + suffix,
            "198.51.100.23:50123",
            f"/api/v1/live?access_token={SECRET}&session=abc",
            *args,
        )
        redact_record(handshake)
        message = handshake.getMessage()
        assert message.startswith(
            '198.51.100.0/24 - "WebSocket /api/v1/live?access_token=[redacted]&session=[redacted]"'
        ), message


def test_other_records_are_redacted_as_text_and_lose_their_coloured_copy() -> None:
    plain = record("uvicorn.error", "Started server process [%d]", 42, color_message="[%d]")
    redact_record(plain)
    assert plain.getMessage() == "Started server process [42]"
    assert plain.__dict__["color_message"] == "[%d]"  # unchanged: kept

    leaky = record("uvicorn.error", "bad %s", f"/x?token={SECRET}", color_message="bad %s")
    redact_record(leaky)
    assert leaky.getMessage() == "bad /x?token=[redacted]"
    assert "color_message" not in leaky.__dict__

    mapping = logging.LogRecord("x", logging.INFO, __file__, 1, "%(a)s", ({"a": SECRET},), None)
    redact_record(mapping)
    assert mapping.getMessage() == REDACTED


def test_tracebacks_and_stacks_are_redacted() -> None:
    try:
        raise ValueError(f"GET /x?access_token={SECRET}&center=4.7538,52.3166")
    except ValueError:
        failed = logging.LogRecord(
            "uvicorn.error", logging.ERROR, __file__, 1, "Exception in ASGI application\n",
            None, sys.exc_info(), sinfo=f"Stack: token={SECRET}",
        )  # fmt: skip
    redact_record(failed)
    text = logging.Formatter().format(failed)
    assert "ValueError: GET /x?access_token=[redacted]&center=[removed]" in text
    assert SECRET not in text
    assert "4.7538" not in text


def test_a_record_that_cannot_be_formatted_is_withheld_not_raised() -> None:
    broken = record("uvicorn.error", "%d items", f"token={SECRET}")
    redact_record(broken)
    assert broken.getMessage() == "a log record could not be redacted and was withheld"


def test_redacting_twice_is_redacting_once() -> None:
    access = record(
        "uvicorn.access", '%s - "%s %s HTTP/%s" %d',
        "2001:db8:1:2::3:5", "GET", "/x?lat=1", "1.1", 200,
    )  # fmt: skip
    redact_record(access)
    first = access.getMessage()
    access.__dict__.pop("_arserver_redacted")
    redact_record(access)
    assert access.getMessage() == first == '2001:db8:1::/48 - "GET /x?lat=[removed] HTTP/1.1" 200'


@pytest.mark.parametrize(
    "text",
    [
        "1." + "1" * 100_000,
        "%25" * 30_000,
        "a" * 100_000,
        "1.11, " * 20_000,
        "a=b&" * 20_000,
        "a://" * 25_000,
        "x://" + "b:" * 50_000,
        "ab+" * 30_000,
    ],
    ids=["digits", "escapes", "letters", "numbers", "pairs", "schemes", "userinfo", "scheme"],
)
def test_large_inputs_are_handled_in_one_pass(text: str) -> None:
    """Inputs that would make a backtracking pattern quadratic (minutes, not milliseconds)."""
    assert SECRET not in redact_text(text + SECRET)
    assert SECRET not in redact_target(f"/x?q={text}{SECRET}")
