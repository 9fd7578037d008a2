"""``arserver privacy``: export or erase one person's data (AVG articles 15 and 17), straight
in the database (no server needed). A subject is ``token:ID``, ``name:TEXT`` or
``oidc:SUBJECT`` (see docs/privacy.md)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

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
    return engine, bus, PrivacyService(engine, TokenService(engine, bus))


@privacy.command("export")
@click.argument("subject")
def export(subject: str) -> None:
    """Print everything arserver holds about SUBJECT as JSON on stdout."""
    from arserver.services.audit import CLI_ACTOR, AuditService
    from arserver.services.privacy import Subject

    parsed = Subject.parse(subject)
    engine, bus, service = _service(current_settings())
    try:
        document = service.export(parsed)
        audit = AuditService(engine)
        audit.record(CLI_ACTOR, "privacy export", f"subject:{audit.subject_digest(str(parsed))}")
    finally:
        if bus is not None:
            bus.close()
        engine.dispose()
    click.echo(json.dumps(document, default=str, ensure_ascii=False, indent=2))


@privacy.command("erase")
@click.argument("subject")
def erase(subject: str) -> None:
    """Erase SUBJECT's data: revoke their tokens, blank their names, unlink their audit
    entries. Prints what was erased (JSON)."""
    from arserver.services.audit import CLI_ACTOR, AuditService
    from arserver.services.privacy import Subject

    parsed = Subject.parse(subject)
    engine, bus, service = _service(current_settings())
    try:
        summary = service.erase(parsed)
        audit = AuditService(engine)
        audit.record(CLI_ACTOR, "privacy erase", f"subject:{audit.subject_digest(str(parsed))}")
    finally:
        if bus is not None:
            bus.close()
        engine.dispose()
    click.echo(json.dumps(summary, default=str, ensure_ascii=False, indent=2))
