"""Fetching feed documents from a file path or an http(s) URL, bounded in size and time.

:func:`fetch` is the only I/O of the feed readers; they take it as a callable so that tests (and
the server's poller) can give them another. :func:`resolve` turns a reference found inside a
document (SPDP's ``staticDataUrl``) into a source relative to the document's own source.

A document reached from an http(s) URL may only refer to other http(s) URLs: a remote index
cannot make the reader open local files.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from urllib.parse import unquote, urljoin, urlsplit

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


def _fetch_url(url: str, *, max_bytes: int, timeout_s: float) -> bytes:
    deadline = time.monotonic() + timeout_s
    headers = {
        "Accept": "application/json, application/xml, text/xml;q=0.9, */*;q=0.1",
        "User-Agent": "arserver-feed-reader",
    }
    try:
        with (
            httpx.Client(
                timeout=timeout_s, follow_redirects=True, max_redirects=_MAX_REDIRECTS
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
