"""Shared pieces of the BLE link tests: constants and a second, non-BPS peripheral.

(A plain module, not conftest.py, so that test modules can import it.)
"""

from __future__ import annotations

import struct

from bleak.uuids import normalize_uuid_16
from bumble import gatt
from bumble.core import UUID, AdvertisingData
from bumble.device import Device

from device_simulators.bp_cuff import CuffIdentity

BPS_UUID = normalize_uuid_16(0x1810)
BPM_UUID = normalize_uuid_16(0x2A35)
BATTERY_LEVEL_UUID = normalize_uuid_16(0x2A19)
#: What the non-BPS peripheral advertises (Health Thermometer) ...
OTHER_ADVERTISED_SERVICE = 0x1809
#: ... and the made-up 128-bit GATT service it serves (with a writable echo characteristic).
OTHER_SERVICE_UUID = "9d1c0001-6a4b-4c3e-9a51-7f00c0ffee00"
ECHO_CHAR_UUID = "9d1c0002-6a4b-4c3e-9a51-7f00c0ffee00"
OTHER_COMPANY_ID = 0x0D2A
TEST_TIMEOUT = 20.0

CUFF_IDENTITY = CuffIdentity(
    name="HW-BP 01",
    manufacturer="Homewatch Devices",
    model="HW-BPM-100",
    serial_number="SN-000123",
    firmware_revision="1.4.2",
)
CUFF_FEATURES = 0x0025
CUFF_BATTERY = 87


class OtherPeripheral:
    """A non-BPS peripheral on the same link: advertises another service, manufacturer and
    service data, and has a writable echo characteristic (write / write without response)."""

    def __init__(self, device: Device) -> None:
        self.device = device
        self.writes: list[bytes] = []
        self.echo = gatt.Characteristic(
            UUID(ECHO_CHAR_UUID),
            gatt.Characteristic.Properties.READ
            | gatt.Characteristic.Properties.WRITE
            | gatt.Characteristic.Properties.WRITE_WITHOUT_RESPONSE,
            gatt.Characteristic.READABLE | gatt.Characteristic.WRITEABLE,
            gatt.CharacteristicValue(read=self._read, write=self._write),
        )
        device.add_service(gatt.Service(UUID(OTHER_SERVICE_UUID), [self.echo]))

    def _read(self, _connection: object) -> bytes:
        return self.writes[-1] if self.writes else b""

    def _write(self, _connection: object, value: bytes) -> None:
        self.writes.append(bytes(value))

    async def start(self) -> None:
        # Everything in the advertising data: bumble's virtual controller sends no scan response.
        data = AdvertisingData(
            [
                (AdvertisingData.Type.FLAGS, bytes([0x06])),
                (AdvertisingData.Type.COMPLETE_LOCAL_NAME, b"Thermo 7"),
                (
                    AdvertisingData.Type.COMPLETE_LIST_OF_16_BIT_SERVICE_CLASS_UUIDS,
                    struct.pack("<H", OTHER_ADVERTISED_SERVICE),
                ),
                (
                    AdvertisingData.Type.MANUFACTURER_SPECIFIC_DATA,
                    struct.pack("<H", OTHER_COMPANY_ID) + b"\x01\x02",
                ),
                (
                    AdvertisingData.Type.SERVICE_DATA_16_BIT_UUID,
                    struct.pack("<H", OTHER_ADVERTISED_SERVICE) + b"\x2a",
                ),
            ]
        )
        await self.device.start_advertising(
            advertising_data=bytes(data),
            advertising_interval_min=100.0,
            advertising_interval_max=100.0,
        )
