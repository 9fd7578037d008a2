"""``arserver tiles gc``: unreferenced revisions and deleted assets' tiles go, what entry
points name stays; ``--dry-run`` removes nothing. With tiles on disk and in S3 (set through
the usual AWS_* variables)."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from arserver.cli import cli
from arserver.config import Settings
from arserver.store.database import open_database
from arserver.store.tilestore import open_tile_store
from tests.arserver.support import ASSETS, insert_asset, settings_env
from tiles.convert import convert

BACKENDS = ("sqlite", "s3")


def test_gc_keeps_what_is_named_and_removes_the_rest(settings: Settings, tmp_path: Path) -> None:
    engine = open_database(settings)
    try:
        insert_asset(engine, "zones", public=True)
    finally:
        engine.dispose()
    store = open_tile_store(settings)
    revisions = []
    for name in ("parking_zones.geojson", "cables_pipes.geojson"):
        convert([ASSETS / name], tmp_path / name)
        revisions.append(store.publish("zones", tmp_path / name))
    convert([ASSETS / "parking_zones.geojson"], tmp_path / "orphan")
    store.publish("deleted-asset", tmp_path / "orphan")
    env = {k: v for k, v in settings_env(settings).items() if k.startswith(("ARSERVER_", "AWS_"))}

    dry = CliRunner().invoke(cli, ["tiles", "gc", "--older-than", "0s", "--dry-run"], env=env)
    assert dry.exit_code == 0, dry.output
    assert f"would remove revision zones/{revisions[0]}" in dry.output
    assert {r.name for r in store.revisions("zones")} == set(revisions)

    done = CliRunner().invoke(cli, ["tiles", "gc", "--older-than", "0s"], env=env)
    assert done.exit_code == 0, done.output
    assert done.output.splitlines()[-1] == (
        "1 unreferenced revisions and the tiles of 1 deleted assets removed"
    )
    assert {r.name for r in store.revisions("zones")} == {revisions[1]}
    assert store.files("deleted-asset") == []
    kept = CliRunner().invoke(cli, ["tiles", "gc"], env=env)  # the default keeps a day
    assert kept.output.splitlines()[-1].startswith("0 unreferenced revisions")
