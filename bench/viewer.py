"""Benchmark: the viewer's start view, with and without gzip.

A server in this process holds the demo's data (the sample assets converted, the field work and
the participation round, the simulated sensors with an hour of history). For compressed answers
on and off (``Settings(compress_responses=...)``, one server each, on the same data), ``--runs``
fresh browser contexts (empty cache) of Debian's Chromium, headless with software WebGL 2, load
``/viewer?layer=demo``; for each, the time from navigation start until ``arviewer.ready``
(``state.startViewLoadedMs``, the start view's tiles loaded) and the bytes received (CDP
``Network.loadingFinished`` ``encodedDataLength``: bodies as sent plus headers; the live
WebSocket's frames are not counted). Goal: the start view within 3 s.

    python bench/viewer.py [--runs 5]
"""

from __future__ import annotations

import argparse
import io
import statistics
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from playwright.sync_api import Browser, sync_playwright
from rich.console import Console

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _harness import machine

from arserver.commands import simulation
from arserver.commands.client import ServerClient
from arserver.commands.field_demo import seed_field_work
from arserver.commands.server import start_server
from arserver.commands.showcase import LAYER, import_samples
from arserver.commands.simulation import HttpSink
from arserver.config import Settings
from arserver.security.tokens import create_token
from arserver.store.database import open_database

REPO = Path(__file__).resolve().parents[1]
VIEWER_DIST = REPO / "viewer" / "dist"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--use-angle=swiftshader",
    "--enable-unsafe-swiftshader",
    "--disable-background-networking",
]
GOAL_MS = 3000.0
#: state.startViewLoadedMs once arviewer.ready has resolved (null after the timeout).
READY = """async (timeoutMs) => {
  const deadline = performance.now() + timeoutMs;
  while (!(window.arviewer && window.arviewer.state.startViewLoadedMs !== null)) {
    if (performance.now() > deadline) return null;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  await window.arviewer.ready;
  return window.arviewer.state.startViewLoadedMs;
}"""
LOAD_TIMEOUT_MS = 120_000


@dataclass
class Runs:
    label: str
    ms: list[float] = field(default_factory=list)
    bytes: list[int] = field(default_factory=list)
    requests: list[int] = field(default_factory=list)


def tokens(settings: Settings) -> tuple[str, str, str, str]:
    """New gis, viewer, inspector and planner tokens in the database of ``settings``."""
    engine = open_database(settings)
    try:
        made = [create_token(engine, r, f"bench {r}")[0] for r in ("gis", "viewer", "inspector",
                                                                     "planner")]  # fmt: skip
    finally:
        engine.dispose()
    return made[0], made[1], made[2], made[3]


def seed(url: str, gis: str, inspector: str, planner: str) -> None:
    """What ``arserver demo`` puts on a server, with one hour of sensor history."""
    quiet = Console(file=io.StringIO())
    imported = import_samples(url, gis, quiet)
    failed = [a["name"] for a in imported if a["status"] != "ready"]
    if failed:
        raise SystemExit(f"sample conversions failed: {failed}")
    with ServerClient(url, inspector) as field_client, ServerClient(url, planner) as plans:
        seed_field_work(field_client, plans, imported, quiet)
    sink = HttpSink(ServerClient(url, gis))
    try:
        simulation.run(sink, backfill_hours=1.0, iterations=1)
    finally:
        sink.close()


def load_once(browser: Browser, url: str, runs: Runs) -> None:
    """One cold load of ``url`` in a fresh context: start view time and bytes received."""
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    try:
        page = context.new_page()
        received: list[int] = []
        cdp = context.new_cdp_session(page)
        cdp.on("Network.loadingFinished", lambda e: received.append(int(e["encodedDataLength"])))
        cdp.send("Network.enable")
        cdp.send("Network.setCacheDisabled", {"cacheDisabled": True})
        page.goto(url)
        # polled by an evaluated function: the page's Content-Security-Policy forbids the
        # string evaluation that Playwright's wait_for_function relies on
        ms = page.evaluate(READY, LOAD_TIMEOUT_MS)
        if ms is None:
            raise SystemExit(f"the start view did not load within {LOAD_TIMEOUT_MS / 1000:g} s")
        runs.ms.append(float(ms))
        # what is still in flight when the start view is ready counts once it has finished
        page.wait_for_load_state("networkidle")
        runs.bytes.append(sum(received))
        runs.requests.append(len(received))
    finally:
        context.close()


def measure(browser: Browser, data_dir: Path, compress: bool, n: int) -> Runs:
    settings = Settings(data_dir=data_dir, viewer_dir=VIEWER_DIST, compress_responses=compress)
    gis, viewer, inspector, planner = tokens(settings)
    server, url = start_server(settings, 0)
    try:
        seed(url, gis, inspector, planner)  # the second server finds it all there already
        runs = Runs("gzip on" if compress else "gzip off")
        page_url = f"{url}/viewer?layer={LAYER}#access_token={viewer}"
        load_once(browser, page_url, Runs("warm-up"))  # the server's first answers
        for _ in range(n):
            load_once(browser, page_url, runs)
        return runs
    finally:
        server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    if not (VIEWER_DIST / "index.html").is_file():
        raise SystemExit("the viewer is not built: make viewer")
    with (
        tempfile.TemporaryDirectory(prefix="arserver-bench-viewer-") as tmp,
        sync_playwright() as p,
    ):
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            results = [measure(browser, Path(tmp) / "data", c, args.runs) for c in (True, False)]
        finally:
            browser.close()
    print(f"# /viewer?layer={LAYER}: cold loads in fresh contexts, {args.runs} runs each")
    print(f"# machine: {machine()}; Chromium headless, SwiftShader WebGL")
    print()
    print("| answers | start view median ms | min ms | max ms | KiB received | requests |")
    print("|---|---:|---:|---:|---:|---:|")
    for r in results:
        print(
            f"| {r.label} | {statistics.median(r.ms):.0f} | {min(r.ms):.0f} | {max(r.ms):.0f} "
            f"| {statistics.median(r.bytes) / 1024:.0f} | {statistics.median(r.requests):.0f} |"
        )
    on, off = results
    ratio = statistics.median(on.bytes) / statistics.median(off.bytes)
    print()
    print(f"bytes with gzip / without: {ratio:.2f}")
    median = statistics.median(on.ms)
    verdict = "met" if median < GOAL_MS else "NOT met"
    print(f"goal: start view under {GOAL_MS / 1000:.0f} s (gzip on, the default): {verdict}")


if __name__ == "__main__":
    main()
