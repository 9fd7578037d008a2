"""Run the Khronos glTF validator (npm `gltf-validator`, installed by `make test`) on files."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

HERE = Path(__file__).resolve().parent
SCRIPT = HERE / "validate_gltf.mjs"


def _unavailable(reason: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"glTF validator unavailable under CI: {reason}")
    pytest.skip(f"glTF validator unavailable: {reason} (run `make test` to install it)")


def validate_glb(paths: list[Path]) -> list[dict[str, Any]]:
    """One report per file: ``errors``, ``warnings`` and the first ``messages``."""
    node = shutil.which("node")
    if node is None:
        _unavailable("node is not installed")
    if not (HERE / "node_modules" / "gltf-validator").is_dir():
        _unavailable("the npm package gltf-validator is not installed")
    reports: list[dict[str, Any]] = []
    for start in range(0, len(paths), 200):
        batch = [str(p) for p in paths[start : start + 200]]
        result = subprocess.run(
            [str(node), str(SCRIPT), *batch], capture_output=True, text=True, check=True, cwd=HERE
        )
        reports.extend(json.loads(line) for line in result.stdout.splitlines() if line.strip())
    assert len(reports) == len(paths)
    return reports


def assert_valid_glb(paths: list[Path]) -> None:
    """Zero validator errors in every file (warnings are reported, not failed)."""
    assert paths, "no glTF files to validate"
    failures = [r for r in validate_glb(paths) if r["errors"]]
    assert not failures, json.dumps(failures[:3], indent=1)
