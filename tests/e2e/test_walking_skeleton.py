"""The whole path on real parts: simulated cuff → bumble link → bleak (bumble backend) →
gateway (codec, outbox, MQTT 5 QoS 1) → Mosquitto → ingest (validate, bind, store, rule) →
PostgreSQL → REST API."""

from __future__ import annotations

import asyncio
import contextlib
import inspect
from datetime import UTC, datetime, timedelta

import httpx
import psycopg
import pytest

from device_simulators.bp_cuff import BloodPressureCuff, CuffIdentity
from device_simulators.patients import Measurement
from device_simulators.radio import VirtualRadio
from gateway.ble import BleBackends
from gateway.bleak_bumble import BumbleCentral
from gateway.service import Gateway
from gateway.settings import GatewaySettings
from homewatch.wire import ReadingsMessage, readings_topic, serial_device_key
from ingest_server import store
from ingest_server.service import IngestService
from ingest_server.settings import IngestSettings
from tests.fixtures.mqtt import MqttTap
from tests.integration.ingest.ingest_support import PatientTokenAuth, dev_auth  # noqa: F401

# The API needs a bearer token: this test's own signing key (dev_auth) and a patient token per
# /patients/{id}/ request (PatientTokenAuth).
pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("dev_auth")]

CRISIS_CUFF = CuffIdentity("BP e2e 1", "Acme", "BP-1", "E2E-0001", "1.0")
NORMAL_CUFF = CuffIdentity("BP e2e 2", "Acme", "BP-1", "E2E-0002", "1.0")
MEASURED = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=2)
WAIT = 30.0


async def eventually(check, timeout: float = WAIT, interval: float = 0.1):
    """Poll ``check`` (sync or async, truthy when done) until it holds; its last value."""
    async with asyncio.timeout(timeout):
        while True:
            result = check()
            if inspect.isawaitable(result):
                result = await result
            if result:
                return result
            await asyncio.sleep(interval)


@pytest.fixture
async def system(database_url, mqtt_broker, topic_root, tmp_path):
    """Two patients with bound cuffs, the ingest service, the gateway, on one virtual radio."""
    async with await psycopg.AsyncConnection.connect(database_url) as conn:
        for patient_id, cuff in (("p-crisis", CRISIS_CUFF), ("p-normal", NORMAL_CUFF)):
            await store.create_patient(conn, patient_id, patient_id)
            key = serial_device_key(cuff.manufacturer, cuff.model, cuff.serial_number)
            await store.bind_device(conn, key, patient_id, MEASURED - timedelta(days=1))

    topic = readings_topic("gw-e2e", topic_root)
    tap = MqttTap(mqtt_broker, topic)
    await asyncio.wait_for(tap.subscribed.wait(), 10)
    ingest_settings = IngestSettings(
        database_url=database_url,
        mqtt_url=mqtt_broker.url,
        topic_root=topic_root,
        client_id=f"ingest-{topic_root.replace('/', '-')}",
        api_port=0,
    )
    gateway_settings = GatewaySettings(
        gateway_id="gw-e2e",
        mqtt_url=mqtt_broker.url,
        topic_root=topic_root,
        outbox_path=tmp_path / "outbox.sqlite3",
    )
    async with contextlib.AsyncExitStack() as stack:
        radio = await stack.enter_async_context(VirtualRadio())
        cuffs = {}
        for cuff in (CRISIS_CUFF, NORMAL_CUFF):
            device = await radio.peripheral_device(cuff.name)
            cuffs[cuff.serial_number] = await stack.enter_async_context(
                BloodPressureCuff(device, cuff, features=0x0007)
            )
        central = await stack.enter_async_context(BumbleCentral(await radio.central_device()))
        ingest = await stack.enter_async_context(IngestService(ingest_settings))
        gateway = Gateway(
            gateway_settings, BleBackends(central.scanner_backend, central.client_backend)
        )
        gateway_task = asyncio.create_task(gateway.run(), name="gateway")
        stack.callback(tap.close)
        api = await stack.enter_async_context(
            httpx.AsyncClient(base_url=ingest.api_url, timeout=10, auth=PatientTokenAuth())
        )
        try:
            yield {
                "cuffs": cuffs, "ingest": ingest, "gateway": gateway, "tap": tap, "topic": topic,
                "api": api,
            }  # fmt: skip
        finally:
            gateway_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await gateway_task


async def test_crisis_reading_raises_one_alert_normal_reading_none_and_duplicates_store_once(
    system,
):
    api: httpx.AsyncClient = system["api"]
    crisis = Measurement(MEASURED, 196, 124, 88)
    normal = Measurement(MEASURED + timedelta(minutes=1), 124, 79, 66)

    # A patient measures; the cuff indicates to the gateway over the (virtual) air.
    await system["cuffs"]["E2E-0001"].measure(crisis.encode())
    await system["cuffs"]["E2E-0002"].measure(normal.encode())

    async def readings(patient_id: str):
        response = await api.get(f"/patients/{patient_id}/readings")
        assert response.status_code == 200, response.text
        return response.json()

    [crisis_row] = await eventually(lambda: readings("p-crisis"))
    [normal_row] = await eventually(lambda: readings("p-normal"))
    assert (crisis_row["systolic"], crisis_row["diastolic"], crisis_row["pulse"]) == (196, 124, 88)
    assert datetime.fromisoformat(crisis_row["measured_at"]) == MEASURED
    assert (normal_row["systolic"], normal_row["diastolic"]) == (124, 79)

    # Exactly one alert, for the crisis patient, naming the reading; none for the other.
    alerts = (await api.get("/patients/p-crisis/alerts")).json()
    assert len(alerts) == 1, alerts
    [alert] = alerts
    assert alert["rule_id"] == "bp.hypertensive_crisis"
    assert alert["severity"] == "high" and alert["status"] == "open"
    assert alert["evidence"]["reading_ids"] == [crisis_row["reading_id"]]
    assert alert["occurrences"] == 1
    assert (await api.get("/patients/p-normal/alerts")).json() == []

    # The gateway's own message, published twice more, stores nothing new and changes no alert.
    tap = system["tap"]
    seen = lambda: [r for m in tap.messages for r in ReadingsMessage.from_bytes(m).readings]  # noqa: E731
    await eventually(lambda: len(seen()) >= 2)
    [original] = [m for m in tap.messages if str(crisis_row["reading_id"]) in m.decode()]
    in_message = len(ReadingsMessage.from_bytes(original).readings)  # the gateway may batch both
    stats = system["ingest"].consumer.stats
    before = stats.duplicates
    tap.publish(system["topic"], original)
    tap.publish(system["topic"], original)
    await eventually(lambda: stats.duplicates >= before + 2 * in_message)
    assert stats.duplicates == before + 2 * in_message
    assert len(await readings("p-crisis")) == 1
    [again] = (await api.get("/patients/p-crisis/alerts")).json()
    assert again["occurrences"] == 1 and again["evidence"]["reading_ids"] == [
        crisis_row["reading_id"]
    ]
    assert await system["gateway"].outbox.depth() == 0


async def test_unknown_patient_is_404(system):
    assert (await system["api"].get("/patients/nobody/readings")).status_code == 404


async def test_malformed_measurement_is_kept_aside_and_the_next_one_gets_through(system):
    """A cuff that sends garbage: the gateway counts it, keeps it with its reason (never
    publishes it) and goes on; the valid measurement after it is stored."""
    gateway = system["gateway"]
    cuff = system["cuffs"]["E2E-0002"]
    await cuff.measure(bytes.fromhex("1e780050005d00e807"))  # truncated inside the time stamp
    later = Measurement(MEASURED + timedelta(minutes=30), 131, 84, 70)
    await cuff.measure(later.encode())

    async def stored():
        rows = (await system["api"].get("/patients/p-normal/readings")).json()
        return [r for r in rows if r["systolic"] == 131]

    [row] = await eventually(stored)
    assert row["diastolic"] == 84
    assert gateway.counters.decode_errors == 1
    assert await gateway.outbox.rejected_count() == 1
    assert system["ingest"].consumer.stats.quarantined == 0  # garbage never left the gateway
