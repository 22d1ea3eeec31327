"""The 16-bit SIG UUIDs homewatch uses, and their 128-bit form (what bleak reports)."""

from __future__ import annotations

import re

# Services
BLOOD_PRESSURE_SERVICE = 0x1810
DEVICE_INFORMATION_SERVICE = 0x180A
BATTERY_SERVICE = 0x180F
CURRENT_TIME_SERVICE = 0x1805
GLUCOSE_SERVICE = 0x1808
HEALTH_THERMOMETER_SERVICE = 0x1809
WEIGHT_SCALE_SERVICE = 0x181D
PULSE_OXIMETER_SERVICE = 0x1822

# Characteristics
BLOOD_PRESSURE_MEASUREMENT = 0x2A35
INTERMEDIATE_CUFF_PRESSURE = 0x2A36
BLOOD_PRESSURE_FEATURE = 0x2A49
DATE_TIME = 0x2A08
CURRENT_TIME = 0x2A2B
MANUFACTURER_NAME = 0x2A29
MODEL_NUMBER = 0x2A24
SERIAL_NUMBER = 0x2A25
FIRMWARE_REVISION = 0x2A26
HARDWARE_REVISION = 0x2A27
SOFTWARE_REVISION = 0x2A28
BATTERY_LEVEL = 0x2A19
TEMPERATURE_MEASUREMENT = 0x2A1C
PLX_SPOT_CHECK_MEASUREMENT = 0x2A5E
WEIGHT_MEASUREMENT = 0x2A9D
GLUCOSE_MEASUREMENT = 0x2A18
GLUCOSE_MEASUREMENT_CONTEXT = 0x2A34
GLUCOSE_FEATURE = 0x2A51
RECORD_ACCESS_CONTROL_POINT = 0x2A52

BASE_UUID_SUFFIX = "-0000-1000-8000-00805f9b34fb"

_UUID16 = re.compile(r"(?:0x)?([0-9a-f]{4})")
_UUID128 = re.compile(r"0000([0-9a-f]{4})" + re.escape(BASE_UUID_SUFFIX))


def uuid128(uuid16: int) -> str:
    """``0x2A35`` -> ``"00002a35-0000-1000-8000-00805f9b34fb"`` (lower case, as bleak gives it)."""
    if not 0 <= uuid16 <= 0xFFFF:
        raise ValueError(f"not a 16-bit UUID: {uuid16!r}")
    return f"0000{uuid16:04x}{BASE_UUID_SUFFIX}"


def parse_uuid16(text: str) -> int | None:
    """The 16-bit UUID in ``"2A35"``, ``"0x2a35"`` or the 128-bit SIG form; None otherwise."""
    text = text.strip().lower()
    match = _UUID16.fullmatch(text) or _UUID128.fullmatch(text)
    return int(match.group(1), 16) if match else None
