"""``arserver token``: API tokens, created straight in the database (no server needed)."""

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
def create(role: str, name: str | None) -> None:
    """Create a token and print it alone on stdout (it is not shown again)."""
    from arserver.security.tokens import create_token
    from arserver.store.database import open_database

    engine = open_database(current_settings())
    try:
        secret, _ = create_token(engine, role, name)
    finally:
        engine.dispose()
    click.echo(secret)
