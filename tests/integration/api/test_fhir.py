"""The FHIR export, validated with ``fhir.resources`` (its R4B models: R4 and R4B do not differ
for these resources) and checked for the PHD IG's codes, units, devices and identifiers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.condition import Condition
from fhir.resources.R4B.consent import Consent
from fhir.resources.R4B.device import Device
from fhir.resources.R4B.flag import Flag
from fhir.resources.R4B.observation import Observation
from fhir.resources.R4B.patient import Patient

from tests.integration.api.api_support import (
    World,
    add_alert,
    add_bp_reading,
    add_glucose_reading,
    audit_rows,
    minutes_ago,
)

MODELS = {
    "Patient": Patient,
    "Observation": Observation,
    "Device": Device,
    "Condition": Condition,
    "Flag": Flag,
    "Consent": Consent,
}
MDC = "urn:iso:std:iso:11073:10101"
LOINC = "http://loinc.org"


def codes(concept: dict[str, Any]) -> set[tuple[str, str]]:
    return {(c["system"], c["code"]) for c in concept["coding"]}


async def _seed(world: World, database_url: str) -> dict[str, Any]:
    http, admin = world.http, world.as_admin()
    await http.put(
        f"/admin/patients/{world.pat}",
        json={
            "display_name": "Pat Example",
            "given_name": "Pat",
            "family_name": "Example",
            "birth_date": "1956-03-14",
            "gender": "female",
            "timezone": "Europe/Berlin",
            "identifiers": [{"system": "national_insurance_number", "value": "NI-555"}],
            "contacts": [
                {"kind": "email", "value": "pat@example.org"},
                {"kind": "phone", "value": "+49 1", "name": "Sam", "relationship": "son"},
            ],
        },
        headers=admin,
    )
    await http.put(
        f"/admin/gateways/{'gw-fhir'}",
        json={"patient_id": world.pat, "label": "Home hub"},
        headers=admin,
    )
    for key, kind in (("Acme/BP-1/SN-F", "blood_pressure"), ("Acme/GL-1/SN-F", "glucose")):
        await http.put(
            "/admin/devices", json={"device_key": key, "kind": kind, "label": "Cuff"}, headers=admin
        )
        bound = await http.post(
            "/admin/bindings",
            json={
                "device_key": key,
                "patient_id": world.pat,
                "valid_from": (datetime.now(UTC) - timedelta(days=2)).isoformat(),
            },
            headers=admin,
        )
        assert bound.status_code == 201, bound.text
    consent = await world.grant(world.pat, "organisation", world.org_a)
    dr = world.as_clinician(world.alice)
    await http.post(
        f"/patients/{world.pat}/conditions",
        json={"icd10_code": "I10", "display": "Essential hypertension", "onset_date": "2019-05-01"},
        headers=dr,
    )
    bp = add_bp_reading(
        database_url,
        world.pat,
        minutes_ago(50),
        152,
        96,
        pulse=77,
        device_key="Acme/BP-1/SN-F",
        gateway_id="gw-fhir",
        flags=["irregular_pulse"],
    )
    failed = add_bp_reading(
        database_url,
        world.pat,
        minutes_ago(40),
        None,
        None,
        pulse=None,
        device_key="Acme/BP-1/SN-F",
        gateway_id="gw-fhir",
    )
    mmol = add_glucose_reading(
        database_url,
        world.pat,
        minutes_ago(30),
        5.5,
        device_key="Acme/GL-1/SN-F",
        gateway_id="gw-fhir",
    )
    mass = add_glucose_reading(
        database_url,
        world.pat,
        minutes_ago(20),
        7.0,
        sequence_number=2,
        reported_unit="kg/L",
        sample_type="venous_plasma",
        device_key="Acme/GL-1/SN-F",
        gateway_id="gw-fhir",
    )
    control = add_glucose_reading(
        database_url,
        world.pat,
        minutes_ago(10),
        6.0,
        sequence_number=3,
        control_solution=True,
        device_key="Acme/GL-1/SN-F",
        gateway_id="gw-fhir",
    )
    alert = add_alert(database_url, world.pat, severity="urgent", reading_ids=[bp])
    return {"bp": bp, "failed": failed, "mmol": mmol, "mass": mass, "control": control,
            "alert": alert, "consent": consent}  # fmt: skip


def _validated(resource: dict[str, Any]) -> Any:
    return MODELS[resource["resourceType"]].model_validate(resource)


async def test_patient_observations_and_everything_validate(
    world: World, database_url: str
) -> None:
    ids = await _seed(world, database_url)
    http, dr = world.http, world.as_clinician(world.alice)

    response = await http.get(f"/fhir/Patient/{world.pat}", headers=dr)
    assert (response.status_code, response.headers["content-type"]) == (
        200,
        "application/fhir+json",
    )
    patient = Patient.model_validate(response.json())
    assert (patient.gender, str(patient.birthDate)) == ("female", "1956-03-14")
    assert {(i.system, i.value) for i in patient.identifier} >= {
        ("urn:homewatch:identifier:national-insurance-number", "NI-555"),
        ("urn:homewatch:patient-id", world.pat),
    }
    assert patient.contact[0].name.text == "Sam" and patient.telecom[0].system == "email"

    response = await http.get(
        "/fhir/Observation", params={"patient": f"Patient/{world.pat}"}, headers=dr
    )
    assert response.status_code == 200, response.text
    bundle = Bundle.model_validate(response.json())
    observations = [e.resource for e in bundle.entry]
    assert bundle.type == "searchset" and bundle.total == len(observations) == 5
    by_id = {
        o.id: o.model_dump(mode="json", by_alias=True, exclude_none=True) for o in observations
    }
    assert str(ids["control"]) not in by_id  # a meter test is no observation of the patient

    panel = by_id[str(ids["bp"])]
    assert codes(panel["code"]) == {(LOINC, "85354-9"), (MDC, "150020")}
    assert {c["code"] for c in panel["category"][0]["coding"]} == {"vital-signs"}
    components = {tuple(sorted(codes(c["code"]))): c["valueQuantity"] for c in panel["component"]}
    assert components[((LOINC, "8480-6"), (MDC, "150021"))] == {
        "value": 152,
        "unit": "mm[Hg]",
        "system": "http://unitsofmeasure.org",
        "code": "mm[Hg]",
    }
    assert components[((LOINC, "8462-4"), (MDC, "150022"))]["value"] == 96
    assert panel["identifier"] == [
        {"system": "urn:ietf:rfc:3986", "value": f"urn:uuid:{ids['bp']}"}
    ]
    assert panel["device"]["reference"].startswith("Device/")
    assert (
        panel["extension"][0]["url"]
        == "http://hl7.org/fhir/StructureDefinition/observation-gatewayDevice"
    )
    assert "irregular_pulse" in panel["note"][0]["text"]
    [heart_rate] = [
        o for o in by_id.values() if codes(o["code"]) == {(LOINC, "8867-4"), (MDC, "149546")}
    ]
    assert (
        heart_rate["valueQuantity"]["code"] == "/min" and heart_rate["valueQuantity"]["value"] == 77
    )
    failed = by_id[str(ids["failed"])]
    assert all("dataAbsentReason" in c for c in failed["component"])
    molar = by_id[str(ids["mmol"])]
    assert codes(molar["code"]) == {(LOINC, "14743-9"), (MDC, "160196")}
    assert (molar["valueQuantity"]["value"], molar["valueQuantity"]["code"]) == (5.5, "mmol/L")
    mass = by_id[str(ids["mass"])]
    assert codes(mass["code"]) == {(LOINC, "2345-7"), (MDC, "160204")}
    assert mass["valueQuantity"]["code"] == "mg/dL"

    window = {
        "patient": world.pat,
        "date": [f"ge{minutes_ago(45).isoformat()}", f"lt{minutes_ago(25).isoformat()}"],
    }
    windowed = (await http.get("/fhir/Observation", params=window, headers=dr)).json()
    assert [e["resource"]["id"] for e in windowed["entry"]] == [
        str(ids["mmol"]),
        str(ids["failed"]),
    ]

    response = await http.get(f"/fhir/Patient/{world.pat}/$everything", headers=dr)
    assert response.status_code == 200, response.text
    everything = Bundle.model_validate(response.json())
    resources = [e.resource for e in everything.entry]
    for r in resources:  # each entry, validated as its own type too
        _validated(r.model_dump(mode="json", by_alias=True, exclude_none=True))
    kinds = [r.get_resource_type() for r in resources]
    assert kinds.count("Patient") == 1 and kinds.count("Observation") == 5
    devices = [r for r in resources if r.get_resource_type() == "Device"]
    types = sorted(d.type.coding[0].code for d in devices)
    assert types == ["531981", "65573", "65573"]  # the gateway, the cuff, the meter
    gateway = next(d for d in devices if d.type.coding[0].code == "531981")
    assert gateway.identifier[0].value == "gw-fhir"
    assert all(
        e.fullUrl.endswith(f"{e.resource.get_resource_type()}/{e.resource.id}")
        for e in everything.entry
    )
    [condition] = [r for r in resources if r.get_resource_type() == "Condition"]
    assert (condition.code.coding[0].system, condition.code.coding[0].code) == (
        "http://hl7.org/fhir/sid/icd-10",
        "I10",
    )
    [flag] = [r for r in resources if r.get_resource_type() == "Flag"]
    assert flag.status == "active" and flag.id == f"alert-{ids['alert']}"
    flag_json = flag.model_dump(mode="json", exclude_none=True)
    assert {
        "url": "http://hl7.org/fhir/StructureDefinition/flag-detail",
        "valueReference": {"reference": f"Observation/{ids['bp']}"},
    } in flag_json["extension"]
    [consent] = [r for r in resources if r.get_resource_type() == "Consent"]
    assert consent.status == "active" and consent.provision.purpose[0].code == "TREAT"
    # Every FHIR read is audited like any other.
    actions = [row[2] for row in audit_rows(database_url, world.pat)]
    assert {"fhir read Patient", "fhir search Observation", "fhir Patient $everything"} <= set(
        actions
    )


async def test_fhir_errors_are_operation_outcomes(world: World, database_url: str) -> None:
    http = world.http
    response = await http.get(f"/fhir/Patient/{world.pat}", headers=world.as_clinician(world.bob))
    assert response.status_code == 403
    assert response.headers["content-type"] == "application/fhir+json"
    assert response.json()["resourceType"] == "OperationOutcome"
    assert response.json()["issue"][0]["code"] == "forbidden"
    me = world.as_patient(world.pat)
    for params in (
        {"patient": world.pat, "date": "eq2024-01-01"},
        {"patient": world.pat, "date": "geyesterday"},
        {"patient": world.pat, "_count": 0},
        {},
    ):
        response = await http.get("/fhir/Observation", params=params, headers=me)
        assert response.status_code == 422, params
        assert response.json()["resourceType"] == "OperationOutcome"
    missing = await http.get("/fhir/Patient/nobody", headers=world.as_patient("nobody"))
    assert (missing.status_code, missing.json()["issue"][0]["code"]) == (404, "not-found")
