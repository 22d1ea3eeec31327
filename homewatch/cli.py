"""The ``homewatch`` command. Each subcommand builds its settings and hands over to a package."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from homewatch import cli_gateway
from homewatch.cli_admin import admin_app
from homewatch.cli_alerting import app as alerting_app
from homewatch.cli_ingest import quarantine_app, storage_app

app = typer.Typer(
    help="homewatch: remote monitoring of chronic patients at home.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
gateway_app = typer.Typer(help="The home gateway: BLE devices to MQTT.", no_args_is_help=True)
ingest_app = typer.Typer(
    help="The ingest server: MQTT to PostgreSQL, alerts and the API.", no_args_is_help=True
)
sim_app = typer.Typer(
    help="Device simulators: virtual patients and BLE devices.", no_args_is_help=True
)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
ble_app = typer.Typer(help="BLE payload tools.", no_args_is_help=True)
app.add_typer(gateway_app, name="gateway")
app.add_typer(ingest_app, name="ingest")
app.add_typer(sim_app, name="sim")
app.add_typer(db_app, name="db")
app.add_typer(ble_app, name="ble")
app.add_typer(alerting_app, name="alerting")
app.add_typer(admin_app, name="admin")
app.add_typer(quarantine_app, name="quarantine")
app.add_typer(storage_app, name="storage")
gateway_app.command("run")(cli_gateway.gateway_run)
gateway_app.command("status")(cli_gateway.gateway_status)

BleTransport = Annotated[
    str | None,
    typer.Option(
        help="bumble transport for simulated devices, e.g. tcp-client:127.0.0.1:9001"
        " (default: the platform's Bluetooth, BlueZ)."
    ),
]
Verbose = Annotated[bool, typer.Option("--verbose", "-v", help="Log at DEBUG level.")]
DatabaseUrl = Annotated[
    str | None,
    typer.Option(help="PostgreSQL URL (env HOMEWATCH_DATABASE_URL).", show_default=False),
]
MqttUrl = Annotated[
    str | None,
    typer.Option(help="Broker, mqtt://host:port (env HOMEWATCH_MQTT_URL).", show_default=False),
]


class EmbeddedBroker(StrEnum):
    AUTO = "auto"
    MOSQUITTO = "mosquitto"
    AMQTT = "amqtt"


def _logging(verbose: bool, quiet: bool = False) -> None:
    """INFO logs for services; a demo tells its own story and logs only warnings unless -v."""
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.WARNING if quiet else logging.INFO,
        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    if not verbose:
        for noisy in ("bumble", "bleak", "uvicorn.access", "amqtt", "transitions"):
            logging.getLogger(noisy).setLevel(logging.WARNING)


def _overrides(**values: object) -> dict[str, object]:
    """Command-line values that were given (None means: keep the environment's or the default)."""
    return {k: v for k, v in values.items() if v is not None}


@app.command()
def demo(
    duration: Annotated[
        float | None, typer.Option(help="Stop after this many seconds (default: run until Ctrl-C).")
    ] = None,
    json_summary: Annotated[
        bool,
        typer.Option("--json", help="Print one JSON summary at the end (events go to stderr)."),
    ] = False,
    mqtt_url: MqttUrl = None,
    database_url: DatabaseUrl = None,
    api_port: Annotated[
        int, typer.Option(help="Port of the clinician API (0: any free port).")
    ] = 8000,
    speed: Annotated[
        float, typer.Option(help="Virtual clock: simulated seconds per real second.")
    ] = 3600.0,
    days: Annotated[int, typer.Option(help="The simulation starts this many days ago.")] = 3,
    embedded_broker: Annotated[
        EmbeddedBroker,
        typer.Option(
            help="Without --mqtt-url: mosquitto if installed (auto), or pure-Python amqtt."
        ),
    ] = EmbeddedBroker.AUTO,
    verbose: Verbose = False,
) -> None:
    """Run everything in one process tree: broker, database, ingest server with its API,
    gateway and simulated patients with BLE cuffs (embedded broker and database unless URLs
    are given)."""
    from homewatch.demo import DemoOptions, run_demo

    _logging(verbose, quiet=True)
    options = DemoOptions(
        duration=duration,
        json_summary=json_summary,
        mqtt_url=mqtt_url,
        database_url=database_url,
        api_port=api_port,
        speed=speed,
        days=days,
        embedded_broker=embedded_broker.value,
    )
    summary = asyncio.run(run_demo(options))
    if json_summary:
        typer.echo(json.dumps(summary, indent=2, default=str))


@db_app.command("migrate")
def db_migrate(database_url: DatabaseUrl = None, verbose: Verbose = False) -> None:
    """Bring the database schema up to date (safe to run again)."""
    from ingest_server.migrate import migrate
    from ingest_server.settings import IngestSettings

    _logging(verbose)
    settings = IngestSettings(**_overrides(database_url=database_url))
    applied = migrate(settings.database_url)
    typer.echo(f"applied: {', '.join(applied)}" if applied else "schema is up to date")


@ingest_app.command("run")
def ingest_run(
    database_url: DatabaseUrl = None,
    mqtt_url: MqttUrl = None,
    api_host: Annotated[
        str | None, typer.Option(help="API bind address (env HOMEWATCH_API_HOST).")
    ] = None,
    api_port: Annotated[int | None, typer.Option(help="API port (env HOMEWATCH_API_PORT).")] = None,
    client_id: Annotated[
        str | None,
        typer.Option(help="MQTT client id, unique per worker (env HOMEWATCH_CLIENT_ID)."),
    ] = None,
    verbose: Verbose = False,
) -> None:
    """Consume readings from MQTT, store them, raise alerts and serve the API."""
    from ingest_server.service import run_ingest
    from ingest_server.settings import IngestSettings

    _logging(verbose)
    settings = IngestSettings(
        **_overrides(
            database_url=database_url,
            mqtt_url=mqtt_url,
            api_host=api_host,
            api_port=api_port,
            client_id=client_id,
        )
    )
    _run_until_interrupted(run_ingest(settings))


@gateway_app.command("scan")
def gateway_scan(
    duration: Annotated[float, typer.Option(help="Seconds to listen.")] = 5.0,
    ble_transport: BleTransport = None,
    json_output: Annotated[
        bool, typer.Option("--json", help="One JSON array instead of a table.")
    ] = False,
) -> None:
    """List nearby health devices: name, address, services, RSSI."""
    from gateway.ble import open_backends, scan_health_devices

    async def scan() -> list:
        async with open_backends(ble_transport) as backends:
            return await scan_health_devices(backends, duration)

    _logging(verbose=False, quiet=True)
    devices = asyncio.run(scan())
    if json_output:
        typer.echo(json.dumps([dataclasses.asdict(d) for d in devices], indent=2))
        return
    for d in devices:
        typer.echo(f"{d.address}  {d.rssi:>4} dBm  {d.name or '?':<20}  {', '.join(d.services)}")
    if not devices:
        typer.echo("no health devices found", err=True)


ScenarioOption = Annotated[
    str,
    typer.Option(help="Scenario file (TOML) or built-in name (see `homewatch sim scenarios`)."),
]
SeedOption = Annotated[
    int | None, typer.Option(help="Random seed (default: the scenario's).", min=0)
]
TruthOption = Annotated[Path | None, typer.Option(help="Write the ground truth here (JSON lines).")]


@sim_app.command("run")
def sim_run(
    scenario: ScenarioOption = "demo",
    days: Annotated[
        int | None,
        typer.Option(
            help="Simulated days; the run starts this many days ago (default: the scenario's).",
            min=1,
        ),
    ] = None,
    speed: Annotated[
        float, typer.Option(help="Simulated seconds per real second.", min=1.0)
    ] = 3600.0,
    seed: SeedOption = None,
    truth: TruthOption = None,
    tcp_port: Annotated[
        int,
        typer.Option(
            help="Port where a gateway's controller connects (tcp-client:127.0.0.1:PORT)."
        ),
    ] = 9001,
    linger: Annotated[
        float | None,
        typer.Option(
            help="After the last reading, keep the devices on the air this many seconds"
            " (default: until Ctrl-C).",
            min=0.0,
        ),
    ] = None,
    verbose: Verbose = False,
) -> None:
    """Run a scenario's cohort (cuffs, glucometers, faults) on a virtual radio served over
    TCP, for a gateway in another process; progress is logged on long runs."""
    from device_simulators.errors import SimulationError
    from homewatch.simulation import SimulationOptions, run_simulation

    _logging(verbose)
    options = SimulationOptions(
        tcp_port=tcp_port,
        speed=speed,
        days=days,
        scenario=scenario,
        seed=seed,
        truth=truth,
        linger=linger,
    )
    try:
        _run_until_interrupted(run_simulation(options))
    except SimulationError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None


@sim_app.command("generate")
def sim_generate(
    scenario: ScenarioOption = "demo",
    days: Annotated[
        float | None, typer.Option(help="Simulated days (default: the scenario's).", min=0.001)
    ] = None,
    start: Annotated[
        str | None,
        typer.Option(
            help="First moment, ISO 8601 (a date means 06:58 in the scenario's zone;"
            " default: DAYS ago)."
        ),
    ] = None,
    seed: SeedOption = None,
    truth: TruthOption = None,
    readings: Annotated[
        Path | None, typer.Option(help="Write every reading here (JSON lines).")
    ] = None,
) -> None:
    """Generate a scenario's readings and ground truth without any radio; prints a JSON
    summary."""
    from datetime import UTC, datetime, time

    from device_simulators.errors import SimulationError
    from device_simulators.generate import generate
    from device_simulators.scenario import load_scenario
    from homewatch.simulation import simulated_start, write_generated

    try:
        loaded = load_scenario(scenario)
        span = days or loaded.days
        if start is None:
            first = simulated_start(loaded, span)
        else:
            first = datetime.fromisoformat(start)
            if len(start) == 10:  # a date
                first = datetime.combine(first.date(), time(6, 58), loaded.timezone)
            elif first.tzinfo is None:
                first = first.replace(tzinfo=loaded.timezone)
        run = generate(loaded, first.astimezone(UTC), span, seed=seed)
    except (SimulationError, ValueError) as exc:  # a bad scenario file, a malformed --start
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    typer.echo(json.dumps(write_generated(run, truth=truth, readings=readings), indent=2))


@sim_app.command("scenarios")
def sim_scenarios() -> None:
    """List the built-in scenarios."""
    from device_simulators.scenario import builtin_scenarios, load_scenario

    for name in builtin_scenarios():
        s = load_scenario(name)
        typer.echo(f"{name:<12} {s.patient_count:>5} patients {s.days:>3} days  {s.description}")


@ble_app.command("decode")
def ble_decode(
    characteristic: Annotated[
        str, typer.Argument(help="2A35, 0x2A35, a 128-bit UUID, SFLOAT or FLOAT.")
    ],
    payload: Annotated[str, typer.Argument(help="The value as hex, as received over the air.")],
) -> None:
    """Decode one characteristic value and print it as JSON."""
    from gateway.codec import DecodeError, decode, to_jsonable

    try:
        data = bytes.fromhex(payload.replace(" ", "").replace(":", ""))
    except ValueError:
        typer.echo(f"error: not hex: {payload!r}", err=True)
        raise typer.Exit(2) from None
    try:
        decoded = decode(characteristic, data)
    except DecodeError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    typer.echo(json.dumps(to_jsonable(decoded), indent=2))


def _run_until_interrupted(coro) -> None:
    try:
        asyncio.run(coro)
    except KeyboardInterrupt:
        logging.getLogger("homewatch").info("interrupted; stopped")
