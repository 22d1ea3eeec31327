"""The demo cohort: three patients of a hypertension programme, each with a cuff.

One is well controlled, one runs high without a crisis, one has a hypertensive crisis on the
first evening (re-measured 5 minutes later, as the guideline asks).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time, timedelta

from device_simulators.bp_cuff import CuffIdentity
from device_simulators.patients import BloodPressureBaseline, CrisisEpisode, VirtualPatient

MANUFACTURER = "Homewatch Simulated"
MODEL = "BP-Sim 1"


@dataclass(frozen=True, slots=True)
class CohortMember:
    patient: VirtualPatient
    cuff: CuffIdentity


def demo_start(now: datetime, days_back: int = 3) -> datetime:
    """Where the demo's virtual clock starts: a few days ago, just before the morning readings."""
    day = (now - timedelta(days=days_back)).date()
    return datetime.combine(day, time(6, 58), now.tzinfo)


def demo_cohort(start: datetime, seed: int = 7) -> list[CohortMember]:
    first_evening = datetime.combine(start.date(), time(19, 30), start.tzinfo)
    patients = [
        VirtualPatient("p-0001", "Anna Petrova", BloodPressureBaseline(122, 78, 68), seed=seed),
        VirtualPatient("p-0002", "Boris Ivanov", BloodPressureBaseline(148, 93, 76), seed=seed + 1),
        VirtualPatient(
            "p-0003",
            "Vera Sokolova",
            BloodPressureBaseline(156, 96, 80),
            crises=(CrisisEpisode(first_evening, systolic=196, diastolic=124),),
            seed=seed + 2,
        ),
    ]
    return [
        CohortMember(
            p,
            CuffIdentity(
                name=f"BP-Sim {p.patient_id[-4:]}",
                manufacturer=MANUFACTURER,
                model=MODEL,
                serial_number=f"SIM-BP-{p.patient_id[-4:]}",
                firmware_revision="1.0.0",
            ),
        )
        for p in patients
    ]
