"""``arserver privacy``: export or erase one person's data (AVG articles 15 and 17), straight
in the database (no server needed). A subject is ``token:ID``, ``name:TEXT`` or
``oidc:SUBJECT`` (see docs/privacy.md)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import click

from arserver.commands.options import current_settings

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from arserver.config import Settings
    from arserver.live.bus import Bus
    from arserver.services.privacy import PrivacyService


@click.group("privacy")
def privacy() -> None:
    """A person's data: export it as JSON, or erase it."""


def _service(settings: Settings) -> tuple[Engine, Bus | None, PrivacyService]:
    """The database, the bus that carries revocations to the servers (Redis, when set) and
    the privacy service over them; the caller closes the first two."""
    from arserver.live.bus import RedisBus
    from arserver.services.privacy import PrivacyService
    from arserver.services.tokens import TokenService
    from arserver.store.database import open_database

    engine = open_database(settings)
    bus: Bus | None = RedisBus(settings.redis_url) if settings.redis_url else None
    return engine, bus, PrivacyService(engine, TokenService(engine, bus), bus)


def _carry_out(subject: str, action: str) -> dict[str, Any]:
    """Export (``action`` "export") or erase SUBJECT's data, and audit it by the subject's
    digest; returns the service's answer."""
    from arserver.services.audit import CLI_ACTOR, AuditService
    from arserver.services.privacy import Subject

    parsed = Subject.parse(subject)
    engine, bus, service = _service(current_settings())
    try:
        answer = service.export(parsed) if action == "export" else service.erase(parsed)
        audit = AuditService(engine)
        audit.record(CLI_ACTOR, f"privacy {action}", f"subject:{audit.subject_digest(str(parsed))}")
    finally:
        if bus is not None:
            bus.close()
        engine.dispose()
    return answer


@privacy.command("export")
@click.argument("subject")
def export(subject: str) -> None:
    """Print everything arserver holds about SUBJECT as JSON on stdout."""
    document = _carry_out(subject, "export")
    click.echo(json.dumps(document, default=str, ensure_ascii=False, indent=2))


@privacy.command("erase")
@click.argument("subject")
def erase(subject: str) -> None:
    """Erase SUBJECT's data: revoke their tokens, blank their names, unlink their audit
    entries. Prints what was erased (JSON)."""
    summary = _carry_out(subject, "erase")
    click.echo(json.dumps(summary, default=str, ensure_ascii=False, indent=2))
