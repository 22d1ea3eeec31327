"""``homewatch admin``: operator commands for the API's security set-up.

Register in ``homewatch/cli.py`` with::

    from homewatch.cli_admin import admin_app
    app.add_typer(admin_app, name="admin")

- ``generate-key``: a random development signing key (for ``HOMEWATCH_AUTH_DEV_SIGNING_KEY``).
- ``issue-token``: a token of the server's own issuer, signed with that key.
- ``create-user``: a login for ``POST /auth/token`` (the password is read from standard input or
  ``HOMEWATCH_ADMIN_PASSWORD``, never from the command line, where ``ps`` would show it).
"""

from __future__ import annotations

import asyncio
import os
import secrets
import sys
from typing import Annotated

import typer

admin_app = typer.Typer(
    help="API security: signing keys, tokens, login users.", no_args_is_help=True
)

RoleOption = Annotated[
    str, typer.Option(help="clinician, patient, admin or gateway.", show_default=False)
]


def _fail(message: str) -> None:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(2)


@admin_app.command("generate-key")
def generate_key() -> None:
    """Print a new random key for HOMEWATCH_AUTH_DEV_SIGNING_KEY (keep it out of the repo)."""
    typer.echo(secrets.token_urlsafe(48))


@admin_app.command("issue-token")
def issue_token(
    subject: Annotated[
        str, typer.Option(help="clinician_id, patient_id, gateway_id or admin name.")
    ],
    role: RoleOption,
    ttl: Annotated[
        int | None, typer.Option(help="Lifetime in seconds (default: the setting).")
    ] = None,
) -> None:
    """Print a bearer token signed with HOMEWATCH_AUTH_DEV_SIGNING_KEY."""
    from pydantic import ValidationError

    from ingest_server.auth import AuthSettings, Role, issue_dev_token
    from ingest_server.auth.errors import AuthError

    try:
        settings = AuthSettings()
        token = issue_dev_token(settings, subject=subject, role=Role(role), ttl_s=ttl)
    except (ValidationError, AuthError, ValueError) as exc:
        _fail(str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
        return
    typer.echo(token)


@admin_app.command("create-user")
def create_user(
    username: Annotated[str, typer.Option(help="Login name.")],
    role: RoleOption,
    subject: Annotated[str, typer.Option(help="What the user's tokens name as 'sub'.")],
    database_url: Annotated[
        str | None, typer.Option(help="PostgreSQL URL (env HOMEWATCH_DATABASE_URL).")
    ] = None,
) -> None:
    """Create a login (or reset its password); the password comes from HOMEWATCH_ADMIN_PASSWORD
    or the first line of standard input."""
    from ingest_server import db
    from ingest_server.auth import Role
    from ingest_server.errors import DatabaseError
    from ingest_server.profile import users
    from ingest_server.settings import IngestSettings

    password = os.environ.get("HOMEWATCH_ADMIN_PASSWORD") or sys.stdin.readline().rstrip("\n")
    try:
        Role(role)
    except ValueError:
        _fail(f"unknown role {role!r}")
    settings = IngestSettings(**({"database_url": database_url} if database_url else {}))

    async def run() -> None:
        pool = db.create_pool(settings.database_url, min_size=1, max_size=1)
        await db.open_pool(pool, timeout=settings.db_start_timeout_s)
        try:
            async with db.connection(pool) as conn:
                await users.upsert_user(conn, username, password, role=role, subject=subject)
        finally:
            await pool.close()

    try:
        asyncio.run(run())
    except ValueError as exc:  # password policy
        _fail(str(exc))
    except DatabaseError as exc:
        _fail(f"database: {exc}")
    typer.echo(f"user {username} ({role}, subject {subject}) ready")
