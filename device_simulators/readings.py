"""A reading as a simulated device takes it: values, both times, labels, and its GATT encoding.

``SimulatedReading`` is what the pure generator returns and what the runner puts into a cuff
or a meter. It carries the true time (when the patient measured, UTC) and the device time (what
the device's own clock stamped, naive local wall time, as BLE carries it), the values the device
reports and the true values behind them, and labels that say why the reading exists (scheduled,
crisis, duplicate press, ...) and what is wrong with it (movement, loose cuff, out of range...).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any, Literal

from device_simulators.devices import DeviceType, GlucoseDisplayUnit
from gateway.codec import BloodPressureMeasurement, MeasurementStatus
from gateway.codec.date_time import DateTime
from gateway.codec.glucose import (
    GlucoseMeasurement,
    GlucoseType,
    GlucoseUnit,
    SampleLocation,
    SensorStatus,
    SensorStatusFlag,
)
from gateway.codec.glucose_context import GlucoseMeasurementContext, Meal
from gateway.codec.ieee11073 import SFloat, SpecialValue

#: mg/dL per mmol/L of glucose (shared/clinical/RULES.md).
MG_PER_DL_PER_MMOL_L = 18.016
#: What a meter can measure (mmol/L); outside it reports HI or LO (RULES.md "meter range").
METER_RANGE = (0.6, 33.3)

ReadingKind = Literal["blood_pressure", "glucose"]


@dataclass(frozen=True, slots=True)
class BloodPressureValues:
    """What a cuff reports (whole mmHg; NaN when the measurement failed) and the truth."""

    systolic: float
    diastolic: float
    pulse: float
    status: MeasurementStatus
    true_systolic: float
    true_diastolic: float

    @property
    def failed(self) -> bool:
        return math.isnan(self.systolic)

    @property
    def mean_arterial_pressure(self) -> float:
        if self.failed or math.isnan(self.diastolic):
            return math.nan
        return float(round(self.diastolic + (self.systolic - self.diastolic) / 3))

    def to_json(self) -> dict[str, Any]:
        s = self.status
        return {
            "systolic": _json_number(self.systolic),
            "diastolic": _json_number(self.diastolic),
            "pulse": _json_number(self.pulse),
            "status": {
                "body_movement": s.body_movement,
                "cuff_too_loose": s.cuff_too_loose,
                "irregular_pulse": s.irregular_pulse,
                "pulse_rate_range": s.pulse_rate_range.name.lower(),
            },
            "true_systolic": self.true_systolic,
            "true_diastolic": self.true_diastolic,
        }


@dataclass(frozen=True, slots=True)
class GlucoseValues:
    """What a meter reports and the truth behind it.

    ``mmol_per_l`` is the value as the meter sends it (rounded to its display unit), None when
    the sample was outside the meter's range (``out_of_range`` "high"/"low": sent as +/-INF with
    the sensor status bit). ``meal``: the tag the patient gave the reading (sent as a Glucose
    Measurement Context), None when untagged. A control-solution test is not a patient sample:
    its ``true_mmol_per_l`` is the solution's.
    """

    mmol_per_l: float | None
    unit: GlucoseDisplayUnit
    true_mmol_per_l: float
    meal: Meal | None = None
    control_solution: bool = False
    out_of_range: Literal["high", "low"] | None = None
    battery_low: bool = False

    def sensor_status(self) -> SensorStatus | None:
        flags = SensorStatusFlag.NONE
        if self.battery_low:
            flags |= SensorStatusFlag.DEVICE_BATTERY_LOW
        if self.out_of_range == "high":
            flags |= SensorStatusFlag.RESULT_HIGHER_THAN_DEVICE_CAN_PROCESS
        elif self.out_of_range == "low":
            flags |= SensorStatusFlag.RESULT_LOWER_THAN_DEVICE_CAN_PROCESS
        return SensorStatus(flags) if flags else None

    def concentration(self) -> tuple[SFloat, GlucoseUnit]:
        """The concentration as the meter encodes it: kg/L with exponent -5 (whole mg/dL, as
        the Accu-Chek captures in SPEC.md 4.1) or mol/L with exponent -4 (0.1 mmol/L)."""
        unit = GlucoseUnit.KG_PER_L if self.unit == "mg/dL" else GlucoseUnit.MOL_PER_L
        if self.mmol_per_l is None:
            special = (
                SpecialValue.NEGATIVE_INFINITY
                if self.out_of_range == "low"
                else SpecialValue.POSITIVE_INFINITY
            )
            return SFloat.from_special(special), unit
        if unit is GlucoseUnit.KG_PER_L:
            mg = round(self.mmol_per_l * MG_PER_DL_PER_MMOL_L)
            return SFloat.from_value(Decimal(mg) / 100_000, exponent=-5), unit
        tenths = round(self.mmol_per_l * 10)
        return SFloat.from_value(Decimal(tenths) / 10_000, exponent=-4), unit

    def to_json(self) -> dict[str, Any]:
        return {
            "mmol_per_l": self.mmol_per_l,
            "unit": self.unit,
            "true_mmol_per_l": self.true_mmol_per_l,
            "meal": None if self.meal is None else self.meal.name.lower(),
            "control_solution": self.control_solution,
            "out_of_range": self.out_of_range,
            "battery_low": self.battery_low,
        }


def meter_value(mmol_per_l: float, unit: GlucoseDisplayUnit) -> float | None:
    """What a meter with ``unit`` shows for ``mmol_per_l`` (None outside its range)."""
    low, high = METER_RANGE
    if not low <= mmol_per_l <= high:
        return None
    if unit == "mg/dL":
        return round(mmol_per_l * MG_PER_DL_PER_MMOL_L) / MG_PER_DL_PER_MMOL_L
    return round(mmol_per_l, 1)


@dataclass(frozen=True, slots=True)
class SimulatedReading:
    """One reading a simulated device took.

    ``true_time``: when the patient measured (aware, UTC). ``device_time``: what the device's
    clock stamped (naive local wall time) if nobody set the clock since the run began; a runner
    whose gateway sets device clocks re-stamps from the live clock. ``labels[0]`` says why the
    reading exists, the rest what is special about it.
    """

    patient_id: str | None
    device_key: str
    device_type: DeviceType
    kind: ReadingKind
    true_time: datetime
    device_time: datetime
    values: BloodPressureValues | GlucoseValues
    labels: tuple[str, ...] = ("scheduled",)

    @property
    def event(self) -> str:
        return self.labels[0]

    def blood_pressure(self, device_time: datetime | None = None) -> BloodPressureMeasurement:
        """The Blood Pressure Measurement (0x2A35) a cuff indicates for this reading."""
        v = self.values
        if not isinstance(v, BloodPressureValues):
            raise TypeError(f"{self.device_key}: a {self.kind} reading is not a blood pressure")
        stamp = self.device_time if device_time is None else device_time
        return BloodPressureMeasurement.from_values(
            v.systolic,
            v.diastolic,
            v.mean_arterial_pressure,
            time_stamp=stamp,
            pulse_rate=v.pulse,
            status=v.status,
        )

    def glucose(
        self, device_time: datetime | None = None
    ) -> tuple[GlucoseMeasurement, GlucoseMeasurementContext | None]:
        """The Glucose Measurement (and Context, when tagged) a meter stores; the meter gives
        them their sequence number."""
        v = self.values
        if not isinstance(v, GlucoseValues):
            raise TypeError(f"{self.device_key}: a {self.kind} reading is not a glucose")
        stamp = self.device_time if device_time is None else device_time
        concentration, unit = v.concentration()
        sample_type, location = (
            (GlucoseType.CONTROL_SOLUTION, SampleLocation.CONTROL_SOLUTION)
            if v.control_solution
            else (GlucoseType.CAPILLARY_PLASMA, SampleLocation.FINGER)
        )
        measurement = GlucoseMeasurement(
            sequence_number=0,
            base_time=DateTime.from_datetime(stamp),
            time_offset=0,
            concentration=concentration,
            unit=unit,
            sample_type=sample_type,
            sample_location=location,
            sensor_status=v.sensor_status(),
        )
        context = None if v.meal is None else GlucoseMeasurementContext(0, meal=v.meal)
        return measurement, context

    def to_json(self) -> dict[str, Any]:
        return {
            "patient_id": self.patient_id,
            "device_key": self.device_key,
            "device_type": self.device_type,
            "kind": self.kind,
            "true_time": self.true_time.isoformat(),
            "device_time": self.device_time.isoformat(),
            "labels": list(self.labels),
            "values": self.values.to_json(),
        }


def _json_number(value: float) -> float | None:
    return None if math.isnan(value) else value
