"""A device clock on the air: the Current Time Service, or a vendor Date Time characteristic.

Most cuffs expose their clock as CTS 0x1805 / Current Time 0x2A2B (Read + Notify, Write
optional); some meters (Roche, SPEC.md 8) put a Date Time 0x2A08 inside their Glucose service
instead. Either way the value is the ``DeviceClock``'s naive local wall time, encoded with the
gateway's own codec (``gateway.codec.date_time``), and a write sets the clock.

Refusals are ATT errors and leave the clock unchanged:

* a value of the wrong length: ATT 0x0D Invalid Attribute Value Length (core ATT);
* a Current Time of the right length that is not a valid time (month 13, "date not known"):
  0x80, the CTS application error "Data field ignored", which CTS servers answer when they
  ignore what was written (Zephyr ``BT_CTS_ATT_ERR_VALUES_IGNORED``, Dialog, Bluetopia);
* such a Date Time: 0xFF Out of Range (Core Specification Supplement common error code: Date
  Time is not CTS, so a vendor clock has no CTS application error to answer);
* a write to a characteristic built with ``writable=False``: ATT 0x03 Write Not Permitted.

Current Time's Notify property and CCCD are there because CTS makes them mandatory; the
simulators do not notify time changes on their own.
"""

from __future__ import annotations

import logging
from typing import NoReturn

from bumble import att, gatt
from bumble.core import UUID
from bumble.device import Connection

from device_simulators.device_clock import DeviceClock
from device_simulators.gatt import write_not_permitted
from gateway.codec.date_time import (
    CURRENT_TIME_SIZE,
    DATE_TIME_SIZE,
    CurrentTime,
    DateTime,
)
from gateway.codec.errors import DecodeError

logger = logging.getLogger(__name__)

CURRENT_TIME_SERVICE = 0x1805
CURRENT_TIME = 0x2A2B
DATE_TIME = 0x2A08
#: CTS application error: the server ignored the written value (or fields of it).
ATT_DATA_FIELD_IGNORED = 0x80


def current_time_service(clock: DeviceClock, *, writable: bool = True) -> gatt.Service:
    """CTS 0x1805 with Current Time 0x2A2B (Read + Notify, + Write when ``writable``)."""
    return gatt.Service(gatt.GATT_CURRENT_TIME_SERVICE, [_current_time(clock, writable)])


def date_time_characteristic(clock: DeviceClock, *, writable: bool = True) -> gatt.Characteristic:
    """A vendor clock: Date Time 0x2A08 (7 bytes, no fractions), Read (+ Write)."""
    properties = gatt.Characteristic.Properties.READ
    permissions = gatt.Characteristic.READABLE
    if writable:
        properties |= gatt.Characteristic.Properties.WRITE
        permissions |= gatt.Characteristic.WRITEABLE

    def read(_connection: Connection) -> bytes:
        return bytes(DateTime.from_datetime(clock.now()))

    def write(_connection: Connection, value: bytes) -> None:
        value = bytes(value)
        if len(value) != DATE_TIME_SIZE:
            _refuse("Date Time", value, att.ErrorCode.INVALID_ATTRIBUTE_LENGTH)
        try:
            local = DateTime.from_bytes(value).to_datetime()
        except DecodeError:
            local = None
        if local is None:
            _refuse("Date Time", value, att.ErrorCode.OUT_OF_RANGE)
        clock.set(local)

    return gatt.Characteristic(
        UUID.from_16_bits(DATE_TIME, "Date Time"),
        properties,
        permissions,
        gatt.CharacteristicValue(read=read, write=write if writable else write_not_permitted),
    )


def _current_time(clock: DeviceClock, writable: bool) -> gatt.Characteristic:
    properties = gatt.Characteristic.Properties.READ | gatt.Characteristic.Properties.NOTIFY
    permissions = gatt.Characteristic.READABLE
    if writable:
        properties |= gatt.Characteristic.Properties.WRITE
        permissions |= gatt.Characteristic.WRITEABLE

    def read(_connection: Connection) -> bytes:
        return bytes(CurrentTime.from_datetime(clock.now()))

    def write(_connection: Connection, value: bytes) -> None:
        value = bytes(value)
        if len(value) != CURRENT_TIME_SIZE:
            _refuse("Current Time", value, att.ErrorCode.INVALID_ATTRIBUTE_LENGTH)
        try:
            local = CurrentTime.from_bytes(value).to_datetime()
        except DecodeError:
            local = None
        if local is None:
            _refuse("Current Time", value, ATT_DATA_FIELD_IGNORED)
        clock.set(local)

    return gatt.Characteristic(
        gatt.GATT_CURRENT_TIME_CHARACTERISTIC,
        properties,
        permissions,
        gatt.CharacteristicValue(read=read, write=write if writable else write_not_permitted),
    )


def _refuse(name: str, value: bytes, error_code: int) -> NoReturn:
    logger.info(
        "%s write refused (ATT error 0x%02X): %s", name, error_code, value.hex() or "<empty>"
    )
    raise att.ATT_Error(error_code)
