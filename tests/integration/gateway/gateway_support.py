"""Readings for the gateway tests, built the way the gateway builds them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from device_simulators.patients import Measurement
from gateway.codec import BloodPressureMeasurement
from gateway.readings import blood_pressure_reading
from homewatch.wire import BloodPressureReading, DeviceIdentity

DEVICE = DeviceIdentity(
    address="C0:5A:00:00:00:01", manufacturer="Acme", model="BP-1", serial_number="S1"
)
T0 = datetime(2026, 11, 20, 7, 0, tzinfo=UTC)


def make_reading(i: int) -> BloodPressureReading:
    """The i-th of a series of distinct readings, one minute apart."""
    raw = Measurement(T0 + timedelta(minutes=i), 120 + i, 80, 70).encode()
    measurement = BloodPressureMeasurement.from_bytes(raw)
    return blood_pressure_reading(
        measurement, raw, DEVICE, T0 + timedelta(hours=1), ZoneInfo("UTC")
    )
