"""The conversion child process: ``python -m arserver.jobs.child '<json request>'``.

Runs :func:`tiles.convert` and reports on stdout, one JSON object per line:
``{"progress": 0.4, "stage": "..."}`` while it works, then ``{"summary": {...}}`` or
``{"error": "..."}``. Exit status 0 on success, 1 on a conversion error. It touches no database:
a crash or a runaway conversion here never harms the worker or the server.
"""

from __future__ import annotations

import json
import resource
import sys
from typing import Any

from tiles.convert import ConvertOptions, convert
from tiles.errors import TilesError


def _say(message: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


def main(argv: list[str]) -> int:
    request = json.loads(argv[1])
    memory = int(request.get("memory_mib") or 0)
    if memory:
        # Set here rather than by the parent: forking with a pre-exec hook is unsafe in a
        # threaded server. Every process the converter starts inherits the limit.
        limit = memory * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    origin = request.get("origin")
    options = ConvertOptions(
        crs=request.get("crs"),
        origin=(float(origin[0]), float(origin[1]), float(origin[2])) if origin else None,
        heading_deg=float(request.get("heading") or 0.0),
    )
    try:
        report = convert(
            [request["source"]],
            request["out"],
            options,
            progress=lambda fraction, stage: _say({"progress": fraction, "stage": stage}),
        )
    except TilesError as exc:
        _say({"error": str(exc)})
        return 1
    _say({"summary": report.summary, "warnings": report.warnings})
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
