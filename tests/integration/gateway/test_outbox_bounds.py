"""The bounded outbox: when full it keeps the oldest unsent readings, refuses new ones that the
device can give again (a meter keeps them in its memory and is read again later), stores past
the bound the ones that cannot be given again, and says so loudly. Nothing is dropped."""

from __future__ import annotations

import asyncio
import logging

import pytest

from device_simulators.glucometer import Glucometer
from device_simulators.radio import VirtualRadio
from device_simulators.vendor_quirks import SIMULATED_MANUFACTURER
from gateway.bleak_bumble import BumbleCentral
from gateway.outbox import HighWaterMark, Outbox, OutboxFull
from gateway.status import read_status_file
from homewatch.embedded.broker import Mosquitto
from homewatch.wire import serial_device_key
from tests.integration.gateway.ble_gateway_support import eventually, running_gateway
from tests.integration.gateway.gateway_support import make_reading
from tests.integration.gateway.test_gateway_meter import identity, measurement


async def test_a_full_outbox_refuses_new_readings_whole_and_keeps_the_oldest(tmp_path):
    async with Outbox(tmp_path / "o.sqlite3", max_readings=3) as outbox:
        first = [make_reading(i) for i in range(2)]
        assert await outbox.put_many(first) == first
        assert not outbox.full
        # Below the bound a batch is stored whole, even past it (a meter's mark stays whole).
        batch = [make_reading(2), make_reading(3)]
        assert await outbox.put_many(batch) == batch
        assert outbox.full and outbox.stored_beyond_limit == 0

        with pytest.raises(OutboxFull) as full:
            await outbox.put_many(
                [make_reading(4), make_reading(5)],
                device_key="Acme/GL-1/S1",
                mark=HighWaterMark(5, None),
            )
        assert (full.value.limit, full.value.depth, full.value.refused) == (3, 4, 2)
        # Nothing of the refused batch was stored: not the readings, not the meter's mark.
        assert await outbox.high_water_mark("Acme/GL-1/S1") is None
        assert [q.reading for q in await outbox.oldest(10)] == first + batch
        # A reading already handed over is no new reading: accepted (as a no-op) while full.
        assert await outbox.put_many([first[0]]) == []

        # Readings the device cannot send again are stored past the bound, and counted.
        assert await outbox.put_many([make_reading(6)], beyond_limit=True) == [make_reading(6)]
        assert (await outbox.depth(), outbox.stored_beyond_limit) == (5, 1)

        # Room again: the refused readings were not marked as handed over, so they are taken.
        await outbox.remove([q.seq for q in await outbox.oldest(3)])
        assert not outbox.full
        assert await outbox.put_many([make_reading(4)]) == [make_reading(4)]
    # A restart counts what is on disk.
    async with Outbox(tmp_path / "o.sqlite3", max_readings=3) as outbox:
        assert outbox.queued == 3 and outbox.full


async def test_a_meter_read_while_the_outbox_is_full_keeps_its_records_until_there_is_room(
    tmp_path, topic_root, caplog
):
    """The broker is down and the outbox is full: the meter's new records are refused (its mark
    does not move), the gateway says so loudly (log, status, metric), and once the broker is back
    every record is read again and delivered."""
    caplog.set_level(logging.WARNING)
    broker = Mosquitto()  # not started yet: an outage from the beginning
    meter_key = serial_device_key(SIMULATED_MANUFACTURER, "GL-Sim 1", "GL-0001")
    path = tmp_path / "o.sqlite3"
    async with Outbox(path) as outbox:  # a backlog from before: 3 readings of a cuff
        await outbox.put_many([make_reading(i) for i in range(3)])
    try:
        async with (
            VirtualRadio() as radio,
            Glucometer(await radio.peripheral_device("Meter GL-0001"), identity()) as meter,
            BumbleCentral(await radio.central_device()) as central,
        ):
            for minutes in (50, 40, 30, 20, 10):
                meter.add_record(measurement(minutes, 100 + minutes))
            async with running_gateway(
                central,
                broker.endpoint,
                topic_root,
                path,
                gateway_id="gw-full",
                outbox_max_readings=3,
                status_interval_seconds=0.5,
            ) as gw:
                gateway = gw.gateway
                await eventually(lambda: gateway.counters.refused >= 5)
                assert gateway.outbox is not None
                assert await gateway.outbox.depth() == 3
                assert await gateway.outbox.high_water_mark(meter_key) is None
                assert any("OUTBOX FULL" in r.getMessage() for r in caplog.records)
                assert _metric(gateway.metrics, "homewatch_gateway_outbox_full") == 1
                assert _metric(gateway.metrics, "homewatch_gateway_readings_refused_total") >= 5
                status = await eventually(
                    lambda: (s := _status(gateway)) is not None and s.outbox.refused >= 5 and s
                )
                assert status.outbox.full and status.outbox.depth == 3

                meter.add_record(measurement(5, 180))  # measured while full: kept by the meter
                await asyncio.to_thread(broker.start)
                await eventually(lambda: len({r.sequence_number for r in gw.readings}) == 6, 30)
                await eventually(lambda: gateway.status.published == 9, 30)
                assert await gateway.outbox.depth() == 0
                assert _metric(gateway.metrics, "homewatch_gateway_outbox_full") == 0
    finally:
        broker.close()
    assert sorted(r.sequence_number for r in gw.readings) == list(range(6))  # each once


def _metric(metrics, name: str) -> float:
    for line in metrics.exposition().decode().splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    raise AssertionError(f"{name} not in the metrics")


def _status(gateway):
    try:
        return read_status_file(gateway.status_file)
    except FileNotFoundError:
        return None


async def test_a_cuff_is_not_subscribed_while_the_outbox_is_full(tmp_path, topic_root):
    """A cuff keeps unconfirmed records: with the outbox full the gateway leaves them there
    instead of taking them in past the bound; they come over once there is room."""
    from datetime import UTC, datetime, timedelta

    from device_simulators.bp_cuff import BloodPressureCuff, CuffIdentity
    from device_simulators.patients import Measurement

    broker = Mosquitto()  # an outage from the beginning
    path = tmp_path / "o.sqlite3"
    async with Outbox(path) as outbox:
        await outbox.put_many([make_reading(i) for i in range(3)])
    cuff_identity = CuffIdentity("Cuff FULL-1", SIMULATED_MANUFACTURER, "BP-Sim 1", "FULL-1", "1")
    try:
        async with (
            VirtualRadio() as radio,
            BloodPressureCuff(
                await radio.peripheral_device(cuff_identity.name), cuff_identity
            ) as cuff,
            BumbleCentral(await radio.central_device()) as central,
        ):
            at = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=5)
            await cuff.measure(Measurement(at, 130, 85, 70).encode())
            async with running_gateway(
                central, broker.endpoint, topic_root, path, gateway_id="gw-full-cuff",
                outbox_max_readings=3, meter_rest_seconds=0.5,
            ) as gw:  # fmt: skip
                await asyncio.sleep(2.0)  # several visits: each leaves the record on the cuff
                assert cuff.stored_count == 1 and gw.readings == []
                await asyncio.to_thread(broker.start)
                [reading] = await eventually(lambda: gw.readings, 30)
                assert cuff.stored_count == 0
    finally:
        broker.close()
    assert reading.values.systolic.value == 130
