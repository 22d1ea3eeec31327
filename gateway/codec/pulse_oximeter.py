"""Pulse Oximeter Service payload (SPEC.md 6.2): PLX Spot-Check Measurement 0x2A5E.

SpO2, PR and the Pulse Amplitude Index are SFLOATs kept as sent (specials included; the
normalisers give None for them). Both status fields are ``IntFlag``s that keep RFU bits in place;
Device and Sensor Status is **24 bits** on the wire. RFU flag bits and trailing bytes are kept.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime
from typing import Any, ClassVar, Self

from ._reader import Reader, pack_uint
from .date_time import DateTime
from .errors import EncodeError
from .ieee11073 import SFloat
from .jsonable import to_jsonable

__all__ = [
    "RESERVED_FLAGS_MASK",
    "PlxDeviceAndSensorStatus",
    "PlxMeasurementStatus",
    "PlxSpotCheckFlags",
    "PlxSpotCheckMeasurement",
]


class PlxSpotCheckFlags(enum.IntFlag):
    """The flags octet of 0x2A5E; bits 5..7 are RFU (``RESERVED_FLAGS_MASK``)."""

    TIME_STAMP = 0x01
    MEASUREMENT_STATUS = 0x02
    DEVICE_AND_SENSOR_STATUS = 0x04
    PULSE_AMPLITUDE_INDEX = 0x08
    DEVICE_CLOCK_NOT_SET = 0x10


RESERVED_FLAGS_MASK = 0xE0


class PlxMeasurementStatus(enum.IntFlag):
    """Measurement Status (16 bits); bits 0..4 are RFU (``RESERVED_MASK``), kept in the value."""

    NONE = 0
    MEASUREMENT_ONGOING = 1 << 5
    EARLY_ESTIMATED_DATA = 1 << 6
    VALIDATED_DATA = 1 << 7
    FULLY_QUALIFIED_DATA = 1 << 8
    DATA_FROM_MEASUREMENT_STORAGE = 1 << 9
    DATA_FOR_DEMONSTRATION = 1 << 10
    DATA_FOR_TESTING = 1 << 11
    CALIBRATION_ONGOING = 1 << 12
    MEASUREMENT_UNAVAILABLE = 1 << 13
    QUESTIONABLE_MEASUREMENT_DETECTED = 1 << 14
    INVALID_MEASUREMENT_DETECTED = 1 << 15


class PlxDeviceAndSensorStatus(enum.IntFlag):
    """Device and Sensor Status (24 bits); bits 16..23 are RFU (``RESERVED_MASK``), kept."""

    NONE = 0
    EXTENDED_DISPLAY_UPDATE_ONGOING = 1 << 0
    EQUIPMENT_MALFUNCTION_DETECTED = 1 << 1
    SIGNAL_PROCESSING_IRREGULARITY_DETECTED = 1 << 2
    INADEQUATE_SIGNAL_DETECTED = 1 << 3
    POOR_SIGNAL_DETECTED = 1 << 4
    LOW_PERFUSION_DETECTED = 1 << 5
    ERRATIC_SIGNAL_DETECTED = 1 << 6
    NONPULSATILE_SIGNAL_DETECTED = 1 << 7
    QUESTIONABLE_PULSE_DETECTED = 1 << 8
    SIGNAL_ANALYSIS_ONGOING = 1 << 9
    SENSOR_INTERFERENCE_DETECTED = 1 << 10
    SENSOR_UNCONNECTED_TO_USER = 1 << 11
    UNKNOWN_SENSOR_CONNECTED = 1 << 12
    SENSOR_DISPLACED = 1 << 13
    SENSOR_MALFUNCTIONING = 1 << 14
    SENSOR_DISCONNECTED = 1 << 15


MEASUREMENT_STATUS_RESERVED_MASK = 0x001F
DEVICE_AND_SENSOR_STATUS_RESERVED_MASK = 0xFF0000


def _names(flags: enum.IntFlag) -> list[str]:
    """Names of the known bits set, lower case, in bit order."""
    return [str(flag.name).lower() for flag in type(flags) if flag and flag in flags]


def _finite(value: SFloat | None) -> float | None:
    """The number; None when absent or a special value (NaN, NRes, +/-INF, RFU)."""
    number = None if value is None else value.decimal
    return None if number is None else float(number)


@dataclass(frozen=True)
class PlxSpotCheckMeasurement:
    """0x2A5E. ``spo2`` and ``pulse_amplitude_index`` in %, ``pulse_rate`` in beats per minute."""

    spo2: SFloat
    pulse_rate: SFloat
    time_stamp: DateTime | None = None
    measurement_status: PlxMeasurementStatus | None = None
    device_and_sensor_status: PlxDeviceAndSensorStatus | None = None
    pulse_amplitude_index: SFloat | None = None
    device_clock_not_set: bool = False
    reserved_flags: int = 0  # RFU flag bits (mask 0xE0) as received
    trailing_bytes: bytes = b""  # bytes after the last field: ignored, kept for audit

    CHARACTERISTIC: ClassVar[str] = "2A5E"

    def __post_init__(self) -> None:
        bytes(self)  # validates every field: EncodeError when one cannot go on the wire

    @classmethod
    def from_values(
        cls,
        spo2: SFloat | float,
        pulse_rate: SFloat | float,
        *,
        time_stamp: DateTime | datetime | None = None,
        measurement_status: PlxMeasurementStatus | None = None,
        device_and_sensor_status: PlxDeviceAndSensorStatus | None = None,
        pulse_amplitude_index: SFloat | float | None = None,
        device_clock_not_set: bool = False,
    ) -> Self:
        """Build from plain numbers (NaN allowed), e.g. in a simulator."""
        return cls(
            SFloat.coerce(spo2),
            SFloat.coerce(pulse_rate),
            DateTime.coerce(time_stamp),
            measurement_status,
            device_and_sensor_status,
            None if pulse_amplitude_index is None else SFloat.coerce(pulse_amplitude_index),
            device_clock_not_set,
        )

    @classmethod
    def from_bytes(cls, data: bytes) -> Self:
        reader = Reader(cls.CHARACTERISTIC, data)
        flags = reader.uint(1, "Flags")
        spo2 = SFloat.read(reader, "SpO2")
        pulse_rate = SFloat.read(reader, "PR")
        time_stamp = DateTime.read(reader) if flags & PlxSpotCheckFlags.TIME_STAMP else None
        status = device = pai = None
        if flags & PlxSpotCheckFlags.MEASUREMENT_STATUS:
            status = PlxMeasurementStatus(reader.uint(2, "Measurement Status"))
        if flags & PlxSpotCheckFlags.DEVICE_AND_SENSOR_STATUS:
            device = PlxDeviceAndSensorStatus(reader.uint(3, "Device and Sensor Status"))
        if flags & PlxSpotCheckFlags.PULSE_AMPLITUDE_INDEX:
            pai = SFloat.read(reader, "Pulse Amplitude Index")
        return cls(
            spo2,
            pulse_rate,
            time_stamp,
            status,
            device,
            pai,
            bool(flags & PlxSpotCheckFlags.DEVICE_CLOCK_NOT_SET),
            flags & RESERVED_FLAGS_MASK,
            reader.rest(),
        )

    @property
    def flags(self) -> PlxSpotCheckFlags:
        flags = PlxSpotCheckFlags(self.reserved_flags)
        if self.time_stamp is not None:
            flags |= PlxSpotCheckFlags.TIME_STAMP
        if self.measurement_status is not None:
            flags |= PlxSpotCheckFlags.MEASUREMENT_STATUS
        if self.device_and_sensor_status is not None:
            flags |= PlxSpotCheckFlags.DEVICE_AND_SENSOR_STATUS
        if self.pulse_amplitude_index is not None:
            flags |= PlxSpotCheckFlags.PULSE_AMPLITUDE_INDEX
        if self.device_clock_not_set:
            flags |= PlxSpotCheckFlags.DEVICE_CLOCK_NOT_SET
        return flags

    def __bytes__(self) -> bytes:
        if self.reserved_flags & ~RESERVED_FLAGS_MASK:
            raise EncodeError(f"reserved_flags {self.reserved_flags:#x} outside mask 0xE0")
        parts = [bytes((int(self.flags),)), bytes(self.spo2), bytes(self.pulse_rate)]
        if self.time_stamp is not None:
            parts.append(bytes(self.time_stamp))
        if self.measurement_status is not None:
            parts.append(pack_uint(int(self.measurement_status), 2, "measurement_status"))
        if self.device_and_sensor_status is not None:
            raw = int(self.device_and_sensor_status)
            parts.append(pack_uint(raw, 3, "device_and_sensor_status"))
        if self.pulse_amplitude_index is not None:
            parts.append(bytes(self.pulse_amplitude_index))
        return b"".join(parts) + self.trailing_bytes

    # -- meaning ------------------------------------------------------------------------------
    def spo2_percent(self) -> float | None:
        """SpO2 in %; None for a special value (NaN, NRes, +/-INF, RFU)."""
        return _finite(self.spo2)

    def pulse_rate_bpm(self) -> float | None:
        """Pulse rate in beats per minute; None for a special value."""
        return _finite(self.pulse_rate)

    def pulse_amplitude_index_percent(self) -> float | None:
        """Pulse Amplitude Index in %; None when absent or a special value."""
        return _finite(self.pulse_amplitude_index)


def _status_json(flags: enum.IntFlag, digits: int, reserved_mask: int) -> dict[str, Any]:
    out: dict[str, Any] = {"raw": f"0x{int(flags):0{digits}X}", "set": _names(flags)}
    if int(flags) & reserved_mask:
        out["reserved_bits_set"] = f"0x{int(flags) & reserved_mask:0{digits}X}"
    return out


@to_jsonable.register
def _(obj: PlxSpotCheckMeasurement) -> dict[str, Any]:
    out: dict[str, Any] = {"flags": f"0x{int(obj.flags):02X}"}
    if obj.reserved_flags:
        out["reserved_flag_bits_set"] = f"0x{obj.reserved_flags:02X}"
    out["spo2_pct"] = to_jsonable(obj.spo2)
    out["pulse_rate_bpm"] = to_jsonable(obj.pulse_rate)
    if obj.time_stamp is not None:
        out["time_stamp"] = to_jsonable(obj.time_stamp)
    if obj.measurement_status is not None:
        out["measurement_status"] = _status_json(
            obj.measurement_status, 4, MEASUREMENT_STATUS_RESERVED_MASK
        )
    if obj.device_and_sensor_status is not None:
        out["device_and_sensor_status"] = _status_json(
            obj.device_and_sensor_status, 6, DEVICE_AND_SENSOR_STATUS_RESERVED_MASK
        )
    if obj.pulse_amplitude_index is not None:
        out["pulse_amplitude_index_pct"] = to_jsonable(obj.pulse_amplitude_index)
    out["device_clock_not_set"] = obj.device_clock_not_set
    if obj.trailing_bytes:
        out["trailing_bytes"] = obj.trailing_bytes.hex()
    return out
