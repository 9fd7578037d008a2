"""`arserver demo`: the heights table, then the server with every sample asset converted, the
viewer's URL last; a second run on the same data reuses what the first imported."""

from __future__ import annotations

import io
import re
import socket
from pathlib import Path

from rich.console import Console

from arserver.commands.server import listening_socket
from arserver.commands.showcase import run_demo
from arserver.config import Settings
from arserver.store.database import open_database
from arserver.store.rules import list_rules
from tests.support import free_port


def test_demo_shows_heights_serves_imports_every_sample_and_reuses_them(tmp_path: Path) -> None:
    built = tmp_path / "viewer"
    built.mkdir()
    (built / "index.html").write_text("<!doctype html>", encoding="utf-8")
    settings = Settings(data_dir=tmp_path / "data", viewer_dir=built)
    buffer = io.StringIO()
    assets = run_demo(
        settings, Console(file=buffer, width=250), port=free_port(), keep_serving=False
    )
    text = buffer.getvalue()
    assert "Amsterdam, Dam" in text
    assert "42.98" in text  # NAP 0 m is about 43 m above the ellipsoid there
    assert "40.75" in text  # and 40.8 m in Groningen
    assert "40.8 to 45.7 m too low" in text
    assert [a["status"] for a in assets] == ["ready"] * 6, [a["error"] for a in assets]
    assert "/tiles/scene/demo/tileset.json?access_token=ars_" in text
    assert "/docs" in text
    assert "simulated sensors: 1067 observations" in text  # 24 h x 4 x 11 values, then 11 live
    last = text.strip().splitlines()[-1]
    assert re.fullmatch(r"http://127\.0\.0\.1:\d+/viewer\?layer=demo#access_token=ars_\S+", last)
    assert "?access_token" not in last  # the token travels in the fragment only

    again = io.StringIO()
    reused = run_demo(
        settings, Console(file=again, width=250), port=free_port(), keep_serving=False
    )
    assert [a["id"] for a in reused] == [a["id"] for a in assets]
    assert again.getvalue().count(" reused ") == 6
    engine = open_database(settings)
    try:
        assert sorted(rule["kind"] for rule in list_rules(engine)) == ["no2", "noise_laeq", "pm25"]
    finally:
        engine.dispose()


def test_demo_without_a_built_viewer_says_how_to_build_it(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data", viewer_dir=tmp_path / "nothing")
    buffer = io.StringIO()
    with socket.socket() as taken:  # another program listens on the port asked for
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        run_demo(settings, Console(file=buffer, width=250), port=port, keep_serving=False)
    text = buffer.getvalue()
    assert f"Port {port} is in use by another program" in text
    assert "make viewer" in text
    assert "/viewer?layer" not in text


def test_a_port_left_in_time_wait_by_a_previous_run_is_used_again() -> None:
    server = listening_socket(0)
    server.listen()
    port = server.getsockname()[1]
    client = socket.create_connection(("127.0.0.1", port))
    accepted, _ = server.accept()
    accepted.close()  # the server side closes first: its end of the connection is in TIME_WAIT
    client.recv(1)
    client.close()
    server.close()
    again = listening_socket(port)
    assert again.getsockname()[1] == port
    again.close()
