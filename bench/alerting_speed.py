"""Alerting speed: batch rules over 100,000 patients x 30 days, against a per-patient loop.

The cohort is SYNTHETIC, generated here with numpy (no real or simulator data): home blood
pressure four times a day (morning and evening duplicates, 15 % of sittings missed) for every
patient, capillary glucose for the diabetic ones (type 2: twice a day, type 1: four times),
one device per metric, patients spread over four time zones. The quality of the rules is not
measured here (that bench needs simulator ground truth); only their cost.

Figures, each with a baseline measured in the same run:

- batch, vectorised (``alerting.evaluate_batch`` over the whole cohort) against the naive
  per-patient Python loop (``alerting.evaluate_patient`` once per patient), the latter timed on
  a random sample of patients and extrapolated to the cohort (running it in full takes hours);
- streaming rules per reading (``alerting.evaluate_stream`` with the 30 minutes of history the
  ingest server loads) against the parse of one wire reading (``homewatch.wire.READING``), the
  cost the ingest server already pays per reading.
"""

from __future__ import annotations

import argparse
import json
import time
import timeit
from datetime import UTC, datetime, timedelta

import numpy as np

import alerting
from alerting.columns import BP_FLAGS, GLUCOSE_STATUS, bit
from homewatch import wire

ZONES = ("Europe/Moscow", "Asia/Yekaterinburg", "Asia/Novosibirsk", "Europe/Kaliningrad")
START = datetime(2026, 10, 1, tzinfo=UTC)


def cohort(patients: int, days: int, seed: int = 7):
    """Profiles and columns of a synthetic cohort, sorted by patient and time."""
    rng = np.random.default_rng(seed)
    kind = rng.choice(3, size=patients, p=[0.7, 0.2, 0.1])  # I10 only, I10 + E11, E10
    conditions = {0: ("I10",), 1: ("I10", "E11"), 2: ("E10",)}
    zone = rng.integers(0, len(ZONES), patients)
    profiles = [
        alerting.PatientProfile(f"p{i:06d}", conditions[int(k)], timezone=ZONES[int(z)])
        for i, (k, z) in enumerate(zip(kind, zone, strict=True))
    ]
    t0 = START.timestamp()

    # Blood pressure: sittings at 07:00 and 19:00 UTC-ish, duplicates 2 min apart.
    sittings = np.tile(np.arange(days * 2), patients)
    patient = np.repeat(np.arange(patients), days * 2)
    keep = rng.random(len(patient)) > 0.15
    sittings, patient = sittings[keep], patient[keep]
    sitting_time = t0 + sittings * 43_200 + 4 * 3600 + rng.integers(-1800, 1800, len(patient))
    patient = np.repeat(patient, 2)
    time_ = np.repeat(sitting_time, 2) + np.tile([0, 120], len(sitting_time))
    base_s = rng.normal(128, 10, patients)  # a treated cohort: about a fifth above 135/85
    base_d = rng.normal(80, 7, patients)
    systolic = np.round(base_s[patient] + rng.normal(0, 5, len(patient)))
    diastolic = np.round(base_d[patient] + rng.normal(0, 3.5, len(patient)))
    pulse = np.round(rng.normal(72, 8, len(patient)))
    arrhythmia = rng.random(patients) < 0.03  # a few patients with atrial fibrillation
    irregular = rng.random(len(patient)) < np.where(arrhythmia[patient], 0.4, 0.003)
    flags = np.where(irregular, bit("irregular_pulse", BP_FLAGS), 0).astype(np.uint16)
    bp = alerting.BloodPressureColumns.from_arrays(
        patient, time_, systolic, diastolic, pulse, flags
    )

    # Glucose: type 2 twice a day, type 1 four times a day.
    per_day = np.where(kind == 1, 2, np.where(kind == 2, 4, 0))
    g_patient = np.repeat(np.arange(patients), per_day * days)
    slot = np.concatenate([np.arange(k * days) for k in per_day[per_day > 0]])
    step = 86_400 / per_day[g_patient]
    g_time = t0 + slot * step + rng.integers(0, 3600, len(g_patient))
    g_value = np.round(np.exp(rng.normal(np.log(7.5), 0.3, len(g_patient))), 1)
    status = np.where(
        rng.random(len(g_patient)) < 0.001, bit("device_battery_low", GLUCOSE_STATUS), 0
    )
    glucose = alerting.GlucoseColumns.from_arrays(g_patient, g_time, g_value, status)

    # Devices: one cuff per blood-pressure patient, one meter per diabetic.
    has_bp, has_meter = kind != 2, kind != 0
    d_patient = np.concatenate([np.flatnonzero(has_bp), np.flatnonzero(has_meter)])
    d_kind = np.concatenate([np.zeros(has_bp.sum()), np.ones(has_meter.sum())])
    order = np.argsort(d_patient, kind="stable")
    n_dev = len(d_patient)
    devices = alerting.DeviceColumns(
        patient=d_patient[order],
        device_key=np.array([f"dev{i}" for i in range(n_dev)], dtype=object),
        kind=d_kind[order],
        last_contact=t0 + days * 86_400 - rng.exponential(43_200, n_dev),
        battery_percent=np.where(
            rng.random(n_dev) < 0.02, rng.uniform(5, 20, n_dev), rng.uniform(20, 100, n_dev)
        ),
        battery_low=np.zeros(n_dev, bool),
        clock_status=rng.choice(4, n_dev, p=[0.5, 0.4, 0.08, 0.02]),
        clock_offset=rng.normal(0, 300, n_dev),
    )
    return profiles, bp, glucose, devices


def histories(bp, glucose, devices, patients: np.ndarray) -> list[alerting.PatientHistory]:
    """Observation objects of some patients, for the per-patient loop."""
    out = []
    for p in patients:
        rows = np.flatnonzero(bp.patient == p)
        g_rows = np.flatnonzero(glucose.patient == p)
        d_rows = np.flatnonzero(devices.patient == p)
        out.append(
            alerting.PatientHistory(
                blood_pressure=[
                    alerting.BloodPressureObservation(
                        f"bp{r}", _utc(bp.time[r]), bp.systolic[r], bp.diastolic[r], bp.pulse[r]
                    )
                    for r in rows
                ],
                glucose=[
                    alerting.GlucoseObservation(f"g{r}", _utc(glucose.time[r]), glucose.mmol_l[r])
                    for r in g_rows
                ],
                devices=[
                    alerting.DeviceStatus(
                        str(devices.device_key[r]),
                        ("blood_pressure", "glucose")[devices.kind[r]],
                        last_contact_at=_utc(devices.last_contact[r]),
                        battery_percent=float(devices.battery_percent[r]),
                        clock_status=("unknown", "synchronised", "corrected", "unset")[
                            devices.clock_status[r]
                        ],
                        clock_offset_seconds=float(devices.clock_offset[r]),
                    )
                    for r in d_rows
                ],
            )
        )
    return out


def _utc(epoch: float) -> datetime:
    return datetime.fromtimestamp(float(epoch), UTC)


def streaming_case():
    profile = alerting.PatientProfile("p-stream", ("I10", "E11"), timezone="Europe/Moscow")
    at = START + timedelta(days=3, hours=4)
    bp = [
        alerting.BloodPressureObservation("a", at - timedelta(minutes=20), 142, 88, 70),
        alerting.BloodPressureObservation("b", at - timedelta(minutes=18), 139, 87, 71),
        alerting.BloodPressureObservation("c", at, 186, 112, 80),
    ]
    history = alerting.PatientHistory(blood_pressure=bp)
    reading = wire.BloodPressureReading(
        reading_id=wire.derive_reading_id(wire.DeviceIdentity(address="AA:BB"), "k"),
        device=wire.DeviceIdentity(address="AA:BB", manufacturer="A&D", model="UA-651BLE"),
        device_time=at.replace(tzinfo=None),
        received_at=at,
        measured_at=at,
        values=wire.BloodPressureValues(
            systolic=wire.Quantity(value=186, unit=wire.Unit.MMHG),
            diastolic=wire.Quantity(value=112, unit=wire.Unit.MMHG),
            mean_arterial_pressure=wire.Quantity(value=137, unit=wire.Unit.MMHG),
            pulse_rate=wire.Quantity(value=80, unit=wire.Unit.BEATS_PER_MINUTE),
        ),
        raw="1e",
    ).model_dump_json()
    return profile, history, reading


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--patients", type=int, default=100_000)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--loop-sample", type=int, default=300)
    parser.add_argument("--json", action="store_true", help="also print the figures as JSON")
    args = parser.parse_args()

    t = time.perf_counter()
    profiles, bp, glucose, devices = cohort(args.patients, args.days)
    generated = time.perf_counter() - t
    at = START + timedelta(days=args.days)
    print(
        f"SYNTHETIC cohort (generated in {generated:.1f} s, not real data): {args.patients:,}"
        f" patients x {args.days} days, {len(bp):,} blood-pressure and {len(glucose):,}"
        f" glucose readings, {len(devices):,} devices"
    )

    alerting.evaluate_batch(profiles[:2], at=at)  # imports, rule-set files: not the batch's cost
    runs = []
    for _ in range(2):
        t = time.perf_counter()
        result = alerting.evaluate_batch(
            profiles, at=at, blood_pressure=bp, glucose=glucose, devices=devices
        )
        states = time.perf_counter() - t
        fired = sum(len(v) for v in result.decisions.values())
        runs.append((time.perf_counter() - t, states))
    batch, states = min(runs)

    rng = np.random.default_rng(1)
    sample = np.sort(
        rng.choice(args.patients, size=min(args.loop_sample, args.patients), replace=False)
    )
    sample_histories = histories(bp, glucose, devices, sample)
    t = time.perf_counter()
    for p, history in zip(sample, sample_histories, strict=True):
        alerting.evaluate_patient(profiles[p], history, at=at)
    loop = (time.perf_counter() - t) / len(sample) * args.patients

    profile, history, payload = streaming_case()
    n = 2_000
    floor = min(timeit.repeat(lambda: wire.READING.validate_json(payload), number=n, repeat=5)) / n
    stream = (
        min(
            timeit.repeat(
                lambda: alerting.evaluate_stream(profile, history, {"c"}), number=n, repeat=5
            )
        )
        / n
    )

    print(
        f"batch, vectorised           {batch:10.2f} s            1.0x   (rule states"
        f" {states:.2f} s, then {fired:,} decisions with their explanations)"
    )
    print(
        f"batch, per-patient loop     {loop:10.0f} s   {loop / batch:9.0f}x the vectorised time"
        f"   (extrapolated from {len(sample)} patients)"
    )
    print(
        f"streaming rules, per reading {stream * 1e6:9.0f} µs  {stream / floor:9.1f}x the parse"
        f" of one wire reading ({floor * 1e6:.0f} µs)"
    )
    if args.json:
        print(
            json.dumps(
                {
                    "patients": args.patients,
                    "days": args.days,
                    "bp_readings": len(bp),
                    "glucose_readings": len(glucose),
                    "batch_seconds": round(batch, 3),
                    "batch_states_seconds": round(states, 3),
                    "decisions": fired,
                    "loop_seconds_extrapolated": round(loop, 1),
                    "stream_microseconds": round(stream * 1e6, 1),
                    "wire_parse_microseconds": round(floor * 1e6, 1),
                }
            )
        )


if __name__ == "__main__":
    main()
