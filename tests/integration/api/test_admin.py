"""Admin: devices and their bindings over time, gateways and what a gateway may ask,
quarantine review (dismiss, re-ingest once the device is bound), request limits."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx

from homewatch import wire
from ingest_server.auth import Role
from tests.integration.api.api_support import World, add_bp_reading, bearer, sql
from tests.integration.ingest.ingest_support import bp_reading, device, message


async def test_devices_bindings_history_and_gateway_provisioning(
    world: World, database_url: str
) -> None:
    http, admin = world.http, world.as_admin()
    key = "Acme/BP-1/SN-ADM-1"
    put = await http.put(
        "/admin/devices",
        json={"device_key": key, "kind": "blood_pressure", "label": "Pat's cuff"},
        headers=admin,
    )
    assert put.status_code == 200 and put.json()["patient_id"] is None
    start = datetime.now(UTC) - timedelta(days=10)
    first = await http.post(
        "/admin/bindings",
        json={"device_key": key, "patient_id": world.other, "valid_from": start.isoformat()},
        headers=admin,
    )
    assert first.status_code == 201, first.text
    # Handed to pat five days later: the first binding ends there, history is kept.
    handed = start + timedelta(days=5)
    second = await http.post(
        "/admin/bindings",
        json={"device_key": key, "patient_id": world.pat, "valid_from": handed.isoformat()},
        headers=admin,
    )
    assert second.status_code == 201
    overlapping = await http.post(
        "/admin/bindings",
        json={"device_key": key, "patient_id": world.other, "valid_from": start.isoformat()},
        headers=admin,
    )
    assert overlapping.status_code == 409
    history = (await http.get("/admin/bindings", params={"device_key": key}, headers=admin)).json()
    assert [(b["patient_id"], b["valid_to"] is None) for b in history] == [
        (world.other, False),
        (world.pat, True),
    ]
    devices = (await http.get("/admin/devices", headers=admin)).json()
    assert {d["device_key"]: d["patient_id"] for d in devices}[key] == world.pat

    # The gateway in pat's home asks which devices it should accept.
    gw = "gw-home-pat"
    assert (
        await http.put(f"/admin/gateways/{gw}", json={"patient_id": world.pat}, headers=admin)
    ).status_code == 200
    mine = await http.get("/gateway/devices", headers=bearer(world.auth, Role.GATEWAY, gw))
    assert mine.status_code == 200
    assert mine.json()["allowed_devices"] == [key]
    # What another household's profile shows of pat: nothing (not whose the cuff is now, not
    # whose home the gateway that once forwarded a reading of theirs is in).
    add_bp_reading(
        database_url, world.other, start + timedelta(days=1), 120, 80, device_key=key, gateway_id=gw
    )
    theirs = (
        await http.get(f"/patients/{world.other}/profile", headers=world.as_patient(world.other))
    ).json()
    assert [(d["device_key"], d["patient_id"]) for d in theirs["devices"]] == [(key, None)]
    assert [(g["gateway_id"], g["patient_id"], g["label"]) for g in theirs["gateways"]] == [
        (gw, None, None)
    ]
    assert world.pat not in str(theirs)
    unknown = await http.get("/gateway/devices", headers=bearer(world.auth, Role.GATEWAY, "gw-x"))
    assert unknown.status_code == 404
    assert (await http.get("/gateway/devices", headers=admin)).status_code == 403

    ended = await http.post(
        "/admin/bindings/end",
        json={"device_key": key, "reason": "returned to stock"},
        headers=admin,
    )
    assert ended.status_code == 200
    assert (ended.json()["ended_by"], ended.json()["end_reason"]) == (
        "admin:root",
        "returned to stock",
    )
    again = await http.post("/admin/bindings/end", json={"device_key": key}, headers=admin)
    assert again.status_code == 404
    mine = await http.get("/gateway/devices", headers=bearer(world.auth, Role.GATEWAY, gw))
    assert mine.json()["allowed_devices"] == []
    profile = (
        await http.get(f"/patients/{world.pat}/profile", headers=world.as_patient(world.pat))
    ).json()
    assert [b["device_key"] for b in profile["bindings"]] == [key]
    assert [g["gateway_id"] for g in profile["gateways"]] == [gw]
    bad = await http.post(
        "/admin/bindings",
        json={"device_key": key, "patient_id": "no-such-patient"},
        headers=admin,
    )
    assert bad.status_code == 404


async def test_quarantine_review_dismisses_or_reingests(world: World, database_url: str) -> None:
    http, admin = world.http, world.as_admin()
    cuff = device("SN-QUAR-1")
    reading = bp_reading(
        cuff, datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1), 128, 80
    )
    payload = message("gw-q", reading).to_bytes()
    topic = wire.readings_topic("gw-q")
    ((unbound,),) = sql(
        database_url,
        "INSERT INTO quarantine (topic, payload, reason, detail, reading_id)"
        " VALUES (%s, %s, 'unbound_device', 'bound to no patient', %s) RETURNING id",
        (topic, payload, reading.reading_id),
    )
    ((garbage,),) = sql(
        database_url,
        "INSERT INTO quarantine (topic, payload, reason)"
        " VALUES (%s, %s, 'invalid_json') RETURNING id",
        (topic, b"\x00not json"),
    )
    listed = (await http.get("/admin/quarantine", params={"reviewed": False}, headers=admin)).json()
    assert {q["id"] for q in listed} >= {unbound, garbage}
    detail = (await http.get(f"/admin/quarantine/{garbage}", headers=admin)).json()
    assert (detail["payload_hex"], detail["truncated"]) == (b"\x00not json".hex(), False)

    # Re-ingesting before the device is bound still cannot store it.
    early = await http.post(
        f"/admin/quarantine/{unbound}/review", json={"decision": "reingested"}, headers=admin
    )
    assert early.status_code == 409
    bound = await http.post(
        "/admin/bindings",
        json={
            "device_key": cuff.device_key,
            "patient_id": world.pat,
            "valid_from": (reading.measured_at - timedelta(days=1)).isoformat(),
        },
        headers=admin,
    )
    assert bound.status_code == 201
    review = await http.post(
        f"/admin/quarantine/{unbound}/review",
        json={"decision": "reingested", "note": "cuff bound after the fact"},
        headers=admin,
    )
    assert review.status_code == 200, review.text
    assert review.json()["reingested"]["stored"] == 1
    assert review.json()["entry"]["reviewed_by"] == "admin:root"
    assert sql(
        database_url,
        "SELECT patient_id FROM bp_readings WHERE reading_id = %s",
        (reading.reading_id,),
    ) == [(world.pat,)]
    assert (
        await http.post(
            f"/admin/quarantine/{unbound}/review", json={"decision": "dismissed"}, headers=admin
        )
    ).status_code == 409
    junk = await http.post(
        f"/admin/quarantine/{garbage}/review", json={"decision": "reingested"}, headers=admin
    )
    assert junk.status_code == 409
    dismissed = await http.post(
        f"/admin/quarantine/{garbage}/review", json={"decision": "dismissed"}, headers=admin
    )
    assert dismissed.json()["entry"]["decision"] == "dismissed"
    assert (await http.get("/admin/quarantine/999999", headers=admin)).status_code == 404
    # An id beyond 32 bits (the fuzz run found one answered with a 500 once).
    big = await http.post(
        "/admin/quarantine/4000000000/review", json={"decision": "dismissed"}, headers=admin
    )
    assert big.status_code == 404
    assert (
        await http.get("/admin/quarantine", headers=world.as_clinician(world.alice))
    ).status_code == 403


async def test_limits_and_errors_tell_no_internals(world: World) -> None:
    http = world.http
    admin = world.as_admin()
    huge = {"display_name": "x", "contacts": [{"kind": "email", "value": "a" * 150}] * 20}
    response = await http.put(
        f"/admin/patients/{world.pat}",
        content=b"{" + b" " * 70_000 + b"}",
        headers={**admin, "Content-Type": "application/json"},
    )
    assert response.status_code == 413
    assert (
        await http.put(f"/admin/patients/{world.pat}", json=huge, headers=admin)
    ).status_code == 200
    too_many = {"display_name": "x", "contacts": [{"kind": "email", "value": "a@b"}] * 21}
    assert (
        await http.put(f"/admin/patients/{world.pat}", json=too_many, headers=admin)
    ).status_code == 422
    for path in ("/patients/a%00b/readings", "/patients/" + "x" * 65 + "/readings"):
        response = await http.get(path, headers=world.as_patient("x"))
        assert response.status_code == 422, path
    nul = await http.put(
        f"/admin/organisations/{world.org_a}", json={"name": "a\x00b"}, headers=admin
    )
    assert nul.status_code == 422
    assert "input" not in nul.text  # the rejected value is not echoed back
    not_json = await http.put(
        f"/admin/organisations/{world.org_a}",
        content=b"{nope",
        headers={**admin, "Content-Type": "application/json"},
    )
    assert not_json.status_code == 422
    assert all(word not in not_json.text.lower() for word in ("traceback", "psycopg", "select"))
    assert (
        await http.get("/admin/patients", params={"limit": 501}, headers=admin)
    ).status_code == 422


async def test_unknown_routes_and_methods(world: World) -> None:
    http: httpx.AsyncClient = world.http
    assert (await http.get("/nothing-here", headers=world.as_admin())).status_code == 404
    assert (
        await http.delete(f"/patients/{world.pat}/readings", headers=world.as_admin())
    ).status_code == 405
