"""One query parameter written into the relative references of 3D Tiles JSON documents."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from tiles.references import TemplateCache, is_relative, template, with_parameter


@pytest.mark.parametrize(
    ("uri", "expected"),
    [
        ("content/r.glb", "content/r.glb?t=T"),
        ("../child/tileset.json", "../child/tileset.json?t=T"),
        ("/tiles/a/tileset.json", "/tiles/a/tileset.json?t=T"),
        ("r.glb?v=2", "r.glb?v=2&t=T"),
        ("r.glb?", "r.glb?t=T"),
        ("r.glb?v=2#part", "r.glb?v=2&t=T#part"),
        ("subtrees/{level}/{x}/{y}.subtree", "subtrees/{level}/{x}/{y}.subtree?t=T"),
        ("https://cdn.example/r.glb", "https://cdn.example/r.glb"),
        ("//cdn.example/r.glb", "//cdn.example/r.glb"),
        ("data:model/gltf-binary;base64,AA==", "data:model/gltf-binary;base64,AA=="),
        ("", ""),
        # What browsers (WHATWG URL) resolve to another host: backslashes, spaces, tabs.
        ("/\\evil.example/x.json", "/\\evil.example/x.json"),
        ("\\\\evil.example/x.json", "\\\\evil.example/x.json"),
        (" //evil.example/x.json", " //evil.example/x.json"),
        ("/\t/evil.example/x.json", "/\t/evil.example/x.json"),
        ("\x00https://evil.example/x.json", "\x00https://evil.example/x.json"),
    ],
)
def test_only_relative_references_get_the_parameter(uri: str, expected: str) -> None:
    assert with_parameter(uri, "t", "T") == expected
    assert is_relative(uri) == (uri != expected)


def test_the_value_is_percent_encoded() -> None:
    assert with_parameter("a.glb", "t", "a&b=c#d e") == "a.glb?t=a%26b%3Dc%23d%20e"


def tileset() -> dict[str, Any]:
    box = {"box": [0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1]}
    return {
        "asset": {"version": "1.1"},
        "schemaUri": "schema.json",
        "geometricError": 1,
        "root": {
            "boundingVolume": box,
            "geometricError": 1,
            "content": {"uri": "r.glb"},
            "children": [
                {"boundingVolume": box, "geometricError": 0, "contents": [{"uri": "a.glb"}, {"uri": "b.glb"}]},  # noqa: E501
                {"boundingVolume": box, "geometricError": 0, "content": {"url": "old.b3dm"}},
                {
                    "boundingVolume": box,
                    "geometricError": 0,
                    "content": {"uri": "c/{level}/{x}/{y}.glb"},
                    "implicitTiling": {
                        "subdivisionScheme": "QUADTREE", "subtreeLevels": 2, "availableLevels": 4,
                        "subtrees": {"uri": "s/{level}/{x}/{y}.subtree"},
                    },
                },
                {"boundingVolume": box, "geometricError": 0, "content": {"uri": "https://x.example/d.glb"}},
            ],
        },
        "extras": {"note": "r.glb is not a reference here", "nul": "\x00"},
    }  # fmt: skip


def test_every_reference_of_a_tileset_and_nothing_else_changes() -> None:
    made = template(tileset(), "t")
    assert made.references == 7
    rendered = json.loads(made.render("T"))
    expected = tileset()
    root = expected["root"]
    expected["schemaUri"] = "schema.json?t=T"
    root["content"]["uri"] = "r.glb?t=T"
    root["children"][0]["contents"] = [{"uri": "a.glb?t=T"}, {"uri": "b.glb?t=T"}]
    root["children"][1]["content"]["url"] = "old.b3dm?t=T"
    root["children"][2]["content"]["uri"] = "c/{level}/{x}/{y}.glb?t=T"
    root["children"][2]["implicitTiling"]["subtrees"]["uri"] = "s/{level}/{x}/{y}.subtree?t=T"
    assert rendered == expected


def test_one_template_renders_any_value() -> None:
    made = template(tileset(), "t")
    first, second = json.loads(made.render("one")), json.loads(made.render("two"))
    assert first["root"]["content"]["uri"] == "r.glb?t=one"
    assert second["root"]["content"]["uri"] == "r.glb?t=two"


def test_subtree_and_gltf_documents_have_their_buffers_and_images_rewritten() -> None:
    subtree = {"buffers": [{"uri": "0.bin", "byteLength": 8}], "tileAvailability": {"constant": 1}}
    assert json.loads(template(subtree, "t").render("T"))["buffers"][0]["uri"] == "0.bin?t=T"
    gltf = {
        "asset": {"version": "2.0"},
        "buffers": [{"uri": "m.bin"}],
        "images": [{"uri": "i.png"}],
    }
    rendered = json.loads(template(gltf, "t").render("T"))
    assert (rendered["buffers"][0]["uri"], rendered["images"][0]["uri"]) == (
        "m.bin?t=T",
        "i.png?t=T",
    )


def test_documents_of_no_known_kind_and_deep_trees_are_handled() -> None:
    assert template({"hello": "r.glb"}, "t").references == 0
    assert template([1, 2], "t").references == 0
    deep: dict[str, Any] = {"content": {"uri": "leaf.glb"}}
    for _ in range(200):
        deep = {"children": [deep]}
    made = template({"asset": {"version": "1.1"}, "root": deep}, "t")
    assert made.references == 1
    assert b"leaf.glb?t=T" in made.render("T")


def test_a_document_too_deep_to_parse_has_no_template(tmp_path: Path) -> None:
    path = tmp_path / "tileset.json"
    path.write_text('{"asset": {}, "root": ' + '{"children": [' * 100_000, encoding="utf-8")
    assert TemplateCache("t").of(path) is None


def test_the_cache_reads_a_file_once_per_version_and_stays_bounded(tmp_path: Path) -> None:
    path = tmp_path / "tileset.json"
    path.write_text(json.dumps(tileset()), encoding="utf-8")
    cache = TemplateCache("t", max_bytes=10_000)
    first = cache.of(path)
    assert first is not None
    assert cache.of(path) is first
    document = tileset()
    document["root"]["content"]["uri"] = "new.glb"
    path.write_text(json.dumps(document), encoding="utf-8")
    os.utime(path, ns=(1, 1))  # a new version even within the clock's resolution
    second = cache.of(path)
    assert second is not None
    assert b"new.glb?t=T" in second.render("T")
    (tmp_path / "bad.json").write_bytes(b"\xff not json")
    assert cache.of(tmp_path / "bad.json") is None
    for k in range(50):  # more than max_bytes in total: the oldest go
        other = tmp_path / f"t{k}.json"
        other.write_text(json.dumps(tileset()), encoding="utf-8")
        cache.of(other)
    assert cache._bytes <= 10_000
