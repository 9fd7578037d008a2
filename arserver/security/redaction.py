"""What the server's logs may not contain: token secrets and the positions of people.

Request targets are written to uvicorn's access log (``"GET /path?query HTTP/1.1" 200``) and,
for WebSockets, to its error log (``"WebSocket /api/v1/live?query" [accepted]``). Clients that
cannot set headers (CesiumJS, headsets, the live WebSocket) send their token as
``?access_token=``, and the overlay sends where its user stands as ``center=``/``bbox=``. This
module rewrites such text before it is logged:

* the value of a parameter whose name carries a secret (``access_token``, ``token``,
  ``api_key``, ``password``, ``session``, ...; see :func:`classify`) becomes ``[redacted]``, as
  does any value, name or path segment holding a token secret (``ars_...``);
* the value of a parameter whose name is a position (``center``, ``bbox``, ``origin``, ``lon``,
  ``lat``, ``radius_m``, ``position``, ...), and anything that looks like a list of
  coordinates (``4.7538,52.3166``), becomes ``[removed]``;
* names are compared percent-decoded (also twice encoded), case-folded and without
  punctuation, so ``access%5Ftoken``, ``Access_Token`` and ``accessToken`` are all the token;
* other values longer than :data:`MAX_VALUE_CHARS` are cut short;
* in free text, the user and password of a URL (``redis://:PASSWORD@host``,
  ``mqtt://user:PASSWORD@host``) become ``[redacted]``;
* client addresses keep their network only: IPv4 ``/24``, IPv6 ``/48``, no port.

:class:`LogRedactionFilter` applies it to log records; ``arserver.commands.server`` installs it
on uvicorn's loggers and handlers. Everything here is pure text processing and never raises.
"""

from __future__ import annotations

import ipaddress
import logging
import re
import unicodedata
from typing import Literal
from urllib.parse import unquote_plus

REDACTED = "[redacted]"
REMOVED = "[removed]"
TRUNCATED = "[truncated]"
#: Values of other parameters longer than this are cut to this many characters.
MAX_VALUE_CHARS = 128

Kind = Literal["secret", "position"]

#: Parameter names (compacted: lower case, letters and digits only) whose values are secrets.
SECRET_NAMES = frozenset(
    {
        "accesstoken", "token", "apikey", "key", "secret", "password", "passwd", "pwd", "pass",
        "auth", "authorization", "bearer", "jwt", "code", "sig", "signature", "credential",
        "credentials", "session", "sessionid", "sid", "cookie", "otp",
    }
)  # fmt: skip
#: Parts of names that make a value a secret wherever they occur (``refresh_token``, ...).
SECRET_PARTS = ("token", "secret", "passw", "apikey", "auth", "credential", "signature")
#: Parameter names whose values are positions (of the person using the overlay, usually).
POSITION_NAMES = frozenset(
    {
        "center", "centre", "bbox", "origin", "lon", "lng", "long", "longitude", "lat",
        "latitude", "radiusm", "radius", "position", "pos", "location", "loc", "coords",
        "coordinates", "point", "near", "latlon", "lonlat", "latlng", "lnglat", "ll", "xy",
        "geometry", "geom", "altitude", "alt",
    }
)  # fmt: skip

#: A token secret of this service (see :mod:`arserver.security.tokens`).
_SECRET = re.compile(r"ars_[A-Za-z0-9_\-]+", re.IGNORECASE)
_NUMBER = r"[-+]?\d{1,3}\.\d{2,}"
#: Two or more decimal numbers separated by commas (also encoded): a position or a bbox.
_COORDINATES = re.compile(rf"{_NUMBER}(?:\s*(?:,|%2C)\s*{_NUMBER})+", re.IGNORECASE)
#: ``scheme://user:password@`` in a URL (a broker or database address quoted in an error).
#: (A scheme starts after a character that cannot be in one, so a long run of letters is
#: scanned once.)
_USERINFO = re.compile(
    r"(?<![a-z0-9+.\-])([a-z][a-z0-9+.\-]{0,30}://)[^\s/?#@'\"<>]+@", re.IGNORECASE
)
_BEARER = re.compile(r"\b(bearer|basic)(\s+)[A-Za-z0-9._~+/=\-]+", re.IGNORECASE)
_AUTHORIZATION = re.compile(
    r"(authorization['\"]?\s*[:,=]\s*(?:b?['\"])?)[^'\"\r\n]*", re.IGNORECASE
)
#: ``name=value`` in free text (an exception message quoting a URL, a scope's repr).
#: (A name starts after a separator, so that a long run without ``=`` is scanned once, not once
#: from each of its characters.)
_PAIR = re.compile(
    r"(?<![^\s&;?#=\"'<>()\[\]{},/])([^\s&;?#=\"'<>()\[\]{},/]+)=(['\"]?)([^\s&;#\"'<>]*)"
)
_SEPARATORS = re.compile(r"([&;])")
_ACCESS_FORMAT = '%s - "%s %s HTTP/%s" %d'
_WEBSOCKET_PREFIX = '%s - "WebSocket %s"'
_DONE = "_arserver_redacted"


def _decoded(text: str) -> str:
    """``text`` percent- and plus-decoded until it no longer changes (at most three times),
    then NFKC-normalised; bad escapes stay as they are."""
    for _ in range(3):
        decoded = unquote_plus(text, errors="replace")
        if decoded == text:
            break
        text = decoded
    return unicodedata.normalize("NFKC", text)


def classify(name: str) -> Kind | None:
    """Whether the parameter ``name`` (as sent: encoded, any case) holds a secret, a position
    or neither."""
    compact = re.sub(r"[^0-9a-z]", "", _decoded(name).casefold())
    if compact in SECRET_NAMES or any(part in compact for part in SECRET_PARTS):
        return "secret"
    if compact.endswith("key") or compact.endswith("password"):
        return "secret"
    if compact in POSITION_NAMES:
        return "position"
    return None


def _looks_like(text: str) -> Kind | None:
    """Whether ``text`` (a value, a name or a path segment) itself holds a token secret or a
    list of coordinates."""
    decoded = _decoded(text)
    if _SECRET.search(decoded) or decoded.lstrip().lower().startswith(("bearer ", "basic ")):
        return "secret"
    if _COORDINATES.search(decoded):
        return "position"
    return None


def _marker(kind: Kind) -> str:
    return REDACTED if kind == "secret" else REMOVED


def _shortened(value: str) -> str:
    return value if len(value) <= MAX_VALUE_CHARS else value[:MAX_VALUE_CHARS] + TRUNCATED


def _parameter(part: str) -> str:
    if "=" not in part:  # a bare name or value
        kind = _looks_like(part)
        return _marker(kind) if kind else _shortened(part)
    name, value = part.split("=", 1)
    kind = _looks_like(name)
    if kind:
        return _marker(kind) + "=" + _marker(kind)
    if not value:
        return part  # nothing to hide; shows that an empty value was sent
    kind = classify(name) or _looks_like(value)
    if kind:
        return f"{name}={_marker(kind)}"
    return f"{name}={_shortened(value)}"


def redact_query(query: str) -> str:
    """``query`` (``a=1&b=2``, as sent) with secrets and positions replaced; separators (``&``
    and ``;``), order, repeated names and the other values are kept."""
    return "".join(
        part if part in ("&", ";") else _parameter(part) for part in _SEPARATORS.split(query)
    )


def _segment(segment: str) -> str:
    kind = _looks_like(segment)
    if kind:
        return _marker(kind)
    return redact_query(segment) if "=" in segment else segment


def redact_target(target: str) -> str:
    """A request target (``/path?query#fragment``) as it may be logged: path segments and the
    parameters of the query and of the fragment redacted as by :func:`redact_query`."""
    rest, hash_, fragment = target.partition("#")
    path, question, query = rest.partition("?")
    path = "/".join(_segment(segment) for segment in path.split("/"))
    return (
        path + question + redact_query(query) + hash_ + (redact_query(fragment) if fragment else "")
    )


def _ip(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(host.strip("[]").split("%", 1)[0])
    except ValueError:
        return None


def truncate_client(address: str) -> str:
    """A client address (``host:port`` as uvicorn logs it, or a bare host) reduced to its
    network: ``203.0.113.0/24`` for IPv4, ``2001:db8:1::/48`` for IPv6, no port. An empty
    address stays empty; something else than an IP address is ``[removed]``."""
    if not address:
        return address
    host, _, port = address.rpartition(":")
    ip = _ip(host) if port.isdigit() else None  # uvicorn's host:port (also IPv6 unbracketed)
    if ip is None:
        ip = _ip(address)
    if ip is None:
        try:
            ipaddress.ip_network(address, strict=False)  # already truncated
        except ValueError:
            return REMOVED
        return address
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    prefix = 24 if ip.version == 4 else 48
    return str(ipaddress.ip_network(f"{ip}/{prefix}", strict=False))


def redact_text(text: str) -> str:
    """Free text (a log message, a traceback) with the user and password of URLs, token
    secrets, ``Authorization`` values, ``Bearer``/``Basic`` credentials, secret or position
    parameters (``name=value``) and lists of coordinates replaced."""
    text = _USERINFO.sub(lambda m: m.group(1) + REDACTED + "@", text)
    text = _AUTHORIZATION.sub(lambda m: m.group(1) + REDACTED, text)
    text = _BEARER.sub(lambda m: m.group(1) + m.group(2) + REDACTED, text)
    text = _SECRET.sub(REDACTED, text)

    def pair(match: re.Match[str]) -> str:
        name, quote, value = match.groups()
        kind = classify(name)
        if kind is None or not value:
            return match.group(0)
        tail = value[len(value.rstrip(".,:!?)")) :]  # punctuation of the sentence around it
        return f"{name}={quote}{_marker(kind)}{tail}"

    text = _PAIR.sub(pair, text)
    return _COORDINATES.sub(REMOVED, text)


def _request_line(record: logging.LogRecord) -> bool:
    """Rewrite uvicorn's access and WebSocket records in place (their formatters need the
    arguments); whether the record was one of them."""
    args = record.args
    if not isinstance(args, tuple) or not isinstance(record.msg, str):
        return False
    if record.msg == _ACCESS_FORMAT and len(args) == 5:
        client, method, target, version, status = args
        record.args = (
            truncate_client(str(client)),
            redact_text(str(method)),
            redact_target(str(target)),
            redact_text(str(version)),
            status,
        )
        return True
    if record.msg.startswith(_WEBSOCKET_PREFIX) and len(args) >= 2:
        record.args = (truncate_client(str(args[0])), redact_target(str(args[1])), *args[2:])
        return True
    return False


def redact_record(record: logging.LogRecord) -> None:
    """Rewrite ``record`` so that its formatted text contains neither token secrets nor
    positions, and client addresses only as networks. Idempotent; never raises."""
    if getattr(record, _DONE, False):
        return
    setattr(record, _DONE, True)
    try:
        if not _request_line(record):
            original = record.getMessage()
            message = redact_text(original)
            if message != original:
                record.msg, record.args = message, None
                record.__dict__.pop("color_message", None)  # uvicorn's coloured copy
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact_text(record.exc_text)
        if record.stack_info:
            record.stack_info = redact_text(record.stack_info)
    except Exception:  # a record that cannot be formatted: log that, not its content
        record.msg, record.args, record.exc_info, record.exc_text = (
            "a log record could not be redacted and was withheld",
            None,
            None,
            None,
        )
        record.__dict__.pop("color_message", None)


class LogRedactionFilter(logging.Filter):
    """A :class:`logging.Filter` that lets every record through, rewritten by
    :func:`redact_record`. Attach it to loggers (records logged there) and to handlers
    (everything they write)."""

    def filter(self, record: logging.LogRecord) -> bool:
        redact_record(record)
        return True
