"""Pairing, bonds and encrypted links through bleak's public API on the bumble backend, against
simulators that require encryption as real meters do (SPEC.md 5.1). Real bumble link, real SMP
pairing, real link-layer encryption; every wait is bounded."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from decimal import Decimal

import pytest
from bleak import BleakClient, BleakScanner
from bleak.backends.device import BLEDevice
from bleak.exc import BleakError, BleakGATTProtocolError, BleakGATTProtocolErrorCode
from bleak.uuids import normalize_uuid_16
from bumble.pairing import PairingConfig, PairingDelegate

from device_simulators.bp_cuff import BloodPressureCuff
from device_simulators.glucometer import Glucometer, MeterIdentity
from device_simulators.radio import VirtualRadio
from gateway.bleak_bumble import BumbleCentral, BumblePairingError
from gateway.codec.date_time import DateTime
from gateway.codec.glucose import GlucoseMeasurement, GlucoseType, SampleLocation
from gateway.codec.ieee11073 import SFloat
from gateway.codec.racp import RacpRequest
from gateway.glucose_transfer import (
    GLUCOSE_MEASUREMENT_UUID,
    RACP_UUID,
    GlucoseTransferError,
    fetch_records,
)
from tests.integration.ble.ble_support import (
    BATTERY_LEVEL_UUID,
    BPM_UUID,
    BPS_UUID,
    CUFF_BATTERY,
    CUFF_IDENTITY,
    TEST_TIMEOUT,
)

METER_IDENTITY = MeterIdentity(
    name="HW-GL SEC",
    manufacturer="Homewatch Devices",
    model="HW-GLU-200",
    serial_number="SN-GL-SEC1",
    firmware_revision="2.0.1",
)
GLS_UUID = normalize_uuid_16(0x1808)
GLUCOSE_FEATURE_UUID = normalize_uuid_16(0x2A51)
MODEL_NUMBER_UUID = normalize_uuid_16(0x2A24)
CONNECT_TIMEOUT = 5.0
FETCH_TIMEOUT = 5.0
INSUFFICIENT_ENCRYPTION = BleakGATTProtocolErrorCode.INSUFFICIENT_ENCRYPTION


def measurement(minute: int, mg_per_dl: int) -> GlucoseMeasurement:
    return GlucoseMeasurement(
        sequence_number=0,  # the meter assigns it
        base_time=DateTime(2026, 3, 14, 8, minute, 0),
        time_offset=0,
        concentration=SFloat.from_value(Decimal(mg_per_dl) / 100_000, exponent=-5),
        sample_type=GlucoseType.CAPILLARY_PLASMA,
        sample_location=SampleLocation.FINGER,
    )


@pytest.fixture
async def meter(radio: VirtualRadio) -> AsyncIterator[Glucometer]:
    """A meter that requires an encrypted link, with three records."""
    device = await radio.peripheral_device(METER_IDENTITY.name)
    meter = Glucometer(device, METER_IDENTITY, require_encryption=True)
    for i in range(3):
        meter.add_record(measurement(i, 100 + i))
    async with meter:
        yield meter


async def find(central: BumbleCentral, name: str, service: str) -> BLEDevice:
    device = await BleakScanner.find_device_by_filter(
        lambda _d, adv: adv.local_name == name,
        timeout=5.0,
        service_uuids=[service],
        backend=central.scanner_backend,
    )
    assert device is not None, f"{name} was not found within 5 s"
    return device


def client_for(device: BLEDevice, central: BumbleCentral, *, pair: bool) -> BleakClient:
    return BleakClient(device, timeout=CONNECT_TIMEOUT, backend=central.client_backend, pair=pair)


async def central_bonds(central: BumbleCentral) -> list[str]:
    assert central.device.keystore is not None
    return [name for name, _ in await central.device.keystore.get_all()]


async def until_disconnected(meter: Glucometer) -> None:
    while meter.is_connected:
        await asyncio.sleep(0.01)


async def test_an_encrypting_meter_refuses_a_transfer_without_pairing(
    central: BumbleCentral, meter: Glucometer
) -> None:
    async with asyncio.timeout(TEST_TIMEOUT):
        device = await find(central, METER_IDENTITY.name, GLS_UUID)
        async with client_for(device, central, pair=False) as client:
            # Device Information stays open: the gateway identifies a meter before pairing.
            assert await client.read_gatt_char(MODEL_NUMBER_UUID) == b"HW-GLU-200"
            for uuid in (GLUCOSE_MEASUREMENT_UUID, RACP_UUID):
                with pytest.raises(BleakGATTProtocolError) as subscription:
                    await client.start_notify(uuid, lambda _c, _d: None)
                assert subscription.value.code is INSUFFICIENT_ENCRYPTION
            with pytest.raises(GlucoseTransferError, match="Insufficient Encryption") as refused:
                await fetch_records(client, None, timeout=FETCH_TIMEOUT)
            cause = refused.value.__cause__
            assert isinstance(cause, BleakGATTProtocolError)
            assert cause.code is INSUFFICIENT_ENCRYPTION
            with pytest.raises(BleakGATTProtocolError) as racp_write:
                await client.write_gatt_char(
                    RACP_UUID, bytes(RacpRequest.report_all_records()), response=True
                )
            assert racp_write.value.code is INSUFFICIENT_ENCRYPTION
            with pytest.raises(BleakGATTProtocolError) as feature_read:
                await client.read_gatt_char(GLUCOSE_FEATURE_UUID)
            assert feature_read.value.code is INSUFFICIENT_ENCRYPTION
            assert client.is_connected  # refused, not dropped
    assert meter.racp_requests == []  # nothing reached the meter's RACP handler
    assert meter.pairing_count == 0
    assert await central_bonds(central) == []


async def test_pairing_on_connect_makes_the_transfer_work(
    central: BumbleCentral, meter: Glucometer
) -> None:
    async with asyncio.timeout(TEST_TIMEOUT):
        device = await find(central, METER_IDENTITY.name, GLS_UUID)
        async with client_for(device, central, pair=True) as client:
            assert meter.is_encrypted
            records = await fetch_records(client, None, timeout=FETCH_TIMEOUT)
    assert [r.sequence_number for r in records] == [0, 1, 2]
    assert [r.measurement.concentration_mg_per_dl() for r in records] == pytest.approx(
        [100, 101, 102]
    )
    assert meter.pairing_count == 1
    # Both sides keep the bond.
    assert await central_bonds(central) == [meter.address]
    assert len(await meter.bonds()) == 1


async def test_later_connections_reuse_the_bond_without_pairing_again(
    central: BumbleCentral, meter: Glucometer
) -> None:
    async with asyncio.timeout(TEST_TIMEOUT):
        device = await find(central, METER_IDENTITY.name, GLS_UUID)
        async with client_for(device, central, pair=True) as client:
            await fetch_records(client, None, timeout=FETCH_TIMEOUT)
        await until_disconnected(meter)
        meter.add_record(measurement(10, 110))
        async with client_for(device, central, pair=True) as client:
            assert meter.is_encrypted
            again = await fetch_records(client, 3, timeout=FETCH_TIMEOUT)
        await until_disconnected(meter)
        # A bonded device's link is encrypted even without pair=True, as BlueZ does.
        async with client_for(device, central, pair=False) as client:
            assert meter.is_encrypted
            third = await fetch_records(client, 3, timeout=FETCH_TIMEOUT)
    assert [r.sequence_number for r in again] == [3]
    assert [r.sequence_number for r in third] == [3]
    assert meter.pairing_count == 1


async def test_pair_on_an_open_connection_then_subscribe_again(
    central: BumbleCentral, meter: Glucometer
) -> None:
    stale: list[bytes] = []
    measurements: list[bytes] = []
    responses: list[bytes] = []
    async with asyncio.timeout(TEST_TIMEOUT):
        device = await find(central, METER_IDENTITY.name, GLS_UUID)
        async with client_for(device, central, pair=False) as client:
            with pytest.raises(BleakGATTProtocolError) as refused:
                await client.start_notify(RACP_UUID, lambda _c, data: stale.append(bytes(data)))
            assert refused.value.code is INSUFFICIENT_ENCRYPTION
            await client.pair()
            assert meter.is_encrypted and meter.pairing_count == 1
            await client.pair()  # already paired and encrypted: nothing to do
            assert meter.pairing_count == 1
            await client.start_notify(
                GLUCOSE_MEASUREMENT_UUID, lambda _c, data: measurements.append(bytes(data))
            )
            await client.start_notify(RACP_UUID, lambda _c, data: responses.append(bytes(data)))
            await client.write_gatt_char(
                RACP_UUID, bytes(RacpRequest.report_all_records()), response=True
            )
            while not responses:
                await asyncio.sleep(0.01)
            await asyncio.sleep(0.1)  # a duplicate delivery would arrive right behind
    assert [r.hex() for r in responses] == ["06000101"]  # success, delivered once
    assert len(measurements) == 3
    # The subscription refused before pairing left no callback behind.
    assert stale == []


async def test_unpair_forgets_the_keys(central: BumbleCentral, meter: Glucometer) -> None:
    async with asyncio.timeout(TEST_TIMEOUT):
        device = await find(central, METER_IDENTITY.name, GLS_UUID)
        client = client_for(device, central, pair=True)
        await client.connect()
        assert await central_bonds(central) == [meter.address]
        await client.unpair()
        assert not client.is_connected  # bleak: unpairing also disconnects
        assert await central_bonds(central) == []
        await until_disconnected(meter)
        # Without the keys the central's link stays plain: the meter refuses again.
        async with client_for(device, central, pair=False) as client:
            assert not meter.is_encrypted
            with pytest.raises(GlucoseTransferError, match="Insufficient Encryption"):
                await fetch_records(client, None, timeout=FETCH_TIMEOUT)
        await until_disconnected(meter)
        # Pairing again creates a new bond.
        async with client_for(device, central, pair=True) as client:
            records = await fetch_records(client, None, timeout=FETCH_TIMEOUT)
    assert len(records) == 3
    assert meter.pairing_count == 2
    assert await central_bonds(central) == [meter.address]


async def test_a_meter_that_lost_the_bond_is_a_clear_error_until_unpaired(
    central: BumbleCentral, meter: Glucometer
) -> None:
    async with asyncio.timeout(TEST_TIMEOUT):
        device = await find(central, METER_IDENTITY.name, GLS_UUID)
        async with client_for(device, central, pair=True):
            pass
        await until_disconnected(meter)
        await meter.forget_bonds()  # a factory reset: the central still has its keys
        client = client_for(device, central, pair=True)
        with pytest.raises(BumblePairingError, match="no key for this bond") as lost:
            await client.connect()
        assert isinstance(lost.value, BleakError)
        assert lost.value.operation == "encrypting the link"
        assert not client.is_connected
        assert meter.pairing_count == 1  # never re-paired behind the operator's back
        await until_disconnected(meter)
        await client.unpair()  # not connected: the bond is still forgotten
        assert await central_bonds(central) == []
        async with client_for(device, central, pair=True) as client:
            records = await fetch_records(client, None, timeout=FETCH_TIMEOUT)
    assert len(records) == 3
    assert meter.pairing_count == 2


class _Refusing(PairingDelegate):
    async def accept(self) -> bool:
        return False


async def test_a_refused_pairing_is_a_bleak_error(
    central: BumbleCentral, radio: VirtualRadio
) -> None:
    device = await radio.peripheral_device(METER_IDENTITY.name)
    meter = Glucometer(device, METER_IDENTITY, require_encryption=True)
    # A device that does not accept pairing (e.g. not in pairing mode).
    device.pairing_config_factory = lambda _c: PairingConfig(delegate=_Refusing())
    async with meter, asyncio.timeout(TEST_TIMEOUT):
        ble_device = await find(central, METER_IDENTITY.name, GLS_UUID)
        client = client_for(ble_device, central, pair=True)
        with pytest.raises(BumblePairingError, match="refused to pair") as refused:
            await client.connect()
    assert isinstance(refused.value, BleakError)
    assert "PAIRING_NOT_SUPPORTED" in str(refused.value)
    assert not client.is_connected
    assert meter.pairing_count == 0
    assert await central_bonds(central) == []


async def test_an_encrypting_cuff_keeps_its_measurement_until_a_paired_central_subscribes(
    central: BumbleCentral, radio: VirtualRadio
) -> None:
    device = await radio.peripheral_device(CUFF_IDENTITY.name)
    cuff = BloodPressureCuff(
        device, CUFF_IDENTITY, battery_level=CUFF_BATTERY, require_encryption=True
    )
    payload = bytes.fromhex("00780050005d00")  # 120/80 mmHg, MAP 93
    received: list[bytes] = []
    async with cuff, asyncio.timeout(TEST_TIMEOUT):
        assert not await cuff.measure(payload)  # nobody connected: kept
        ble_device = await find(central, CUFF_IDENTITY.name, BPS_UUID)
        async with client_for(ble_device, central, pair=False) as client:
            assert await client.read_gatt_char(BATTERY_LEVEL_UUID) == bytes([CUFF_BATTERY])
            with pytest.raises(BleakGATTProtocolError) as refused:
                await client.start_notify(BPM_UUID, lambda _c, data: received.append(bytes(data)))
            assert refused.value.code is INSUFFICIENT_ENCRYPTION
            await asyncio.sleep(0.1)
            assert cuff.stored_count == 1 and received == []
            await client.pair()
            await client.start_notify(BPM_UUID, lambda _c, data: received.append(bytes(data)))
            while cuff.stored_count:
                await asyncio.sleep(0.01)
    assert received == [payload]
    assert cuff.pairing_count == 1


async def test_pairing_with_a_device_that_does_not_require_it(
    central: BumbleCentral, cuff: BloodPressureCuff
) -> None:
    async with asyncio.timeout(TEST_TIMEOUT):
        device = await find(central, CUFF_IDENTITY.name, BPS_UUID)
        async with client_for(device, central, pair=True) as client:
            assert cuff.is_encrypted
            assert await client.read_gatt_char(BATTERY_LEVEL_UUID) == bytes([CUFF_BATTERY])
    assert not cuff.require_encryption
    assert cuff.pairing_count == 1
