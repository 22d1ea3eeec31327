"""The alerts inbox (filters, sorting, visibility) and the lifecycle: acknowledge, resolve and
snooze with notes, who and when, the history, and the transitions that are refused."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from tests.integration.api.api_support import World, add_alert, minutes_ago, sql


async def test_inbox_filters_sorts_and_shows_only_visible_patients(
    world: World, database_url: str
) -> None:
    http = world.http
    await world.grant(world.pat, "organisation", world.org_a)
    warning = add_alert(database_url, world.pat, severity="warning", seen_at=minutes_ago(5))
    urgent = add_alert(database_url, world.pat, severity="urgent", seen_at=minutes_ago(30))
    high = add_alert(database_url, world.pat, severity="high", seen_at=minutes_ago(10))
    hidden = add_alert(database_url, world.other, severity="urgent")
    dr = world.as_clinician(world.alice)

    async def ids(**params: object) -> list[int]:
        response = await http.get("/alerts", params=params, headers=dr)
        assert response.status_code == 200, response.text
        return [a["alert_id"] for a in response.json()]

    assert await ids() == [urgent, high, warning]
    assert await ids(sort="last_seen_at") == [warning, high, urgent]
    assert await ids(sort="last_seen_at", order="asc") == [urgent, high, warning]
    assert await ids(min_severity="high") == [urgent, high]
    assert await ids(patient_id=world.other) == []
    assert await ids(limit=1, offset=1) == [high]
    assert await ids(since=minutes_ago(15).isoformat()) == [high, warning]
    assert hidden not in await ids()
    # The patient sees their own alerts in the same inbox; bob (no care team) sees none.
    assert len(await ids()) == 3
    mine = await http.get("/alerts", headers=world.as_patient(world.pat))
    assert [a["alert_id"] for a in mine.json()] == [urgent, high, warning]
    assert (await http.get("/alerts", headers=world.as_clinician(world.bob))).json() == []
    for bad in ({"sort": "random"}, {"order": "up"}, {"limit": 501}, {"status": "gone"},
                {"min_severity": "meh"}, {"since": "2026-01-01T00:00:00"}):  # fmt: skip
        assert (await http.get("/alerts", params=bad, headers=dr)).status_code == 422, bad


async def test_acknowledge_snooze_resolve_with_notes_and_history(
    world: World, database_url: str
) -> None:
    http = world.http
    await world.grant(world.pat, "organisation", world.org_a)
    alert_id = add_alert(database_url, world.pat, severity="urgent")
    dr = world.as_clinician(world.alice)
    base = f"/alerts/{alert_id}"

    acked = await http.post(f"{base}/acknowledge", json={"note": "Called the patient."}, headers=dr)
    assert acked.status_code == 200, acked.text
    body = acked.json()
    assert (body["status"], body["acknowledged_by"], body["last_note"]) == (
        "acknowledged",
        f"clinician:{world.alice}",
        "Called the patient.",
    )
    assert (await http.post(f"{base}/acknowledge", json={}, headers=dr)).status_code == 409

    until = datetime.now(UTC) + timedelta(hours=4)
    snoozed = await http.post(
        f"{base}/snooze",
        json={"until": until.isoformat(), "note": "re-measure tonight"},
        headers=dr,
    )
    assert snoozed.status_code == 200, snoozed.text
    assert datetime.fromisoformat(snoozed.json()["snoozed_until"]) == until
    assert snoozed.json()["status"] == "acknowledged"
    # Snoozed alerts leave the inbox unless asked for.
    assert (await http.get("/alerts", headers=dr)).json() == []
    assert [
        a["alert_id"]
        for a in (await http.get("/alerts", params={"include_snoozed": True}, headers=dr)).json()
    ] == [alert_id]
    for bad_until in (
        datetime.now(UTC) - timedelta(minutes=1),
        datetime.now(UTC) + timedelta(days=31),
    ):
        response = await http.post(
            f"{base}/snooze", json={"until": bad_until.isoformat()}, headers=dr
        )
        assert response.status_code == 422

    resolved = await http.post(f"{base}/resolve", json={"note": "Medication adjusted."}, headers=dr)
    assert (resolved.json()["status"], resolved.json()["snoozed_until"]) == ("resolved", None)
    for action in ("acknowledge", "resolve"):
        assert (await http.post(f"{base}/{action}", json={}, headers=dr)).status_code == 409
    response = await http.post(f"{base}/snooze", json={"until": until.isoformat()}, headers=dr)
    assert response.status_code == 409

    detail = (await http.get(base, headers=world.as_patient(world.pat))).json()
    assert [
        (e["action"], e["from_status"], e["to_status"], e["note"]) for e in detail["history"]
    ] == [
        ("acknowledge", "open", "acknowledged", "Called the patient."),
        ("snooze", "acknowledged", "acknowledged", "re-measure tonight"),
        ("resolve", "acknowledged", "resolved", "Medication adjusted."),
    ]
    # A resolved alert frees its rule: the next finding is a new alert (the ingest path's
    # one-open-alert-per-rule index allows it).
    rule = sql(database_url, "SELECT rule_id FROM alerts WHERE alert_id = %s", (alert_id,))[0][0]
    assert add_alert(database_url, world.pat, rule_id=rule) != alert_id


async def test_only_the_care_team_under_consent_can_work_an_alert(
    world: World, database_url: str
) -> None:
    http = world.http
    alert_id = add_alert(database_url, world.pat, severity="high")
    note = {"note": "x"}
    # No consent yet: alice may not; the patient may read it but not acknowledge it.
    assert (
        await http.post(
            f"/alerts/{alert_id}/acknowledge", json=note, headers=world.as_clinician(world.alice)
        )
    ).status_code == 403
    assert (
        await http.post(
            f"/alerts/{alert_id}/acknowledge", json=note, headers=world.as_patient(world.pat)
        )
    ).status_code == 403
    assert (
        await http.get(f"/alerts/{alert_id}", headers=world.as_patient(world.other))
    ).status_code == 403
    assert (
        await http.get("/alerts/987654321", headers=world.as_patient(world.pat))
    ).status_code == 404
    await world.grant(world.pat, "clinician", world.alice)
    assert (
        await http.post(
            f"/alerts/{alert_id}/acknowledge", json=note, headers=world.as_clinician(world.alice)
        )
    ).status_code == 200
    assert sql(database_url, "SELECT status FROM alerts WHERE alert_id = %s", (alert_id,)) == [
        ("acknowledged",)
    ]
