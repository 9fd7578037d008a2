"""Fetching feed documents from a file path or an http(s) URL, bounded in size and time.

:func:`fetch` is the only I/O of the feed readers; they take it as a callable so that tests (and
the server's poller) can give them another. :func:`resolve` turns a reference found inside a
document (SPDP's ``staticDataUrl``) into a source relative to the document's own source.

A document reached from an http(s) URL may only refer to other http(s) URLs: a remote index
cannot make the reader open local files. :func:`fetch_public` is the fetch of the feeds the
server polls: http(s) only, and (unless private addresses are allowed) every connection, the
first and each redirect's, goes to a public address only, so that a feed or an index it points
to cannot make the server reach loopback, link-local or private networks.
"""

from __future__ import annotations

import ipaddress
import os
import socket
import time
from collections.abc import Iterable
from pathlib import Path
from urllib.parse import unquote, urljoin, urlsplit

import httpcore
import httpx

from arserver.ingest.parking_feeds import FeedError

#: Default bound on one document's size (bytes, after content decoding).
MAX_BYTES = 20 * 1024 * 1024

_WEB = ("http", "https")
_MAX_REDIRECTS = 5


def _scheme(source: str) -> str:
    """The URL scheme of ``source`` in lower case; "" for a file path (also "C:\\...")."""
    scheme = urlsplit(source).scheme.lower()
    return scheme if len(scheme) > 1 else ""


def is_url(source: str) -> bool:
    """Whether ``source`` is an http(s) URL (anything else is read as a file)."""
    return _scheme(source) in _WEB


def resolve(base: str, ref: str) -> str:
    """``ref`` resolved against ``base``, the source of the document that holds it.

    ``base`` is an http(s) URL or a file path (a ``file:`` URL counts as a path). An absolute
    http(s) ``ref`` is returned as is. Relative to a URL the result is a URL (RFC 3986); a
    reference that would leave http(s) (``file:``, ``ftp:``...) is refused with FeedError.
    Relative to a file the result is a path next to that file.
    """
    ref = ref.strip()
    if not ref:
        raise FeedError("empty reference")
    base_scheme, ref_scheme = _scheme(base), _scheme(ref)
    if base_scheme in _WEB:
        joined = urljoin(base, ref)
        if _scheme(joined) not in _WEB:
            raise FeedError(f"a feed at an http(s) URL may only refer to http(s) URLs: {ref!r}")
        return joined
    if ref_scheme in _WEB:
        return ref
    if ref_scheme == "file":
        return _file_path(ref)
    if ref_scheme:
        raise FeedError(f"unsupported reference scheme {ref_scheme!r}: {ref!r}")
    folder = os.path.dirname(_file_path(base) if base_scheme == "file" else base)
    return os.path.normpath(os.path.join(folder, ref))


def _file_path(url: str) -> str:
    return unquote(urlsplit(url).path)


def fetch(source: str, *, max_bytes: int = MAX_BYTES, timeout_s: float = 20.0) -> bytes:
    """The bytes of ``source``: a file path, a ``file:`` URL or an http(s) URL.

    Over http(s) the body is streamed and refused as soon as it passes ``max_bytes``; any answer
    but 2xx (after at most 5 redirects) is refused; ``timeout_s`` bounds each network wait and
    the whole transfer. Every failure is a FeedError naming ``source``, never another exception.
    """
    scheme = _scheme(source)
    if scheme in _WEB:
        return _fetch_url(source, max_bytes=max_bytes, timeout_s=timeout_s)
    if scheme == "file":
        return _read_file(_file_path(source), source, max_bytes)
    if scheme:
        raise FeedError(f"unsupported feed scheme {scheme!r}: {source}")
    return _read_file(source, source, max_bytes)


def fetch_public(
    source: str,
    *,
    allow_private: bool = False,
    max_bytes: int = MAX_BYTES,
    timeout_s: float = 20.0,
) -> bytes:
    """The bytes of the http(s) URL ``source``, as :func:`fetch` gets them, for a feed the
    server polls: file paths and other schemes are refused, proxies from the environment are
    not used, and unless ``allow_private`` each connection goes only to a host whose every
    address is public (not loopback, link-local, private, shared, multicast or reserved); the
    connection is made to an address that was checked, so a DNS answer that changes between
    the check and the connection cannot slip through. Every failure is a FeedError."""
    if _scheme(source) not in _WEB:
        raise FeedError(f"a polled feed must be an http(s) URL: {source}")
    transport = None if allow_private else _public_transport()
    return _fetch_url(source, max_bytes=max_bytes, timeout_s=timeout_s, transport=transport)


def public_address(address: str) -> bool:
    """Whether the IP ``address`` is a public (globally routed unicast) one; an IPv4 address
    mapped into IPv6 is judged as the IPv4 address."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


def _checked_addresses(host: str, port: int) -> list[str]:
    """The addresses of ``host``, all public; FeedError naming the first that is not."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise httpcore.ConnectError(f"cannot resolve {host}") from exc
    addresses = list(dict.fromkeys(str(info[4][0]) for info in infos))
    for address in addresses:
        if not public_address(address):
            raise FeedError(
                f"feed host {host} is at a loopback, link-local or private address "
                f"({address}), which polled feeds may not reach"
            )
    return addresses


class _PublicOnlyBackend(httpcore.SyncBackend):
    """Connects only to public addresses of a host (see :func:`fetch_public`)."""

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.NetworkStream:
        failure: httpcore.ConnectError | None = None
        for address in _checked_addresses(host, port):
            try:
                return super().connect_tcp(address, port, timeout, local_address, socket_options)
            except httpcore.ConnectError as exc:
                failure = exc
        raise failure or httpcore.ConnectError(f"no address for {host}")


def _public_transport() -> httpx.HTTPTransport:
    """An httpx transport whose connections go through :class:`_PublicOnlyBackend` (TLS still
    verifies the host name of the URL, not the address)."""
    transport = httpx.HTTPTransport(trust_env=False)
    transport._pool = httpcore.ConnectionPool(
        ssl_context=httpx.create_ssl_context(trust_env=False),
        network_backend=_PublicOnlyBackend(),
    )
    return transport


def _too_big(source: str, max_bytes: int) -> FeedError:
    return FeedError(f"feed {source} is larger than {max_bytes} bytes")


def _read_file(path: str, source: str, max_bytes: int) -> bytes:
    try:
        with Path(path).open("rb") as handle:
            data = handle.read(max_bytes + 1)
    except FileNotFoundError:
        raise FeedError(f"feed file not found: {source}") from None
    except IsADirectoryError:
        raise FeedError(f"feed source is a folder, not a file: {source}") from None
    except PermissionError:
        raise FeedError(f"feed file cannot be read (permission denied): {source}") from None
    except OSError as exc:
        raise FeedError(f"feed file cannot be read: {source} ({exc.strerror or 'error'})") from None
    if len(data) > max_bytes:
        raise _too_big(source, max_bytes)
    return data


def _fetch_url(
    url: str, *, max_bytes: int, timeout_s: float, transport: httpx.BaseTransport | None = None
) -> bytes:
    deadline = time.monotonic() + timeout_s
    headers = {
        "Accept": "application/json, application/xml, text/xml;q=0.9, */*;q=0.1",
        "User-Agent": "arserver-feed-reader",
    }
    try:
        with (
            httpx.Client(
                timeout=timeout_s,
                follow_redirects=True,
                max_redirects=_MAX_REDIRECTS,
                transport=transport,
                trust_env=transport is None,
            ) as client,
            client.stream("GET", url, headers=headers) as response,
        ):
            if not 200 <= response.status_code < 300:
                raise FeedError(f"feed {url} answered HTTP {response.status_code}")
            declared = response.headers.get("content-length")
            if declared is not None and declared.isdigit() and int(declared) > max_bytes:
                raise _too_big(url, max_bytes)
            chunks: list[bytes] = []
            size = 0
            for chunk in response.iter_bytes():
                size += len(chunk)
                if size > max_bytes:
                    raise _too_big(url, max_bytes)
                if time.monotonic() > deadline:
                    raise FeedError(f"feed {url} took longer than {timeout_s:g} s")
                chunks.append(chunk)
            return b"".join(chunks)
    except httpx.TooManyRedirects:
        raise FeedError(f"feed {url} redirected more than {_MAX_REDIRECTS} times") from None
    except httpx.TimeoutException:
        raise FeedError(f"feed {url} took longer than {timeout_s:g} s") from None
    except httpx.HTTPError as exc:
        raise FeedError(f"feed {url} could not be fetched ({type(exc).__name__})") from None
