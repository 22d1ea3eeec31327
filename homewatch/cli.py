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


@gateway_app.command("run")
def gateway_run(
    mqtt_url: MqttUrl = None,
    gateway_id: Annotated[
        str | None, typer.Option(help="This gateway's id (env HOMEWATCH_GATEWAY_GATEWAY_ID).")
    ] = None,
    outbox: Annotated[
        Path | None, typer.Option(help="Outbox file (env HOMEWATCH_GATEWAY_OUTBOX_PATH).")
    ] = None,
    ble_transport: BleTransport = None,
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
    verbose: Verbose = False,
) -> None:
    """Read BLE cuffs and glucose meters and forward their readings over MQTT."""
    from gateway.service import Gateway
    from gateway.settings import GatewaySettings

    _logging(verbose)
    settings = GatewaySettings(
        **_overrides(
            mqtt_url=mqtt_url,
            gateway_id=gateway_id,
            outbox_path=outbox,
            ble_transport=ble_transport,
            allowed_devices=allow or None,
            pair_devices=pair,
            quirks_path=quirks,
        )
    )
    _run_until_interrupted(Gateway(settings).run())


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


@sim_app.command("run")
def sim_run(
    tcp_port: Annotated[
        int,
        typer.Option(
            help="Port where a gateway's controller connects (tcp-client:127.0.0.1:PORT)."
        ),
    ] = 9001,
    speed: Annotated[float, typer.Option(help="Simulated seconds per real second.")] = 3600.0,
    days: Annotated[int, typer.Option(help="The simulation starts this many days ago.")] = 3,
    verbose: Verbose = False,
) -> None:
    """Run the demo cohort's cuffs on a virtual radio served over TCP, for a gateway in
    another process."""
    from homewatch.simulation import run_simulation

    _logging(verbose)
    _run_until_interrupted(run_simulation(tcp_port=tcp_port, speed=speed, days=days))


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
