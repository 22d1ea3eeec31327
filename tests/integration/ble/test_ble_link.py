"""The gateway side of the BLE link, through bleak's public API only, against a real bumble
GATT server (the cuff simulator) on a virtual radio."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest
from bleak import BleakClient, BleakScanner
from bleak.backends.device import BLEDevice
from bleak.backends.scanner import AdvertisementData
from bleak.exc import BleakCharacteristicNotFoundError, BleakError, BleakGATTProtocolError
from bleak.uuids import normalize_uuid_16

from device_simulators.bp_cuff import BloodPressureCuff
from gateway.bleak_bumble import BumbleCentral
from tests.integration.ble.ble_support import (
    BATTERY_LEVEL_UUID,
    BPM_UUID,
    BPS_UUID,
    CUFF_BATTERY,
    CUFF_FEATURES,
    CUFF_IDENTITY,
    ECHO_CHAR_UUID,
    OTHER_ADVERTISED_SERVICE,
    OTHER_COMPANY_ID,
    TEST_TIMEOUT,
    OtherPeripheral,
)

SCAN_WINDOW = 1.0
CONNECT_TIMEOUT = 5.0


async def find_cuff(central: BumbleCentral) -> BLEDevice:
    device = await BleakScanner.find_device_by_filter(
        lambda _d, adv: adv.local_name == CUFF_IDENTITY.name,
        timeout=5.0,
        service_uuids=[BPS_UUID],
        backend=central.scanner_backend,
    )
    assert device is not None, "the cuff was not found within 5 s"
    return device


async def wait_until(predicate: Callable[[], bool], within: float = 5.0) -> None:
    for _ in range(int(within / 0.01)):
        if predicate():
            return
        await asyncio.sleep(0.01)
    raise TimeoutError(f"condition not met within {within} s")


class Inbox:
    """Collects notification payloads; waits for a count with a timeout."""

    def __init__(self) -> None:
        self.values: list[bytes] = []
        self._changed = asyncio.Event()

    def __call__(self, _characteristic: object, data: bytearray) -> None:
        assert isinstance(data, bytearray)
        self.values.append(bytes(data))
        self._changed.set()

    async def wait_for(self, count: int, within: float = 5.0) -> list[bytes]:
        async with asyncio.timeout(within):
            while len(self.values) < count:
                self._changed.clear()
                await self._changed.wait()
        return self.values


async def test_scan_with_service_filter_finds_the_cuff_only(
    central: BumbleCentral, cuff: BloodPressureCuff, other: OtherPeripheral
) -> None:
    async with asyncio.timeout(TEST_TIMEOUT):
        everything = await BleakScanner.discover(
            SCAN_WINDOW, return_adv=True, backend=central.scanner_backend
        )
        filtered = await BleakScanner.discover(
            SCAN_WINDOW, return_adv=True, service_uuids=[BPS_UUID], backend=central.scanner_backend
        )
    other_address = other.device.random_address.to_string(with_type_qualifier=False)
    # Both advertise on the link; only the cuff passes the 0x1810 filter.
    assert {cuff.address, other_address} <= set(everything)
    assert set(filtered) == {cuff.address}

    device, adv = filtered[cuff.address]
    assert device.name == CUFF_IDENTITY.name
    assert adv.local_name == CUFF_IDENTITY.name
    assert adv.service_uuids == [BPS_UUID]
    assert isinstance(adv.rssi, int)

    _, other_adv = everything[other_address]
    assert other_adv.local_name == "Thermo 7"
    assert other_adv.manufacturer_data == {OTHER_COMPANY_ID: b"\x01\x02"}
    assert other_adv.service_data == {normalize_uuid_16(OTHER_ADVERTISED_SERVICE): b"\x2a"}
    assert other_adv.service_uuids == [normalize_uuid_16(OTHER_ADVERTISED_SERVICE)]


async def test_detection_callback_gets_bleak_advertisement_data(
    central: BumbleCentral, cuff: BloodPressureCuff
) -> None:
    seen: asyncio.Queue[tuple[BLEDevice, AdvertisementData]] = asyncio.Queue()
    async with asyncio.timeout(TEST_TIMEOUT):
        async with BleakScanner(
            lambda d, a: seen.put_nowait((d, a)),
            service_uuids=[BPS_UUID],
            backend=central.scanner_backend,
        ):
            device, adv = await asyncio.wait_for(seen.get(), 5.0)
    assert device.address == cuff.address
    assert BPS_UUID in adv.service_uuids


async def test_connect_reads_device_information_and_features(
    central: BumbleCentral, cuff: BloodPressureCuff
) -> None:
    async with asyncio.timeout(TEST_TIMEOUT):
        device = await find_cuff(central)
        async with BleakClient(
            device, timeout=CONNECT_TIMEOUT, backend=central.client_backend
        ) as client:
            assert client.is_connected
            assert client.mtu_size == 247
            strings = {
                uuid: (await client.read_gatt_char(normalize_uuid_16(uuid))).decode()
                for uuid in (0x2A29, 0x2A24, 0x2A25, 0x2A26)
            }
            feature = await client.read_gatt_char(normalize_uuid_16(0x2A49))
            battery = await client.read_gatt_char(BATTERY_LEVEL_UUID)
            bps = client.services.get_service(BPS_UUID)
            assert bps is not None
            bpm = bps.get_characteristic(BPM_UUID)
            assert bpm is not None and bpm.properties == ["indicate"]
        assert not client.is_connected
    assert strings == {
        0x2A29: CUFF_IDENTITY.manufacturer,
        0x2A24: CUFF_IDENTITY.model,
        0x2A25: CUFF_IDENTITY.serial_number,
        0x2A26: CUFF_IDENTITY.firmware_revision,
    }
    assert int.from_bytes(feature, "little") == CUFF_FEATURES
    assert list(battery) == [CUFF_BATTERY]


async def test_indications_arrive_in_order_and_are_confirmed(
    central: BumbleCentral, cuff: BloodPressureCuff
) -> None:
    inbox = Inbox()
    payloads = [bytes([0x00, i, 0x00, 0x50, 0x00, 0x60, 0x00]) for i in range(5)]
    async with asyncio.timeout(TEST_TIMEOUT):
        async with BleakClient(
            await find_cuff(central), timeout=CONNECT_TIMEOUT, backend=central.client_backend
        ) as client:
            await client.start_notify(BPM_UUID, inbox)
            confirmed = [await cuff.measure(p) for p in payloads]
            assert await inbox.wait_for(len(payloads)) == payloads
    assert confirmed == [True] * len(payloads)
    assert cuff.stored_count == 0


async def test_stored_measurements_are_delivered_after_subscribing(
    central: BumbleCentral, cuff: BloodPressureCuff
) -> None:
    inbox = Inbox()
    async with asyncio.timeout(TEST_TIMEOUT):
        assert await cuff.measure(b"\x00stored-1") is False
        assert await cuff.measure(b"\x00stored-2") is False
        assert cuff.stored_count == 2
        async with BleakClient(
            await find_cuff(central), timeout=CONNECT_TIMEOUT, backend=central.client_backend
        ) as client:
            # Connected but not subscribed: the cuff keeps its memory.
            assert await cuff.measure(b"\x00stored-3") is False
            await client.start_notify(BPM_UUID, inbox)
            assert await inbox.wait_for(3) == [b"\x00stored-1", b"\x00stored-2", b"\x00stored-3"]
            assert await cuff.measure(b"\x00live") is True
            assert await inbox.wait_for(4) == [
                b"\x00stored-1",
                b"\x00stored-2",
                b"\x00stored-3",
                b"\x00live",
            ]
    assert cuff.stored_count == 0


async def test_stop_notify_leaves_new_measurements_stored(
    central: BumbleCentral, cuff: BloodPressureCuff
) -> None:
    inbox = Inbox()
    async with asyncio.timeout(TEST_TIMEOUT):
        async with BleakClient(
            await find_cuff(central), timeout=CONNECT_TIMEOUT, backend=central.client_backend
        ) as client:
            await client.start_notify(BPM_UUID, inbox)
            assert await cuff.measure(b"\x00one") is True
            await client.stop_notify(BPM_UUID)
            assert await cuff.measure(b"\x00two") is False
    assert inbox.values == [b"\x00one"]
    assert cuff.stored_count == 1


async def test_async_callback_and_notifications(
    central: BumbleCentral, cuff: BloodPressureCuff
) -> None:
    levels: asyncio.Queue[bytes] = asyncio.Queue()

    async def on_battery(_characteristic: object, data: bytearray) -> None:
        await levels.put(bytes(data))

    async with asyncio.timeout(TEST_TIMEOUT):
        async with BleakClient(
            await find_cuff(central), timeout=CONNECT_TIMEOUT, backend=central.client_backend
        ) as client:
            await client.start_notify(BATTERY_LEVEL_UUID, on_battery)
            await cuff.set_battery_level(42)
            assert await asyncio.wait_for(levels.get(), 5.0) == bytes([42])
            assert list(await client.read_gatt_char(BATTERY_LEVEL_UUID)) == [42]


async def test_cuff_disconnect_fires_callback_and_reconnect_works(
    central: BumbleCentral, cuff: BloodPressureCuff
) -> None:
    disconnected: asyncio.Queue[BleakClient] = asyncio.Queue()
    inbox = Inbox()
    async with asyncio.timeout(TEST_TIMEOUT):
        device = await find_cuff(central)
        client = BleakClient(
            device,
            disconnected_callback=disconnected.put_nowait,
            timeout=CONNECT_TIMEOUT,
            backend=central.client_backend,
        )
        await client.connect()
        await client.start_notify(BPM_UUID, inbox)
        await cuff.disconnect()
        assert await asyncio.wait_for(disconnected.get(), 5.0) is client
        assert not client.is_connected
        with pytest.raises(BleakError):
            await client.read_gatt_char(normalize_uuid_16(0x2A29))

        # Measured while nobody is connected: delivered on the next subscription.
        assert await cuff.measure(b"\x00while-away") is False
        device = await find_cuff(central)  # the cuff advertises again
        await client.connect()
        try:
            assert client.is_connected
            await client.start_notify(BPM_UUID, inbox)
            assert await inbox.wait_for(1) == [b"\x00while-away"]
            # The confirmation travels after the callback ran: wait for the cuff to get it
            # before hanging up, or the cuff keeps (and later re-sends) the record.
            await wait_until(lambda: cuff.stored_count == 0)
        finally:
            await client.disconnect()
        # A disconnect asked by the gateway fires the callback too (as on BlueZ).
        assert await asyncio.wait_for(disconnected.get(), 5.0) is client
    assert cuff.stored_count == 0


async def test_link_drop_during_an_indication_loses_nothing(
    central: BumbleCentral, cuff: BloodPressureCuff
) -> None:
    inbox = Inbox()
    async with asyncio.timeout(TEST_TIMEOUT):
        async with BleakClient(
            await find_cuff(central), timeout=CONNECT_TIMEOUT, backend=central.client_backend
        ) as client:
            await client.start_notify(BPM_UUID, inbox)
            in_flight = asyncio.create_task(cuff.measure(b"\x00in-flight"))
            await asyncio.sleep(0)  # the indication is on its way
            await cuff.disconnect()
            # Confirmed or not, measure() ends at once (not after bumble's 30 s ATT timeout).
            confirmed = await asyncio.wait_for(in_flight, 2.0)
        assert cuff.stored_count == (0 if confirmed else 1)
        if not confirmed:  # kept in memory: delivered again on the next subscription
            async with BleakClient(
                await find_cuff(central), timeout=CONNECT_TIMEOUT, backend=central.client_backend
            ) as client:
                await client.start_notify(BPM_UUID, inbox)
                await wait_until(lambda: cuff.stored_count == 0)
    assert inbox.values[-1] == b"\x00in-flight"


async def test_connect_by_address_string(central: BumbleCentral, cuff: BloodPressureCuff) -> None:
    async with asyncio.timeout(TEST_TIMEOUT):
        async with BleakClient(
            cuff.address, timeout=CONNECT_TIMEOUT, backend=central.client_backend
        ) as client:
            assert (await client.read_gatt_char(normalize_uuid_16(0x2A25))).decode() == (
                CUFF_IDENTITY.serial_number
            )


async def test_writes_with_and_without_response(
    central: BumbleCentral, other: OtherPeripheral
) -> None:
    address = other.device.random_address.to_string(with_type_qualifier=False)
    async with asyncio.timeout(TEST_TIMEOUT):
        async with BleakClient(
            address, timeout=CONNECT_TIMEOUT, backend=central.client_backend
        ) as client:
            await client.write_gatt_char(ECHO_CHAR_UUID, b"with", response=True)
            await client.write_gatt_char(ECHO_CHAR_UUID, bytearray(b"without"), response=False)
            # A read is answered after the earlier write command was handled (ATT is ordered).
            assert await client.read_gatt_char(ECHO_CHAR_UUID) == bytearray(b"without")
    assert other.writes == [b"with", b"without"]


async def test_errors_are_bleak_errors(central: BumbleCentral, cuff: BloodPressureCuff) -> None:
    async with asyncio.timeout(TEST_TIMEOUT):
        async with BleakClient(
            await find_cuff(central), timeout=CONNECT_TIMEOUT, backend=central.client_backend
        ) as client:
            with pytest.raises(BleakCharacteristicNotFoundError):
                await client.read_gatt_char(normalize_uuid_16(0x2A18))  # glucose: not here
            with pytest.raises(BleakGATTProtocolError) as read_error:
                await client.read_gatt_char(BPM_UUID)  # indicate-only
            assert read_error.value.code == 0x02  # Read Not Permitted
            with pytest.raises(BleakError, match="notify nor indicate"):
                await client.start_notify(normalize_uuid_16(0x2A29), lambda _c, _d: None)


async def test_a_16_bit_filter_uuid_is_refused(central: BumbleCentral) -> None:
    with pytest.raises(BleakError, match="128-bit"):
        BleakScanner(service_uuids=["1810"], backend=central.scanner_backend)


async def test_unknown_address_is_not_found(central: BumbleCentral) -> None:
    async with asyncio.timeout(TEST_TIMEOUT):
        client = BleakClient("C0:00:00:00:0B:AD", timeout=1.0, backend=central.client_backend)
        with pytest.raises(BleakError, match="not found"):
            await client.connect()
