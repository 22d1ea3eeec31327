"""The gateway's central on a controller reached over TCP (as a gateway process would reach a
simulator process), and the typed error for a transport that cannot be opened."""

from __future__ import annotations

import asyncio
import socket

import pytest
from bleak import BleakClient, BleakScanner
from bleak.exc import BleakError
from bleak.uuids import normalize_uuid_16

from device_simulators.bp_cuff import BloodPressureCuff
from device_simulators.radio import VirtualRadio
from gateway.bleak_bumble import BumbleCentral, BumbleTransportError
from tests.integration.ble.ble_support import BPM_UUID, BPS_UUID, CUFF_IDENTITY, TEST_TIMEOUT


async def test_central_over_tcp_transport(radio: VirtualRadio, cuff: BloodPressureCuff) -> None:
    received: asyncio.Queue[bytes] = asyncio.Queue()
    async with asyncio.timeout(TEST_TIMEOUT):
        port = await radio.serve_tcp()
        async with BumbleCentral.from_transport(f"tcp-client:127.0.0.1:{port}") as central:
            device = await BleakScanner.find_device_by_filter(
                lambda _d, adv: adv.local_name == CUFF_IDENTITY.name,
                timeout=5.0,
                service_uuids=[BPS_UUID],
                backend=central.scanner_backend,
            )
            assert device is not None
            async with BleakClient(device, timeout=5.0, backend=central.client_backend) as client:
                serial = await client.read_gatt_char(normalize_uuid_16(0x2A25))
                await client.start_notify(BPM_UUID, lambda _c, d: received.put_nowait(bytes(d)))
                assert await cuff.measure(b"\x00over-tcp") is True
                assert await asyncio.wait_for(received.get(), 5.0) == b"\x00over-tcp"
    assert serial.decode() == CUFF_IDENTITY.serial_number


async def test_unreachable_transport_is_a_typed_error() -> None:
    with socket.socket() as probe:  # a port that nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    central = BumbleCentral.from_transport(f"tcp-client:127.0.0.1:{port}", command_timeout=2.0)
    with pytest.raises(BumbleTransportError) as error:
        async with central:
            pass
    assert isinstance(error.value, BleakError)
    assert str(port) in str(error.value)


async def test_a_bad_transport_spec_is_a_typed_error() -> None:
    with pytest.raises(BumbleTransportError):
        async with BumbleCentral.from_transport("no-such-transport:xyz", command_timeout=2.0):
            pass
