"""The write path for API tokens: created, revoked. A revocation takes effect for every request
at once (each request looks its token up) and, through the bus, closes the token's open live
connections on every server process."""

from __future__ import annotations

import logging
import threading
from datetime import timedelta

from sqlalchemy import Engine

from arserver.live.bus import Bus, token_revocations
from arserver.live.hub import Hub
from arserver.security.tokens import (
    Authenticator,
    TokenInfo,
    TokenRecord,
    create_token,
    list_tokens,
    revoke_token,
)

log = logging.getLogger(__name__)


class TokenService:
    """Tokens of one database; ``bus``: where revocations go (None: nowhere);
    ``authenticator``: who judges whether the tokens of live connections are still valid
    (default: our tokens only; the application's also knows OpenID Connect JWTs)."""

    def __init__(
        self, engine: Engine, bus: Bus | None = None, authenticator: Authenticator | None = None
    ) -> None:
        self.engine = engine
        self.bus = bus
        self.authenticator = authenticator or Authenticator(engine)

    def create(
        self,
        role: str,
        name: str | None = None,
        *,
        expires_in: timedelta | None = None,
        scope: str | None = None,
    ) -> tuple[str, TokenRecord]:
        """A new token; the secret is returned once and never stored."""
        return create_token(self.engine, role, name, expires_in=expires_in, scope=scope)

    def list(self) -> list[TokenInfo]:
        return list_tokens(self.engine)

    def revoke(self, token_id: str) -> bool:
        """Revoke a token; False if there is no such unrevoked token. Its live connections are
        closed (code 4003) wherever they are."""
        if not revoke_token(self.engine, token_id):
            return False
        if self.bus is not None:
            self.bus.publish(token_revocations([token_id]))  # after the commit
        return True

    def close_invalid(self, hub: Hub) -> int:
        """Close the live connections of ``hub`` whose tokens are no longer valid (revoked
        where no bus told the hub, e.g. by ``arserver token revoke`` without Redis, or
        expired; an OpenID Connect JWT by its own expiry); returns how many were closed."""
        invalid = self.authenticator.invalid_among(hub.owners())
        return hub.revoke(invalid) if invalid else 0

    def watch(self, hub: Hub, stop: threading.Event, interval_s: float) -> None:
        """:meth:`close_invalid` every ``interval_s`` until ``stop``; a failed check is logged
        and tried again next time."""
        while not stop.wait(interval_s):
            try:
                self.close_invalid(hub)
            except Exception:  # a database hiccup must not end the watch
                log.exception("checking the live connections' tokens failed")
