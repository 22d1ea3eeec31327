"""``homewatch demo``: the whole path in one process tree, on embedded services by default.

broker (Mosquitto from deploy/, or amqtt) · database (pgserver, or --database-url) · ingest
server with its API · gateway · simulated patients with BLE cuffs on an in-process bumble link,
their clock running days in seconds. Prints what happens as it happens.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import signal
import sys
import tempfile
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

import psycopg

from device_simulators.clock import VirtualClock
from device_simulators.cohort import CohortMember, demo_cohort, demo_start
from device_simulators.patients import Measurement
from device_simulators.radio import VirtualRadio
from device_simulators.runner import cuffs_on_radio, run_patient
from gateway.ble import BleBackends
from gateway.bleak_bumble import BumbleCentral
from gateway.service import Gateway
from gateway.settings import GatewaySettings
from homewatch.embedded.broker import BrokerEndpoint, EmbeddedBrokerKind, embedded_broker
from homewatch.embedded.database import embedded_postgres
from homewatch.wire import BloodPressureReading, Reading, serial_device_key
from ingest_server import store
from ingest_server.auth.principal import Role
from ingest_server.auth.settings import AuthSettings
from ingest_server.auth.tokens import issue_dev_token
from ingest_server.migrate import migrate
from ingest_server.service import IngestService
from ingest_server.settings import IngestSettings
from ingest_server.store import StoreResult

log = logging.getLogger(__name__)

#: After the demo's time is up: how long to wait for readings still on their way to be stored.
DRAIN_TIMEOUT = 10.0


@dataclass(frozen=True, slots=True)
class DemoOptions:
    duration: float | None = None
    json_summary: bool = False
    mqtt_url: str | None = None
    database_url: str | None = None
    api_port: int = 8000
    speed: float = 3600.0
    days: int = 3
    embedded_broker: EmbeddedBrokerKind = "auto"


class Narrator:
    """Tells a person what happens, one line per event (stderr when stdout carries JSON)."""

    def __init__(self, out: TextIO) -> None:
        self.out = out

    def say(self, who: str, text: str) -> None:
        print(f"{datetime.now():%H:%M:%S} {who:<8} {text}", file=self.out, flush=True)

    def on_measurement(self, member: CohortMember, m: Measurement) -> None:
        if m.event != "scheduled":
            self.say(
                "patient",
                f"{member.patient.display_name}: {m.event}, "
                f"measures {m.systolic:g}/{m.diastolic:g}",
            )

    async def on_reading(self, r: Reading) -> None:
        if not isinstance(r, BloodPressureReading):
            self.say("gateway", f"{r.device.serial_number or r.device.address}: {r.kind} reading")
            return
        v = r.values
        pulse = (
            f", pulse {v.pulse_rate.value:g}"
            if v.pulse_rate and v.pulse_rate.value is not None
            else ""
        )
        self.say(
            "gateway",
            f"{r.device.serial_number or r.device.address}: "
            f"{_num(v.systolic.value)}/{_num(v.diastolic.value)} mmHg"
            f"{pulse} measured {r.measured_at:%a %d %b %H:%M} UTC",
        )

    async def on_result(self, result: StoreResult) -> None:
        if result.stored or result.duplicates:
            self.say("ingest", f"stored {result.stored}, duplicates {result.duplicates}")
        if result.quarantined:
            self.say("ingest", f"quarantined {result.quarantined}: {result.quarantine_reason}")
        for a in result.alerts:
            verb = "ALERT" if a.raised else "alert updated"
            self.say(
                "alerts",
                f"{verb} [{a.severity}] {a.patient_id}: {a.title} (occurrences {a.occurrences})",
            )


def _num(value: float | None) -> str:
    return "NaN" if value is None else f"{value:g}"


async def run_demo(options: DemoOptions) -> dict[str, Any]:
    narrator = Narrator(sys.stderr if options.json_summary else sys.stdout)
    run_id = uuid.uuid4().hex[:8]
    async with contextlib.AsyncExitStack() as stack:
        broker = await stack.enter_async_context(_broker(options))
        database_url = options.database_url or await stack.enter_async_context(embedded_postgres())
        narrator.say(
            "demo",
            f"broker {broker.url} (MQTT {broker.protocol}), database {_redact(database_url)}",
        )
        applied = await asyncio.to_thread(migrate, database_url)
        narrator.say("demo", f"schema migrated ({', '.join(applied) or 'up to date'})")

        start = demo_start(datetime.now(UTC), options.days)
        cohort = demo_cohort(start)
        await _enrol(database_url, cohort, bound_from=start)

        topic_root = f"homewatch-demo/{run_id}/v1"
        workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="homewatch-demo-")))
        ingest_settings = IngestSettings(
            database_url=database_url,
            mqtt_url=broker.url,
            mqtt_protocol=broker.protocol,
            topic_root=topic_root,
            shared_group="ingest" if broker.shared_subscriptions else None,
            client_id=f"demo-ingest-{run_id}",
            api_port=options.api_port,
        )
        # A signing key for this run only (never stored): the API answers bearer tokens only.
        auth = AuthSettings(dev_signing_key=secrets.token_urlsafe(48))
        ingest = await stack.enter_async_context(
            IngestService(ingest_settings, on_result=narrator.on_result, auth_settings=auth)
        )
        token = issue_dev_token(auth, subject="p-0003", role=Role.PATIENT, ttl_s=86400)
        narrator.say(
            "demo",
            f"API on {ingest.api_url} (/docs); as patient p-0003: curl -H "
            f"'Authorization: Bearer {token}' {ingest.api_url}/patients/p-0003/alerts",
        )
        radio = await stack.enter_async_context(VirtualRadio())
        cuffs = await stack.enter_async_context(cuffs_on_radio(radio, cohort))
        central = await stack.enter_async_context(BumbleCentral(await radio.central_device()))
        gateway = Gateway(
            GatewaySettings(
                gateway_id=f"demo-gw-{run_id}",
                mqtt_url=broker.url,
                mqtt_protocol=broker.protocol,
                topic_root=topic_root,
                outbox_path=workdir / "outbox.sqlite3",
            ),
            BleBackends(central.scanner_backend, central.client_backend),
            on_reading=narrator.on_reading,
        )
        clock = VirtualClock(start, options.speed)

        async with asyncio.TaskGroup() as tg:
            gateway_task = tg.create_task(gateway.run(), name="gateway")
            patient_tasks = [
                tg.create_task(
                    run_patient(m, cuff, clock, narrator.on_measurement),
                    name=f"patient-{m.patient.patient_id}",
                )
                for m, cuff in zip(cohort, cuffs, strict=True)
            ]
            narrator.say(
                "demo",
                f"{len(cohort)} patients measuring from {start:%a %d %b %H:%M} UTC, "
                f"clock x{options.speed:g}",
            )
            await _wait_for_stop(options.duration)
            narrator.say("demo", "stopping: patients put their cuffs away")
            for task in patient_tasks:
                task.cancel()
            await _drain(gateway, ingest)
            gateway_task.cancel()
        summary = await _summary(database_url, gateway, ingest)
        narrator.say(
            "demo",
            f"readings stored {summary['readings_stored']}, "
            f"alerts raised {summary['alerts_raised']}",
        )
        return summary


@contextlib.asynccontextmanager
async def _broker(options: DemoOptions) -> AsyncIterator[BrokerEndpoint]:
    if options.mqtt_url:
        from gateway.mqtt import parse_mqtt_url

        host, port = parse_mqtt_url(options.mqtt_url)
        yield BrokerEndpoint(host, port)
    else:
        async with embedded_broker(options.embedded_broker) as endpoint:
            yield endpoint


async def _enrol(database_url: str, cohort: list[CohortMember], bound_from: datetime) -> None:
    """What an administrator does first: register the patients and bind each one's cuff."""
    async with await psycopg.AsyncConnection.connect(database_url) as conn:
        for m in cohort:
            await store.create_patient(conn, m.patient.patient_id, m.patient.display_name)
            key = serial_device_key(m.cuff.manufacturer, m.cuff.model, m.cuff.serial_number)
            await store.bind_device(conn, key, m.patient.patient_id, bound_from)


async def _wait_for_stop(duration: float | None) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await asyncio.wait_for(stop.wait(), duration)
    except TimeoutError:
        pass
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)


async def _drain(gateway: Gateway, ingest: IngestService) -> None:
    """Let readings already taken reach the database: the outbox is empty and the ingest
    server has acknowledged everything it received, and stays so for a moment."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + DRAIN_TIMEOUT
    quiet_since = None
    while loop.time() < deadline:
        settled = gateway.outbox is not None and await gateway.outbox.depth() == 0 and ingest.idle
        if not settled:
            quiet_since = None
        elif quiet_since is None:
            quiet_since = loop.time()
        elif loop.time() - quiet_since >= 0.5:
            return
        await asyncio.sleep(0.1)
    log.warning("demo stopped with readings still in flight (they stay in the outbox / broker)")


async def _summary(database_url: str, gateway: Gateway, ingest: IngestService) -> dict[str, Any]:
    async with await psycopg.AsyncConnection.connect(database_url) as conn:
        readings = (await (await conn.execute("SELECT count(*) FROM bp_readings")).fetchone())[0]
        rows = await (
            await conn.execute(
                "SELECT patient_id, rule_id, severity, status, title, occurrences,"
                " evidence->'reading_ids'"
                " FROM alerts ORDER BY alert_id"
            )
        ).fetchall()
        quarantined = (await (await conn.execute("SELECT count(*) FROM quarantine")).fetchone())[0]
    return {
        "readings_stored": readings,
        "alerts_raised": len(rows),
        "alerts": [
            dict(
                zip(
                    (
                        "patient_id",
                        "rule_id",
                        "severity",
                        "status",
                        "title",
                        "occurrences",
                        "reading_ids",
                    ),
                    r,
                    strict=True,
                )
            )
            for r in rows
        ],
        "quarantined": quarantined,
        "gateway": vars(gateway.counters),
        "ingest": ingest.consumer.counters_snapshot() if ingest.consumer else {},
    }


def _redact(url: str) -> str:
    return url.split("@", 1)[-1] if "@" in url else url
