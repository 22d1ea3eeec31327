"""bleak scanner backend over a :class:`~gateway.bleak_bumble.central.BumbleCentral`."""

from __future__ import annotations

import logging
import uuid
from typing import Any, ClassVar, Literal

from bleak.backends.scanner import AdvertisementData, AdvertisementDataCallback, BaseBleakScanner
from bumble.core import UUID, AdvertisingData
from bumble.device import Advertisement

from gateway.bleak_bumble.central import BumbleCentral, BumbleDeviceDetails, address_key
from gateway.bleak_bumble.errors import BumbleBackendError

logger = logging.getLogger(__name__)

_SERVICE_UUID_LISTS = (
    AdvertisingData.Type.COMPLETE_LIST_OF_16_BIT_SERVICE_CLASS_UUIDS,
    AdvertisingData.Type.INCOMPLETE_LIST_OF_16_BIT_SERVICE_CLASS_UUIDS,
    AdvertisingData.Type.COMPLETE_LIST_OF_32_BIT_SERVICE_CLASS_UUIDS,
    AdvertisingData.Type.INCOMPLETE_LIST_OF_32_BIT_SERVICE_CLASS_UUIDS,
    AdvertisingData.Type.COMPLETE_LIST_OF_128_BIT_SERVICE_CLASS_UUIDS,
    AdvertisingData.Type.INCOMPLETE_LIST_OF_128_BIT_SERVICE_CLASS_UUIDS,
)
_SERVICE_DATA = (
    AdvertisingData.Type.SERVICE_DATA_16_BIT_UUID,
    AdvertisingData.Type.SERVICE_DATA_32_BIT_UUID,
    AdvertisingData.Type.SERVICE_DATA_128_BIT_UUID,
)
_NOT_AVAILABLE_RSSI = -127


def bleak_uuid(value: UUID) -> str:
    """A bumble UUID as bleak writes UUIDs: 128-bit, lower case, with dashes."""
    return str(uuid.UUID(bytes=value.to_bytes(force_128=True)[::-1]))


def advertisement_data(advertisement: Advertisement) -> AdvertisementData:
    """bleak's view of one (merged, for active scanning) bumble advertisement."""
    data = advertisement.data
    local_name = data.get(AdvertisingData.Type.COMPLETE_LOCAL_NAME) or data.get(
        AdvertisingData.Type.SHORTENED_LOCAL_NAME
    )
    service_uuids: list[str] = []
    for ad_type in _SERVICE_UUID_LISTS:
        for uuids in data.get_all(ad_type):
            service_uuids.extend(bleak_uuid(u) for u in uuids)  # type: ignore[union-attr]
    service_data: dict[str, bytes] = {}
    for ad_type in _SERVICE_DATA:
        for service_uuid, payload in data.get_all(ad_type):  # type: ignore[misc]
            service_data[bleak_uuid(service_uuid)] = bytes(payload)
    manufacturer_data: dict[int, bytes] = {}
    for company_id, payload in data.get_all(AdvertisingData.Type.MANUFACTURER_SPECIFIC_DATA):  # type: ignore[misc]
        manufacturer_data[company_id] = bytes(payload)
    tx_power = data.get(AdvertisingData.Type.TX_POWER_LEVEL)
    rssi = advertisement.rssi
    return AdvertisementData(
        local_name=local_name if isinstance(local_name, str) else None,
        manufacturer_data=manufacturer_data,
        service_data=service_data,
        service_uuids=list(dict.fromkeys(service_uuids)),
        tx_power=tx_power if isinstance(tx_power, int) else None,
        rssi=rssi if rssi != Advertisement.RSSI_NOT_AVAILABLE else _NOT_AVAILABLE_RSSI,
        platform_data=(advertisement,),
    )


def _check_filter_uuid(value: str) -> None:
    # bleak compares the filter verbatim with the advertised 128-bit UUIDs (BlueZ does too), so
    # a 16-bit "1810" would silently match nothing: refuse it with a clear message instead.
    try:
        uuid.UUID(value)
    except ValueError as exc:
        raise BumbleBackendError(
            f"service_uuids filter {value!r} is not a full 128-bit UUID; use "
            "bleak.uuids.normalize_uuid_str() (bleak compares filter UUIDs verbatim)"
        ) from exc


class BumbleScanner(BaseBleakScanner):
    """``BaseBleakScanner`` on a bumble central. Use ``central.scanner_backend``, not this class."""

    central: ClassVar[BumbleCentral]

    def __init__(
        self,
        detection_callback: AdvertisementDataCallback | None,
        service_uuids: list[str] | None,
        scanning_mode: Literal["active", "passive"] = "active",
        **kwargs: Any,  # bleak passes platform-specific args (bluez=, cb=): not ours
    ) -> None:
        super().__init__(detection_callback, service_uuids)
        for value in self._service_uuids or ():
            _check_filter_uuid(value)
        # The bumble central always scans actively; passive mode only changes the radio duty.
        self._scanning_mode = scanning_mode
        self._running = False

    async def start(self) -> None:
        self.seen_devices = {}
        await self.central.add_scan_listener(self._on_advertisement)
        self._running = True

    async def stop(self) -> None:
        if self._running:
            self._running = False
            await self.central.remove_scan_listener(self._on_advertisement)

    def _on_advertisement(self, advertisement: Advertisement) -> None:
        adv = advertisement_data(advertisement)
        if not self.is_allowed_uuid(adv.service_uuids):
            return
        address = address_key(advertisement.address)
        # Like BlueZ, keep the last known name when an advertisement comes without one.
        previous = self.seen_devices.get(address)
        name = adv.local_name or (previous[0].name if previous else None)
        device = self.create_or_update_device(
            address,
            address,
            name,
            BumbleDeviceDetails(address=advertisement.address),
            adv,
        )
        self.call_detection_callbacks(device, adv)
