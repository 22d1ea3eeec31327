"""Devices, their bindings to patients over time, and gateways (the home each one is in).

Binding goes through ``store.bind_device`` (the ingest path resolves patients from the same
table); ending a binding and the admin views are here. Ending takes the same per-device
advisory lock as ``bind_device``, so the two cannot interleave.
"""

from __future__ import annotations

from datetime import UTC, datetime

from ingest_server import db, store
from ingest_server.db import Connection
from ingest_server.profile.errors import Conflict, NotFound
from ingest_server.profile.models import BindingRow, DeviceRow, GatewayRow

_DEVICE = """d.device_key, d.kind, d.label, d.manufacturer, d.model, d.serial_number,
             d.firmware_revision, d.first_seen_at, d.last_seen_at, b.patient_id"""
_CURRENT_BINDING = """LEFT JOIN device_bindings b ON b.device_key = d.device_key
    AND b.valid_from <= now() AND (b.valid_to IS NULL OR b.valid_to > now())"""
LIST_DEVICES = f"""
SELECT {_DEVICE} FROM devices d {_CURRENT_BINDING}
ORDER BY d.device_key LIMIT %s OFFSET %s
"""
GET_DEVICE = f"SELECT {_DEVICE} FROM devices d {_CURRENT_BINDING} WHERE d.device_key = %s"
UPSERT_DEVICE = """
INSERT INTO devices (device_key, kind, label, manufacturer, model, serial_number)
VALUES (%s, %s, %s, %s, %s, %s)
ON CONFLICT (device_key) DO UPDATE SET
    kind = coalesce(EXCLUDED.kind, devices.kind), label = coalesce(EXCLUDED.label, devices.label),
    manufacturer = coalesce(devices.manufacturer, EXCLUDED.manufacturer),
    model = coalesce(devices.model, EXCLUDED.model),
    serial_number = coalesce(devices.serial_number, EXCLUDED.serial_number)
"""

_BINDING = "binding_id, device_key, patient_id, valid_from, valid_to, ended_by, end_reason"
DEVICE_BINDINGS = (
    f"SELECT {_BINDING} FROM device_bindings WHERE device_key = %s ORDER BY valid_from"
)
PATIENT_BINDINGS = f"""
SELECT {_BINDING} FROM device_bindings WHERE patient_id = %s ORDER BY valid_from, binding_id
"""
OPEN_BINDING = f"""
SELECT {_BINDING} FROM device_bindings WHERE device_key = %s AND valid_to IS NULL
"""
END_BINDING = f"""
UPDATE device_bindings SET valid_to = %s, ended_by = %s, end_reason = %s
WHERE binding_id = %s RETURNING {_BINDING}
"""
GET_BINDING = f"SELECT {_BINDING} FROM device_bindings WHERE binding_id = %s"

_GATEWAY = "gateway_id, patient_id, label, first_seen_at, last_seen_at"
LIST_GATEWAYS = f"SELECT {_GATEWAY} FROM gateways ORDER BY gateway_id LIMIT %s OFFSET %s"
GET_GATEWAY = f"SELECT {_GATEWAY} FROM gateways WHERE gateway_id = %s"
UPSERT_GATEWAY = f"""
INSERT INTO gateways (gateway_id, patient_id, label) VALUES (%s, %s, %s)
ON CONFLICT (gateway_id) DO UPDATE SET patient_id = EXCLUDED.patient_id, label = EXCLUDED.label
RETURNING {_GATEWAY}
"""
#: The gateway in the patient's home, and any other that forwarded their readings (whose home
#: and label are another household's business: left out).
PATIENT_GATEWAYS = """
SELECT gateway_id,
       CASE WHEN patient_id = %(patient_id)s THEN patient_id END AS patient_id,
       CASE WHEN patient_id = %(patient_id)s THEN label END AS label,
       first_seen_at, last_seen_at
FROM gateways
WHERE patient_id = %(patient_id)s
   OR gateway_id IN (SELECT DISTINCT gateway_id FROM bp_readings WHERE patient_id = %(patient_id)s
                     UNION
                     SELECT DISTINCT gateway_id FROM glucose_readings
                     WHERE patient_id = %(patient_id)s)
ORDER BY gateway_id
"""
#: The devices a gateway should accept: those bound now to the patient whose home it is in.
GATEWAY_DEVICES = f"""
SELECT {_DEVICE}
FROM gateways g
JOIN device_bindings b ON b.patient_id = g.patient_id
    AND b.valid_from <= now() AND (b.valid_to IS NULL OR b.valid_to > now())
JOIN devices d ON d.device_key = b.device_key
WHERE g.gateway_id = %s
ORDER BY d.device_key
"""
#: Every device ever bound to the patient; ``patient_id`` set when it is bound to them now
#: (a device handed on to someone else does not tell who).
PATIENT_DEVICES = """
SELECT d.device_key, d.kind, d.label, d.manufacturer, d.model, d.serial_number,
       d.firmware_revision, d.first_seen_at, d.last_seen_at, now_bound.patient_id
FROM devices d
LEFT JOIN device_bindings now_bound ON now_bound.device_key = d.device_key
    AND now_bound.patient_id = %(patient_id)s
    AND now_bound.valid_from <= now()
    AND (now_bound.valid_to IS NULL OR now_bound.valid_to > now())
WHERE d.device_key IN (SELECT device_key FROM device_bindings WHERE patient_id = %(patient_id)s)
ORDER BY d.device_key
"""


async def list_devices(conn: Connection, *, limit: int, offset: int) -> list[DeviceRow]:
    return await db.fetch_all(conn, LIST_DEVICES, (limit, offset), DeviceRow)


async def get_device(conn: Connection, device_key: str) -> DeviceRow | None:
    return await db.fetch_one(conn, GET_DEVICE, (device_key,), DeviceRow)


async def register_device(
    conn: Connection,
    device_key: str,
    *,
    kind: str | None,
    label: str | None,
    manufacturer: str | None,
    model: str | None,
    serial_number: str | None,
) -> DeviceRow:
    """Register a device before it is first seen (or describe a known one)."""
    await db.execute(
        conn, UPSERT_DEVICE, (device_key, kind, label, manufacturer, model, serial_number)
    )
    row = await get_device(conn, device_key)
    assert row is not None
    return row


async def device_bindings(conn: Connection, device_key: str) -> list[BindingRow]:
    return await db.fetch_all(conn, DEVICE_BINDINGS, (device_key,), BindingRow)


async def patient_bindings(conn: Connection, patient_id: str) -> list[BindingRow]:
    return await db.fetch_all(conn, PATIENT_BINDINGS, (patient_id,), BindingRow)


async def patient_devices(conn: Connection, patient_id: str) -> list[DeviceRow]:
    """Every device ever bound to the patient (``patient_id`` of a row: bound now, to whom)."""
    return await db.fetch_all(conn, PATIENT_DEVICES, {"patient_id": patient_id}, DeviceRow)


async def bind(
    conn: Connection, device_key: str, patient_id: str, valid_from: datetime | None
) -> BindingRow:
    """Bind through the ingest path's own function; its errors come out as ours."""
    from ingest_server.errors import BindingConflict, UnknownPatient

    try:
        binding = await store.bind_device(conn, device_key, patient_id, valid_from)
    except UnknownPatient as exc:
        raise NotFound("patient", patient_id) from exc
    except BindingConflict as exc:
        raise Conflict(str(exc)) from exc
    row = await db.fetch_one(conn, GET_BINDING, (binding.binding_id,), BindingRow)
    assert row is not None
    return row


async def end_binding(
    conn: Connection,
    device_key: str,
    *,
    at: datetime | None,
    actor: str,
    reason: str | None,
) -> BindingRow:
    """End the device's open binding at ``at`` (default now): readings measured from then on
    are quarantined as unbound until it is bound again."""
    at = at or datetime.now(UTC)
    async with db.transaction(conn):
        await db.execute(conn, store.LOCK_DEVICE, (store.DEVICE_LOCK_NAMESPACE, device_key))
        current = await db.fetch_one(conn, OPEN_BINDING, (device_key,), BindingRow)
        if current is None:
            raise NotFound("open binding of device", device_key)
        if at <= current.valid_from:
            raise Conflict(f"the binding starts at {current.valid_from.isoformat()}: end it later")
        row = await db.fetch_one(
            conn, END_BINDING, (at, actor, reason, current.binding_id), BindingRow
        )
    assert row is not None
    return row


async def list_gateways(conn: Connection, *, limit: int, offset: int) -> list[GatewayRow]:
    return await db.fetch_all(conn, LIST_GATEWAYS, (limit, offset), GatewayRow)


async def get_gateway(conn: Connection, gateway_id: str) -> GatewayRow | None:
    return await db.fetch_one(conn, GET_GATEWAY, (gateway_id,), GatewayRow)


async def register_gateway(
    conn: Connection, gateway_id: str, *, patient_id: str | None, label: str | None
) -> GatewayRow:
    row = await db.fetch_one(conn, UPSERT_GATEWAY, (gateway_id, patient_id, label), GatewayRow)
    assert row is not None
    return row


async def patient_gateways(conn: Connection, patient_id: str) -> list[GatewayRow]:
    return await db.fetch_all(conn, PATIENT_GATEWAYS, {"patient_id": patient_id}, GatewayRow)


async def gateway_devices(conn: Connection, gateway_id: str) -> list[DeviceRow]:
    return await db.fetch_all(conn, GATEWAY_DEVICES, (gateway_id,), DeviceRow)
