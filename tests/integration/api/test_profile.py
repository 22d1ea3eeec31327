"""The profile through the API: registration by an admin, the clinical parts a clinician
changes (with who/when), what the patient writes, the whole profile, programmes and targets,
the clinician's patient list and the reading summaries."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tests.integration.api.api_support import (
    World,
    add_alert,
    add_bp_reading,
    add_glucose_reading,
    minutes_ago,
    sql,
)


async def test_admin_registers_identity_demographics_and_contacts(world: World) -> None:
    http, admin = world.http, world.as_admin()
    body = {
        "display_name": "Pat Example",
        "given_name": "Pat",
        "family_name": "Example",
        "birth_date": "1956-03-14",
        "gender": "female",
        "timezone": "Europe/Berlin",
        "identifiers": [
            {"system": "national_insurance_number", "value": "123-456-789 01"},
            {"system": "health_insurance_policy", "value": "POL/77", "assigner": "Acme Insurance"},
        ],
        "contacts": [
            {"kind": "phone", "value": "+49 30 1234567", "use": "mobile"},
            {
                "kind": "phone",
                "value": "+49 30 7654321",
                "name": "Sam Example",
                "relationship": "son",
            },
        ],
    }
    response = await http.put(f"/admin/patients/{world.pat}", json=body, headers=admin)
    assert response.status_code == 200, response.text
    assert response.json()["birth_date"] == "1956-03-14"
    # An identifier names one patient only.
    taken = {"display_name": "Someone", "identifiers": [body["identifiers"][0]]}
    assert (
        await http.put(f"/admin/patients/{world.other}", json=taken, headers=admin)
    ).status_code == 409
    for bad in (
        {"display_name": "X", "timezone": "Mars/Olympus"},
        {"display_name": "X", "birth_date": "2999-01-01"},
        {"display_name": "X", "gender": "robot"},
        {"display_name": "X", "identifiers": [{"system": "passport", "value": "1"}]},
        {"display_name": "X", "unexpected": 1},
        {"display_name": ""},
    ):
        assert (
            await http.put(f"/admin/patients/{world.other}", json=bad, headers=admin)
        ).status_code == 422, bad

    profile = (
        await http.get(f"/patients/{world.pat}/profile", headers=world.as_patient(world.pat))
    ).json()
    assert profile["patient"]["family_name"] == "Example"
    assert {(i["system"], i["value"]) for i in profile["identifiers"]} == {
        ("national_insurance_number", "123-456-789 01"),
        ("health_insurance_policy", "POL/77"),
    }
    assert [(c["value"], c["name"]) for c in profile["contacts"]] == [
        ("+49 30 1234567", None),
        ("+49 30 7654321", "Sam Example"),
    ]
    assert {m["clinician_id"] for m in profile["care_team"]} == {world.alice, world.carol}


async def test_clinician_maintains_the_clinical_profile(world: World) -> None:
    http = world.http
    await world.grant(world.pat, "organisation", world.org_a)
    dr = world.as_clinician(world.alice)
    base = f"/patients/{world.pat}"

    conditions = [
        {"icd10_code": "I10", "display": "Essential hypertension", "onset_date": "2019-05-01"},
        {"icd10_code": "E11.9", "display": "Type 2 diabetes mellitus without complications"},
        {"icd10_code": "J45", "display": "Asthma"},
    ]
    programmes = []
    for body in conditions:
        response = await http.post(f"{base}/conditions", json=body, headers=dr)
        assert response.status_code == 201, response.text
        programmes.append(response.json()["programme"])
    assert programmes == ["hypertension", "diabetes_type_2", None]

    catalogue = (await http.get("/targets/catalogue", headers=dr)).json()
    systolic = next(t for t in catalogue if t["name"] == "home_systolic_mmhg")
    response = await http.put(
        f"{base}/targets",
        json={"name": "home_systolic_mmhg", "value": 130, "note": "diabetic"},
        headers=dr,
    )
    assert response.status_code == 200, response.text
    state = response.json()
    assert [(t["name"], t["value"], t["set_by"]) for t in state["targets"]] == [
        ("home_systolic_mmhg", 130.0, f"clinician:{world.alice}")
    ]
    assert state["programmes"] == ["diabetes_type_2", "hypertension"]
    assert state["schedule_per_week"] == {"glucose_per_week": 7.0, "blood_pressure_per_week": 14.0}
    for bad in (
        {"name": "home_systolic_mmhg", "value": systolic["high"] + 1},
        {"name": "no_such_target", "value": 1},
        {"name": "home_systolic_mmhg", "value": "NaN"},
    ):
        assert (await http.put(f"{base}/targets", json=bad, headers=dr)).status_code == 422, bad
    # A later value replaces it, the old one stays in the history; null goes back to default.
    await http.put(f"{base}/targets", json={"name": "home_systolic_mmhg", "value": 125}, headers=dr)
    cleared = await http.put(
        f"{base}/targets", json={"name": "home_systolic_mmhg", "value": None}, headers=dr
    )
    assert cleared.json()["targets"] == []
    assert [t["value"] for t in cleared.json()["history"]] == [130.0, 125.0, None]

    schedule = await http.put(
        f"{base}/schedule", json={"metric": "blood_pressure_per_week", "per_week": 28}, headers=dr
    )
    assert schedule.json()["schedule_per_week"]["blood_pressure_per_week"] == 28.0

    assert (
        await http.post(
            f"{base}/medications",
            json={
                "name": "Amlodipine",
                "atc_code": "C08CA01",
                "dose": "5 mg",
                "frequency": "once daily",
                "start_date": "2024-01-01",
            },
            headers=dr,
        )
    ).status_code == 201
    assert (
        await http.post(
            f"{base}/medications",
            json={"name": "X", "start_date": "2024-02-01", "end_date": "2024-01-01"},
            headers=dr,
        )
    ).status_code == 422
    assert (
        await http.post(
            f"{base}/risk-factors", json={"code": "smoking", "note": "10/day"}, headers=dr
        )
    ).status_code == 201
    note = await http.post(f"{base}/notes", json={"text": "Discussed salt intake."}, headers=dr)
    assert note.status_code == 201 and note.json()["clinician_id"] == world.alice
    assert (
        await http.post(f"{base}/notes", json={"text": "x", "alert_id": 999999}, headers=dr)
    ).status_code == 404

    # The patient writes their own entries; a clinician cannot write them, nor the reverse.
    me = world.as_patient(world.pat)
    symptom = {"kind": "symptom", "symptom": "headache", "text": "since the morning",
               "occurred_at": (datetime.now(UTC) - timedelta(hours=2)).isoformat()}  # fmt: skip
    assert (await http.post(f"{base}/entries", json=symptom, headers=me)).status_code == 201
    assert (
        await http.post(f"{base}/entries", json={"kind": "symptom", "text": "?"}, headers=me)
    ).status_code == 422
    assert (await http.post(f"{base}/entries", json=symptom, headers=dr)).status_code == 403
    assert (
        await http.post(f"{base}/conditions", json=conditions[0], headers=me)
    ).status_code == 403

    profile = (await http.get(f"{base}/profile", headers=dr)).json()
    assert [c["icd10_code"] for c in profile["conditions"]] == ["I10", "E11.9", "J45"]
    assert [(m["name"], m["prescribed_by"]) for m in profile["medications"]] == [
        ("Amlodipine", f"clinician:{world.alice}")
    ]
    assert [r["code"] for r in profile["risk_factors"]] == ["smoking"]
    assert [(e["kind"], e["symptom"]) for e in profile["entries"]] == [("symptom", "headache")]
    assert [n["text"] for n in profile["clinician_notes"]] == ["Discussed salt intake."]
    assert [c["grantee_id"] for c in profile["consents"]] == [world.org_a]


async def test_my_patients_with_worst_alert_last_reading_and_adherence(
    world: World, database_url: str
) -> None:
    http = world.http
    dr = world.as_clinician(world.alice)
    await world.grant(world.pat, "organisation", world.org_a)
    await http.post(
        f"/patients/{world.pat}/conditions",
        json={"icd10_code": "I10", "display": "Hypertension"},
        headers=dr,
    )
    # 7 of the 14 readings a week the hypertension programme asks for; one failed measurement
    # does not count.
    for day in range(7):
        add_bp_reading(database_url, world.pat, minutes_ago(60 * 24 * day + 30), 140, 90)
    add_bp_reading(database_url, world.pat, minutes_ago(10), None, None)
    add_alert(database_url, world.pat, severity="warning")
    add_alert(database_url, world.pat, severity="urgent")
    # Another patient of alice's organisation who has not consented is not listed at all.
    response = await http.get("/clinician/patients", headers=dr)
    assert response.status_code == 200, response.text
    [status] = response.json()
    assert (status["patient_id"], status["worst_open_severity"], status["open_alerts"]) == (
        world.pat,
        "urgent",
        2,
    )
    assert status["adherence_7d"] == pytest.approx(0.5)
    assert status["programmes"] == ["hypertension"]
    assert datetime.fromisoformat(status["last_reading_at"]) == minutes_ago(10)
    assert (
        await http.get("/clinician/patients", headers=world.as_clinician(world.bob))
    ).json() == []
    assert (
        await http.get("/clinician/patients", headers=world.as_patient(world.pat))
    ).status_code == 403


async def test_reading_summaries_per_local_day(world: World, database_url: str) -> None:
    await world.grant(world.pat, "clinician", world.alice)
    # Europe/Berlin is UTC+1 in January: 23:30 UTC on the 9th is the 10th there.
    day = datetime(2026, 1, 9, 23, 30, tzinfo=UTC)
    add_bp_reading(database_url, world.pat, day, 150, 95, pulse=80)
    add_bp_reading(database_url, world.pat, day + timedelta(hours=8), 130, 85, pulse=None)
    add_bp_reading(database_url, world.pat, day + timedelta(days=1), 120, 80)
    add_glucose_reading(database_url, world.pat, day, 3.5)
    add_glucose_reading(database_url, world.pat, day + timedelta(hours=1), 11.0, sequence_number=2)
    add_glucose_reading(
        database_url,
        world.pat,
        day + timedelta(hours=2),
        6.0,
        sequence_number=3,
        control_solution=True,
    )
    params = {"since": "2026-01-09T00:00:00Z", "until": "2026-01-12T00:00:00Z", "bucket": "day"}
    response = await world.http.get(
        f"/patients/{world.pat}/readings/summary",
        params=params,
        headers=world.as_clinician(world.alice),
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["timezone"] == "Europe/Berlin"
    first, second = body["blood_pressure"]
    assert datetime.fromisoformat(first["bucket_start"]) == datetime(2026, 1, 9, 23, 0, tzinfo=UTC)
    assert (
        first["readings"],
        first["systolic_mean"],
        first["systolic_max"],
        first["pulse_mean"],
    ) == (2, 140, 150, 80)
    assert (second["readings"], second["diastolic_mean"]) == (1, 80)
    [glucose] = body["glucose"]
    assert (glucose["readings"], glucose["below_3_9"], glucose["above_10_0"]) == (2, 1, 1)
    assert glucose["mmol_per_l_mean"] == pytest.approx(7.25)
    too_many = {**params, "since": "2020-01-01T00:00:00Z", "bucket": "hour"}
    backwards = {**params, "until": "2026-01-01T00:00:00Z"}
    for bad in (too_many, backwards, {**params, "bucket": "month"}, {"since": params["since"]}):
        response = await world.http.get(
            f"/patients/{world.pat}/readings/summary",
            params=bad,
            headers=world.as_clinician(world.alice),
        )
        assert response.status_code == 422, bad


async def test_a_target_the_rule_sets_no_longer_know_does_not_break_the_profile(
    world: World, database_url: str
) -> None:
    sql(
        database_url,
        "INSERT INTO patient_targets (patient_id, name, value, unit, set_by)"
        " VALUES (%s, 'retired_target', 1, 'x', 'clinician:old')",
        (world.pat,),
    )
    response = await world.http.get(
        f"/patients/{world.pat}/programmes", headers=world.as_patient(world.pat)
    )
    assert response.status_code == 200, response.text
    assert [t["name"] for t in response.json()["history"]] == ["retired_target"]
