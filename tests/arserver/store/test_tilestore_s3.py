"""Tiles in S3 object storage (the real SeaweedFS): a publishing process killed midway leaves
the previous revision served and nothing of the new one visible, and the garbage goes with
``collect_garbage``; presigned redirects serve the same bytes; an unreachable store is a 503
that names nothing of the server."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from arserver.app import create_app
from arserver.config import Settings
from arserver.store.tilestore import collect_garbage, open_tile_store
from tests.arserver.conftest import s3_settings
from tests.arserver.support import engine_of, insert_asset

ROOT = Path(__file__).resolve().parents[3]


def tileset(folder: Path, files: int, size: int, tag: str) -> Path:
    """A tileset of ``files`` content files of ``size`` bytes, one tile each."""
    content = folder / "content"
    content.mkdir(parents=True)
    children = []
    for k in range(files):
        (content / f"{k}.bin").write_bytes(tag.encode() * (size // len(tag)))
        children.append(
            {"boundingVolume": {"box": [0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1]},
             "geometricError": 0, "content": {"uri": f"content/{k}.bin"}}
        )  # fmt: skip
    document: dict[str, Any] = {
        "asset": {"version": "1.1"},
        "geometricError": 10,
        "root": {"boundingVolume": {"box": [0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1]},
                 "geometricError": 10, "refine": "ADD", "children": children},
    }  # fmt: skip
    (folder / "tileset.json").write_text(json.dumps(document))
    return folder


#: Run in a child process: publish, but stop for ever after ``after`` objects were written
#: (and say so), so that the test kills it with SIGKILL in the middle of the publish.
PUBLISHER = """
import sys, threading, time
from pathlib import Path
import arserver.store.tilestore.s3 as s3
from arserver.config import Settings
from arserver.store.tilestore import open_tile_store

settings = Settings.model_validate_json(sys.argv[1])
after, signal_file = int(sys.argv[3]), Path(sys.argv[4])
written, lock, real_put = [0], threading.Lock(), s3.obstore.put

def put(*args, **kwargs):
    real_put(*args, **kwargs)
    with lock:
        written[0] += 1
        if written[0] == after:
            signal_file.write_text("midway")
    if written[0] >= after:
        time.sleep(3600)

s3.obstore.put = put
open_tile_store(settings).publish("site", Path(sys.argv[2]))
"""


@pytest.fixture
def in_s3(s3_bucket: str, tmp_path: Path) -> Settings:
    """Settings with tiles under a fresh prefix of the test bucket."""
    return s3_settings(tmp_path / "data", embedded_worker=False)


def as_json(settings: Settings) -> str:
    """``settings`` for another process, the secret key included."""
    values = settings.model_dump(mode="json")
    assert settings.s3_secret_access_key is not None
    values["s3_secret_access_key"] = settings.s3_secret_access_key.get_secret_value()
    return json.dumps(values)


def test_a_publish_killed_midway_leaves_the_old_revision_served(
    in_s3: Settings, tmp_path: Path
) -> None:
    settings = in_s3
    store = open_tile_store(settings)
    old = store.publish("site", tileset(tmp_path / "old", 3, 1000, "old!"))
    entry_before = store.entry_point("site")
    signal_file = tmp_path / "midway"
    child = subprocess.Popen(
        [sys.executable, "-c", PUBLISHER, as_json(settings),
         str(tileset(tmp_path / "new", 120, 20_000, "new!")), "40", str(signal_file)],
        cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)},
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while not signal_file.exists():
            assert child.poll() is None, "the publisher ended before it was killed"
            assert time.monotonic() < deadline, "the publisher never got midway"
            time.sleep(0.05)
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(10)
    assert store.entry_point("site") == entry_before
    names = {r.name for r in store.revisions("site")}
    assert old in names
    assert len(names) == 2
    half = (names - {old}).pop()
    assert 40 <= sum(f.startswith(f"{half}/") for f in store.files("site")) < 121
    with TestClient(create_app(settings)) as client:
        insert_asset(engine_of(client), "site", public=True)
        served = client.get("/tiles/site/tileset.json")
        assert served.status_code == 200
        uris = [c["content"]["uri"] for c in served.json()["root"]["children"]]
        assert all(uri.startswith(f"{old}/") for uri in uris)
        assert client.get(f"/tiles/site/{uris[0]}").content.startswith(b"old!")
    report = collect_garbage(store, {"site"}, timedelta(0), datetime.now(UTC) + timedelta(1))
    assert [r.name for r in report.revisions] == [half]
    assert {r.name for r in store.revisions("site")} == {old}


def test_redirects_to_presigned_urls_serve_the_same_bytes(in_s3: Settings, tmp_path: Path) -> None:
    redirecting = in_s3.model_copy(update={"tiles_redirect_s": 120.0})
    with TestClient(create_app(redirecting), follow_redirects=False) as client:
        insert_asset(engine_of(client), "site", public=True)
        revision = client.app.state.store.publish(  # type: ignore[attr-defined]
            "site", tileset(tmp_path / "t", 2, 5000, "abcd")
        )
        entry = client.get("/tiles/site/tileset.json")
        assert entry.status_code == 200  # entry points are always served here
        content = client.get(f"/tiles/site/{revision}/content/1.bin")
        assert content.status_code == 307
        assert content.headers["cache-control"] == "public, max-age=60"
        assert "X-Amz-Signature=" in content.headers["location"]
        direct = httpx.get(content.headers["location"], timeout=10)
        assert direct.status_code == 200
        assert direct.content == b"abcd" * 1250
        again = client.get(
            f"/tiles/site/{revision}/content/1.bin",
            headers={"If-None-Match": content.headers["etag"]},
        )
        assert again.status_code == 304


def test_an_unreachable_store_is_a_503_that_names_nothing(tmp_path: Path) -> None:
    settings = Settings(
        data_dir=tmp_path / "data", embedded_worker=False, tiles_url="s3://nowhere/x",
        s3_endpoint_url="http://127.0.0.1:9", s3_region="us-east-1", s3_access_key_id="k",
        s3_secret_access_key="s",
    )  # fmt: skip
    with TestClient(create_app(settings)) as client:
        insert_asset(engine_of(client), "site", public=True)
        answer = client.get("/tiles/site/tileset.json")
        assert answer.status_code == 503
        assert "127.0.0.1" not in answer.text
        assert "nowhere" not in answer.text
