"""``arserver audit``: check and read the audit log, straight in the database (no server
needed)."""

from __future__ import annotations

import sys

import click

from arserver.commands.options import current_settings


@click.group("audit")
def audit() -> None:
    """The audit log: every write and every admin or security action, chained by hash."""


def _expectation(
    _context: click.Context, _parameter: click.Parameter, value: str | None
) -> tuple[int, str] | None:
    if value is None:
        return None
    seq, colon, digest = value.partition(":")
    digest = digest.strip().lower()
    if (
        not colon
        or not seq.strip().isdigit()
        or len(digest) != 64
        or not all(c in "0123456789abcdef" for c in digest)
    ):
        raise click.BadParameter("give SEQ:HASH, the seq and the 64 hex digits of an entry's hash")
    return int(seq), digest


@audit.command("verify")
@click.option(
    "--expect", metavar="SEQ:HASH", callback=_expectation,
    help="Also check that entry SEQ is still there with this hash (a head noted earlier).",
)  # fmt: skip
def verify(expect: tuple[int, str] | None) -> None:
    """Check the hash chain (with ARSERVER_AUDIT_KEY when the log is keyed). Exit 0 with the
    number of entries and the head (newest seq and hash, worth noting elsewhere) when it is
    intact; exit 1 naming the first entry (seq, time) that was changed, removed or inserted."""
    from arserver.services.audit import AuditService
    from arserver.store.database import open_database

    engine = open_database(current_settings())
    try:
        result = AuditService(engine).verify(expect)
    finally:
        engine.dispose()
    if result.problem is not None:
        click.echo(
            f"arserver audit verify: the audit log does not verify: {result.problem} "
            f"({result.count} entries before it are intact)",
            err=True,
        )
        sys.exit(1)
    mode = "keyed" if result.keyed else "not keyed"
    click.echo(
        f"audit log intact ({mode}): {result.count} entries, "
        f"head {result.head_seq}:{result.head_hash}"
    )


@audit.command("seal")
def seal() -> None:
    """Key a log written without ARSERVER_AUDIT_KEY (set it first): verify it as it is, then
    key every later entry and seal the head. Run it once, while no process writes the log
    without the key; exit 1 if the log does not verify."""
    from arserver.services.audit import AuditService
    from arserver.store.database import open_database

    engine = open_database(current_settings())
    try:
        result = AuditService(engine).seal()
    finally:
        engine.dispose()
    if result.problem is not None:
        click.echo(
            f"arserver audit seal: not sealed, the audit log does not verify: {result.problem}",
            err=True,
        )
        sys.exit(1)
    click.echo(
        f"audit log sealed: {result.count} entries, head {result.head_seq}:{result.head_hash}"
    )


@audit.command("subject")
@click.argument("subject")
def subject(subject: str) -> None:
    """Print the digest (subject:...) that stands for SUBJECT (token:ID, name:TEXT,
    oidc:...) in the entries of its export and erasure."""
    from arserver.services.audit import AuditService
    from arserver.services.privacy import Subject
    from arserver.store.database import open_database

    parsed = Subject.parse(subject)
    engine = open_database(current_settings())
    try:
        digest = AuditService(engine).subject_digest(str(parsed))
    finally:
        engine.dispose()
    click.echo(f"subject:{digest}")


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
