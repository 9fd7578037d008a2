"""``arserver audit``: check and read the audit log, straight in the database (no server
needed)."""

from __future__ import annotations

import sys

import click

from arserver.commands.options import current_settings


@click.group("audit")
def audit() -> None:
    """The audit log: every write and every admin or security action, chained by hash."""


@audit.command("verify")
def verify() -> None:
    """Check the hash chain. Exit 0 with the number of entries and the newest hash when it is
    intact; exit 1 naming the first entry (seq, time) that was changed, removed or inserted."""
    from arserver.services.audit import AuditService
    from arserver.store.database import open_database

    engine = open_database(current_settings())
    try:
        result = AuditService(engine).verify()
    finally:
        engine.dispose()
    if result.problem is not None:
        click.echo(
            f"arserver audit verify: the audit log was tampered with: {result.problem} "
            f"({result.count} entries before it are intact)",
            err=True,
        )
        sys.exit(1)
    click.echo(f"audit log intact: {result.count} entries, newest hash {result.head_hash}")


@audit.command("list")
@click.option(
    "--limit", default=50, show_default=True, type=click.IntRange(1, 100_000),
    help="How many of the newest entries.",
)  # fmt: skip
def list_(limit: int) -> None:
    """The newest entries, oldest of them first: seq, time, actor, action, object, result,
    origin (tab separated; '-' for none; an erased actor is '[erased]')."""
    from arserver.services.audit import AuditService
    from arserver.store.database import open_database

    engine = open_database(current_settings())
    try:
        entries = AuditService(engine).newest(limit)
    finally:
        engine.dispose()
    click.echo("seq\ttime\tactor\taction\tobject\tresult\torigin")
    for entry in entries:
        fields = [
            str(entry.seq), entry.at.isoformat(timespec="seconds"), entry.actor or "[erased]",
            entry.action, entry.object or "-", entry.result, entry.origin or "-",
        ]  # fmt: skip
        click.echo("\t".join(fields))
