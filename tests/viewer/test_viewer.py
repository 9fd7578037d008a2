"""The viewer in a real browser against a seeded server: the scene loads and draws, a tap on a
building shows its attributes, live values arrive exactly once across a dropped connection, an
upload through the assets page opens in the viewer, and a WebXR session keeps loading tiles as
the headset moves. Every page talks to the server's origin only, logs no error, and never puts
the token into an HTTP URL; no server log line carries a token."""

from __future__ import annotations

import io
import json
import math
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from PIL import Image
from playwright.sync_api import Browser, Page

from tests.viewer.support import (
    EMULATOR,
    REPO,
    DemoServer,
    LogCapture,
    OpenPage,
    Recorded,
    new_context,
    record,
    require_prerequisites,
    wait_for,
)

pytestmark = pytest.mark.slow
require_prerequisites(at_import=True)

#: Deadlines (ms) for what the browser does with software rendering on a small machine.
LOAD_MS = 90_000
STEP_MS = 30_000
#: A sensor of the demo that measures one quantity (simulation.py), next to the scene.
LIVE_SENSOR, LIVE_KIND = "noise-plaza", "noise_laeq"
#: The sample the upload test sends through the assets page; its file declares RD New
#: (EPSG:28992), its heights are NAP metres in its properties.
UPLOADED = REPO / "assets" / "parking_zones.geojson"

READY = "() => window.arviewer && window.arviewer.state.startViewLoadedMs !== null"


def viewer_url(server: DemoServer, query: str, role: str = "viewer") -> str:
    return f"{server.url}/viewer?{query}#access_token={server.tokens[role]}"


def wait_ready(page: Page) -> None:
    """Until ``arviewer.ready`` resolved (the start view's tiles are loaded)."""
    wait_for(page, READY, timeout_ms=LOAD_MS, what="the start view loading")
    page.evaluate("window.arviewer.ready")


def state(page: Page) -> dict[str, Any]:
    """``window.arviewer.state`` as JSON."""
    value: dict[str, Any] = page.evaluate("JSON.parse(JSON.stringify(window.arviewer.state))")
    return value


def assert_clean(recorded: Recorded, server: DemoServer) -> None:
    """The page logged no error, threw nothing, asked no other origin, and put no token into
    an HTTP URL (the WebSocket's is the only URL allowed to carry it)."""
    errors = [line for line in recorded.problems() if not line.startswith("warning:")]
    assert errors == [], "\n".join(errors)
    assert recorded.foreign_requests(server.url) == []
    assert recorded.tokened_http_requests() == []
    assert all(url.startswith(server.url.replace("http", "ws", 1)) for url in recorded.websockets)


def canvas_png(page: Page, path: Path) -> np.ndarray:
    """A screenshot of the viewer's canvas, saved at ``path``, as an RGB array."""
    data = page.locator("canvas").first.screenshot(path=str(path))
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"), dtype=np.int16)


def get_json(server: DemoServer, path: str, role: str = "viewer") -> Any:
    reply = httpx.get(
        server.url + path, headers={"Authorization": f"Bearer {server.tokens[role]}"}, timeout=30
    )
    assert reply.status_code == 200, f"{path}: {reply.status_code} {reply.text[:300]}"
    return reply.json()


def features_of(server: DemoServer, asset: dict[str, Any]) -> list[dict[str, Any]]:
    """The entries of an asset's ``features.json`` (beside its tileset's content)."""
    tileset = get_json(server, asset["tileset"])
    pending, uri = [tileset["root"]], None
    while pending and uri is None:
        tile = pending.pop()
        uri = tile.get("content", {}).get("uri")
        pending.extend(tile.get("children", []))
    assert uri is not None, "the tileset has no content"
    folder = uri.split("/")[0] if "/" in uri.removeprefix("/") else ""
    path = f"/tiles/{asset['id']}/" + (f"{folder}/" if folder else "") + "features.json"
    features: list[dict[str, Any]] = get_json(server, path)["features"]
    return features


# -- one page of the demo layer, shared by the tests that only look at it ---------------------


@pytest.fixture(scope="module")
def demo_page(browser: Browser, demo_server: DemoServer) -> Iterator[Recorded]:
    """``/viewer?layer=demo`` with the viewer token, its start view loaded."""
    context = new_context(browser)
    recorded = record(context.new_page())
    recorded.page.goto(viewer_url(demo_server, "layer=demo"))
    wait_ready(recorded.page)
    yield recorded
    context.close()


def test_the_scene_tileset_and_its_gltf_content_load_and_are_drawn(
    demo_page: Recorded, demo_server: DemoServer, open_page: OpenPage, artifacts: Path
) -> None:
    page = demo_page.page
    assert demo_page.statuses("/tiles/scene/demo/tileset.json") == [200]
    glb = [(url, status) for url, status in demo_page.responses if ".glb" in url]
    assert glb, "no glTF content was fetched"
    assert all(status == 200 for _, status in glb), glb
    shown = state(page)
    assert shown["mode"] == "layer"
    assert shown["tilesLoaded"] > 0
    assert shown["tilesets"] >= 2  # the scene tileset and the assets' own
    assert shown["origin"] is not None
    assert page.url == f"{demo_server.url}/viewer?layer=demo"  # the token left the address bar
    scene = canvas_png(page, artifacts / "scene-demo.png")

    empty = open_page()
    empty.page.goto(viewer_url(demo_server, "layer=nothing-here"))
    wait_ready(empty.page)
    assert state(empty.page)["tilesLoaded"] == 0
    nothing = canvas_png(empty.page, artifacts / "scene-empty.png")

    assert float(scene.std()) > 10.0, "the canvas of the demo scene is (almost) one colour"
    assert scene.shape == nothing.shape
    differing = float(np.mean(np.abs(scene - nothing).max(axis=2) > 24))
    assert differing > 0.01, f"only {differing:.2%} of the pixels differ from an empty scene"
    assert_clean(demo_page, demo_server)
    assert_clean(empty, demo_server)


SETTLED_SCREEN_POSITION = """async ([lon, lat, h]) => {
  // The point's position on the page once the camera has stopped moving (five frames alike).
  const viewer = window.arviewer.viewer;
  let last = null, alike = 0;
  const deadline = performance.now() + 20000;
  while (performance.now() < deadline) {
    await new Promise((resolve) => requestAnimationFrame(resolve));
    const p = viewer.screenOf(lon, lat, h);
    const same = p && last && Math.abs(p.x - last.x) < 0.5 && Math.abs(p.y - last.y) < 0.5;
    alike = same ? alike + 1 : 0;
    if (alike >= 5 && window.arviewer.state.tilesPending === 0) return p;
    last = p;
  }
  return null;
}"""


def stored_attributes(feature_id: str) -> dict[str, Any]:
    """What the converter keeps of a CityJSON object: its (parent building's and own)
    attributes, its id, type and parent."""
    city = json.loads((REPO / "assets" / "buildings.city.json").read_text(encoding="utf-8"))
    objects = city["CityObjects"]
    item = objects[feature_id]
    expected: dict[str, Any] = {}
    for parent in item.get("parents", []):
        expected.update(objects[parent].get("attributes") or {})
    expected.update(item.get("attributes") or {})
    expected.update({"id": feature_id, "type": item["type"]})
    if item.get("parents"):
        expected["parent"] = item["parents"][0]
    return expected


def test_tapping_a_building_shows_its_stored_attributes(
    demo_page: Recorded, demo_server: DemoServer, artifacts: Path
) -> None:
    page = demo_page.page
    buildings = demo_server.assets["buildings.city.json"]
    feature = features_of(demo_server, buildings)[0]
    # The centre of its box is inside the (convex) house: seen from anywhere, the ray through
    # it meets the house first.
    centre = feature["center"]
    page.evaluate("([lon, lat, h]) => window.arviewer.viewer.flyTo(lon, lat, h)", centre)
    where = page.evaluate(SETTLED_SCREEN_POSITION, centre)
    assert where is not None, "the building did not come into view after flyTo"
    viewport = page.viewport_size
    assert viewport is not None
    assert 0 <= where["x"] < viewport["width"], where
    assert 0 <= where["y"] < viewport["height"], where
    page.mouse.click(where["x"], where["y"])
    try:
        wait_for(
            page,
            "(id) => { const p = window.arviewer.state.picked;"
            " return p && p.kind === 'feature' && p.featureId === id; }",
            feature["id"],
            timeout_ms=STEP_MS,
            what=f"picking {feature['id']} at {where}",
        )
    except AssertionError as failure:
        page.screenshot(path=str(artifacts / "picked-building.png"))
        raise AssertionError(f"{failure}; picked instead: {state(page)['picked']}") from None
    page.screenshot(path=str(artifacts / "picked-building.png"))
    picked = state(page)["picked"]
    assert picked["assetId"] == buildings["id"]
    assert picked["properties"] == stored_attributes(feature["id"])
    assert_clean(demo_page, demo_server)


# -- live values ----------------------------------------------------------------------------

ARRIVED = r"""([sensor, ms]) => {
  // How often the item of `sensor` at the instant `ms` arrived (0: not yet).
  for (const [key, count] of Object.entries(window.arviewer.state.received)) {
    if (!key.includes(sensor)) continue;
    const m = key.match(/(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(\.\d+)?(Z|[+-]\d\d:\d\d)?$/);
    if (!m) continue;
    const fraction = (m[2] || '.000').slice(0, 4).padEnd(4, '0');
    if (Date.parse(m[1] + fraction + (m[3] || 'Z')) === ms) return count;
  }
  return 0;
}"""


def post_reading(server: DemoServer, moment: datetime, value: float) -> None:
    reply = httpx.post(
        f"{server.url}/api/v1/observations",
        json={
            "observations": [
                {"sensor": LIVE_SENSOR, "kind": LIVE_KIND, "time": moment.isoformat(),
                 "value": value}
            ]
        },
        headers={"Authorization": f"Bearer {server.tokens['gis']}"},
        timeout=30,
    )  # fmt: skip
    assert reply.status_code == 200, reply.text
    assert reply.json()["accepted"] == 1, reply.text


def now_ms() -> datetime:
    """Now, to the millisecond (what a JavaScript date holds)."""
    now = datetime.now(UTC)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


def arrivals(page: Page, moment: datetime) -> int:
    count: int = page.evaluate(ARRIVED, [LIVE_SENSOR, int(moment.timestamp() * 1000)])
    return count


def test_live_values_arrive_quickly_and_exactly_once_across_a_dropped_connection(
    demo_page: Recorded, demo_server: DemoServer
) -> None:
    page = demo_page.page
    wait_for(
        page,
        "(sensor) => window.arviewer.state.live.connected &&"
        " Object.keys(window.arviewer.state.overlays).some((k) => k.includes(sensor))",
        LIVE_SENSOR,
        timeout_ms=STEP_MS,
        what=f"the live overlay showing {LIVE_SENSOR}",
    )
    first = now_ms()
    post_reading(demo_server, first, 61.5)
    wait_for(  # within 2 s of the server accepting it
        page,
        f"(args) => ({ARRIVED})(args) > 0",
        [LIVE_SENSOR, int(first.timestamp() * 1000)],
        timeout_ms=2000,
        what="the new reading arriving",
    )
    overlay = next(v for k, v in state(page)["overlays"].items() if LIVE_SENSOR in k)
    assert overlay["value"] == pytest.approx(61.5), overlay

    page.evaluate("window.arviewer.live.dropConnection(3000)")  # away for at least 3 s
    second = first + timedelta(seconds=1)
    post_reading(demo_server, second, 64.0)
    # Still away when the server took it: the reading can only come through the resume.
    assert state(page)["live"]["connected"] is False
    wait_for(
        page,
        f"(args) => ({ARRIVED})(args) > 0 && window.arviewer.state.live.connected",
        [LIVE_SENSOR, int(second.timestamp() * 1000)],
        timeout_ms=STEP_MS,
        what="the reading posted while disconnected arriving after the resume",
    )
    live = state(page)["live"]
    assert live["reconnects"] >= 1, live
    assert live["recovered"] is True, live
    assert arrivals(page, second) == 1
    assert arrivals(page, first) == 1
    assert_clean(demo_page, demo_server)


PLACE_KEY = "parking:zone-2"  # the demo's zone P2, where the simulated bays stand


def test_a_parking_zone_on_the_overlay_opens_its_occupancy_and_forecast(
    demo_page: Recorded, demo_server: DemoServer
) -> None:
    page = demo_page.page
    wait_for(
        page,
        "(key) => Object.keys(window.arviewer.state.overlays).includes('parking:' + key)",
        PLACE_KEY,
        timeout_ms=STEP_MS,
        what="the zone's occupancy on the live overlay",
    )
    place = get_json(demo_server, "/api/v1/parking/places/zone-2")
    assert place["occupancy"]["capacity"] == 160
    # What a tap on the zone's marker hands the live layer (the marker's own pick).
    page.evaluate(
        "(key) => window.arviewer.live.handlePick("
        "window.arviewer.live.markers.entries.get(key).proxy.userData.pick)",
        PLACE_KEY,
    )
    wait_for(
        page,
        "() => { const p = document.getElementById('panel');"
        " return p && !p.hidden && p.textContent.includes('Occupied')"
        " && p.querySelector('.live-note') && !p.textContent.includes('Loading'); }",
        timeout_ms=STEP_MS,
        what="the zone's panel with its history loaded",
    )
    text = page.evaluate("document.getElementById('panel').textContent")
    assert "P2 short stay" in text
    assert f"of {place['occupancy']['capacity']} spaces" in text
    assert "In 30 min" in text  # the forecasts, each with its interval and method
    assert "could not be loaded" not in text
    assert_clean(demo_page, demo_server)


# -- the assets page: upload, then open in the viewer ---------------------------------------


def test_an_upload_on_the_assets_page_becomes_ready_and_opens_in_the_viewer(
    open_page: OpenPage, demo_server: DemoServer, artifacts: Path
) -> None:
    recorded = open_page()
    page = recorded.page
    page.goto(f"{demo_server.url}/viewer/assets#access_token={demo_server.tokens['gis']}")
    name = f"zones uploaded by the browser test {datetime.now(UTC):%H%M%S%f}"
    page.locator("input[type=file]").set_input_files(str(UPLOADED))
    # The file declares its CRS (RD New); its heights are NAP metres in its properties, which
    # the converter reads as the demo's import does: the suggested CRS stays as it is.
    form = page.get_by_role("region", name="Upload")
    form.get_by_label("Name", exact=True).fill(name)
    form.get_by_label("Layer", exact=True).fill("browser-uploads")  # not the demo's layer
    form.get_by_role("button", name="Upload", exact=True).click()
    row = page.locator("tr").filter(has_text=name)
    row.filter(has_text="Ready").wait_for(timeout=LOAD_MS)
    page.screenshot(path=str(artifacts / "assets-uploaded.png"))
    asset_id = row.get_attribute("data-asset")
    assert asset_id is not None
    assert row.get_attribute("data-status") == "ready"
    assert get_json(demo_server, f"/api/v1/assets/{asset_id}", role="gis")["name"] == name

    row.get_by_role("link", name="Open in viewer").click()
    page.wait_for_url(f"{demo_server.url}/viewer?asset={asset_id}", timeout=STEP_MS)
    wait_ready(page)
    assert recorded.statuses(f"/tiles/{asset_id}/tileset.json") == [200]
    shown = state(page)
    assert shown["mode"] == "asset"
    assert shown["tilesLoaded"] > 0
    page.screenshot(path=str(artifacts / "asset-opened.png"))
    assert_clean(recorded, demo_server)


# -- WebXR ----------------------------------------------------------------------------------


def test_an_immersive_vr_session_keeps_loading_tiles_as_the_headset_moves(
    open_page: OpenPage, demo_server: DemoServer, artifacts: Path
) -> None:
    recorded = open_page(init_script=EMULATOR)
    page = recorded.page
    page.goto(viewer_url(demo_server, "layer=demo", role="planner"))
    wait_ready(page)
    enter = page.get_by_role("button", name="Enter VR")
    enter.wait_for(timeout=STEP_MS)
    enter.click()
    wait_for(
        page,
        "() => window.arviewer.state.xr.session === 'immersive-vr'",
        timeout_ms=STEP_MS,
        what="the immersive-vr session starting",
    )
    wait_for(
        page,
        "() => window.arviewer.state.tilesPending === 0",
        timeout_ms=STEP_MS,
        what="the session's first tiles loading",
    )
    before = state(page)["tilesLoaded"]
    trees = demo_server.assets["tree_scan.laz"]
    west, south, east, _ = trees["bbox"]
    # Beside the tree scan, some 120 m from the scene's centre where the session starts: its
    # finer tiles are needed only close by. The floor space of a VR session is the viewer's
    # local frame horizontally (east = x, north = -z), its floor at street level: the headset
    # goes to that point's x and z, 1.7 m above the floor.
    x, z = page.evaluate(
        "([lon, lat]) => { const p = window.arviewer.viewer.lonLatHToLocal(lon, lat, 0);"
        " return [p.x, p.z]; }",
        [(west + east) / 2, south - 0.00005],
    )
    assert math.hypot(x, z) > 50, (x, z)
    page.evaluate("([x, z]) => window.arserverXRDevice.position.set(x, 1.7, z)", [x, z])
    wait_for(
        page,
        "(before) => window.arviewer.state.tilesLoaded > before",
        before,
        timeout_ms=STEP_MS,
        what="more tiles loading after the headset moved",
    )
    page.screenshot(path=str(artifacts / "xr-moved.png"))
    assert_clean(recorded, demo_server)


# -- the server's logs ----------------------------------------------------------------------


def test_no_token_appears_in_any_server_log_line(
    demo_server: DemoServer, server_logs: LogCapture
) -> None:
    """Runs last: the pages above have opened WebSockets with the token in their URL."""
    handshakes = [line for line in server_logs.lines if "/api/v1/live?" in line]
    assert handshakes, "the pages' WebSocket handshakes are not in the captured logs"
    secrets = list(demo_server.tokens.values())
    if demo_server.round_link is not None:
        secrets.append(demo_server.round_link.partition("#access_token=")[2])
    for secret in secrets:
        assert server_logs.containing(secret) == []
