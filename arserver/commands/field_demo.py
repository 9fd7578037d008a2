"""What ``arserver demo`` seeds for field work and participation: a few inspections around
the sample assets (one on a cable of the utility map, one given in RD New + NAP, one assigned
and in progress) and an open public participation round on the planned object among the
samples, with a planner's opening comment and a resident's reaction. Everything goes through
the HTTP API, as a client would do it; a second run finds what the first seeded and only
issues a new public link for the round.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from rich.console import Console

from arserver.commands.client import ServerClient
from tiles.crs import Transformer

ROUND_TITLE = "Nieuwe bank bij de Kiss & Ride"
#: The round's area in RD New (metres): the square with the sample parking zones.
ROUND_AREA_RD = ((111_700.0, 481_080.0), (111_950.0, 481_080.0), (111_950.0, 481_200.0),
                 (111_700.0, 481_200.0))  # fmt: skip
#: Where the planned bench stands (RD New + NAP, metres), as the demo places it.
BENCH_RD = (111_770.0, 481_147.0, -3.6)
PRIVACY_NOTICE = (
    "De gemeente bewaart uw reactie, de plek die u aanwijst en een schuilnaam (Bewoner ...). "
    "Geen e-mailadres, geen IP-adres. Reacties en de antwoorden van de gemeente komen in het "
    "verslag bij het besluit; 90 dagen na het einde van de ronde is uw reactie niet meer aan "
    "uw link gekoppeld."
)


def seed_field_work(
    client: ServerClient, planner: ServerClient, assets: list[dict[str, Any]], out: Console
) -> str | None:
    """Seed inspections (``client``: an inspector's) and the round (``planner``: a
    planner's) unless a previous run did; returns the path and fragment of the round's public
    link (``/viewer?round=ID#access_token=...``), None without a planned public asset."""
    by_name = {a.get("name"): a for a in assets if a.get("status") == "ready"}
    if not client.call("GET", "/api/v1/inspections", params={"limit": 1})["inspections"]:
        _inspections(client, by_name)
    planned = by_name.get("bench.glb")
    if planned is None:
        return None
    existing = [
        r
        for r in planner.call("GET", "/api/v1/rounds")["rounds"]
        if r["title"] == ROUND_TITLE and r["state"] != "closed"  # a closed one stays closed
    ]
    if existing:
        link = planner.call("POST", f"/api/v1/rounds/{existing[0]['id']}/link")
    else:
        link = _round(planner, planned["id"])
    count = len(client.call("GET", "/api/v1/inspections", params={"limit": 100})["inspections"])
    out.print(f"  field work:        {count} inspections; round {ROUND_TITLE!r} is open")
    return str(link["link"])


def _inspections(client: ServerClient, by_name: dict[str | None, dict[str, Any]]) -> None:
    cables = by_name.get("cables_pipes.geojson")
    if cables is not None:
        client.call(
            "POST", "/api/v1/inspections",
            json={
                "asset": cables["id"], "feature": "utility-1", "category": "damage",
                "severity": "urgent",
                "description": "Gasleiding ligt bloot na graafwerk; afgezet met linten.",
            },
        )  # fmt: skip
    client.call(
        "POST", "/api/v1/inspections",
        json={
            "location": [111_765.4, 481_150.2, -3.6], "crs": "EPSG:7415", "category": "hazard",
            "severity": "high", "description": "Lantaarnpaal staat scheef, ongeveer 10 graden.",
        },
    )  # fmt: skip
    parked = client.call(
        "POST", "/api/v1/inspections",
        json={
            "location": [111_780.0, 481_125.0, -3.6], "crs": "EPSG:7415",
            "category": "obstruction",
            "description": "Fietsen geparkeerd op de Kiss & Ride-strook.",
        },
    )  # fmt: skip
    client.call(
        "PATCH", f"/api/v1/inspections/{parked['id']}",
        json={"status": "in_progress", "assignee": "team Handhaving", "note": "Doorgezet."},
    )  # fmt: skip


def _round(planner: ServerClient, asset_id: str) -> dict[str, Any]:
    to_wgs84 = Transformer.from_crs("EPSG:28992", "EPSG:4258")
    lon, lat, _ = to_wgs84.transform([p[0] for p in ROUND_AREA_RD], [p[1] for p in ROUND_AREA_RD])
    ring = [[float(x), float(y)] for x, y in zip(lon, lat, strict=True)]
    now = datetime.now(UTC).replace(microsecond=0)
    created = planner.call(
        "POST", "/api/v1/rounds",
        json={
            "title": ROUND_TITLE,
            "description": "Waar komt de nieuwe bank? Zet uw reactie op de kaart.",
            "privacy_notice": PRIVACY_NOTICE, "mode": "public",
            "area": {"type": "Polygon", "coordinates": [[*ring, ring[0]]]},
            "assets": [asset_id],
            "starts_at": (now - timedelta(hours=1)).isoformat(),
            "ends_at": (now + timedelta(days=28)).isoformat(),
        },
    )  # fmt: skip
    planner.call(
        "POST", "/api/v1/comments",
        json={
            "round": created["id"], "asset": asset_id, "location": list(BENCH_RD),
            "crs": "EPSG:7415", "text": "Dit is het voorstel: een bank "
            "met rugleuning naast de lantaarnpaal. Wat vindt u ervan?",
        },
    )  # fmt: skip
    with ServerClient(planner.base_url, created["link_token"]) as link:
        joined = link.call("POST", f"/api/v1/rounds/{created['id']}/participants")
    with ServerClient(planner.base_url, joined["token"]) as resident:
        centre = [sum(p[0] for p in ring) / 4, sum(p[1] for p in ring) / 4]
        resident.call(
            "POST", "/api/v1/comments",
            json={"round": created["id"], "location": centre,
                  "text": "Liever in de schaduw, aan de kant van de bomen."},
        )  # fmt: skip
    return created
