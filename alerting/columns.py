"""Readings as columns (numpy arrays), the input of the batch rules.

One row per reading, for many patients at once: ``patient`` is the position of the reading's
patient in the profiles given to ``evaluate_batch``. The ingest server can fill these straight
from a query; ``from_observations`` builds them from observation objects. Times are seconds
since the epoch (UTC); a missing value is NaN; device quality flags are bit masks (names in
``BP_FLAGS`` / ``GLUCOSE_STATUS``, unknown names in the ``OTHER`` bit: kept, not dropped).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Self

import numpy as np

from alerting.errors import InputError
from alerting.observations import (
    CLOCK_STATUSES,
    TIME_SOURCES,
    BloodPressureObservation,
    DeviceStatus,
    GlucoseObservation,
)

#: Blood Pressure Measurement Status names (``homewatch.wire.MeasurementFlag``), bit i = 1 << i.
BP_FLAGS = (
    "body_movement",
    "cuff_too_loose",
    "irregular_pulse",
    "pulse_rate_above_range",
    "pulse_rate_below_range",
    "improper_position",
)
#: GLS Sensor Status Annunciation names, in the characteristic's bit order.
GLUCOSE_STATUS = (
    "device_battery_low",
    "sensor_malfunction",
    "sample_size_insufficient",
    "strip_insertion_error",
    "strip_type_incorrect",
    "result_higher_than_device_can_process",
    "result_lower_than_device_can_process",
    "sensor_temperature_too_high",
    "sensor_temperature_too_low",
    "sensor_read_interrupted",
    "general_device_fault",
    "time_fault",
)
#: A name we do not know (a newer device or gateway): kept as this bit.
OTHER = 1 << 15
#: GLS context meal codes; 0 = no context.
MEALS = (None, "preprandial", "postprandial", "fasting", "casual", "bedtime")
DEVICE_KINDS = ("blood_pressure", "glucose")


def bits(names: Iterable[str], table: Sequence[str]) -> int:
    value = 0
    for name in names:
        value |= 1 << table.index(name) if name in table else OTHER
    return value


def bit(name: str, table: Sequence[str]) -> int:
    return 1 << table.index(name)


class _Columns:
    """Shared behaviour: checked equal-length 1-D arrays, sorting by patient and time."""

    patient: np.ndarray
    reading_id: np.ndarray | None

    def _check(self) -> None:
        n = None
        for f in dataclasses.fields(self):  # type: ignore[arg-type]
            value = getattr(self, f.name)
            if value is None:
                continue
            if value.ndim != 1:
                raise InputError(f"column {f.name} must be one-dimensional")
            if n is None:
                n = len(value)
            elif len(value) != n:
                raise InputError(f"column {f.name} has {len(value)} rows, expected {n}")
        if n and self.patient.min() < 0:
            raise InputError("column patient has a negative index")

    def __len__(self) -> int:
        return len(self.patient)

    def take(self, index: np.ndarray) -> Self:
        return type(self)(
            **{
                f.name: None if getattr(self, f.name) is None else getattr(self, f.name)[index]
                for f in dataclasses.fields(self)  # type: ignore[arg-type]
            }
        )

    def ids(self, index: Iterable[int]) -> list[str]:
        """Reading ids of some rows (``#<row>`` when the columns carry no ids)."""
        rows = np.asarray(list(index) if not isinstance(index, np.ndarray) else index, np.intp)
        if self.reading_id is None:
            return [f"#{i}" for i in rows.tolist()]
        return [str(r) for r in self.reading_id[rows].tolist()]


def sort_by_patient_and_time(cols: Any) -> Any:
    """The columns sorted by (patient, time), stably; returned as is when already sorted."""
    p, t = cols.patient, cols.time
    if len(p) < 2:
        return cols
    dp = np.diff(p)
    if (dp >= 0).all() and ((dp > 0) | (np.diff(t) >= 0)).all():
        return cols
    return cols.take(np.lexsort((t, p)))


@dataclass(frozen=True, eq=False)
class BloodPressureColumns(_Columns):
    patient: np.ndarray
    time: np.ndarray
    systolic: np.ndarray
    diastolic: np.ndarray
    pulse: np.ndarray
    #: ``BP_FLAGS`` bit mask per reading.
    flags: np.ndarray
    #: Index into ``TIME_SOURCES`` (0 device, 1 device_corrected, 2 received).
    time_source: np.ndarray
    reading_id: np.ndarray | None = None

    def __post_init__(self) -> None:
        _coerce(
            self,
            patient=np.intp,
            time=np.float64,
            systolic=np.float64,
            diastolic=np.float64,
            pulse=np.float64,
            flags=np.uint16,
            time_source=np.int8,
        )
        self._check()

    @classmethod
    def from_arrays(
        cls,
        patient: Any,
        time: Any,
        systolic: Any,
        diastolic: Any,
        pulse: Any = None,
        flags: Any = None,
        time_source: Any = None,
        reading_id: Any = None,
    ) -> BloodPressureColumns:
        n = len(patient)
        return cls(
            patient=np.asarray(patient),
            time=np.asarray(time),
            systolic=np.asarray(systolic),
            diastolic=np.asarray(diastolic),
            pulse=np.full(n, np.nan) if pulse is None else np.asarray(pulse),
            flags=np.zeros(n, np.uint16) if flags is None else np.asarray(flags),
            time_source=np.zeros(n, np.int8) if time_source is None else np.asarray(time_source),
            reading_id=None if reading_id is None else np.asarray(reading_id, dtype=object),
        )

    @classmethod
    def from_observations(
        cls, per_patient: Sequence[Sequence[BloodPressureObservation]]
    ) -> BloodPressureColumns:
        rows = [(i, o) for i, obs in enumerate(per_patient) for o in obs]
        return cls.from_arrays(
            patient=[i for i, _ in rows],
            time=[_seconds(o.measured_at) for _, o in rows],
            systolic=[_nan(o.systolic) for _, o in rows],
            diastolic=[_nan(o.diastolic) for _, o in rows],
            pulse=[_nan(o.pulse) for _, o in rows],
            flags=[bits(o.flags, BP_FLAGS) for _, o in rows],
            time_source=[_index(o.time_source, TIME_SOURCES) for _, o in rows],
            reading_id=[o.reading_id for _, o in rows],
        )


@dataclass(frozen=True, eq=False)
class GlucoseColumns(_Columns):
    patient: np.ndarray
    time: np.ndarray
    #: mmol/L; NaN = special value (see ``status`` for LO/HI) or failed.
    mmol_l: np.ndarray
    #: ``GLUCOSE_STATUS`` bit mask per reading.
    status: np.ndarray
    #: Index into ``MEALS`` (0: no context).
    meal: np.ndarray
    control_solution: np.ndarray
    time_source: np.ndarray
    reading_id: np.ndarray | None = None

    def __post_init__(self) -> None:
        _coerce(
            self,
            patient=np.intp,
            time=np.float64,
            mmol_l=np.float64,
            status=np.uint16,
            meal=np.int8,
            control_solution=np.bool_,
            time_source=np.int8,
        )
        self._check()

    @classmethod
    def from_arrays(
        cls,
        patient: Any,
        time: Any,
        mmol_l: Any,
        status: Any = None,
        meal: Any = None,
        control_solution: Any = None,
        time_source: Any = None,
        reading_id: Any = None,
    ) -> GlucoseColumns:
        n = len(patient)
        return cls(
            patient=np.asarray(patient),
            time=np.asarray(time),
            mmol_l=np.asarray(mmol_l),
            status=np.zeros(n, np.uint16) if status is None else np.asarray(status),
            meal=np.zeros(n, np.int8) if meal is None else np.asarray(meal),
            control_solution=np.zeros(n, bool)
            if control_solution is None
            else np.asarray(control_solution),
            time_source=np.zeros(n, np.int8) if time_source is None else np.asarray(time_source),
            reading_id=None if reading_id is None else np.asarray(reading_id, dtype=object),
        )

    @classmethod
    def from_observations(
        cls, per_patient: Sequence[Sequence[GlucoseObservation]]
    ) -> GlucoseColumns:
        rows = [(i, o) for i, obs in enumerate(per_patient) for o in obs]
        return cls.from_arrays(
            patient=[i for i, _ in rows],
            time=[_seconds(o.measured_at) for _, o in rows],
            mmol_l=[_nan(o.mmol_l) for _, o in rows],
            status=[bits(o.sensor_status, GLUCOSE_STATUS) for _, o in rows],
            meal=[MEALS.index(o.meal) if o.meal in MEALS else 0 for _, o in rows],
            control_solution=[o.control_solution for _, o in rows],
            time_source=[_index(o.time_source, TIME_SOURCES) for _, o in rows],
            reading_id=[o.reading_id for _, o in rows],
        )


@dataclass(frozen=True, eq=False)
class DeviceColumns(_Columns):
    patient: np.ndarray
    device_key: np.ndarray  # object (str)
    kind: np.ndarray  # index into DEVICE_KINDS
    last_contact: np.ndarray  # epoch seconds, NaN unknown
    battery_percent: np.ndarray  # NaN unknown
    battery_low: np.ndarray  # the device says so
    clock_status: np.ndarray  # index into CLOCK_STATUSES
    clock_offset: np.ndarray  # seconds, NaN unknown
    description: np.ndarray | None = None  # object (str or None)
    reading_id: np.ndarray | None = None  # unused; keeps the shared interface

    def __post_init__(self) -> None:
        _coerce(
            self,
            patient=np.intp,
            kind=np.int8,
            last_contact=np.float64,
            battery_percent=np.float64,
            battery_low=np.bool_,
            clock_status=np.int8,
            clock_offset=np.float64,
        )
        self._check()

    @classmethod
    def from_statuses(cls, per_patient: Sequence[Sequence[DeviceStatus]]) -> DeviceColumns:
        rows = [(i, d) for i, devices in enumerate(per_patient) for d in devices]
        return cls(
            patient=np.array([i for i, _ in rows], dtype=np.intp),
            device_key=np.array([d.device_key for _, d in rows], dtype=object),
            kind=np.array([_index(d.kind, DEVICE_KINDS) for _, d in rows], dtype=np.int8),
            last_contact=np.array(
                [
                    np.nan if d.last_contact_at is None else _seconds(d.last_contact_at)
                    for _, d in rows
                ]
            ),
            battery_percent=np.array([_nan(d.battery_percent) for _, d in rows]),
            battery_low=np.array([d.battery_low for _, d in rows], dtype=bool),
            clock_status=np.array(
                [_index(d.clock_status, CLOCK_STATUSES) for _, d in rows], dtype=np.int8
            ),
            clock_offset=np.array([_nan(d.clock_offset_seconds) for _, d in rows]),
            description=np.array([d.description for _, d in rows], dtype=object),
        )


def _coerce(cols: Any, **dtypes: Any) -> None:
    for name, dtype in dtypes.items():
        try:
            value = np.asarray(getattr(cols, name), dtype=dtype)
        except (TypeError, ValueError) as exc:
            raise InputError(f"column {name}: {exc}") from exc
        object.__setattr__(cols, name, value)


def _seconds(at: datetime) -> float:
    if at.tzinfo is None:
        raise InputError(f"time {at.isoformat()} has no UTC offset")
    return at.timestamp()


def _nan(value: float | None) -> float:
    return np.nan if value is None else float(value)


def _index(value: str, table: Sequence[Any]) -> int:
    try:
        return table.index(value)
    except ValueError:
        raise InputError(f"unknown value {value!r} (expected one of {list(table)})") from None
