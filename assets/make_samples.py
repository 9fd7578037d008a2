"""Makes the sample inputs in this folder (run: python assets/make_samples.py).

- lamp_post.glb, bench.glb: street furniture in local metres (glTF, y up), for placement near
  Schiphol with an origin and heading; the bench has a wood texture.
- parking_zones.geojson: parking zones near Schiphol in RD New, heights in NAP metres.
- cables_pipes.geojson: cables and pipes in RD New with depth (m) and diameter (mm), KLIC-style.
- tree_scan.laz: a small coloured point cloud (a tree on a patch of grass) in RD New + NAP.
- buildings.city.json: two buildings in the 3DBAG layout (CityJSON 2.0, RD New + NAP): attributes
  on the Building, LoD 1.2 and 2.2 geometry with roof/wall/ground semantics on its BuildingPart.

Deterministic: running it again gives the same files.
"""

from __future__ import annotations

import datetime
import io
import json
from pathlib import Path

import laspy
import numpy as np
import pyproj
import trimesh
from PIL import Image

HERE = Path(__file__).resolve().parent
GROUND_NAP = -3.6  # ground level around Schiphol Plaza, metres NAP
CRS = {"type": "name", "properties": {"name": "urn:ogc:def:crs:EPSG::28992"}}
Z_UP_TO_Y_UP = trimesh.transformations.rotation_matrix(-np.pi / 2, [1, 0, 0])


def pbr(
    name: str, rgba: tuple[int, int, int, int], metallic: float, roughness: float, **kw: object
) -> trimesh.visual.material.PBRMaterial:
    return trimesh.visual.material.PBRMaterial(
        name=name, baseColorFactor=rgba, metallicFactor=metallic, roughnessFactor=roughness, **kw
    )


def coloured(
    mesh: trimesh.Trimesh, material: trimesh.visual.material.PBRMaterial
) -> trimesh.Trimesh:
    mesh.visual = trimesh.visual.TextureVisuals(material=material)
    return mesh


def lamp_post() -> trimesh.Scene:
    steel = pbr("steel", (70, 75, 80, 255), 0.8, 0.4)
    glass = pbr("lamp", (255, 240, 200, 255), 0.0, 0.2)
    pole = trimesh.creation.cylinder(radius=0.08, height=6.0, sections=16)
    pole.apply_translation([0, 0, 3.0])
    arm = trimesh.creation.box([1.2, 0.08, 0.08])
    arm.apply_translation([0.6, 0, 5.9])
    head = trimesh.creation.box([0.5, 0.25, 0.12])
    head.apply_translation([1.2, 0, 5.85])
    scene = trimesh.Scene()
    scene.add_geometry(coloured(pole, steel), node_name="pole", geom_name="pole")
    scene.add_geometry(coloured(arm, steel), node_name="arm", geom_name="arm")
    scene.add_geometry(coloured(head, glass), node_name="lamp head", geom_name="lamp head")
    scene.apply_transform(Z_UP_TO_Y_UP)
    return scene


def wood_texture() -> Image.Image:
    rng = np.random.default_rng(1)
    x = np.linspace(0, 12 * np.pi, 64)
    grain = 0.5 + 0.25 * np.sin(x[None, :] + rng.normal(0, 0.3, (64, 1)))
    rgb = np.stack([150 + 60 * grain, 95 + 40 * grain, 50 + 20 * grain], axis=-1)
    return Image.fromarray(np.clip(rgb, 0, 255).astype(np.uint8), "RGB")


def bench() -> trimesh.Scene:
    image = wood_texture()
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    wood = pbr(
        "wood",
        (255, 255, 255, 255),
        0.0,
        0.8,
        baseColorTexture=Image.open(io.BytesIO(buffer.getvalue())),
    )
    iron = pbr("iron", (30, 30, 32, 255), 0.9, 0.5)
    scene = trimesh.Scene()
    seat = trimesh.creation.box([1.8, 0.45, 0.05])
    seat.apply_translation([0, 0, 0.45])
    back = trimesh.creation.box([1.8, 0.05, 0.4])
    back.apply_translation([0, 0.2, 0.75])
    for name, part in (("seat", seat), ("backrest", back)):
        uv = (part.vertices[:, [0, 2]] - part.vertices[:, [0, 2]].min(axis=0)) / np.ptp(
            part.vertices[:, [0, 2]], axis=0
        )
        part.visual = trimesh.visual.TextureVisuals(uv=uv, material=wood)
        scene.add_geometry(part, node_name=name, geom_name=name)
    for k, x in enumerate((-0.8, 0.8)):
        leg = trimesh.creation.box([0.06, 0.45, 0.45])
        leg.apply_translation([x, 0, 0.225])
        scene.add_geometry(coloured(leg, iron), node_name=f"leg {k + 1}", geom_name=f"leg {k + 1}")
    scene.apply_transform(Z_UP_TO_Y_UP)
    return scene


def rectangle(x: float, y: float, w: float, h: float) -> list[list[float]]:
    return [[x, y], [x + w, y], [x + w, y + h], [x, y + h], [x, y]]


def parking_zones() -> dict[str, object]:
    zones = [
        ("P1 Kiss & Ride", 111_750, 481_120, 60, 25, 48, 0.0),
        ("P2 short stay", 111_830, 481_120, 90, 40, 160, 4.5),
        ("P3 long stay", 111_940, 481_120, 120, 60, 420, 2.75),
        ("Taxi rank", 111_750, 481_160, 40, 12, 20, 0.0),
    ]
    features = []
    for number, (name, x, y, w, h, capacity, tariff) in enumerate(zones, start=1):
        features.append(
            {
                "type": "Feature",
                "id": f"zone-{number}",
                "properties": {
                    "name": name,
                    "capacity": capacity,
                    "tariff_eur_per_hour": tariff,
                    "paid": tariff > 0,
                    "base": GROUND_NAP,
                    "height": 0.15,
                },
                "geometry": {"type": "Polygon", "coordinates": [rectangle(x, y, w, h)]},
            }
        )
    return {"type": "FeatureCollection", "name": "parking zones", "crs": CRS, "features": features}


def cables_pipes() -> dict[str, object]:
    lines = [
        (
            "gas",
            "lage druk gas",
            1.0,
            160,
            [[111_740, 481_110], [111_900, 481_112], [112_070, 481_115]],
        ),
        (
            "water",
            "drinkwater",
            1.2,
            200,
            [[111_740, 481_105], [111_905, 481_106], [112_070, 481_108]],
        ),
        (
            "elektriciteit",
            "laagspanning",
            0.7,
            50,
            [[111_745, 481_100], [111_830, 481_100], [111_830, 481_180]],
        ),
        ("datatransport", "glasvezel", 0.6, 40, [[111_760, 481_098], [112_060, 481_098]]),
        ("riool", "afvalwater", 2.5, 400, [[111_740, 481_190], [112_070, 481_190]]),
    ]
    features = []
    for number, (theme, kind, depth, diameter, coordinates) in enumerate(lines, start=1):
        features.append(
            {
                "type": "Feature",
                "id": f"utility-{number}",
                "properties": {
                    "thema": theme,
                    "type": kind,
                    "depth": depth,
                    "diameter": diameter,
                    "ground": GROUND_NAP,
                },
                "geometry": {"type": "LineString", "coordinates": coordinates},
            }
        )
    return {
        "type": "FeatureCollection",
        "name": "cables and pipes",
        "crs": CRS,
        "features": features,
    }


def gabled_house(
    x0: float, y0: float, width: float, depth: float, eaves: float, ridge: float
) -> tuple[list[list[float]], list[list[list[int]]], list[int], list[list[list[int]]]]:
    """Vertices, LoD 2.2 surfaces, their semantics (0 ground, 1 wall, 2 roof), LoD 1.2 block."""
    g = GROUND_NAP
    x1, y1, ym = x0 + width, y0 + depth, y0 + depth / 2
    v = [
        [x0, y0, g],
        [x1, y0, g],
        [x1, y1, g],
        [x0, y1, g],  # 0-3 ground
        [x0, y0, g + eaves],
        [x1, y0, g + eaves],
        [x1, y1, g + eaves],
        [x0, y1, g + eaves],  # 4-7
        [x0, ym, g + ridge],
        [x1, ym, g + ridge],  # 8-9 ridge
        [x0, y0, g + ridge],
        [x1, y0, g + ridge],
        [x1, y1, g + ridge],
        [x0, y1, g + ridge],  # 10-13 LoD1 top
    ]
    lod22 = [
        [[0, 3, 2, 1]],  # ground, facing down
        [[0, 1, 5, 4]],
        [[1, 2, 6, 9, 5]],
        [[2, 3, 7, 6]],
        [[3, 0, 4, 8, 7]],  # walls, gables
        [[4, 5, 9, 8]],
        [[6, 7, 8, 9]],  # roof planes
    ]
    semantics = [0, 1, 1, 1, 1, 2, 2]
    lod12 = [
        [[0, 3, 2, 1]],
        [[0, 1, 11, 10]],
        [[1, 2, 12, 11]],
        [[2, 3, 13, 12]],
        [[3, 0, 10, 13]],
        [[10, 11, 12, 13]],
    ]
    return v, lod22, semantics, lod12


def buildings() -> dict[str, object]:
    scale = 0.001
    vertices: list[list[int]] = []
    objects: dict[str, object] = {}
    houses = [
        ("NL.IMBAG.Pand.0362100000001", 111_790.0, 481_140.0, 12.0, 9.0, 6.0, 10.5, 1998),
        ("NL.IMBAG.Pand.0362100000002", 111_806.0, 481_140.0, 10.0, 9.0, 5.5, 9.0, 2004),
    ]
    for identifier, x0, y0, width, depth, eaves, ridge, year in houses:
        v, lod22, semantics, lod12 = gabled_house(x0, y0, width, depth, eaves, ridge)
        base = len(vertices)
        vertices.extend(
            [
                [
                    round((c - t) / scale)
                    for c, t in zip(p, (111_000.0, 481_000.0, 0.0), strict=True)
                ]
                for p in v
            ]
        )

        def shift(surfaces: list[list[list[int]]], base: int = base) -> list[list[list[int]]]:
            return [[[base + k for k in ring] for ring in surface] for surface in surfaces]

        part = f"{identifier}-0"
        objects[identifier] = {
            "type": "Building",
            "attributes": {
                "identificatie": identifier,
                "oorspronkelijkbouwjaar": year,
                "status": "Pand in gebruik",
                "b3_h_maaiveld": GROUND_NAP,
                "b3_h_dak_max": round(GROUND_NAP + ridge, 2),
            },
            "children": [part],
        }
        objects[part] = {
            "type": "BuildingPart",
            "parents": [identifier],
            "geometry": [
                {"type": "Solid", "lod": "1.2", "boundaries": [shift(lod12)]},
                {
                    "type": "Solid",
                    "lod": "2.2",
                    "boundaries": [shift(lod22)],
                    "semantics": {
                        "surfaces": [
                            {"type": "GroundSurface"},
                            {"type": "WallSurface"},
                            {"type": "RoofSurface"},
                        ],
                        "values": [semantics],
                    },
                },
            ],
        }
    return {
        "type": "CityJSON",
        "version": "2.0",
        "transform": {"scale": [scale, scale, scale], "translate": [111_000.0, 481_000.0, 0.0]},
        "metadata": {"referenceSystem": "https://www.opengis.net/def/crs/EPSG/0/7415"},
        "CityObjects": objects,
        "vertices": vertices,
    }


def tree_scan() -> laspy.LasData:
    rng = np.random.default_rng(7)
    x0, y0 = 111_780.0, 481_170.0
    ground = np.column_stack(
        [rng.uniform(-6, 6, 12_000), rng.uniform(-6, 6, 12_000), rng.normal(0, 0.01, 12_000)]
    )
    trunk_h = rng.uniform(0, 3.0, 2_000)
    angle = rng.uniform(0, 2 * np.pi, 2_000)
    trunk = np.column_stack([0.2 * np.cos(angle), 0.2 * np.sin(angle), trunk_h])
    crown = rng.normal(0, 1, (10_000, 3))
    crown /= np.linalg.norm(crown, axis=1)[:, None]
    crown *= rng.uniform(1.5, 2.5, (10_000, 1))
    crown[:, 2] = crown[:, 2] * 0.8 + 4.5
    xyz = np.vstack([ground, trunk, crown])
    colours = np.vstack(
        [
            np.tile([70, 140, 60], (len(ground), 1)),
            np.tile([100, 70, 40], (len(trunk), 1)),
            np.tile([40, 110, 35], (len(crown), 1)),
        ]
    ) + rng.integers(-15, 15, (len(xyz), 3))
    header = laspy.LasHeader(point_format=3, version="1.4")
    header.offsets = [x0, y0, 0.0]
    header.scales = [0.001, 0.001, 0.001]
    header.add_crs(pyproj.CRS.from_epsg(7415))
    header.creation_date = datetime.date(2026, 1, 1)  # keeps the file the same on every run
    las = laspy.LasData(header)
    las.x = x0 + xyz[:, 0]
    las.y = y0 + xyz[:, 1]
    las.z = GROUND_NAP + xyz[:, 2]
    rgb = (np.clip(colours, 0, 255) * 257).astype(np.uint16)
    las.red, las.green, las.blue = rgb[:, 0], rgb[:, 1], rgb[:, 2]
    return las


def main() -> None:
    lamp_post().export(HERE / "lamp_post.glb")
    bench().export(HERE / "bench.glb")
    for name, document in (("parking_zones", parking_zones()), ("cables_pipes", cables_pipes())):
        (HERE / f"{name}.geojson").write_text(
            json.dumps(document, indent=1) + "\n", encoding="utf-8"
        )
    (HERE / "buildings.city.json").write_text(json.dumps(buildings()) + "\n", encoding="utf-8")
    tree_scan().write(HERE / "tree_scan.laz")


if __name__ == "__main__":
    main()
