"""The references (URIs) inside 3D Tiles JSON documents, and one query parameter added to each.

Some 3D Tiles clients (three.js 3DTilesRendererJS among them) resolve a tileset's content and
child tileset URIs against the tileset's own URL, which drops that URL's query string: a
parameter given to the root (an access token, say) never reaches the files below it. A document
whose relative references carry the parameter themselves works with any client.

:func:`template` reads a document once and serialises it with a placeholder where the value
goes; :meth:`Template.render` then costs one join per request, whatever the number of
references. :class:`TemplateCache` keeps templates per file version (path, size, modification
time), so a tileset of many megabytes is parsed once per revision, not once per request.

Which references are rewritten: a tileset's ``content.uri`` (``url`` in 3D Tiles 1.0),
``contents[].uri``, ``implicitTiling.subtrees.uri`` (a template URI; the parameter goes after
its path) and ``schemaUri``, in every tile; a subtree JSON document's ``buffers[].uri``; a glTF
JSON document's ``buffers[].uri`` and ``images[].uri``. Only *relative* references change
(``r1/content/r.glb``, ``../other.json``, ``/tiles/a/tileset.json``); an existing query string
is kept (the parameter is appended with ``&``), a fragment stays last, and references with a
scheme (``https:``, ``data:``) or an authority (``//host/...``) are left exactly as they are.
"""

from __future__ import annotations

import json
import secrets
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

from tiles.errors import TilesError

#: The file suffixes whose documents may hold references (tilesets, subtrees, glTF JSON).
DOCUMENT_SUFFIXES = frozenset({".json", ".gltf"})
#: What a URL parser trims from both ends of a reference: C0 controls and space.
_TRIMMED = "".join(map(chr, range(0x21)))


def is_relative(uri: str) -> bool:
    r"""Whether ``uri`` is a relative reference (no scheme, no authority), which resolves
    against the document's own URL, also as a browser reads it: the WHATWG URL parser trims
    leading and trailing spaces and control characters, drops tabs and newlines and takes
    ``\`` for ``/``, so ``/\host/x`` and `` //host`` name another host and are not relative."""
    browser = uri.strip(_TRIMMED).replace("\\", "/")
    for dropped in "\t\n\r":
        browser = browser.replace(dropped, "")
    try:
        parts = urlsplit(browser)
    except ValueError:  # e.g. an unbalanced "[" in what would be a host
        return False
    return bool(browser) and not parts.scheme and not parts.netloc and not browser.startswith("//")


def with_parameter(uri: str, name: str, value: str) -> str:
    """``uri`` with ``name=value`` (``value`` percent-encoded) in its query if it is relative;
    any other ``uri`` unchanged."""
    if not is_relative(uri):
        return uri
    return _split_for_parameter(uri, name).join(quote(value, safe=""))


@dataclass(frozen=True)
class _Insertion:
    """A relative reference cut where the parameter's value goes: ``before`` + value +
    ``after``."""

    before: str
    after: str

    def join(self, value: str) -> str:
        return f"{self.before}{value}{self.after}"


def _split_for_parameter(uri: str, name: str) -> _Insertion:
    head, hash_mark, fragment = uri.partition("#")
    separator = "?"
    if "?" in head:
        separator = "" if head.endswith(("?", "&")) else "&"
    return _Insertion(f"{head}{separator}{name}=", f"{hash_mark}{fragment}")


@dataclass(frozen=True)
class Template:
    """A serialised document with a gap for the parameter's value in each relative reference.

    ``references`` is how many gaps there are. :meth:`render` returns compact UTF-8 JSON."""

    parts: tuple[bytes, ...]
    references: int

    @property
    def size(self) -> int:
        """Bytes held (for cache accounting)."""
        return sum(len(p) for p in self.parts)

    def render(self, value: str) -> bytes:
        """The document with ``value`` (percent-encoded here) in every gap."""
        return quote(value, safe="").encode("ascii").join(self.parts)


def _tiles(root: Any) -> Iterator[dict[str, Any]]:
    """Every tile object under ``root``, depth first, without recursion."""
    stack = [root]
    while stack:
        tile = stack.pop()
        if not isinstance(tile, dict):
            continue
        yield tile
        children = tile.get("children")
        if isinstance(children, list):
            stack.extend(reversed(children))


def _holders(document: dict[str, Any]) -> Iterator[tuple[dict[str, Any], str]]:
    """(object, key) for every member of ``document`` that holds a reference."""
    if isinstance(document.get("root"), dict):  # a tileset
        if "schemaUri" in document:
            yield document, "schemaUri"
        for tile in _tiles(document["root"]):
            content = tile.get("content")
            if isinstance(content, dict):
                for key in ("uri", "url"):
                    if key in content:
                        yield content, key
            contents = tile.get("contents")
            if isinstance(contents, list):
                for item in contents:
                    if isinstance(item, dict) and "uri" in item:
                        yield item, "uri"
            implicit = tile.get("implicitTiling")
            subtrees = implicit.get("subtrees") if isinstance(implicit, dict) else None
            if isinstance(subtrees, dict) and "uri" in subtrees:
                yield subtrees, "uri"
        return
    members = ("buffers",) if "tileAvailability" in document else ("buffers", "images")
    if "tileAvailability" in document or isinstance(document.get("asset"), dict):
        for member in members:  # a subtree, or a glTF JSON document
            items = document.get(member)
            if isinstance(items, list):
                for item in items:
                    if isinstance(item, dict) and "uri" in item:
                        yield item, "uri"


def template(document: Any, name: str) -> Template:
    """``document`` (parsed JSON, changed here: pass a fresh parse) as a :class:`Template` for
    the query parameter ``name``; a document of no known kind has no gaps."""
    insertions: list[tuple[dict[str, Any], str, _Insertion]] = []
    if isinstance(document, dict):
        for holder, key in _holders(document):
            uri = holder[key]
            if isinstance(uri, str) and is_relative(uri):
                insertions.append((holder, key, _split_for_parameter(uri, name)))
    for _attempt in range(4):  # a marker that the document happens to contain: try another
        marker = f"\x00{secrets.token_hex(12)}\x00"
        for holder, key, insertion in insertions:
            holder[key] = insertion.join(marker)
        text = json.dumps(document, separators=(",", ":"), ensure_ascii=False)
        pieces = text.split(json.dumps(marker)[1:-1])
        if len(pieces) == len(insertions) + 1:
            return Template(tuple(p.encode("utf-8") for p in pieces), len(insertions))
    raise TilesError("cannot prepare the document's references")  # pragma: no cover


class TemplateCache:
    """:func:`template` of documents, kept per key (a file's path, size and modification time,
    or a content hash) for as long as the templates held stay under ``max_bytes`` in total
    (least recently used go first).

    Safe to share between threads. A file that is not UTF-8 JSON (or nested too deep for the
    parser) gives None."""

    def __init__(self, name: str, max_bytes: int = 64 * 1024 * 1024) -> None:
        self.name = name
        self.max_bytes = max_bytes
        self._known: OrderedDict[Hashable, Template | None] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    def of(self, path: Path) -> Template | None:
        """The template of a file, kept per (path, size, modification time)."""
        stat = path.stat()
        return self.of_content((str(path), stat.st_size, stat.st_mtime_ns), path.read_bytes)

    def of_content(self, key: Hashable, read: Callable[[], bytes]) -> Template | None:
        """The template of the document ``read`` gives, kept under ``key`` (which must change
        whenever the document does: a path with its size and time, or a content hash)."""
        with self._lock:
            if key in self._known:
                self._known.move_to_end(key)
                return self._known[key]
        made: Template | None
        try:
            made = template(json.loads(read()), self.name)
        except (ValueError, RecursionError):  # not UTF-8 JSON, or nested too deep to parse
            made = None
        with self._lock:
            if key not in self._known:
                self._known[key] = made
                self._bytes += made.size if made is not None else 0
            while self._bytes > self.max_bytes and len(self._known) > 1:
                _, dropped = self._known.popitem(last=False)
                self._bytes -= dropped.size if dropped is not None else 0
        return made
