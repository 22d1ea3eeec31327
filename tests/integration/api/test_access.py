"""Who may read whose data: each role, care team AND consent, grant/revoke/expiry, and the
audit trail of every read and every refusal."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from ingest_server.auth import AuthSettings, Role
from tests.integration.api.api_support import (
    World,
    add_alert,
    add_bp_reading,
    audit_rows,
    bearer,
    minutes_ago,
    sql,
)

PATIENT_READS = [
    "/patients/{p}/readings",
    "/patients/{p}/readings/glucose",
    "/patients/{p}/alerts",
    "/patients/{p}/profile",
    "/patients/{p}/consents",
    "/fhir/Patient/{p}",
    "/fhir/Observation?patient={p}",
]


async def _statuses(http: httpx.AsyncClient, patient_id: str, headers: dict[str, str]) -> list[int]:
    return [
        (await http.get(path.format(p=patient_id), headers=headers)).status_code
        for path in PATIENT_READS
    ]


async def test_every_data_route_needs_a_valid_token(world: World, auth: AuthSettings) -> None:
    http = world.http
    assert (await http.get("/health")).status_code in (200, 503)
    assert (await http.get("/openapi.json")).status_code == 200
    for path in [*PATIENT_READS, "/alerts", "/clinician/patients", "/admin/audit"]:
        response = await http.get(path.format(p=world.pat))
        assert response.status_code == 401, path
        assert response.headers["www-authenticate"] == "Bearer"
    forged = AuthSettings(dev_signing_key="another-key-of-at-least-32-characters!")
    expired = bearer(
        auth, Role.PATIENT, world.pat, ttl_s=60, now=datetime.now(UTC) - timedelta(hours=1)
    )
    wrong_audience = bearer(
        AuthSettings(dev_signing_key=auth.dev_signing_key, audience="other"),
        Role.PATIENT,
        world.pat,
    )
    for headers in (
        {"Authorization": "Bearer not-a-jwt"},
        {"Authorization": "Basic cGF0OnB3"},
        bearer(forged, Role.PATIENT, world.pat),
        expired,
        wrong_audience,
    ):
        response = await http.get(f"/patients/{world.pat}/readings", headers=headers)
        assert response.status_code == 401, headers
        assert response.json() == {"detail": "not authenticated"}


async def test_a_patient_reads_only_their_own_data(world: World, database_url: str) -> None:
    add_bp_reading(database_url, world.pat, minutes_ago(30), 128, 82)
    assert await _statuses(world.http, world.pat, world.as_patient(world.pat)) == [200] * 7
    assert await _statuses(world.http, world.pat, world.as_patient(world.other)) == [403] * 7
    # A token for a patient that does not exist reads nothing, and learns nothing else.
    assert (
        await world.http.get("/patients/nobody/readings", headers=world.as_patient("nobody"))
    ).status_code == 404


async def test_admin_and_gateway_never_read_health_data(world: World) -> None:
    for headers in (world.as_admin(), bearer(world.auth, Role.GATEWAY, "gw-1")):
        assert await _statuses(world.http, world.pat, headers) == [403] * 7
    # ...and a clinician or patient cannot use the admin API.
    for headers in (world.as_clinician(world.alice), world.as_patient(world.pat)):
        assert (await world.http.get("/admin/patients", headers=headers)).status_code == 403


async def test_a_clinician_needs_the_care_team_and_an_active_consent(
    world: World, database_url: str
) -> None:
    http, alice, bob, carol = world.http, world.alice, world.bob, world.carol
    add_bp_reading(database_url, world.pat, minutes_ago(20), 131, 84)

    # In the care team, no consent yet.
    assert await _statuses(http, world.pat, world.as_clinician(alice)) == [403] * 7
    # Consent to organisation A: alice (A, care team) reads; bob (A, not in the care team) does
    # not; carol (care team, organisation B) does not.
    consent = await world.grant(world.pat, "organisation", world.org_a)
    assert consent["state"] == "active"
    assert await _statuses(http, world.pat, world.as_clinician(alice)) == [200] * 7
    assert await _statuses(http, world.pat, world.as_clinician(bob)) == [403] * 7
    assert await _statuses(http, world.pat, world.as_clinician(carol)) == [403] * 7
    # A consent to carol herself lets her in.
    own = await world.grant(world.pat, "clinician", carol)
    assert await _statuses(http, world.pat, world.as_clinician(carol)) == [200] * 7
    # The purpose must be covered: no research consent exists.
    research = {**world.as_clinician(alice), "X-Purpose-Of-Use": "research"}
    assert (await http.get(f"/patients/{world.pat}/readings", headers=research)).status_code == 403
    # Nobody's patient: 403 for everyone.
    assert await _statuses(http, world.other, world.as_clinician(alice)) == [403] * 7

    # Revoking: carol's own consent goes, she is out at once; revoking twice is a conflict.
    revoked = await world.revoke(world.pat, own["consent_id"])
    assert (revoked.status_code, revoked.json()["state"]) == (200, "revoked")
    assert (await world.revoke(world.pat, own["consent_id"])).status_code == 409
    assert await _statuses(http, world.pat, world.as_clinician(carol)) == [403] * 7
    assert await _statuses(http, world.pat, world.as_clinician(alice)) == [200] * 7

    # Leaving the care team ends access even under the consent.
    team = (
        await http.get(f"/admin/patients/{world.pat}/care-team", headers=world.as_admin())
    ).json()
    [member] = [m for m in team if m["clinician_id"] == alice]
    removed = await http.delete(
        f"/admin/patients/{world.pat}/care-team/{member['member_id']}", headers=world.as_admin()
    )
    assert removed.status_code == 200 and removed.json()["removed_at"] is not None
    assert await _statuses(http, world.pat, world.as_clinician(alice)) == [403] * 7

    # A deactivated clinician reads nothing either.
    await world.grant(world.pat, "clinician", bob)
    await http.post(
        f"/admin/patients/{world.pat}/care-team",
        json={"clinician_id": bob},
        headers=world.as_admin(),
    )
    assert await _statuses(http, world.pat, world.as_clinician(bob)) == [200] * 7
    await http.put(
        f"/admin/clinicians/{bob}",
        json={"display_name": bob, "organisation_id": world.org_a, "active": False},
        headers=world.as_admin(),
    )
    assert await _statuses(http, world.pat, world.as_clinician(bob)) == [403] * 7

    history = (
        await http.get(f"/patients/{world.pat}/consents", headers=world.as_patient(world.pat))
    ).json()
    assert [(e["consent_id"], e["event"]) for e in history["history"]] == [
        (consent["consent_id"], "granted"),
        (own["consent_id"], "granted"),
        (own["consent_id"], "revoked"),
        (history["history"][3]["consent_id"], "granted"),
    ]
    assert {c["consent_id"]: c["state"] for c in history["consents"]}[
        own["consent_id"]
    ] == "revoked"


async def test_a_consent_expires_at_its_date(world: World) -> None:
    http = world.http
    await world.grant(
        world.pat, "clinician", world.alice, valid_until=datetime.now(UTC) + timedelta(seconds=1.5)
    )
    path = f"/patients/{world.pat}/alerts"
    assert (await http.get(path, headers=world.as_clinician(world.alice))).status_code == 200
    await asyncio.sleep(2.0)
    assert (await http.get(path, headers=world.as_clinician(world.alice))).status_code == 403
    [consent] = (
        await http.get(f"/patients/{world.pat}/consents", headers=world.as_patient(world.pat))
    ).json()["consents"]
    assert consent["state"] == "expired"
    # A consent cannot be granted into the past, nor to someone who does not exist.
    past = {
        "grantee_kind": "clinician",
        "grantee_id": world.alice,
        "valid_until": "2020-01-01T00:00:00Z",
    }
    nobody = {"grantee_kind": "organisation", "grantee_id": "no-such-org"}
    for body, status in ((past, 422), (nobody, 404)):
        response = await http.post(
            f"/patients/{world.pat}/consents", json=body, headers=world.as_patient(world.pat)
        )
        assert response.status_code == status, response.text
    # Only the patient grants and revokes.
    response = await http.post(
        f"/patients/{world.pat}/consents",
        json={"grantee_kind": "clinician", "grantee_id": world.bob},
        headers=world.as_clinician(world.alice),
    )
    assert response.status_code == 403


async def test_every_read_and_refusal_is_audited_and_admins_can_query_it(
    world: World, database_url: str
) -> None:
    http = world.http
    await world.grant(world.pat, "organisation", world.org_a)
    before = len(audit_rows(database_url, world.pat))
    await http.get(f"/patients/{world.pat}/readings", headers=world.as_clinician(world.alice))
    await http.get(f"/patients/{world.pat}/alerts", headers=world.as_clinician(world.bob))
    await http.get(f"/patients/{world.pat}/profile", headers=world.as_patient(world.pat))
    add_alert(database_url, world.pat, severity="warning")
    await http.get("/alerts", headers=world.as_clinician(world.alice))
    rows = audit_rows(database_url, world.pat)[before:]
    assert rows == [
        (
            f"clinician:{world.alice}",
            "clinician",
            "read bp_readings",
            "treatment",
            "10.1.2.3",
            "allowed",
        ),
        (f"clinician:{world.bob}", "clinician", "read alerts", "treatment", "10.1.2.3", "denied"),
        (f"patient:{world.pat}", "patient", "read profile", "own data", "10.1.2.3", "allowed"),
        (
            f"clinician:{world.alice}",
            "clinician",
            "read alerts inbox",
            "treatment",
            "10.1.2.3",
            "allowed",
        ),
    ]
    # The trail is append-only.
    with pytest.raises(Exception, match="append-only"):
        sql(database_url, "DELETE FROM access_log WHERE patient_id = %s", (world.pat,))

    response = await http.get(
        "/admin/audit",
        params={"patient_id": world.pat, "outcome": "denied"},
        headers=world.as_admin(),
    )
    assert response.status_code == 200
    [denied] = response.json()
    assert (denied["actor"], denied["action"], denied["resource"]) == (
        f"clinician:{world.bob}",
        "read alerts",
        f"GET /patients/{world.pat}/alerts",
    )
    assert (
        await http.get("/admin/audit", headers=world.as_clinician(world.alice))
    ).status_code == 403
