"""The clinical part of the profile: conditions and programmes, targets and schedule (with their
history), medications, risk factors, the patient's own notes and symptoms, clinician notes."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date, datetime

from alerting.profiles import PatientProfile
from ingest_server import db
from ingest_server.db import Connection
from ingest_server.profile import programmes
from ingest_server.profile.errors import InvalidValue, NotFound
from ingest_server.profile.models import (
    ClinicianNoteRow,
    ConditionRow,
    EntryRow,
    MedicationRow,
    RiskFactorRow,
    ScheduleRow,
    TargetRow,
)
from ingest_server.profile.patients import require_patient

log = logging.getLogger(__name__)

_CONDITION = """condition_id, icd10_code, display, programme, onset_date, clinical_status,
                recorded_at, recorded_by"""
INSERT_CONDITION = f"""
INSERT INTO conditions (patient_id, icd10_code, display, programme, onset_date, clinical_status,
                        recorded_by)
VALUES (%s, %s, %s, %s, %s, %s, %s) RETURNING {_CONDITION}
"""
LIST_CONDITIONS = f"SELECT {_CONDITION} FROM conditions WHERE patient_id = %s ORDER BY condition_id"

_TARGET = "target_id, name, value, unit, note, set_by, set_at"
INSERT_TARGET = f"""
INSERT INTO patient_targets (patient_id, name, value, unit, note, set_by)
VALUES (%s, %s, %s, %s, %s, %s) RETURNING {_TARGET}
"""
CURRENT_TARGETS = f"""
SELECT DISTINCT ON (name) {_TARGET} FROM patient_targets WHERE patient_id = %s
ORDER BY name, set_at DESC, target_id DESC
"""
TARGET_HISTORY = f"SELECT {_TARGET} FROM patient_targets WHERE patient_id = %s ORDER BY target_id"

_SCHEDULE = "schedule_id, metric, per_week, note, set_by, set_at"
INSERT_SCHEDULE = f"""
INSERT INTO patient_schedule (patient_id, metric, per_week, note, set_by)
VALUES (%s, %s, %s, %s, %s) RETURNING {_SCHEDULE}
"""
CURRENT_SCHEDULE = f"""
SELECT DISTINCT ON (metric) {_SCHEDULE} FROM patient_schedule WHERE patient_id = %s
ORDER BY metric, set_at DESC, schedule_id DESC
"""

_MEDICATION = """medication_id, name, atc_code, dose, frequency, start_date, end_date,
                 prescribed_by, recorded_at"""
INSERT_MEDICATION = f"""
INSERT INTO medications (patient_id, name, atc_code, dose, frequency, start_date, end_date,
                         prescribed_by)
VALUES (%s, %s, %s, %s, %s, %s, %s, %s) RETURNING {_MEDICATION}
"""
LIST_MEDICATIONS = (
    f"SELECT {_MEDICATION} FROM medications WHERE patient_id = %s ORDER BY medication_id"
)

_RISK = "risk_factor_id, code, note, recorded_at, recorded_by"
INSERT_RISK = f"""
INSERT INTO risk_factors (patient_id, code, note, recorded_by) VALUES (%s, %s, %s, %s)
RETURNING {_RISK}
"""
LIST_RISKS = f"SELECT {_RISK} FROM risk_factors WHERE patient_id = %s ORDER BY risk_factor_id"

_ENTRY = "entry_id, kind, symptom, text, occurred_at, created_at"
INSERT_ENTRY = f"""
INSERT INTO patient_entries (patient_id, kind, symptom, text, occurred_at)
VALUES (%s, %s, %s, %s, %s) RETURNING {_ENTRY}
"""
LIST_ENTRIES = f"""
SELECT {_ENTRY} FROM patient_entries WHERE patient_id = %s
ORDER BY created_at DESC, entry_id DESC LIMIT %s
"""

_NOTE = "note_id, clinician_id, alert_id, text, created_at"
INSERT_NOTE = f"""
INSERT INTO clinician_notes (patient_id, clinician_id, alert_id, text) VALUES (%s, %s, %s, %s)
RETURNING {_NOTE}
"""
LIST_NOTES = f"""
SELECT {_NOTE} FROM clinician_notes WHERE patient_id = %s
ORDER BY created_at DESC, note_id DESC LIMIT %s
"""
ALERT_OF_PATIENT = "SELECT 1 FROM alerts WHERE alert_id = %s AND patient_id = %s"


# --- conditions -----------------------------------------------------------------------------------


async def add_condition(
    conn: Connection,
    patient_id: str,
    *,
    icd10_code: str,
    display: str,
    onset_date: date | None,
    clinical_status: str,
    actor: str,
) -> ConditionRow:
    code = icd10_code.strip().upper()
    row = await db.fetch_one(
        conn,
        INSERT_CONDITION,
        (
            patient_id,
            code,
            display,
            programmes.programme_for(code),
            onset_date,
            clinical_status,
            actor,
        ),
        ConditionRow,
    )
    assert row is not None
    return row


async def conditions(conn: Connection, patient_id: str) -> list[ConditionRow]:
    return await db.fetch_all(conn, LIST_CONDITIONS, (patient_id,), ConditionRow)


# --- targets and schedule -------------------------------------------------------------------------


async def set_target(
    conn: Connection,
    patient_id: str,
    *,
    name: str,
    value: float | None,
    note: str | None,
    actor: str,
) -> TargetRow:
    """Set (or with ``value`` None, clear) a per-patient target; the old value stays in the
    history. ``InvalidValue`` for an unknown target or a value out of its range."""
    unit = programmes.check_target(name, value)
    row = await db.fetch_one(
        conn, INSERT_TARGET, (patient_id, name, value, unit, note, actor), TargetRow
    )
    assert row is not None
    return row


async def current_targets(conn: Connection, patient_id: str) -> list[TargetRow]:
    """Targets in force (cleared ones left out)."""
    rows = await db.fetch_all(conn, CURRENT_TARGETS, (patient_id,), TargetRow)
    return [r for r in rows if r.value is not None]


async def target_history(conn: Connection, patient_id: str) -> list[TargetRow]:
    return await db.fetch_all(conn, TARGET_HISTORY, (patient_id,), TargetRow)


async def set_schedule(
    conn: Connection,
    patient_id: str,
    *,
    metric: str,
    per_week: float | None,
    note: str | None,
    actor: str,
) -> ScheduleRow:
    row = await db.fetch_one(
        conn, INSERT_SCHEDULE, (patient_id, metric, per_week, note, actor), ScheduleRow
    )
    assert row is not None
    return row


async def current_schedule(conn: Connection, patient_id: str) -> list[ScheduleRow]:
    rows = await db.fetch_all(conn, CURRENT_SCHEDULE, (patient_id,), ScheduleRow)
    return [r for r in rows if r.per_week is not None]


async def load_patient_profile(conn: Connection, patient_id: str) -> PatientProfile:
    """The rules' view of the patient (``alerting.PatientProfile``): active conditions, targets
    and schedule in force, time zone, enrolment time. ``NotFound`` for an unknown patient."""
    patient = await require_patient(conn, patient_id)
    codes = [
        c.icd10_code for c in await conditions(conn, patient_id) if c.clinical_status != "resolved"
    ]
    targets = []
    for t in await current_targets(conn, patient_id):
        try:
            programmes.check_target(t.name, t.value)
        except InvalidValue as exc:
            # Set under an older rule set that no longer has (or bounds differently) this
            # target: the profile stays readable, the rules use their default.
            log.warning("patient %s: stored target %s ignored: %s", patient_id, t.name, exc)
            continue
        assert t.value is not None
        targets.append(programmes.StoredTarget(t.name, t.value, t.set_by, t.set_at, t.note))
    schedule = {
        s.metric: s.per_week
        for s in await current_schedule(conn, patient_id)
        if s.per_week is not None
    }
    return programmes.patient_profile(
        patient_id, codes, targets, schedule, patient.timezone, patient.created_at
    )


# --- medications, risk factors --------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class NewMedication:
    name: str
    atc_code: str | None = None
    dose: str | None = None
    frequency: str | None = None
    start_date: date | None = None
    end_date: date | None = None


async def add_medication(
    conn: Connection, patient_id: str, new: NewMedication, actor: str
) -> MedicationRow:
    row = await db.fetch_one(
        conn,
        INSERT_MEDICATION,
        (
            patient_id,
            new.name,
            new.atc_code,
            new.dose,
            new.frequency,
            new.start_date,
            new.end_date,
            actor,
        ),
        MedicationRow,
    )
    assert row is not None
    return row


async def medications(conn: Connection, patient_id: str) -> list[MedicationRow]:
    return await db.fetch_all(conn, LIST_MEDICATIONS, (patient_id,), MedicationRow)


async def add_risk_factor(
    conn: Connection, patient_id: str, *, code: str, note: str | None, actor: str
) -> RiskFactorRow:
    row = await db.fetch_one(conn, INSERT_RISK, (patient_id, code, note, actor), RiskFactorRow)
    assert row is not None
    return row


async def risk_factors(conn: Connection, patient_id: str) -> list[RiskFactorRow]:
    return await db.fetch_all(conn, LIST_RISKS, (patient_id,), RiskFactorRow)


# --- notes ----------------------------------------------------------------------------------------


async def add_entry(
    conn: Connection,
    patient_id: str,
    *,
    kind: str,
    symptom: str | None,
    text: str,
    occurred_at: datetime | None,
) -> EntryRow:
    row = await db.fetch_one(
        conn, INSERT_ENTRY, (patient_id, kind, symptom, text, occurred_at), EntryRow
    )
    assert row is not None
    return row


async def entries(conn: Connection, patient_id: str, *, limit: int = 100) -> list[EntryRow]:
    return await db.fetch_all(conn, LIST_ENTRIES, (patient_id, limit), EntryRow)


async def add_clinician_note(
    conn: Connection, patient_id: str, *, clinician_id: str, text: str, alert_id: int | None
) -> ClinicianNoteRow:
    if alert_id is not None and not await db.fetch_tuples(
        conn, ALERT_OF_PATIENT, (alert_id, patient_id)
    ):
        raise NotFound("alert of this patient", alert_id)
    row = await db.fetch_one(
        conn, INSERT_NOTE, (patient_id, clinician_id, alert_id, text), ClinicianNoteRow
    )
    assert row is not None
    return row


async def clinician_notes(
    conn: Connection, patient_id: str, *, limit: int = 100
) -> list[ClinicianNoteRow]:
    return await db.fetch_all(conn, LIST_NOTES, (patient_id, limit), ClinicianNoteRow)
