"""`arserver serve` as a real process: it answers over HTTP and stops cleanly."""

from __future__ import annotations

import os
import signal
import subprocess
import urllib.request
from pathlib import Path

import pytest

from tests.arserver.support import REPO, arserver_command
from tests.support import answers, free_port, wait_until_ready


def test_serve_answers_health_and_readiness_then_stops_on_sigterm(tmp_path: Path) -> None:
    port = free_port()
    env = {**os.environ, "ARSERVER_DATA_DIR": str(tmp_path)}
    process = subprocess.Popen(
        [arserver_command(), "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        wait_until_ready(
            lambda: answers(f"http://127.0.0.1:{port}/readyz"),
            process,
            "arserver serve",
            output=lambda: process.stdout.read().decode() if process.stdout else "",
        )
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as response:
            assert response.read() == b'{"status":"ok"}'
        assert (tmp_path / "arserver.db").is_file()
    finally:
        process.send_signal(signal.SIGTERM)
        code = process.wait(timeout=20)
        output = process.stdout.read().decode() if process.stdout else ""
        if process.stdout:
            process.stdout.close()
    # uvicorn shuts down gracefully, then re-raises the signal so that the exit status shows it.
    assert code in (0, -signal.SIGTERM)
    assert "Finished server process" in output


def test_serve_with_an_unreachable_database_fails_with_one_line(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "ARSERVER_DATA_DIR": str(tmp_path),
        "ARSERVER_DATABASE_URL": "postgresql://x@127.0.0.1:1/none",
    }
    result = subprocess.run(
        [arserver_command(), "serve", "--port", str(free_port())],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert result.stderr.startswith("arserver serve: error: cannot reach the database")
    assert result.stderr.count("\n") == 1


def test_every_setting_is_documented() -> None:
    from arserver.config import Settings

    guide = (REPO / "docs" / "api.md").read_text(encoding="utf-8")
    missing = [
        f"ARSERVER_{name.upper()}"
        for name in Settings.model_fields
        if f"`ARSERVER_{name.upper()}`" not in guide
    ]
    assert missing == []


def test_none_in_the_environment_switches_retention_off(monkeypatch: pytest.MonkeyPatch) -> None:
    from arserver.config import Settings

    monkeypatch.setenv("ARSERVER_RAW_RETENTION_DAYS", "none")
    assert Settings().raw_retention is None
