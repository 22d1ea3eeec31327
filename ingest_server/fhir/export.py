"""Builders of FHIR resources from profile rows. Pure: rows in, JSON-ready dicts out."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable, Sequence
from datetime import date, datetime
from typing import Any

from ingest_server.fhir import codes as c
from ingest_server.profile.models import (
    ConditionRow,
    ConsentRow,
    ContactRow,
    DeviceRow,
    GatewayRow,
    IdentifierRow,
    LifecycleAlertRow,
    PatientRow,
)
from ingest_server.profile.readings import FhirBloodPressureRow, FhirGlucoseRow

FHIR_JSON = "application/fhir+json"
#: Namespace of the ids we derive for resources that have no FHIR-valid id of their own.
_ID_NAMESPACE = uuid.UUID("0e6f6c2a-7d55-4c41-9f0e-7a2b3c4d5e6f")
_FHIR_ID = re.compile(r"^[A-Za-z0-9\-.]{1,64}$")

Json = dict[str, Any]


def fhir_id(kind: str, key: str) -> str:
    """A stable FHIR id: ``key`` itself when it is a valid id, else a UUID derived from it."""
    return key if _FHIR_ID.match(key) else str(uuid.uuid5(_ID_NAMESPACE, f"{kind}|{key}"))


def device_id(device_key: str) -> str:
    # Device keys contain "/" ("Acme/BP-1/SN"): always derived.
    return str(uuid.uuid5(_ID_NAMESPACE, f"device|{device_key}"))


def gateway_id(gateway: str) -> str:
    return str(uuid.uuid5(_ID_NAMESPACE, f"gateway|{gateway}"))


def _ref(kind: str, ident: str) -> Json:
    return {"reference": f"{kind}/{ident}"}


def _coding(triple: tuple[str, str, str]) -> Json:
    system, code, display = triple
    return {"system": system, "code": code, "display": display}


def _concept(*triples: tuple[str, str, str], text: str | None = None) -> Json:
    concept: Json = {"coding": [_coding(t) for t in triples]}
    if text:
        concept["text"] = text
    return concept


def _instant(t: datetime) -> str:
    return t.isoformat()


def _quantity(value: float, unit: str) -> Json:
    return {"value": round(float(value), 3), "unit": unit, "system": c.UCUM, "code": unit}


_ABSENT = {"coding": [{"system": c.DATA_ABSENT, "code": "error", "display": "Error"}]}


# --- Patient --------------------------------------------------------------------------------------


def patient(
    row: PatientRow, identifiers: Sequence[IdentifierRow], contacts: Sequence[ContactRow]
) -> Json:
    resource: Json = {
        "resourceType": "Patient",
        "id": fhir_id("patient", row.patient_id),
        "active": True,
        "identifier": [
            {"use": "usual", "system": c.SYSTEM_PATIENT_ID, "value": row.patient_id},
            *(_identifier(i) for i in identifiers),
        ],
        "name": [_name(row)],
    }
    if row.gender:
        resource["gender"] = row.gender
    if row.birth_date:
        resource["birthDate"] = row.birth_date.isoformat()
    own = [k for k in contacts if k.name is None]
    telecom = [_telecom(k) for k in own if k.kind != "address"]
    addresses = [_address(k) for k in own if k.kind == "address"]
    if telecom:
        resource["telecom"] = telecom
    if addresses:
        resource["address"] = addresses
    others = [_contact(k) for k in contacts if k.name is not None]
    if others:
        resource["contact"] = others
    return resource


def _identifier(i: IdentifierRow) -> Json:
    ident: Json = {"use": "official", "system": c.IDENTIFIER_SYSTEMS[i.system], "value": i.value}
    if i.assigner:
        ident["assigner"] = {"display": i.assigner}
    return ident


def _name(row: PatientRow) -> Json:
    name: Json = {"use": "official", "text": row.display_name}
    if row.family_name:
        name["family"] = row.family_name
    if row.given_name:
        name["given"] = [row.given_name]
    return name


def _telecom(k: ContactRow) -> Json:
    return {"system": k.kind, "value": k.value, "use": k.use}


def _address(k: ContactRow) -> Json:
    return {"use": "work" if k.use == "work" else "home", "text": k.value}


def _contact(k: ContactRow) -> Json:
    contact: Json = {"name": {"text": k.name}}
    if k.relationship:
        contact["relationship"] = [{"text": k.relationship}]
    if k.kind == "address":
        contact["address"] = _address(k)
    else:
        contact["telecom"] = [_telecom(k)]
    return contact


# --- Devices --------------------------------------------------------------------------------------


def device(row: DeviceRow, patient_id: str | None) -> Json:
    """The measuring device (cuff, meter); ``patient_id`` when it is bound to the patient now."""
    resource: Json = {
        "resourceType": "Device",
        "id": device_id(row.device_key),
        "identifier": [{"system": c.SYSTEM_DEVICE_KEY, "value": row.device_key}],
        "status": "active",
        "type": _concept(c.DEVICE_TYPE_SIMPLE),
    }
    if row.manufacturer:
        resource["manufacturer"] = row.manufacturer
    if row.model:
        resource["modelNumber"] = row.model
    if row.serial_number:
        resource["serialNumber"] = row.serial_number
    names = [n for n in (row.label, row.model) if n]
    if names:
        resource["deviceName"] = [{"name": names[0], "type": "user-friendly-name"}]
    if row.kind in c.DEVICE_SPECIALISATION:
        resource["specialization"] = [{"systemType": _concept(c.DEVICE_SPECIALISATION[row.kind])}]
    if row.firmware_revision:
        resource["version"] = [
            {"type": {"text": "firmware revision"}, "value": row.firmware_revision}
        ]
    if patient_id is not None:
        resource["patient"] = _ref("Patient", fhir_id("patient", patient_id))
    return resource


def gateway_device(row: GatewayRow, patient_id: str | None) -> Json:
    resource: Json = {
        "resourceType": "Device",
        "id": gateway_id(row.gateway_id),
        "identifier": [{"system": c.SYSTEM_GATEWAY_ID, "value": row.gateway_id}],
        "status": "active",
        "type": _concept(c.DEVICE_TYPE_GATEWAY),
        "deviceName": [{"name": row.label or row.gateway_id, "type": "user-friendly-name"}],
    }
    if patient_id is not None and row.patient_id == patient_id:
        resource["patient"] = _ref("Patient", fhir_id("patient", patient_id))
    return resource


# --- Observations ---------------------------------------------------------------------------------


def _observation_base(
    obs_id: str,
    identifier: str,
    patient_id: str,
    measured_at: datetime,
    device_key: str,
    gateway: str,
) -> Json:
    return {
        "resourceType": "Observation",
        "id": obs_id,
        "identifier": [{"system": c.RFC3986, "value": f"urn:uuid:{identifier}"}],
        "status": "final",
        "subject": _ref("Patient", fhir_id("patient", patient_id)),
        "effectiveDateTime": _instant(measured_at),
        "device": _ref("Device", device_id(device_key)),
        "extension": [
            {"url": c.EXT_GATEWAY_DEVICE, "valueReference": _ref("Device", gateway_id(gateway))}
        ],
    }


def _categories(vital_sign: bool) -> list[Json]:
    categories = [
        {
            "coding": [
                {"system": c.PHD_CATEGORY, "code": "phd", "display": "PHD generated Observation"}
            ]
        }
    ]
    if vital_sign:
        categories.insert(
            0,
            {
                "coding": [
                    {
                        "system": c.OBSERVATION_CATEGORY,
                        "code": "vital-signs",
                        "display": "Vital Signs",
                    }
                ]
            },
        )
    return categories


def _notes(flags: Iterable[str], time_source: str) -> list[Json]:
    notes = []
    flags = list(flags)
    if flags:
        notes.append({"text": "device measurement status: " + ", ".join(sorted(flags))})
    if time_source == "received":
        notes.append(
            {"text": "the device gave no usable time: effective time is when it was received"}
        )
    return notes


def heart_rate_id(reading_id: uuid.UUID) -> str:
    return str(uuid.uuid5(reading_id, c.HEART_RATE[0][1]))


def blood_pressure_observations(row: FhirBloodPressureRow, patient_id: str) -> list[Json]:
    """The blood-pressure panel (85354-9 with 8480-6 and 8462-4, and the mean when measured)
    and, when the cuff gave a pulse, a heart-rate observation (8867-4)."""
    obs = _observation_base(
        str(row.reading_id),
        str(row.reading_id),
        patient_id,
        row.measured_at,
        row.device_key,
        row.gateway_id,
    )
    obs["category"] = _categories(vital_sign=True)
    obs["code"] = _concept(c.BP_PANEL_LOINC, c.BP_PANEL_MDC)
    components = []
    for codes_, value in (
        (c.SYSTOLIC, row.systolic_mmhg),
        (c.DIASTOLIC, row.diastolic_mmhg),
        (c.MEAN_ARTERIAL, row.mean_arterial_mmhg),
    ):
        component: Json = {"code": _concept(*codes_)}
        if value is not None:
            component["valueQuantity"] = _quantity(value, "mm[Hg]")
        elif codes_ is c.MEAN_ARTERIAL:
            continue
        else:
            component["dataAbsentReason"] = _ABSENT
        components.append(component)
    obs["component"] = components
    notes = _notes(row.flags, row.time_source)
    if notes:
        obs["note"] = notes
    result = [obs]
    if row.pulse_bpm is not None:
        hr_id = heart_rate_id(row.reading_id)
        hr = _observation_base(
            hr_id, hr_id, patient_id, row.measured_at, row.device_key, row.gateway_id
        )
        hr["category"] = _categories(vital_sign=True)
        hr["code"] = _concept(*c.HEART_RATE)
        hr["valueQuantity"] = _quantity(row.pulse_bpm, "/min")
        hr["derivedFrom"] = [_ref("Observation", str(row.reading_id))]
        result.append(hr)
    return result


def _specimen_group(sample_type: str | None) -> str:
    if sample_type is None or sample_type.startswith(("capillary", "undetermined")):
        return "capillary"
    return "plasma" if sample_type.endswith("plasma") else "blood"


def glucose_observation(row: FhirGlucoseRow, patient_id: str) -> Json:
    """In the unit the meter reported (mass: mg/dL, molar: mmol/L), LOINC by specimen and MDC
    by sample type. A HI/LO result has no value: dataAbsentReason, with the meter's status."""
    obs = _observation_base(
        str(row.reading_id),
        str(row.reading_id),
        patient_id,
        row.measured_at,
        row.device_key,
        row.gateway_id,
    )
    obs["category"] = _categories(vital_sign=False)
    molar = row.reported_unit == "mol/L"
    loinc_code, loinc_display = c.GLUCOSE_LOINC[
        (_specimen_group(row.sample_type), "molar" if molar else "mass")
    ]
    mdc_code, mdc_display = c.GLUCOSE_MDC.get(row.sample_type or "", c.GLUCOSE_MDC_GENERIC)
    obs["code"] = _concept((c.LOINC, loinc_code, loinc_display), (c.MDC, mdc_code, mdc_display))
    value = row.mmol_per_l if molar else row.mg_per_dl
    if value is not None:
        obs["valueQuantity"] = _quantity(value, "mmol/L" if molar else "mg/dL")
    else:
        obs["dataAbsentReason"] = _ABSENT
    notes = _notes(row.sensor_status, row.time_source)
    if row.sample_location:
        notes.append({"text": f"sample location: {row.sample_location}"})
    if notes:
        obs["note"] = notes
    return obs


# --- Condition, Flag, Consent ---------------------------------------------------------------------


def condition(row: ConditionRow, patient_id: str) -> Json:
    resource: Json = {
        "resourceType": "Condition",
        "id": f"condition-{row.condition_id}",
        "clinicalStatus": {
            "coding": [{"system": c.CONDITION_CLINICAL, "code": row.clinical_status}]
        },
        "verificationStatus": {
            "coding": [{"system": c.CONDITION_VERIFICATION, "code": "confirmed"}]
        },
        "category": [{"coding": [{"system": c.CONDITION_CATEGORY, "code": "problem-list-item"}]}],
        "code": {
            "coding": [{"system": c.ICD10, "code": row.icd10_code, "display": row.display}],
            "text": row.display,
        },
        "subject": _ref("Patient", fhir_id("patient", patient_id)),
        "recordedDate": _instant(row.recorded_at),
    }
    if row.onset_date:
        resource["onsetDateTime"] = row.onset_date.isoformat()
    if row.programme:
        resource["note"] = [{"text": f"dispensary programme: {row.programme}"}]
    return resource


def flag(row: LifecycleAlertRow) -> Json:
    """An alert as a clinical Flag: active until resolved, priority from its severity, the
    evidence readings as flag-detail references."""
    extensions: list[Json] = [
        {
            "url": c.EXT_FLAG_PRIORITY,
            "valueCodeableConcept": {
                "coding": [
                    {"system": c.FLAG_PRIORITY_CODES, "code": c.FLAG_PRIORITY[row.severity]}
                ],
                "text": row.severity,
            },
        }
    ]
    for reading_id in row.evidence.get("reading_ids", [])[:50]:
        extensions.append(
            {
                "url": c.EXT_FLAG_DETAIL,
                "valueReference": _ref("Observation", fhir_id("observation", str(reading_id))),
            }
        )
    period: Json = {"start": _instant(row.first_seen_at)}
    if row.resolved_at is not None:
        period["end"] = _instant(row.resolved_at)
    return {
        "resourceType": "Flag",
        "id": f"alert-{row.alert_id}",
        "extension": extensions,
        "status": "inactive" if row.status == "resolved" else "active",
        "category": [
            {"coding": [{"system": c.FLAG_CATEGORY, "code": "clinical", "display": "Clinical"}]}
        ],
        "code": {
            "coding": [{"system": c.SYSTEM_ALERT_RULE, "code": row.rule_id, "display": row.title}],
            "text": f"{row.title}: {row.explanation}"[:1000],
        },
        "subject": _ref("Patient", fhir_id("patient", row.patient_id)),
        "period": period,
    }


def consent(row: ConsentRow) -> Json:
    purpose_code, purpose_display = c.PURPOSE_OF_USE[row.purpose]
    if row.grantee_kind == "organisation":
        actor_ref = {
            "type": "Organization",
            "identifier": {"system": c.SYSTEM_ORGANISATION_ID, "value": row.grantee_id},
        }
    else:
        actor_ref = {
            "type": "Practitioner",
            "identifier": {"system": c.SYSTEM_CLINICIAN_ID, "value": row.grantee_id},
        }
    period: Json = {"start": _instant(row.granted_at)}
    end = row.revoked_at or row.valid_until
    if end is not None:
        period["end"] = _instant(end)
    return {
        "resourceType": "Consent",
        "id": f"consent-{row.consent_id}",
        "status": "active" if row.state == "active" else "inactive",
        "scope": {"coding": [{"system": c.CONSENT_SCOPE, "code": "patient-privacy"}]},
        "category": [
            {"coding": [{"system": c.LOINC, "code": "59284-0", "display": "Patient Consent"}]}
        ],
        "patient": _ref("Patient", fhir_id("patient", row.patient_id)),
        "dateTime": _instant(row.granted_at),
        "policyRule": {"coding": [{"system": c.ACT_CODE, "code": "OPTIN"}]},
        "provision": {
            "type": "permit",
            "period": period,
            "actor": [
                {
                    "role": {
                        "coding": [
                            {
                                "system": c.PARTICIPATION_TYPE,
                                "code": "PRCP",
                                "display": "primary information recipient",
                            }
                        ]
                    },
                    "reference": actor_ref,
                }
            ],
            "purpose": [{"system": c.ACT_REASON, "code": purpose_code, "display": purpose_display}],
        },
    }


# --- Bundle, OperationOutcome ---------------------------------------------------------------------


def bundle(resources: Sequence[Json], base_url: str, *, total: int | None = None) -> Json:
    """A searchset Bundle (what a search and ``$everything`` return)."""
    return {
        "resourceType": "Bundle",
        "id": str(uuid.uuid4()),
        "type": "searchset",
        "total": len(resources) if total is None else total,
        "timestamp": _instant(datetime.now().astimezone()),
        "entry": [
            {
                "fullUrl": f"{base_url.rstrip('/')}/{r['resourceType']}/{r['id']}",
                "resource": r,
                "search": {"mode": "match"},
            }
            for r in resources
        ],
    }


def operation_outcome(code: str, diagnostics: str) -> Json:
    """What a FHIR endpoint answers with on an error (``code`` from the issue-type value set)."""
    return {
        "resourceType": "OperationOutcome",
        "issue": [{"severity": "error", "code": code, "diagnostics": diagnostics}],
    }


def as_date(value: date | None) -> str | None:
    return None if value is None else value.isoformat()
