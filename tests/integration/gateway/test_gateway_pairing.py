"""The gateway and meters that require an encrypted link (SPEC.md 5.1): with ``pair_devices`` it
pairs once, reads, and reuses the bond at every later visit; without, such a meter gives it
nothing while the others are read as usual. Real parts: bumble simulators, SMP pairing and
link encryption on the bumble link, bleak through the bumble backend, the outbox, Mosquitto."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from device_simulators.glucometer import Glucometer, MeterIdentity
from device_simulators.vendor_quirks import SIMULATED_MANUFACTURER
from gateway.codec.date_time import DateTime
from gateway.codec.glucose import GlucoseMeasurement, GlucoseType, SampleLocation
from gateway.codec.ieee11073 import SFloat
from tests.integration.gateway.ble_gateway_support import eventually, running_gateway

NOW = datetime.now(UTC).replace(second=0, microsecond=0)


def identity(serial: str) -> MeterIdentity:
    return MeterIdentity(f"Meter {serial}", SIMULATED_MANUFACTURER, "GL-Sim 1", serial, "1.0")


def measurement(minutes_ago: int, mg_per_dl: int) -> GlucoseMeasurement:
    at = (NOW - timedelta(minutes=minutes_ago)).replace(tzinfo=None)
    return GlucoseMeasurement(
        sequence_number=0,  # the meter assigns it
        base_time=DateTime.from_datetime(at),
        time_offset=0,
        concentration=SFloat.from_value(Decimal(mg_per_dl) / 100_000, exponent=-5),
        sample_type=GlucoseType.CAPILLARY_PLASMA,
        sample_location=SampleLocation.FINGER,
    )


@pytest.fixture
def start_meter(start_simulator):
    async def start(identity: MeterIdentity, **options) -> Glucometer:
        return await start_simulator(Glucometer, identity, **options)

    return start


async def test_a_pairing_gateway_reads_an_encrypting_meter_and_reuses_the_bond(
    start_meter, central, mqtt_broker, topic_root, tmp_path
):
    meter = await start_meter(identity("GL-SEC-1"), require_encryption=True)
    for i in range(3):
        meter.add_record(measurement(30 - i, 100 + i))
    async with running_gateway(
        central, mqtt_broker, topic_root, tmp_path / "o.db", pair_devices=True
    ) as gw:
        await eventually(lambda: len(gw.readings) == 3)
        assert meter.pairing_count == 1
        # Later visits (after the meter's rest) encrypt with the bond: no new pairing.
        meter.add_record(measurement(1, 130))
        await eventually(lambda: len(gw.readings) == 4)
        visits = len(meter.racp_requests)
        await eventually(lambda: len(meter.racp_requests) > visits + 1)
    assert sorted(r.sequence_number for r in gw.readings) == [0, 1, 2, 3]
    assert [r.values.mg_per_dl.value for r in gw.readings] == pytest.approx([100, 101, 102, 130])
    assert meter.pairing_count == 1
    assert len(await meter.bonds()) == 1


async def test_without_pairing_an_encrypting_meter_gives_nothing_and_the_gateway_goes_on(
    start_meter, central, mqtt_broker, topic_root, tmp_path, caplog
):
    caplog.set_level(logging.WARNING)
    secure = await start_meter(identity("GL-SEC-2"), require_encryption=True)
    plain = await start_meter(identity("GL-PLAIN"))
    secure.add_record(measurement(20, 150))
    plain.add_record(measurement(20, 90))

    def refusals() -> int:
        return sum(
            "GL-SEC-2" in r.getMessage() and "Insufficient Encryption" in r.getMessage()
            for r in caplog.records
        )

    async with running_gateway(
        central, mqtt_broker, topic_root, tmp_path / "o.db", pair_devices=False
    ) as gw:
        await eventually(lambda: len(gw.readings) == 1)
        # The encrypting meter refuses each visit, with the ATT error in the log; it is
        # visited again after its rest, and the gateway keeps serving the other meter.
        await eventually(lambda: refusals() >= 2)
        plain.add_record(measurement(1, 95))
        await eventually(lambda: len(gw.readings) == 2)
    assert [r.device.serial_number for r in gw.readings] == ["GL-PLAIN", "GL-PLAIN"]
    assert secure.racp_requests == []  # nothing got through to its RACP
    assert secure.pairing_count == 0
    assert await secure.bonds() == []
