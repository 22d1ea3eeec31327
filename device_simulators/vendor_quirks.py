"""What a quirky device puts on air: the simulators' side of ``gateway/quirks.py``.

The gateway undoes vendor quirks from a table keyed by Device Information manufacturer/model;
the simulated models here are the ones listed in the packaged ``gateway/quirks.toml``, so a
simulator that advertises one of these identities must send its bytes through this module.

``encode_blood_pressure`` builds the vendor bytes field by field rather than by patching the SIG
encoding, so the round trip against the gateway's decoder checks two independent descriptions of
the same layout.
"""

from __future__ import annotations

from gateway.codec import UNKNOWN_USER, BloodPressureFlags, BloodPressureMeasurement
from gateway.quirks import DeviceQuirks

__all__ = [
    "BP_BIG_ENDIAN_MODEL",
    "GLUCOSE_CONTROL_SOLUTION_MODEL",
    "GLUCOSE_DATE_TIME_CLOCK_MODEL",
    "GLUCOSE_DESCENDING_SEQUENCE_MODEL",
    "SIMULATED_MANUFACTURER",
    "encode_blood_pressure",
]

#: Device Information strings of the simulated vendor-quirk models (entries in quirks.toml).
SIMULATED_MANUFACTURER = "Homewatch Simulated"
BP_BIG_ENDIAN_MODEL = "BP-Sim BE"  # big-endian pulse and status, user id without its flag
GLUCOSE_DESCENDING_SEQUENCE_MODEL = "GL-Sim Rev"  # new records get lower sequence numbers
GLUCOSE_DATE_TIME_CLOCK_MODEL = "GL-Sim DT"  # clock is Date Time 0x2A08, not CTS 0x2A2B
GLUCOSE_CONTROL_SOLUTION_MODEL = "GL-Sim CS"  # control-solution records among patient ones


def encode_blood_pressure(measurement: BloodPressureMeasurement, quirks: DeviceQuirks) -> bytes:
    """0x2A35 as a device with ``quirks`` sends it; without BP quirks, ``bytes(measurement)``.

    With ``bp_user_id_without_flag`` the user id byte is always sent (0xFF "unknown user" when
    the measurement has none) and flag bit 3 is cleared; with ``bp_big_endian_pulse_and_status``
    the pulse-rate SFLOAT and the status uint16 are written most significant byte first.
    The measurement validated its fields when it was built, so nothing here can be out of range.
    """
    if not (quirks.bp_big_endian_pulse_and_status or quirks.bp_user_id_without_flag):
        return bytes(measurement)
    order = "big" if quirks.bp_big_endian_pulse_and_status else "little"
    flags = int(measurement.flags)
    user_id = measurement.user_id
    if quirks.bp_user_id_without_flag:
        flags &= ~int(BloodPressureFlags.USER_ID)  # int: ~ on the IntFlag drops RFU bits
        if user_id is None:
            user_id = UNKNOWN_USER
    parts = [
        bytes((flags,)),
        bytes(measurement.systolic),
        bytes(measurement.diastolic),
        bytes(measurement.mean_arterial_pressure),
    ]
    if measurement.time_stamp is not None:
        parts.append(bytes(measurement.time_stamp))
    if measurement.pulse_rate is not None:
        little = bytes(measurement.pulse_rate)
        parts.append(little[::-1] if order == "big" else little)
    if user_id is not None:
        parts.append(bytes((user_id,)))
    if measurement.status is not None:
        parts.append(measurement.status.raw.to_bytes(2, order))
    return b"".join(parts) + measurement.trailing_bytes
