"""A small HTTP client for the asset API: used by ``arserver import`` and ``arserver demo``."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from arserver.errors import ArserverError


class ClientError(ArserverError):
    """The server refused a request or could not be reached."""


class AssetClient:
    """Talks to one arserver at ``base_url`` with one token."""

    def __init__(self, base_url: str, token: str, timeout_s: float = 300.0) -> None:
        self.base_url = base_url.rstrip("/")
        self._http = httpx.Client(
            base_url=self.base_url,
            headers={"Authorization": f"Bearer {token}"},
            timeout=timeout_s,
        )

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> AssetClient:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def _call(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise ClientError(f"cannot reach {self.base_url}: {exc}") from exc
        if response.status_code >= 400:
            try:
                detail = response.json().get("detail", response.text)
            except ValueError:
                detail = response.text
            raise ClientError(f"{method} {path}: {response.status_code} {detail}")
        body: dict[str, Any] = response.json()
        return body

    def upload(self, path: Path, fields: dict[str, str]) -> dict[str, Any]:
        """Upload a file (streamed from disk); returns the queued asset."""
        with path.open("rb") as handle:
            return self._call(
                "POST", "/api/v1/assets", files={"file": (path.name, handle)}, data=fields
            )

    def asset(self, asset_id: str) -> dict[str, Any]:
        return self._call("GET", f"/api/v1/assets/{asset_id}")

    def wait(
        self,
        asset_id: str,
        on_progress: Callable[[dict[str, Any]], None] | None = None,
        poll_s: float = 0.3,
        timeout_s: float = 3600.0,
    ) -> dict[str, Any]:
        """Poll until the asset is ready or failed; returns its last state."""
        deadline = time.monotonic() + timeout_s
        while True:
            state = self.asset(asset_id)
            if on_progress is not None:
                on_progress(state)
            if state["status"] in ("ready", "failed"):
                return state
            if time.monotonic() > deadline:
                raise ClientError(
                    f"asset {asset_id} is still {state['status']} after {timeout_s:g} s"
                )
            time.sleep(poll_s)
