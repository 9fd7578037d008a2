"""Helpers for the viewer's browser tests (import them; never from conftest.py): a seeded demo
server in this process, a capture of its log records, and a Playwright page that records what
the browser did (console messages, page errors, every request and response)."""

from __future__ import annotations

import io
import logging
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Browser, BrowserContext, ConsoleMessage, Page, Request, Response
from rich.console import Console

from arserver.commands import simulation
from arserver.commands.client import ServerClient
from arserver.commands.field_demo import seed_field_work
from arserver.commands.server import UVICORN_LOGGERS, BackgroundServer, start_server
from arserver.commands.showcase import import_samples, seed_parking
from arserver.commands.simulation import HttpSink
from arserver.config import Settings
from arserver.security.tokens import create_token
from arserver.store.database import open_database

REPO = Path(__file__).resolve().parents[2]
#: The built viewer the tests serve (``$ARSERVER_VIEWER_DIR``, as for the server, or the default).
VIEWER_DIST = Path(os.environ.get("ARSERVER_VIEWER_DIR") or REPO / "viewer" / "dist")
CHROMIUM = Path("/usr/bin/chromium")
#: Meta's WebXR emulator runtime, built beside the viewer for the tests (never served).
EMULATOR = VIEWER_DIST.parent / "dist-testing" / "xr-emulator.js"
#: How the tests and the benchmark start Chromium: headless, software WebGL 2 (SwiftShader), no
#: background requests of the browser's own (so every request seen is the page's).
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--use-angle=swiftshader",
    "--enable-unsafe-swiftshader",
    "--disable-background-networking",
]
ROLES = ("gis", "viewer", "planner", "inspector", "admin")


def missing_prerequisite() -> str | None:
    """What the browser tests lack, in a few words (None: nothing)."""
    if not CHROMIUM.is_file():
        return f"{CHROMIUM} is missing (apt-get install chromium)"
    built = (VIEWER_DIST / "index.html").is_file() and EMULATOR.is_file()
    if not built and shutil.which("npm") is None:
        return "the viewer is not built and npm is missing (apt-get install nodejs npm)"
    if not built:
        return "the viewer is not built (make viewer)"
    return None


def require_prerequisites(*, at_import: bool = False) -> None:
    """Skip when Chromium or the built viewer is missing (``at_import``: the whole calling
    module, with one line); under CI (``CI=true``) that is a failure of each test instead (at
    import nothing happens then, so that the rest of the suite still runs)."""
    missing = missing_prerequisite()
    if missing is None:
        return
    if os.environ.get("CI") == "true":
        if not at_import:
            pytest.fail(f"the viewer's browser tests are required under CI: {missing}")
        return
    pytest.skip(f"viewer browser tests skipped: {missing}", allow_module_level=at_import)


def artifacts_dir() -> Path:
    """Where screenshots go: ``$ARSERVER_TEST_ARTIFACTS`` or ``tests/viewer/artifacts/``
    (created; never committed)."""
    folder = Path(os.environ.get("ARSERVER_TEST_ARTIFACTS") or Path(__file__).parent / "artifacts")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


# -- the server's log records ---------------------------------------------------------------


class LogCapture(logging.Handler):
    """Keeps every record that reaches it as a line (message, exception and stack), as the
    service's own handlers write it: :meth:`attach` it after the server started, so that it
    comes after the redaction that uvicorn's loggers and the root logger's handler apply (and
    after uvicorn's logging configuration, which replaces the handlers of its loggers)."""

    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.lines: list[str] = []
        self._seen: set[int] = set()
        self._saved: list[tuple[logging.Logger, int]] = []

    def emit(self, record: logging.LogRecord) -> None:  # called under self.lock
        if id(record) in self._seen:  # reached through two loggers it propagates to
            return
        self._seen.add(id(record))
        text = f"{record.levelname}:{record.name}: {record.getMessage()}"
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        for extra in (record.exc_text, record.stack_info):
            if extra:
                text += "\n" + extra
        self.lines.append(text)

    def attach(self) -> None:
        """Capture every record of this process (the server runs in it) at DEBUG and above:
        the root logger and uvicorn's loggers (not all of which propagate) are lowered to
        DEBUG and get this handler until :meth:`detach`."""
        for logger in [logging.getLogger(), *(logging.getLogger(n) for n in UVICORN_LOGGERS)]:
            self._saved.append((logger, logger.level))
            logger.addHandler(self)
            logger.setLevel(logging.DEBUG)

    def detach(self) -> None:
        """Remove the handler and restore the loggers' levels."""
        for logger, level in self._saved:
            logger.removeHandler(self)
            logger.setLevel(level)
        self._saved.clear()

    def containing(self, secret: str) -> list[str]:
        """The captured lines that contain ``secret``."""
        with self.lock:  # type: ignore[union-attr]
            return [line for line in self.lines if secret in line]


# -- a seeded server ------------------------------------------------------------------------


@dataclass
class DemoServer:
    """A running server with the demo's data: ``tokens`` by role (``ROLES``), ``assets`` (the
    imported samples' last states) by name, ``round_link`` (path and fragment of the round's
    public page)."""

    url: str
    settings: Settings
    server: BackgroundServer
    tokens: dict[str, str]
    assets: dict[str, dict[str, Any]]
    round_link: str | None

    def client(self, role: str = "viewer", timeout_s: float = 60.0) -> ServerClient:
        """A client of this server with the token of ``role``."""
        return ServerClient(self.url, self.tokens[role], timeout_s=timeout_s)

    def stop(self) -> None:
        self.server.stop()


def start_demo_server(
    data_dir: Path,
    *,
    viewer_dir: Path = VIEWER_DIST,
    compress_responses: bool = True,
    backfill_hours: float = 1.0,
    logs: LogCapture | None = None,
) -> DemoServer:
    """Start a server on a free port with the data ``arserver demo`` seeds (the sample assets
    converted, the inspections and the participation round, the simulated sensors with
    ``backfill_hours`` of history and one live reading each) and a token per role; ``logs`` is
    attached as soon as the server runs. The caller stops it."""
    settings = Settings(
        data_dir=data_dir, viewer_dir=viewer_dir, compress_responses=compress_responses
    )
    engine = open_database(settings)
    try:
        tokens = {role: create_token(engine, role, f"viewer tests {role}")[0] for role in ROLES}
    finally:
        engine.dispose()
    server, url = start_server(settings, 0)
    if logs is not None:
        logs.attach()
    try:
        quiet = Console(file=io.StringIO())
        imported = import_samples(url, tokens["gis"], quiet)
        failed = [(a["name"], a["error"]) for a in imported if a["status"] != "ready"]
        assert not failed, f"sample conversions failed: {failed}"
        with (
            ServerClient(url, tokens["inspector"]) as field,
            ServerClient(url, tokens["planner"]) as plans,
        ):
            round_link = seed_field_work(field, plans, imported, quiet)
        with ServerClient(url, tokens["gis"]) as editor:
            seed_parking(editor)
        sink = HttpSink(ServerClient(url, tokens["gis"]))
        try:
            simulation.run(sink, backfill_hours=backfill_hours, iterations=1)
        finally:
            sink.close()
    except BaseException:
        server.stop()
        raise
    return DemoServer(
        url=url,
        settings=settings,
        server=server,
        tokens=tokens,
        assets={a["name"]: a for a in imported},
        round_link=round_link,
    )


# -- a recorded page ------------------------------------------------------------------------


@dataclass
class Recorded:
    """What one page did: console errors and warnings, uncaught page errors, every request URL
    (WebSocket handshakes included) and every response's (URL, status)."""

    page: Page
    console: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)
    websockets: list[str] = field(default_factory=list)
    responses: list[tuple[str, int]] = field(default_factory=list)

    def statuses(self, path_part: str) -> list[int]:
        """Statuses of the responses whose URL contains ``path_part``."""
        return [status for url, status in self.responses if path_part in url]

    def foreign_requests(self, origin: str) -> list[str]:
        """Requests (and WebSockets) to anywhere but ``origin`` (``http://host:port``);
        ``data:`` and ``blob:`` URLs are the page's own."""
        host = urlsplit(origin).netloc
        return [
            url
            for url in [*self.requests, *self.websockets]
            if urlsplit(url).scheme not in ("data", "blob") and urlsplit(url).netloc != host
        ]

    def tokened_http_requests(self) -> list[str]:
        """HTTP(S) request URLs that carry a token (``access_token=``)."""
        return [
            url
            for url in self.requests
            if urlsplit(url).scheme in ("http", "https") and "access_token=" in url
        ]

    def problems(self) -> list[str]:
        """Console errors and warnings and page errors, one line each."""
        return [*self.console, *(f"pageerror: {e}" for e in self.page_errors)]


def record(page: Page) -> Recorded:
    """Start recording what ``page`` does (before it navigates)."""
    recorded = Recorded(page)

    def on_console(message: ConsoleMessage) -> None:
        if message.type in ("error", "warning"):
            location = message.location
            where = f" ({location.get('url')}:{location.get('lineNumber')})" if location else ""
            recorded.console.append(f"{message.type}: {message.text}{where}")

    def on_request(request: Request) -> None:
        recorded.requests.append(request.url)

    def on_response(response: Response) -> None:
        recorded.responses.append((response.url, response.status))

    page.on("console", on_console)
    page.on("pageerror", lambda error: recorded.page_errors.append(str(error)))
    page.on("request", on_request)
    page.on("response", on_response)
    page.on("websocket", lambda ws: recorded.websockets.append(ws.url))
    return recorded


_WAIT = """async ([arg, timeoutMs]) => {
  const test = (%s);
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    const value = await test(arg);
    if (value) return value;
    if (performance.now() > deadline) return null;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}"""


def wait_for(page: Page, predicate: str, arg: Any = None, *, timeout_ms: float, what: str) -> Any:
    """Poll the JavaScript function ``predicate(arg)`` in the page every 10 ms until it returns
    something truthy (returned), failing with ``what`` after ``timeout_ms``. Unlike Playwright's
    ``wait_for_function`` this does not evaluate strings inside the page, which the viewer's
    Content-Security-Policy (rightly) forbids."""
    value = page.evaluate(_WAIT % predicate, [arg, timeout_ms])
    if not value:
        raise AssertionError(f"{what} did not happen within {timeout_ms / 1000:g} s")
    return value


#: Opens a recorded page in a fresh context; ``init_script``: a file run before the page's own.
OpenPage = Callable[..., Recorded]


def new_context(browser: Browser, **options: Any) -> BrowserContext:
    """A fresh browser context (own storage, own cache) of 1280 x 800 CSS pixels."""
    return browser.new_context(viewport={"width": 1280, "height": 800}, **options)
