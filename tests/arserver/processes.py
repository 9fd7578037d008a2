"""Real processes for durability tests: `arserver serve` and a private Mosquitto broker with
persistence, both started, killed and restarted by the test."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
from pathlib import Path

import pytest

from tests.arserver.support import arserver_command
from tests.support import accepts_connections, answers, free_port, wait_until_ready


class ServerProcess:
    """``arserver serve`` on a free port with the given ``ARSERVER_*`` environment."""

    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.command = [arserver_command(), "serve", "--port", str(free_port())]
        self.url = f"http://127.0.0.1:{self.command[-1]}"
        self.env = {**os.environ, "ARSERVER_EMBEDDED_WORKER": "false", **env}
        self.log = log
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout_s: float = 30) -> None:
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                self.command, env=self.env, stdout=out, stderr=subprocess.STDOUT
            )
        wait_until_ready(
            lambda: answers(f"{self.url}/readyz"),
            self.process,
            "arserver serve",
            timeout_s,
            output=self.log.read_text,
        )

    def kill(self) -> None:
        """SIGKILL: no shutdown code runs."""
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


class Mosquitto:
    """A Mosquitto broker of our own (not the machine's), persisting sessions in ``folder``, as
    the deployment guide configures it."""

    def __init__(self, folder: Path) -> None:
        exe = shutil.which("mosquitto") or (
            "/usr/sbin/mosquitto" if Path("/usr/sbin/mosquitto").exists() else None
        )
        if exe is None:
            if os.environ.get("CI") == "true":
                pytest.fail("the mosquitto broker is required under CI")
            pytest.skip("mosquitto is not installed")
        self.exe = exe
        self.port = free_port()
        self.url = f"mqtt://127.0.0.1:{self.port}"
        folder.mkdir(parents=True, exist_ok=True)
        self.config = folder / "mosquitto.conf"
        self.config.write_text(
            f"listener {self.port} 127.0.0.1\n"
            "allow_anonymous true\n"
            "user root\n"  # when started as root, keep it (the folder is ours)
            "persistence true\n"
            f"persistence_location {folder}/\n"
            "max_queued_messages 100000\n"
            "log_dest none\n",
            encoding="utf-8",
        )
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            [self.exe, "-c", str(self.config)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_until_ready(lambda: accepts_connections(self.port), self.process, "mosquitto", 10)

    def stop(self) -> None:
        """SIGTERM: Mosquitto writes its persistence file and exits."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            self.process.wait(timeout=10)
