"""Users of the server's own login (``POST /auth/token``): name, password hash, role, subject."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime

from ingest_server import db
from ingest_server.auth.passwords import hash_password, verify_password
from ingest_server.db import Connection

UPSERT_USER = """
INSERT INTO api_users (username, password_hash, role, subject) VALUES (%s, %s, %s, %s)
ON CONFLICT (username) DO UPDATE SET
    password_hash = EXCLUDED.password_hash, role = EXCLUDED.role, subject = EXCLUDED.subject,
    disabled = false
RETURNING username, role, subject, disabled, created_at
"""
GET_USER = "SELECT password_hash, role, subject, disabled FROM api_users WHERE username = %s"
LIST_USERS = """
SELECT username, role, subject, disabled, created_at FROM api_users ORDER BY username
LIMIT %s OFFSET %s
"""
DISABLE_USER = "UPDATE api_users SET disabled = true WHERE username = %s"

#: Verified against when the user does not exist, so that a wrong name and a wrong password
#: take the same time.
_DUMMY_HASH = (
    "scrypt$16384$8$1$AAAAAAAAAAAAAAAAAAAAAA==$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="
)


@dataclass(frozen=True, slots=True)
class UserRow:
    username: str
    role: str
    subject: str
    disabled: bool
    created_at: datetime


async def upsert_user(
    conn: Connection, username: str, password: str, *, role: str, subject: str
) -> UserRow:
    """Create the user or reset their password, role and subject (and enable them)."""
    hashed = await asyncio.to_thread(hash_password, password)
    row = await db.fetch_one(conn, UPSERT_USER, (username, hashed, role, subject), UserRow)
    assert row is not None
    return row


async def authenticate(conn: Connection, username: str, password: str) -> tuple[str, str] | None:
    """(role, subject) of an enabled user whose password matches, else None."""
    rows = await db.fetch_tuples(conn, GET_USER, (username,))
    stored, role, subject, disabled = rows[0] if rows else (_DUMMY_HASH, "", "", True)
    ok = await asyncio.to_thread(verify_password, password, stored)
    if not ok or disabled:
        return None
    return role, subject


async def list_users(conn: Connection, *, limit: int, offset: int) -> list[UserRow]:
    return await db.fetch_all(conn, LIST_USERS, (limit, offset), UserRow)


async def disable_user(conn: Connection, username: str) -> bool:
    return await db.execute(conn, DISABLE_USER, (username,)) > 0
