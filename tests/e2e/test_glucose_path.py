"""Glucose on the whole path: simulated meter (RACP, a drifted clock) → bumble link → bleak →
gateway (transfer, high-water mark, outbox) → Mosquitto → ingest → PostgreSQL → REST API."""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import httpx
import psycopg
import pytest

from device_simulators.device_clock import DeviceClock
from device_simulators.glucometer import Glucometer, MeterIdentity
from device_simulators.radio import VirtualRadio
from gateway.bleak_bumble import BumbleCentral
from gateway.codec.date_time import DateTime
from gateway.codec.glucose import GlucoseMeasurement, GlucoseType, SampleLocation
from gateway.codec.glucose_context import GlucoseMeasurementContext, Meal
from gateway.codec.ieee11073 import SFloat
from homewatch.wire import serial_device_key
from ingest_server import store
from ingest_server.service import IngestService
from ingest_server.settings import IngestSettings
from tests.integration.gateway.ble_gateway_support import eventually, running_gateway
from tests.integration.ingest.ingest_support import PatientTokenAuth, dev_auth  # noqa: F401

# The API needs a bearer token: this test's own signing key (dev_auth) and a patient token per
# /patients/{id}/ request (PatientTokenAuth).
pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("dev_auth")]

METER = MeterIdentity("GL e2e 1", "Acme", "GL-1", "E2E-GL-1", "2.0")
OFFSET = timedelta(minutes=-47)  # the meter's clock runs 47 minutes behind


def record(stamped: datetime, mg_per_dl: int, kind=GlucoseType.CAPILLARY_PLASMA):
    control = kind is GlucoseType.CONTROL_SOLUTION
    return GlucoseMeasurement(
        sequence_number=0,
        base_time=DateTime.from_datetime(stamped),
        time_offset=0,
        concentration=SFloat.from_value(Decimal(mg_per_dl) / 100_000, exponent=-5),
        sample_type=kind,
        sample_location=SampleLocation.CONTROL_SOLUTION if control else SampleLocation.FINGER,
    )


async def test_meter_records_reach_the_clinician_api_once_with_corrected_times(
    database_url, mqtt_broker, topic_root, tmp_path
):
    clock = DeviceClock(offset=OFFSET)
    now_on_meter = clock.now().replace(microsecond=0)
    async with await psycopg.AsyncConnection.connect(database_url) as conn:
        await store.create_patient(conn, "p-gluc", "p-gluc")
        key = serial_device_key(METER.manufacturer, METER.model, METER.serial_number)
        await store.bind_device(conn, key, "p-gluc", datetime.now(UTC) - timedelta(days=2))

    ingest_settings = IngestSettings(
        database_url=database_url,
        mqtt_url=mqtt_broker.url,
        topic_root=topic_root,
        client_id=f"ingest-{topic_root.replace('/', '-')}-gl",
        api_port=0,
    )
    async with contextlib.AsyncExitStack() as stack:
        radio = await stack.enter_async_context(VirtualRadio())
        meter = await stack.enter_async_context(
            Glucometer(await radio.peripheral_device(METER.name), METER, clock=clock)
        )
        meter.add_record(record(now_on_meter - timedelta(hours=3), 98))
        meter.add_record(
            record(now_on_meter - timedelta(hours=1), 182),
            GlucoseMeasurementContext(sequence_number=0, meal=Meal.POSTPRANDIAL),
        )
        meter.add_record(
            record(now_on_meter - timedelta(minutes=30), 110, GlucoseType.CONTROL_SOLUTION)
        )
        central = await stack.enter_async_context(BumbleCentral(await radio.central_device()))
        ingest = await stack.enter_async_context(IngestService(ingest_settings))
        api = await stack.enter_async_context(
            httpx.AsyncClient(base_url=ingest.api_url, timeout=10, auth=PatientTokenAuth())
        )
        gw = await stack.enter_async_context(
            running_gateway(central, mqtt_broker, topic_root, tmp_path / "o.db", gateway_id="gw-gl")
        )

        async def rows():
            response = await api.get("/patients/p-gluc/readings/glucose")
            assert response.status_code == 200, response.text
            return response.json()

        stored = await eventually(lambda: _when(rows, lambda r: len(r) == 3))
        # The meter is read again after its rest: the mark holds, nothing is stored twice.
        meter.add_record(record(clock.now().replace(microsecond=0), 101))
        stored = await eventually(lambda: _when(rows, lambda r: len(r) == 4))
        assert gw.gateway.counters.queued == 4

    by_value = {round(r["mg_per_dl"]): r for r in stored}
    fasting = by_value[98]
    true_time = (now_on_meter - timedelta(hours=3) - OFFSET).replace(tzinfo=UTC)
    assert abs(datetime.fromisoformat(fasting["measured_at"]) - true_time) < timedelta(seconds=10)
    assert fasting["time_source"] == "device_corrected"
    assert fasting["mmol_per_l"] == pytest.approx(98 / 18.016, rel=1e-4)
    assert by_value[182]["context"]["meal"] == "postprandial"
    assert by_value[110]["control_solution"] is True
    assert clock.writes  # the gateway set the meter's clock after the transfer


async def _when(fetch, predicate):
    value = await fetch()
    return value if predicate(value) else None
