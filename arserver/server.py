"""How the application is served: one uvicorn configuration for ``arserver serve`` and the
demo, so both behave the same on the wire."""

from __future__ import annotations

import gc

import uvicorn
from fastapi import FastAPI

#: WebSocket heartbeats: a ping every 15 s; a client that does not answer within 15 s more is
#: disconnected (its live session can still be resumed within the retention window).
WS_PING_INTERVAL_S = 15.0
WS_PING_TIMEOUT_S = 15.0


def tune_gc() -> None:
    """Fewer, cheaper garbage collections for a long-running server: what exists at start is
    frozen out of collection, and the young generation is collected less often. Full
    collections over thousands of live sessions were the largest source of tail latency
    (bench/live.py, 2,000 clients: p99 490 ms -> 175 ms at 2,000 observations/s)."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 50, 100)


def uvicorn_config(app: FastAPI, host: str, port: int, log_level: str = "info") -> uvicorn.Config:
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level=log_level,
        ws="websockets-sansio",
        ws_ping_interval=WS_PING_INTERVAL_S,
        ws_ping_timeout=WS_PING_TIMEOUT_S,
        ws_max_size=256 * 1024,
        # Live messages are small JSON; deflating each one for each client cost more CPU than
        # anything else per message in bench/live.py. A compressing proxy can do it if needed.
        ws_per_message_deflate=False,
    )
