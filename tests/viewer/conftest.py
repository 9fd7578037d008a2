"""Fixtures of the viewer's browser tests: one seeded server for the whole package (with every
log record it writes captured), Debian's Chromium driven by Playwright, and pages that record
what they did. Without Chromium, npm or a built viewer the package is skipped; under CI
(``CI=true``) that is a failure instead."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Playwright, sync_playwright

from tests.viewer.support import (
    CHROMIUM,
    CHROMIUM_ARGS,
    DemoServer,
    LogCapture,
    OpenPage,
    Recorded,
    artifacts_dir,
    new_context,
    record,
    require_prerequisites,
    start_demo_server,
)


@pytest.fixture(scope="session")
def viewer_prerequisites() -> None:
    """Chromium, npm and the built viewer are there (else skip; under CI fail)."""
    require_prerequisites()


@pytest.fixture(scope="session")
def server_logs(viewer_prerequisites: None) -> LogCapture:
    """Every log record of this process (the server runs in it) from the moment the server
    of :func:`demo_server` runs until the end of the session."""
    return LogCapture()


@pytest.fixture(scope="session")
def demo_server(
    server_logs: LogCapture, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[DemoServer]:
    """One server with the demo's data (samples, field work, round, sensors) for every test
    of the package; stopped at the end of the session."""
    folder = tmp_path_factory.mktemp("viewer-server") / "data"
    server = start_demo_server(folder, logs=server_logs)
    try:
        yield server
    finally:
        server.stop()
        server_logs.detach()


@pytest.fixture(scope="session")
def playwright_driver(viewer_prerequisites: None) -> Iterator[Playwright]:
    with sync_playwright() as driver:
        yield driver


@pytest.fixture(scope="session")
def browser(playwright_driver: Playwright) -> Iterator[Browser]:
    """Debian's Chromium, headless, with software WebGL 2."""
    launched = playwright_driver.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
    yield launched
    launched.close()


@pytest.fixture(scope="session")
def artifacts() -> Path:
    """The folder screenshots are saved in."""
    return artifacts_dir()


@pytest.fixture
def open_page(browser: Browser) -> Iterator[OpenPage]:
    """``open_page(init_script=None)``: a new page in a fresh context that records its console
    errors and warnings, page errors, requests and responses; closed after the test."""
    contexts = []

    def open_(init_script: Path | None = None) -> Recorded:
        context = new_context(browser)
        contexts.append(context)
        if init_script is not None:
            context.add_init_script(path=str(init_script))
        return record(context.new_page())

    yield open_
    for context in contexts:
        context.close()
