"""The one client of a running arserver, for ``import``, ``simulate``, ``watch`` and the demo.

A :class:`ServerClient` holds the base URL (``http://`` or ``https://``), a token sent as
``Authorization: Bearer``, and the timeouts; it derives the live WebSocket URL from the same base.
Every failure becomes a :class:`ClientError`, whose message names the request, the server and
the status, and at most :data:`DETAIL_CHARS` characters of what the server said, never a body.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Collection
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx

from arserver.errors import ArserverError

#: At most this many characters of a refusal's detail go into a :class:`ClientError`.
DETAIL_CHARS = 300
#: Refusals larger than this are not parsed for their JSON ``detail``; their start is quoted.
_PARSED_BYTES = 64 * 1024

LIVE_PATH = "/api/v1/live"


class ClientError(ArserverError):
    """The server refused a request, answered something unusable, or could not be reached."""


class ServerClient:
    """Talks to one arserver at ``base_url`` with one token.

    ``timeout_s`` bounds each read and write of a request in seconds (an upload of a large file
    needs minutes), ``connect_timeout_s`` the opening of a connection (HTTP and WebSocket). The
    HTTP connection pool opens on the first request; :meth:`close` (or ``with``) ends it.
    """

    def __init__(
        self,
        base_url: str,
        token: str,
        *,
        timeout_s: float = 60.0,
        connect_timeout_s: float = 10.0,
    ) -> None:
        base = base_url.strip().rstrip("/")
        scheme, sep, rest = base.partition("://")
        if not sep or scheme.lower() not in ("http", "https") or not rest:
            raise ClientError(f"the server must be an http:// or https:// URL, got {base_url!r}")
        self.base_url = base
        self.token = token
        self.timeout_s = timeout_s
        self.connect_timeout_s = connect_timeout_s
        self._http: httpx.Client | None = None

    def __enter__(self) -> ServerClient:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def close(self) -> None:
        if self._http is not None:
            self._http.close()
            self._http = None

    # -- HTTP -----------------------------------------------------------------------------

    def request(
        self, method: str, path: str, *, accept: Collection[int] = (), **kwargs: Any
    ) -> httpx.Response:
        """Send a request to ``path`` (under the base URL); a status of 400 or more that is not
        in ``accept``, a timeout or an unreachable server is a :class:`ClientError`."""
        if self._http is None:
            self._http = httpx.Client(
                base_url=self.base_url,
                headers={"Authorization": f"Bearer {self.token}"},
                timeout=httpx.Timeout(self.timeout_s, connect=self.connect_timeout_s),
            )
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.ConnectTimeout as exc:
            raise ClientError(
                f"cannot reach {self.base_url}: no connection within {self.connect_timeout_s:g} s"
            ) from exc
        except httpx.TimeoutException as exc:
            raise ClientError(
                f"{method} {path}: no answer from {self.base_url} within {self.timeout_s:g} s"
            ) from exc
        except httpx.HTTPError as exc:
            raise ClientError(f"cannot reach {self.base_url}: {exc}") from exc
        if response.status_code >= 400 and response.status_code not in accept:
            raise ClientError(
                f"{method} {path}: {response.status_code} from {self.base_url}: {_detail(response)}"
            )
        return response

    def call(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        """:meth:`request`, then the JSON object the server answered."""
        response = self.request(method, path, **kwargs)
        try:
            body = response.json()
        except ValueError:
            body = None
        if not isinstance(body, dict):
            raise ClientError(
                f"{method} {path}: {response.status_code} from {self.base_url} is not a JSON object"
            )
        return body

    # -- assets ---------------------------------------------------------------------------

    def upload(self, path: Path, fields: dict[str, str]) -> dict[str, Any]:
        """Upload a file (streamed from disk) with the form ``fields``; returns the queued
        asset."""
        with path.open("rb") as handle:
            return self.call(
                "POST", "/api/v1/assets", files={"file": (path.name, handle)}, data=fields
            )

    def asset(self, asset_id: str) -> dict[str, Any]:
        return self.call("GET", f"/api/v1/assets/{asset_id}")

    def wait(
        self,
        asset_id: str,
        on_progress: Callable[[dict[str, Any]], None] | None = None,
        poll_s: float = 0.3,
        timeout_s: float = 3600.0,
    ) -> dict[str, Any]:
        """Poll every ``poll_s`` seconds until the asset is ready or failed; returns its last
        state. Still converting after ``timeout_s`` seconds is a :class:`ClientError`."""
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

    # -- sensors --------------------------------------------------------------------------

    def register_sensor(self, registration: dict[str, Any]) -> bool:
        """Register a sensor; False if one with its id exists already (409)."""
        try:
            response = self.request("POST", "/api/v1/sensors", json=registration, accept=(409,))
        except ClientError as exc:
            raise ClientError(f"registering {registration.get('id')}: {exc}") from exc
        return response.status_code != 409

    def send_observations(self, items: list[dict[str, Any]]) -> int:
        """Post a batch of observations; returns how many the server accepted."""
        return int(
            self.call("POST", "/api/v1/observations", json={"observations": items})["accepted"]
        )

    # -- live -----------------------------------------------------------------------------

    @property
    def live_url(self) -> str:
        """The live endpoint's WebSocket URL: ``ws://`` for ``http://``, ``wss://`` for
        ``https://``."""
        scheme, _, rest = self.base_url.partition("://")
        return ("wss" if scheme.lower() == "https" else "ws") + "://" + rest + LIVE_PATH

    def live_connect_url(self, **query: str) -> str:
        """:attr:`live_url` with the token as ``access_token`` and ``query`` (a WebSocket
        handshake cannot carry an Authorization header from every client)."""
        return f"{self.live_url}?{urlencode({'access_token': self.token, **query})}"


def _detail(response: httpx.Response) -> str:
    """What a refusal says, on one line and short: its JSON ``detail``, or the start of its
    body, or the reason phrase."""
    body = response.content
    detail: object = None
    if len(body) <= _PARSED_BYTES and "json" in response.headers.get("content-type", ""):
        try:
            parsed = json.loads(body)
        except ValueError:
            parsed = None
        if isinstance(parsed, dict):
            detail = parsed.get("detail")
    if isinstance(detail, str):
        text = detail
    elif detail is not None:
        text = json.dumps(detail, ensure_ascii=False)
    else:
        text = body[: DETAIL_CHARS * 4].decode("utf-8", errors="replace")
    text = " ".join(text.split()) or response.reason_phrase
    return text if len(text) <= DETAIL_CHARS else text[: DETAIL_CHARS - 3] + "..."
