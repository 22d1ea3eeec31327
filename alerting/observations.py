"""What the rules look at: readings reduced to the fields a rule needs, in canonical units.

Object form, one reading per object: what the streaming rules and the backtest use. The batch
rules use the same fields as columns (``alerting.columns``), built from these or straight from
the database.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

#: ``time_source`` values (``homewatch.wire.TimeSource``).
TIME_SOURCES = ("device", "device_corrected", "received")
#: ``clock_status`` values (``homewatch.wire.ClockStatus``).
CLOCK_STATUSES = ("unknown", "synchronised", "corrected", "unset")
#: GLS sensor status annunciation meaning the concentration is below what the meter measures
#: ("LO"): a severe hypoglycaemia, not a failed measurement.
BELOW_METER_RANGE = "result_lower_than_device_can_process"
#: ... and above it ("HI").
ABOVE_METER_RANGE = "result_higher_than_device_can_process"


@dataclass(frozen=True, slots=True)
class BloodPressureObservation:
    """One home blood-pressure reading, in mmHg and beats per minute.

    ``None`` means the device reported no value (NaN or NRes): a failed measurement.
    ``flags`` are the device's quality marks (``homewatch.wire.MeasurementFlag`` values).
    ``time_source`` and the clock fields say how far ``measured_at`` can be trusted
    (``homewatch.wire``): ``received`` means it is the gateway's receive time, an estimate.
    """

    reading_id: str
    measured_at: datetime
    systolic: float | None
    diastolic: float | None
    pulse: float | None = None
    flags: frozenset[str] = field(default_factory=frozenset)
    device_key: str | None = None
    time_source: str = "device"
    clock_status: str = "unknown"
    clock_offset_seconds: float | None = None


@dataclass(frozen=True, slots=True)
class GlucoseObservation:
    """One capillary glucose reading, in mmol/L (the wire carries both units; mmol/L is ours).

    ``mmol_l`` is None when the meter sent a special value: with the ``BELOW_METER_RANGE``
    annunciation that is a "LO" reading (a severe hypo, counted as one), otherwise a failed
    measurement. ``control_solution`` tests are kept and marked, never evaluated. ``meal`` is
    the GLS context (``preprandial``, ``postprandial``, ``fasting``, ``casual``, ``bedtime``).
    """

    reading_id: str
    measured_at: datetime
    mmol_l: float | None
    sensor_status: frozenset[str] = field(default_factory=frozenset)
    meal: str | None = None
    control_solution: bool = False
    device_key: str | None = None
    time_source: str = "device"
    clock_status: str = "unknown"
    clock_offset_seconds: float | None = None


@dataclass(frozen=True, slots=True)
class DeviceStatus:
    """What the server knows of one of the patient's devices, for the device-health rules.

    ``last_contact_at`` is when a gateway last connected to the device (not when it last sent a
    reading: a device that connects but delivers nothing is a patient not measuring, which the
    adherence rules cover). None: unknown, and the silent-device rule is not evaluated.
    """

    device_key: str
    kind: str  # "blood_pressure" or "glucose"
    last_contact_at: datetime | None = None
    battery_percent: float | None = None
    #: The device itself says its battery is low (GLS "device_battery_low").
    battery_low: bool = False
    clock_status: str = "unknown"
    clock_offset_seconds: float | None = None
    #: For the explanation, e.g. "A&D UA-651BLE serial 5051234".
    description: str | None = None


@dataclass(frozen=True, slots=True)
class PatientHistory:
    """A patient's readings and devices, the input of the per-patient entry points."""

    blood_pressure: Sequence[BloodPressureObservation] = ()
    glucose: Sequence[GlucoseObservation] = ()
    devices: Sequence[DeviceStatus] = ()


def device_statuses_from_readings(history: PatientHistory) -> list[DeviceStatus]:
    """Device states derived from the readings alone (for a backtest, where no device table
    exists): the clock as the latest reading of each device saw it, the battery flag of the
    latest glucose reading. The last contact stays unknown, so no device is called silent on
    the strength of a patient who simply did not measure."""
    latest: dict[str, tuple[str, BloodPressureObservation | GlucoseObservation]] = {}
    for kind, readings in (
        ("blood_pressure", history.blood_pressure),
        ("glucose", history.glucose),
    ):
        for r in readings:
            if r.device_key is None:
                continue
            seen = latest.get(r.device_key)
            if seen is None or r.measured_at >= seen[1].measured_at:
                latest[r.device_key] = (kind, r)
    return [
        DeviceStatus(
            device_key=key,
            kind=kind,
            battery_low=isinstance(r, GlucoseObservation)
            and "device_battery_low" in r.sensor_status,
            clock_status=r.clock_status,
            clock_offset_seconds=r.clock_offset_seconds,
        )
        for key, (kind, r) in sorted(latest.items())
    ]
