"""``homewatch gateway run`` and ``homewatch gateway status``.

Registered in ``homewatch/cli.py`` on its ``gateway_app``; also runnable on its own
(``python -m homewatch.cli_gateway run|status``), which is how the fault tests start a real
gateway process.

``status`` reads what the running gateway wrote atomically next to its outbox (connection
state, last publish, devices) and the outbox itself (read-only: SQLite WAL readers never block
the writer). Exit code: 0 running and connected; 1 not running, not connected, or the outbox is
full; 2 nothing to show (no outbox and no status file there).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer
from pydantic import ValidationError

ConfigFile = Annotated[
    Path | None,
    typer.Option(
        "--config",
        help="Settings file (TOML; env HOMEWATCH_GATEWAY_CONFIG_FILE). The command line and "
        "the environment override it.",
        show_default=False,
    ),
]
Outbox = Annotated[
    Path | None, typer.Option(help="Outbox file (env HOMEWATCH_GATEWAY_OUTBOX_PATH).")
]

log = logging.getLogger("homewatch.gateway")


def gateway_run(
    config: ConfigFile = None,
    mqtt_url: Annotated[
        str | None,
        typer.Option(
            help="Broker, mqtt://host:port or mqtts://host:port (TLS).", show_default=False
        ),
    ] = None,
    gateway_id: Annotated[
        str | None, typer.Option(help="This gateway's id (env HOMEWATCH_GATEWAY_GATEWAY_ID).")
    ] = None,
    outbox: Outbox = None,
    ble_transport: Annotated[
        str | None,
        typer.Option(
            help="bumble transport for simulated devices, e.g. tcp-client:127.0.0.1:9001"
            " (default: the platform's Bluetooth, BlueZ)."
        ),
    ] = None,
    allow: Annotated[
        list[str] | None,
        typer.Option(
            help="A provisioned device: address or make/model/serial; repeat for more "
            "(env HOMEWATCH_GATEWAY_ALLOWED_DEVICES, a JSON list). None: every health device.",
        ),
    ] = None,
    pair: Annotated[
        bool | None, typer.Option("--pair/--no-pair", help="Pair (bond) before reading.")
    ] = None,
    quirks: Annotated[
        Path | None, typer.Option(help="Extra quirk-table entries (TOML), beside the built-in.")
    ] = None,
    metrics_port: Annotated[
        int | None,
        typer.Option(help="Serve Prometheus metrics on this local port (0: any free port)."),
    ] = None,
    log_format: Annotated[
        str | None, typer.Option(help="text or json (one object per line).")
    ] = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log at DEBUG level.")] = False,
) -> None:
    """Read BLE health devices and forward their readings over MQTT, until stopped (SIGINT or
    SIGTERM: a clean stop publishes the "offline" status)."""
    # Until the event loop takes SIGTERM over, a stop requested while the gateway is still
    # starting (imports take a second or more) must end it cleanly, not kill it mid-write.
    signal.signal(signal.SIGTERM, _stop_before_start)
    from gateway.logging_setup import configure_logging
    from gateway.service import Gateway
    from gateway.settings import GatewaySettings, SettingsFileError

    overrides = {
        k: v
        for k, v in {
            "mqtt_url": mqtt_url,
            "gateway_id": gateway_id,
            "outbox_path": outbox,
            "ble_transport": ble_transport,
            "allowed_devices": allow or None,
            "pair_devices": pair,
            "quirks_path": quirks,
            "metrics_port": metrics_port,
            "log_format": log_format,
        }.items()
        if v is not None
    }
    try:
        settings = GatewaySettings.load(config, **overrides)
    except (SettingsFileError, ValidationError) as exc:
        typer.echo(f"error: invalid gateway settings: {exc}", err=True)
        raise typer.Exit(2) from None
    configure_logging(settings.log_format, verbose=verbose)
    asyncio.run(_run_until_signalled(Gateway(settings).run()))


def _stop_before_start(_signum: int, _frame: object) -> None:
    raise SystemExit(0)


async def _run_until_signalled(coro) -> None:
    """Run ``coro`` as a task; SIGINT/SIGTERM cancel it, so that it stops cleanly."""
    task = asyncio.ensure_future(coro)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, task.cancel)
    try:
        await task
    except asyncio.CancelledError:
        log.info("stopped")


def gateway_status(
    config: ConfigFile = None,
    outbox: Outbox = None,
    json_output: Annotated[
        bool, typer.Option("--json", help="One JSON object instead of text.")
    ] = False,
) -> None:
    """Show the gateway's connection state, outbox depth, last publish and devices."""
    from gateway.outbox import Outbox as OutboxFile
    from gateway.settings import GatewaySettings, SettingsFileError
    from gateway.status import read_status_file, status_path

    try:
        settings = GatewaySettings.load(config, **({"outbox_path": outbox} if outbox else {}))
    except (SettingsFileError, ValidationError) as exc:
        typer.echo(f"error: invalid gateway settings: {exc}", err=True)
        raise typer.Exit(2) from None
    path = settings.outbox_path
    report: dict[str, object] = {"outbox_path": str(path)}
    status = None
    try:
        status = read_status_file(status_path(path))
    except FileNotFoundError:
        report["status_error"] = "no status file: the gateway has not run here"
    except (OSError, ValidationError) as exc:
        report["status_error"] = f"unreadable status file: {exc}"
    stats = None
    try:
        stats = OutboxFile.inspect(path)
    except FileNotFoundError:
        report["outbox_error"] = "no outbox"
    except Exception as exc:  # sqlite3.Error, permissions: say so, show the rest
        report["outbox_error"] = f"cannot read the outbox: {exc}"
    if status is None and stats is None:
        typer.echo(f"no gateway state at {path}", err=True)
        raise typer.Exit(2)

    running = status is not None and _running(status, settings.status_interval_seconds)
    report["running"] = running
    if status is not None:
        report["status"] = json.loads(status.to_bytes())
    if stats is not None:
        report["outbox"] = {
            "depth": stats.depth,
            "oldest_enqueued_at": stats.oldest_enqueued_at,
            "rejected_payloads": stats.rejected,
        }
    healthy = (
        running
        and status is not None
        and status.mqtt_connected
        and not (status.outbox is not None and status.outbox.full)
    )
    if json_output:
        typer.echo(json.dumps(report, indent=2, default=str))
    else:
        typer.echo(_render(status, stats, running, report))
    if not healthy:
        raise typer.Exit(1)


def _running(status, interval: float) -> bool:
    """The process that wrote the file is alive and wrote it recently."""
    if status.state != "online" or status.pid is None or status.updated_at is None:
        return False
    try:
        os.kill(status.pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # another user's process (the service account): it exists
    age = (datetime.now(UTC) - status.updated_at).total_seconds()
    return age < 3 * interval + 5


def _ago(when: datetime | None) -> str:
    if when is None:
        return "never"
    seconds = (datetime.now(UTC) - when).total_seconds()
    return f"{when.isoformat(timespec='seconds')} ({seconds:.0f}s ago)"


def _render(status, stats, running: bool, report: dict[str, object]) -> str:
    lines = []
    if status is not None:
        state = "running" if running else f"not running (last state: {status.state})"
        lines.append(
            f"gateway {status.gateway_id} (homewatch {status.software_version}, pid {status.pid}):"
            f" {state}; status written {_ago(status.updated_at)}"
        )
        mqtt = "connected" if status.mqtt_connected else "NOT connected"
        error = f" — {status.mqtt_last_error}" if status.mqtt_last_error else ""
        lines.append(f"MQTT: {mqtt} to {status.mqtt_broker}{error}")
        lines.append(
            f"last publish: {_ago(status.last_publish_at)}; {status.published} reading(s) "
            "published since start"
        )
        if status.config_revision is not None or status.config_error:
            lines.append(
                f"provisioning: revision {status.config_revision} from {status.config_source}"
                + (f"; last one ignored: {status.config_error}" if status.config_error else "")
            )
    else:
        lines.append(f"gateway: {report.get('status_error')}")
    if stats is not None:
        limit = status.outbox.limit if status is not None and status.outbox else None
        full = " — FULL: new readings are refused" if limit and stats.depth >= limit else ""
        lines.append(
            f"outbox: {stats.depth} reading(s) queued"
            + (f" (limit {limit})" if limit else "")
            + f", oldest {_ago(stats.oldest_enqueued_at)}; "
            f"{stats.rejected} undecodable payload(s) kept{full}"
        )
    else:
        lines.append(f"outbox: {report.get('outbox_error')}")
    for d in (status.devices or []) if status is not None else []:
        battery = f"{d.battery_percent}%" if d.battery_percent is not None else "?"
        lines.append(
            f"  {d.device_key} ({d.kind or '?'}, {d.address}): battery {battery}, "
            f"last reading {_ago(d.last_reading_at)}, {d.readings} since start"
            + (f", last error: {d.last_error}" if d.last_error else "")
        )
    return "\n".join(lines)


app = typer.Typer(help="The home gateway: BLE devices to MQTT.", no_args_is_help=True)
app.command("run")(gateway_run)
app.command("status")(gateway_status)

if __name__ == "__main__":
    sys.exit(app())
