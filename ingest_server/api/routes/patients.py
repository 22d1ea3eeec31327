"""A patient's digital medical profile: read it whole, and change its clinical parts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Query, status
from pydantic import AwareDatetime

from ingest_server import db
from ingest_server.api.deps import ConnectionDep, Grant, PatientGrant
from ingest_server.api.schemas import profile as m
from ingest_server.api.schemas.alerts import ReadingSummary
from ingest_server.auth.principal import Role
from ingest_server.profile import care, clinical, devices, patients, programmes, readings
from ingest_server.profile.errors import InvalidValue
from ingest_server.profile.readings import Bucket

router = APIRouter(prefix="/patients/{patient_id}", tags=["profile"])

#: Most buckets one summary returns.
MAX_BUCKETS = 1000


async def load_programmes(conn: db.Connection, patient_id: str) -> m.Programmes:
    profile = await clinical.load_patient_profile(conn, patient_id)
    return m.Programmes(
        programmes=list(programmes.catalogue().programmes_for(profile)),
        schedule_per_week=programmes.effective_schedule(profile),
        targets=[
            m.Target.model_validate(t) for t in await clinical.current_targets(conn, patient_id)
        ],
        schedule=[
            m.ScheduleEntry.model_validate(s)
            for s in await clinical.current_schedule(conn, patient_id)
        ],
        history=[
            m.Target.model_validate(t) for t in await clinical.target_history(conn, patient_id)
        ],
    )


@router.get("/profile", response_model=m.Profile)
async def get_profile(
    grant: Annotated[Grant, PatientGrant("read profile")], conn: ConnectionDep
) -> m.Profile:
    """Everything the profile holds about the patient, in one document."""
    pid = grant.patient_id
    async with db.transaction(conn):
        patient = await patients.require_patient(conn, pid)
        return m.Profile(
            patient=m.Demographics.model_validate(patient),
            identifiers=[
                m.Identifier.model_validate(r) for r in await patients.identifiers(conn, pid)
            ],
            contacts=[m.Contact.model_validate(r) for r in await patients.contacts(conn, pid)],
            conditions=[
                m.Condition.model_validate(r) for r in await clinical.conditions(conn, pid)
            ],
            programmes=await load_programmes(conn, pid),
            medications=[
                m.Medication.model_validate(r) for r in await clinical.medications(conn, pid)
            ],
            risk_factors=[
                m.RiskFactor.model_validate(r) for r in await clinical.risk_factors(conn, pid)
            ],
            entries=[m.Entry.model_validate(r) for r in await clinical.entries(conn, pid)],
            clinician_notes=[
                m.ClinicianNote.model_validate(r) for r in await clinical.clinician_notes(conn, pid)
            ],
            care_team=[
                m.CareTeamMember.model_validate(r)
                for r in await care.care_team(conn, pid, history=True)
            ],
            consents=[m.Consent.model_validate(r) for r in await care.consents(conn, pid)],
            devices=[m.Device.model_validate(r) for r in await devices.patient_devices(conn, pid)],
            bindings=[
                m.Binding.model_validate(r) for r in await devices.patient_bindings(conn, pid)
            ],
            gateways=[
                m.Gateway.model_validate(r) for r in await devices.patient_gateways(conn, pid)
            ],
        )


@router.get("/programmes", response_model=m.Programmes)
async def get_programmes(
    grant: Annotated[Grant, PatientGrant("read programmes")], conn: ConnectionDep
) -> m.Programmes:
    """Programmes, schedule and targets in force, and who set which target when."""
    return await load_programmes(conn, grant.patient_id)


@router.post("/conditions", response_model=m.Condition, status_code=status.HTTP_201_CREATED)
async def add_condition(
    body: m.ConditionIn,
    grant: Annotated[Grant, PatientGrant("add condition", Role.CLINICIAN)],
    conn: ConnectionDep,
) -> m.Condition:
    """Record a chronic condition (ICD-10); its dispensary programme follows from the code."""
    row = await clinical.add_condition(
        conn,
        grant.patient_id,
        icd10_code=body.icd10_code,
        display=body.display,
        onset_date=body.onset_date,
        clinical_status=body.clinical_status,
        actor=grant.principal.actor,
    )
    return m.Condition.model_validate(row)


@router.put("/targets", response_model=m.Programmes)
async def set_target(
    body: m.TargetIn,
    grant: Annotated[Grant, PatientGrant("set target", Role.CLINICIAN)],
    conn: ConnectionDep,
) -> m.Programmes:
    """Override a programme target for this patient (who and when are kept with it)."""
    async with db.transaction(conn):
        await clinical.set_target(
            conn,
            grant.patient_id,
            name=body.name,
            value=body.value,
            note=body.note,
            actor=grant.principal.actor,
        )
        return await load_programmes(conn, grant.patient_id)


@router.put("/schedule", response_model=m.Programmes)
async def set_schedule(
    body: m.ScheduleIn,
    grant: Annotated[Grant, PatientGrant("set schedule", Role.CLINICIAN)],
    conn: ConnectionDep,
) -> m.Programmes:
    """Set the patient's own measurement schedule for one metric."""
    async with db.transaction(conn):
        await clinical.set_schedule(
            conn,
            grant.patient_id,
            metric=body.metric,
            per_week=body.per_week,
            note=body.note,
            actor=grant.principal.actor,
        )
        return await load_programmes(conn, grant.patient_id)


@router.post("/medications", response_model=m.Medication, status_code=status.HTTP_201_CREATED)
async def add_medication(
    body: m.MedicationIn,
    grant: Annotated[Grant, PatientGrant("add medication", Role.CLINICIAN)],
    conn: ConnectionDep,
) -> m.Medication:
    if body.start_date and body.end_date and body.end_date < body.start_date:
        raise InvalidValue("end_date", "end_date is before start_date")
    new = clinical.NewMedication(
        name=body.name,
        atc_code=body.atc_code,
        dose=body.dose,
        frequency=body.frequency,
        start_date=body.start_date,
        end_date=body.end_date,
    )
    row = await clinical.add_medication(conn, grant.patient_id, new, grant.principal.actor)
    return m.Medication.model_validate(row)


@router.post("/risk-factors", response_model=m.RiskFactor, status_code=status.HTTP_201_CREATED)
async def add_risk_factor(
    body: m.RiskFactorIn,
    grant: Annotated[Grant, PatientGrant("add risk factor", Role.CLINICIAN)],
    conn: ConnectionDep,
) -> m.RiskFactor:
    row = await clinical.add_risk_factor(
        conn, grant.patient_id, code=body.code, note=body.note, actor=grant.principal.actor
    )
    return m.RiskFactor.model_validate(row)


@router.post("/notes", response_model=m.ClinicianNote, status_code=status.HTTP_201_CREATED)
async def add_clinician_note(
    body: m.ClinicianNoteIn,
    grant: Annotated[Grant, PatientGrant("add clinician note", Role.CLINICIAN)],
    conn: ConnectionDep,
) -> m.ClinicianNote:
    row = await clinical.add_clinician_note(
        conn,
        grant.patient_id,
        clinician_id=grant.principal.subject,
        text=body.text,
        alert_id=body.alert_id,
    )
    return m.ClinicianNote.model_validate(row)


@router.post("/entries", response_model=m.Entry, status_code=status.HTTP_201_CREATED)
async def add_entry(
    body: m.EntryIn,
    grant: Annotated[Grant, PatientGrant("add own entry", Role.PATIENT)],
    conn: ConnectionDep,
) -> m.Entry:
    """A patient writes a note or reports a symptom."""
    if (body.kind == "symptom") != (body.symptom is not None):
        raise InvalidValue("symptom", "a symptom entry names its symptom; a note names none")
    if body.occurred_at is not None and body.occurred_at > datetime.now(UTC) + timedelta(minutes=5):
        raise InvalidValue("occurred_at", "occurred_at is in the future")
    row = await clinical.add_entry(
        conn,
        grant.patient_id,
        kind=body.kind,
        symptom=body.symptom,
        text=body.text,
        occurred_at=body.occurred_at,
    )
    return m.Entry.model_validate(row)


@router.get("/readings/summary", response_model=ReadingSummary)
async def readings_summary(
    grant: Annotated[Grant, PatientGrant("read readings summary")],
    conn: ConnectionDep,
    since: Annotated[AwareDatetime, Query(description="measured_at >= since")],
    until: Annotated[AwareDatetime, Query(description="measured_at < until")],
    bucket: Annotated[
        Bucket, Query(description="Aggregation interval, in the patient's local time")
    ] = Bucket.DAY,
) -> ReadingSummary:
    """Readings between ``since`` and ``until`` aggregated per hour, day or week."""
    if until <= since:
        raise InvalidValue("until", "until must be after since")
    if (until - since) / bucket.length > MAX_BUCKETS:
        raise InvalidValue("bucket", f"more than {MAX_BUCKETS} buckets: choose a longer bucket")
    patient = await patients.require_patient(conn, grant.patient_id)
    tz = patient.timezone
    bp = await readings.blood_pressure_summary(
        conn, grant.patient_id, since=since, until=until, bucket=bucket, tz=tz
    )
    gl = await readings.glucose_summary(
        conn, grant.patient_id, since=since, until=until, bucket=bucket, tz=tz
    )
    return ReadingSummary.model_validate(
        {"timezone": tz, "bucket": bucket.value, "blood_pressure": bp, "glucose": gl},
        from_attributes=True,
    )
