"""``arserver token``: API tokens, straight in the database (no server needed): create, list,
revoke."""

from __future__ import annotations

import click

from arserver.commands.options import current_settings
from arserver.security.policy import ROLES


@click.group("token")
def token() -> None:
    """API tokens: one role each, shown once, stored hashed."""


@token.command("create")
@click.option("--role", required=True, type=click.Choice(ROLES), help="What the token may do.")
@click.option("--name", help="Who or what holds it, e.g. 'tablet 3' or 'gateway Schiphol'.")
@click.option(
    "--expires", metavar="LIFETIME", help="Lifetime: a number and m, h, d or w, e.g. 30d."
)
@click.option(
    "--scope",
    metavar="asset:ID|layer:NAME|round:ID",
    help="Narrow the token to reading one asset, or the assets of one layer, and their tiles; "
    "a resident token needs round:ID (one resident of that participation round).",
)
def create(role: str, name: str | None, expires: str | None, scope: str | None) -> None:
    """Create a token and print it alone on stdout (it is not shown again)."""
    from arserver.security.tokens import create_token, parse_lifetime
    from arserver.services.audit import CLI_ACTOR, AuditService
    from arserver.store.database import open_database

    lifetime = parse_lifetime(expires) if expires is not None else None
    engine = open_database(current_settings())
    try:
        secret, record = create_token(engine, role, name, expires_in=lifetime, scope=scope)
        AuditService(engine).record(CLI_ACTOR, "token create", record.id)
    finally:
        engine.dispose()
    click.echo(secret)


@token.command("list")
def list_() -> None:
    """Every token, newest first: id, role, scope, created, expires, revoked, name (tab
    separated; never a secret)."""
    from arserver.security.tokens import list_tokens
    from arserver.store.database import open_database

    engine = open_database(current_settings())
    try:
        infos = list_tokens(engine)
    finally:
        engine.dispose()
    click.echo("id\trole\tscope\tcreated\texpires\trevoked\tname")
    for info in infos:
        times = [
            t.isoformat(timespec="seconds") if t is not None else "-"
            for t in (info.created_at, info.expires_at, info.revoked_at)
        ]
        click.echo("\t".join([info.id, info.role, info.scope or "-", *times, info.name]))


@token.command("revoke")
@click.argument("token_id")
def revoke(token_id: str) -> None:
    """Revoke a token by its id (see `arserver token list`). Requests with it fail at once;
    its open live connections are closed: through Redis when ARSERVER_REDIS_URL is set, else
    by the server's periodic check of its connections' tokens."""
    from arserver.errors import NotFoundError
    from arserver.live.bus import RedisBus
    from arserver.services.audit import CLI_ACTOR, AuditService
    from arserver.services.tokens import TokenService
    from arserver.store.database import open_database

    settings = current_settings()
    engine = open_database(settings)
    bus = RedisBus(settings.redis_url) if settings.redis_url else None
    try:
        revoked = TokenService(engine, bus).revoke(token_id)
        AuditService(engine).record(
            CLI_ACTOR, "token revoke", token_id, "ok" if revoked else "refused"
        )
        if not revoked:
            raise NotFoundError(f"no token {token_id[:64]!r} that is not revoked already")
    finally:
        if bus is not None:
            bus.close()
        engine.dispose()
    click.echo(f"revoked {token_id}", err=True)
