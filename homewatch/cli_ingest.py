"""Operator commands of the ingest server: ``homewatch quarantine``, ``homewatch storage``.

Registered in ``homewatch/cli.py`` (two sub-apps); the imports of the ingest server happen inside
the commands, so ``homewatch --help`` stays fast. Each command opens one connection from
``--database-url`` (or ``HOMEWATCH_DATABASE_URL``), does its work and prints a table or, with
``--json``, one JSON document. Exit status 1 when the database cannot be used.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Annotated, Any, TypeVar

import typer

T = TypeVar("T")

quarantine_app = typer.Typer(
    help="Messages and readings the ingest server set aside: list them, ingest them again.",
    no_args_is_help=True,
)
storage_app = typer.Typer(
    help="Readings storage: partitions, retention, the path taken (TimescaleDB or native).",
    no_args_is_help=True,
)

DatabaseUrl = Annotated[
    str | None,
    typer.Option(help="PostgreSQL URL (env HOMEWATCH_DATABASE_URL).", show_default=False),
]
JsonOutput = Annotated[bool, typer.Option("--json", help="One JSON document instead of a table.")]
Reason = Annotated[
    str | None,
    typer.Option(help='Only this reason, exactly (e.g. "unbound device").', show_default=False),
]
Since = Annotated[
    str | None,
    typer.Option(help="Received at or after (ISO 8601; UTC when no offset).", show_default=False),
]
Until = Annotated[
    str | None,
    typer.Option(help="Received before (ISO 8601; UTC when no offset).", show_default=False),
]
Ids = Annotated[
    list[int] | None,
    typer.Option("--id", help="Only this quarantine row; repeat for more.", show_default=False),
]


def _when(value: str | None, option: str) -> datetime | None:
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise typer.BadParameter(f"not an ISO 8601 time: {value!r}", param_hint=option) from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _run(database_url: str | None, work: Callable[[Any], Awaitable[T]]) -> T:
    """``work(conn)`` on one connection to the configured database."""
    from ingest_server import db
    from ingest_server.errors import DatabaseError
    from ingest_server.settings import IngestSettings

    values = {"database_url": database_url} if database_url else {}
    settings = IngestSettings(**values)

    async def run() -> T:
        pool = db.create_pool(settings.database_url, min_size=1, max_size=1, timeout=5)
        await db.open_pool(pool, timeout=5)
        try:
            async with db.connection(pool) as conn:
                return await work(conn)
        finally:
            await pool.close()

    try:
        return asyncio.run(run())
    except DatabaseError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None


def _json(value: Any) -> None:
    def plain(o: Any) -> Any:
        if dataclasses.is_dataclass(o) and not isinstance(o, type):
            return dataclasses.asdict(o)
        return str(o)

    typer.echo(json.dumps(value, indent=2, default=plain))


def _table(rows: list[list[str]], header: list[str]) -> None:
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        typer.echo("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())


def _short(text: str | None, width: int = 60) -> str:
    text = (text or "").replace("\n", " ")
    return text if len(text) <= width else text[: width - 1] + "…"


# --- quarantine ----------------------------------------------------------------------------------


@quarantine_app.command("list")
def quarantine_list(
    reason: Reason = None,
    since: Since = None,
    until: Until = None,
    ids: Ids = None,
    all_rows: Annotated[
        bool, typer.Option("--all", help="Resolved rows too (they are kept for the audit).")
    ] = False,
    limit: Annotated[int, typer.Option(min=1, max=100_000, help="At most this many rows.")] = 100,
    database_url: DatabaseUrl = None,
    json_output: JsonOutput = False,
) -> None:
    """Quarantined messages and readings, oldest first (open ones unless --all), and the count
    of open rows per reason."""
    from ingest_server import quarantine

    after, before = _when(since, "--since"), _when(until, "--until")

    async def work(conn: Any) -> tuple[list[Any], list[Any]]:
        rows = await quarantine.list_quarantined(
            conn,
            reason=reason,
            since=after,
            until=before,
            ids=ids,
            include_resolved=all_rows,
            limit=limit,
        )
        return rows, await quarantine.open_counts(conn)

    rows, counts = _run(database_url, work)
    if json_output:
        _json({"rows": rows, "open_by_reason": counts})
        return
    _table(
        [
            [
                str(r.id),
                f"{r.received_at:%Y-%m-%d %H:%M:%S}",
                r.reason,
                "resolved" if r.resolved_at else f"open ({r.attempts} tries)",
                str(r.reading_id or "(message)"),
                _short(r.last_outcome or r.detail),
            ]
            for r in rows
        ],
        ["id", "received (UTC)", "reason", "state", "reading", "detail / last outcome"],
    )
    typer.echo("")
    for c in counts:
        typer.echo(f"open: {c.open:>8}  {c.reason}")
    if not counts:
        typer.echo("open: none")


@quarantine_app.command("reingest")
def quarantine_reingest(
    reason: Reason = None,
    since: Since = None,
    until: Until = None,
    ids: Ids = None,
    limit: Annotated[
        int, typer.Option(min=1, max=100_000, help="At most this many rows in this run.")
    ] = 1000,
    topic_root: Annotated[
        str | None,
        typer.Option(
            help="Topic root the messages came on (env HOMEWATCH_TOPIC_ROOT).", show_default=False
        ),
    ] = None,
    database_url: DatabaseUrl = None,
    json_output: JsonOutput = False,
) -> None:
    """Run open quarantined rows through the write path again, e.g. after binding a device;
    rows whose readings are now stored (or were already) are marked resolved. Exit 3 when some
    selected rows stay open."""
    from ingest_server import quarantine
    from ingest_server.settings import IngestSettings

    root = topic_root or IngestSettings().topic_root
    after, before = _when(since, "--since"), _when(until, "--until")

    async def work(conn: Any) -> list[Any]:
        return await quarantine.reingest(
            conn,
            topic_root=root,
            reason=reason,
            since=after,
            until=before,
            ids=ids,
            limit=limit,
        )

    outcomes = _run(database_url, work)
    if json_output:
        _json(outcomes)
    else:
        _table(
            [
                [str(o.id), "resolved" if o.resolved else "still open", _short(o.outcome, 80)]
                for o in outcomes
            ],
            ["id", "state", "outcome"],
        )
        resolved = sum(o.resolved for o in outcomes)
        typer.echo(f"\n{len(outcomes)} rows re-ingested: {resolved} resolved")
    if any(not o.resolved for o in outcomes):
        raise typer.Exit(3)


# --- storage -------------------------------------------------------------------------------------


@storage_app.command("info")
def storage_info(database_url: DatabaseUrl = None, json_output: JsonOutput = False) -> None:
    """The storage path (timescaledb or native), its settings and the native partitions."""
    from ingest_server import partitions

    async def work(conn: Any) -> tuple[Any, list[Any]]:
        return await partitions.settings(conn), await partitions.partitions(conn)

    settings, parts = _run(database_url, work)
    if json_output:
        _json({"settings": settings, "partitions": parts})
        return
    for field in dataclasses.fields(settings):
        typer.echo(f"{field.name:<20} {getattr(settings, field.name)}")
    if parts:
        typer.echo("")
        _table(
            [
                [
                    p.name,
                    "DEFAULT" if p.lower_bound is None else f"{p.lower_bound:%Y-%m-%d}",
                    "" if p.upper_bound is None else f"{p.upper_bound:%Y-%m-%d}",
                    str(max(p.estimated_rows, 0)),
                ]
                for p in parts
            ],
            ["partition", "from", "to", "rows (estimate)"],
        )


@storage_app.command("maintain")
def storage_maintain(
    database_url: DatabaseUrl = None,
    json_output: JsonOutput = False,
) -> None:
    """Create the partitions due, apply the retention (the ingest service does this hourly)."""
    from ingest_server import partitions

    actions = _run(database_url, partitions.maintain)
    if json_output:
        _json(actions)
        return
    for a in actions:
        typer.echo(f"{a.action:<10} {a.relation}: {a.detail}")
    if not actions:
        typer.echo("nothing to do")
