"""The service (consumer + API in one loop) and the API's reads, each audited."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from homewatch import wire
from homewatch.embedded.broker import BrokerEndpoint
from ingest_server import db, store
from ingest_server.api import create_app
from ingest_server.service import IngestService, ServiceError, run_ingest
from ingest_server.settings import IngestSettings
from ingest_server.store import StoreResult
from tests.integration.ingest.ingest_support import (
    GLUCOSE_CONTEXT,
    RAW_GLUCOSE_CONTEXT,
    PatientTokenAuth,
    bp_reading,
    dev_auth,  # noqa: F401 - the fixture, used by pytestmark
    device,
    glucose_reading,
    ingest_settings,
    message,
    meter,
    minutes_ago,
    publish,
    query,
    subscribed,
    unique,
    wait_until,
)

# The API needs a token: each test's own signing key, and a patient token for /patients/{id}/.
pytestmark = pytest.mark.usefixtures("dev_auth")


def _access_rows(database_url: str, patient_id: str) -> list[tuple[str, str, str | None]]:
    return query(
        database_url,
        "SELECT actor, action, client_address FROM access_log WHERE patient_id = %s ORDER BY id",
        (patient_id,),
    )


async def test_service_stores_published_readings_and_serves_them(
    settings: IngestSettings, pool: db.Pool, mqtt_broker: BrokerEndpoint, database_url: str
) -> None:
    patient_id, cuff = unique("patient"), device(unique("SN"))
    async with db.connection(pool) as conn:
        await store.create_patient(conn, patient_id, "API Test")
        await store.bind_device(conn, cuff.device_key, patient_id, minutes_ago(600))
    normal = bp_reading(cuff, minutes_ago(40), 132, 85)
    crisis = bp_reading(cuff, minutes_ago(10), 196, 104)
    confirm = bp_reading(cuff, minutes_ago(5), 191, 102)

    results: list[StoreResult] = []
    stop = asyncio.Event()
    started: asyncio.Future[IngestService] = asyncio.get_running_loop().create_future()

    async def on_result(result: StoreResult) -> None:
        results.append(result)

    async with asyncio.TaskGroup() as tg:
        tg.create_task(
            run_ingest(settings, on_result=on_result, stop=stop, on_started=started.set_result)
        )
        service = await asyncio.wait_for(started, 20)
        assert service.api_port > 0 and service.consumer is not None
        await subscribed(service.consumer)
        topic = wire.readings_topic("gw-api", settings.topic_root)
        for reading in (normal, crisis, confirm):
            await publish(
                mqtt_broker.host, mqtt_broker.port, topic, message("gw-api", reading).to_bytes()
            )
        await wait_until(lambda: len(results) == 3, what="three stored messages")

        async with httpx.AsyncClient(
            base_url=service.api_url, timeout=10, auth=PatientTokenAuth()
        ) as http:
            assert (await http.get("/health")).json() == {"status": "ok", "database": "ok"}

            response = await http.get(f"/patients/{patient_id}/readings")
            assert response.status_code == 200
            body = response.json()
            assert [r["reading_id"] for r in body] == [
                str(confirm.reading_id),
                str(crisis.reading_id),
                str(normal.reading_id),
            ]
            newest = body[0]
            assert (newest["systolic"], newest["diastolic"], newest["pulse"], newest["unit"]) == (
                191,
                102,
                70,
                "mm[Hg]",
            )
            assert newest["device_key"] == cuff.device_key
            assert newest["mean_arterial_pressure"] == pytest.approx(131.7, abs=0.01)
            assert newest["measured_at"].startswith(
                confirm.measured_at.strftime("%Y-%m-%dT%H:%M:%S")
            )

            window = {
                "since": (minutes_ago(15)).isoformat(),
                "until": (confirm.measured_at).isoformat(),
                "limit": 5,
            }
            only_crisis = (await http.get(f"/patients/{patient_id}/readings", params=window)).json()
            assert [r["reading_id"] for r in only_crisis] == [str(crisis.reading_id)]
            assert (
                len(
                    (await http.get(f"/patients/{patient_id}/readings", params={"limit": 1})).json()
                )
                == 1
            )

            alerts = (await http.get(f"/patients/{patient_id}/alerts")).json()
            assert len(alerts) == 1
            alert = alerts[0]
            assert (alert["rule_id"], alert["severity"], alert["status"], alert["occurrences"]) == (
                "bp.hypertensive_crisis",
                "urgent",
                "open",
                2,
            )
            assert alert["evidence"]["reading_ids"] == [
                str(crisis.reading_id),
                str(confirm.reading_id),
            ]
            assert alert["evidence"]["statistics"]["confirmed"] is True
            assert (
                await http.get(f"/patients/{patient_id}/alerts", params={"status": "resolved"})
            ).json() == []

            assert (await http.get("/patients/nobody/readings")).status_code == 404
            assert (await http.get("/patients/nobody/alerts")).status_code == 404
            assert (
                await http.get(f"/patients/{patient_id}/readings", params={"limit": 1001})
            ).status_code == 422
            assert (
                await http.get(f"/patients/{patient_id}/alerts", params={"status": "gone"})
            ).status_code == 422
            naive = {"since": minutes_ago(15).replace(tzinfo=None).isoformat()}
            assert (
                await http.get(f"/patients/{patient_id}/readings", params=naive)
            ).status_code == 422
        stop.set()

    audit = _access_rows(database_url, patient_id)
    assert audit == [
        (f"patient:{patient_id}", "read bp_readings", "127.0.0.1"),
        (f"patient:{patient_id}", "read bp_readings", "127.0.0.1"),
        (f"patient:{patient_id}", "read bp_readings", "127.0.0.1"),
        (f"patient:{patient_id}", "read alerts", "127.0.0.1"),
        (f"patient:{patient_id}", "read alerts", "127.0.0.1"),
    ]
    assert query(database_url, "SELECT count(*) FROM access_log WHERE patient_id = 'nobody'") == [
        (0,)
    ]


async def test_app_with_its_own_pool_over_asgi(
    settings: IngestSettings, pool: db.Pool, database_url: str
) -> None:
    patient_id, cuff = unique("patient"), device(unique("SN"))
    async with db.connection(pool) as conn:
        await store.create_patient(conn, patient_id, "ASGI Test")
        await store.bind_device(conn, cuff.device_key, patient_id, minutes_ago(600))
        reading = bp_reading(cuff, minutes_ago(3), 118, 76, pulse=None)
        await store.store_message(conn, message("gw-asgi", reading), "direct")

    app = create_app(settings)  # no pool given: the lifespan opens one from settings.database_url
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://api", auth=PatientTokenAuth()
        ) as http:
            body = (await http.get(f"/patients/{patient_id}/readings")).json()
    assert [(r["reading_id"], r["pulse"], r["flags"]) for r in body] == [
        (str(reading.reading_id), None, [])
    ]
    assert body[0]["received_at"] is not None and body[0]["device_time"] is not None
    assert len(_access_rows(database_url, patient_id)) == 1


async def test_glucose_readings_and_clock_fields_over_the_api(
    settings: IngestSettings, pool: db.Pool, database_url: str
) -> None:
    patient_id, gl, cuff = unique("patient"), meter(unique("SN")), device(unique("SN"))
    async with db.connection(pool) as conn:
        await store.create_patient(conn, patient_id, "Glucose API Test")
        for dev in (gl, cuff):
            await store.bind_device(conn, dev.device_key, patient_id, minutes_ago(600))
    bp = bp_reading(cuff, minutes_ago(50), 126, 81).model_copy(
        update={
            "time_source": wire.TimeSource.DEVICE_CORRECTED,
            "device_clock": wire.DeviceClock(
                status=wire.ClockStatus.CORRECTED, offset_seconds=-42.5
            ),
        }
    )
    fasting = glucose_reading(
        gl,
        minutes_ago(40),
        7,
        mantissa=55,
        exponent=-4,
        unit="mol/L",
        context=GLUCOSE_CONTEXT,
        raw_context=RAW_GLUCOSE_CONTEXT,
        clock=wire.DeviceClock(status=wire.ClockStatus.SYNCHRONISED, offset_seconds=0.75),
    )
    hi = glucose_reading(
        gl,
        minutes_ago(30),
        8,
        mantissa=None,
        exponent=0,
        unit="kg/L",
        sensor_status=["result_higher_than_device_can_process"],
        status_bits=0x0020,
    )
    control = glucose_reading(
        gl,
        minutes_ago(20),
        9,
        mantissa=120,
        exponent=-5,
        unit="kg/L",
        sample_type="control_solution",
        sample_location="control_solution",
        type_location=0x4A,
        time_source=wire.TimeSource.RECEIVED,
        clock=wire.DeviceClock(status=wire.ClockStatus.UNSET),
    )
    async with db.connection(pool) as conn:
        result = await store.store_message(
            conn, message("gw-glu", bp, fasting, hi, control), "direct"
        )
    assert (result.stored, result.stored_glucose) == (4, 3)

    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://api", auth=PatientTokenAuth()
        ) as http:
            [bp_body] = (await http.get(f"/patients/{patient_id}/readings")).json()
            glucose = f"/patients/{patient_id}/readings/glucose"
            response = await http.get(glucose)
            windowed = await http.get(
                glucose,
                params={
                    "since": fasting.measured_at.isoformat(),
                    "until": control.measured_at.isoformat(),
                    "limit": 1,
                },
            )
            refused = [
                (await http.get("/patients/nobody/readings/glucose")).status_code,
                (await http.get(glucose, params={"limit": 0})).status_code,
                (await http.get(glucose, params={"limit": 1001})).status_code,
                (
                    await http.get(
                        glucose,
                        params={"since": fasting.measured_at.replace(tzinfo=None).isoformat()},
                    )
                ).status_code,
            ]

    assert (bp_body["reading_id"], bp_body["systolic"]) == (str(bp.reading_id), 126)
    assert (bp_body["time_source"], bp_body["clock_status"], bp_body["clock_offset_s"]) == (
        "device_corrected",
        "corrected",
        -42.5,
    )
    assert response.status_code == 200
    body = response.json()
    assert [r["reading_id"] for r in body] == [
        str(control.reading_id),
        str(hi.reading_id),
        str(fasting.reading_id),
    ]
    newest, special, oldest = body
    assert oldest.pop("mmol_per_l") == pytest.approx(5.5)
    assert oldest.pop("mg_per_dl") == pytest.approx(99.088, abs=1e-3)
    assert oldest.pop("measured_at").startswith(fasting.measured_at.strftime("%Y-%m-%dT%H:%M:%S"))
    assert oldest.pop("received_at").startswith(fasting.received_at.strftime("%Y-%m-%dT%H:%M:%S"))
    assert oldest == {
        "reading_id": str(fasting.reading_id),
        "device_time": fasting.device_time.isoformat() if fasting.device_time else None,
        "time_source": "device",
        "clock_status": "synchronised",
        "clock_offset_s": 0.75,
        "device_key": gl.device_key,
        "sequence_number": 7,
        "reported_unit": "mol/L",
        "sample_type": "capillary_plasma",
        "sample_location": "finger",
        "sensor_status": [],
        "context": GLUCOSE_CONTEXT.model_dump(mode="json"),
        "control_solution": False,
    }
    assert (special["mmol_per_l"], special["mg_per_dl"], special["sensor_status"]) == (
        None,
        None,
        ["result_higher_than_device_can_process"],
    )
    assert (special["context"], special["reported_unit"]) == (None, "kg/L")
    assert (newest["control_solution"], newest["mg_per_dl"], newest["sample_type"]) == (
        True,
        120,
        "control_solution",
    )
    assert (newest["time_source"], newest["clock_status"], newest["clock_offset_s"]) == (
        "received",
        "unset",
        None,
    )
    assert windowed.status_code == 200
    assert [r["reading_id"] for r in windowed.json()] == [str(hi.reading_id)]
    assert refused == [404, 422, 422, 422]
    assert [action for _, action, _ in _access_rows(database_url, patient_id)] == [
        "read bp_readings",
        "read glucose_readings",
        "read glucose_readings",
    ]
    assert query(database_url, "SELECT count(*) FROM access_log WHERE patient_id = 'nobody'") == [
        (0,)
    ]


def _refs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref":
                yield value
            else:
                yield from _refs(value)
    elif isinstance(node, list):
        for item in node:
            yield from _refs(item)


async def test_openapi_document_describes_both_reading_kinds(settings: IngestSettings) -> None:
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://api") as http:
            response = await http.get("/openapi.json")
    assert response.status_code == 200
    document = response.json()
    schemas = document["components"]["schemas"]
    # Every reference resolves (two models of one name would silently replace each other).
    for ref in set(_refs(document)):
        assert ref.startswith("#/components/schemas/") and ref.split("/")[-1] in schemas, ref
    route = document["paths"]["/patients/{patient_id}/readings/glucose"]["get"]
    assert {p["name"] for p in route["parameters"]} == {
        "patient_id",
        "since",
        "until",
        "limit",
        "X-Purpose-Of-Use",  # why a clinician reads: the consent purpose that must cover it
    }
    listed = route["responses"]["200"]["content"]["application/json"]["schema"]
    assert listed["items"]["$ref"] == "#/components/schemas/GlucoseReading"
    glucose = schemas["GlucoseReading"]["properties"]
    assert {
        "mmol_per_l",
        "mg_per_dl",
        "sample_type",
        "sample_location",
        "sensor_status",
        "context",
        "control_solution",
        "sequence_number",
        "device_time",
        "received_at",
        "measured_at",
        "time_source",
        "clock_status",
        "clock_offset_s",
    } <= set(glucose)
    assert {"time_source", "clock_status", "clock_offset_s"} <= set(
        schemas["Reading"]["properties"]
    )
    assert schemas["TimeSource"]["enum"] == [s.value for s in wire.TimeSource]
    assert schemas["ClockStatus"]["enum"] == [s.value for s in wire.ClockStatus]


async def test_service_start_fails_clearly_without_database(
    mqtt_broker: BrokerEndpoint, topic_root: str, postgres_server: str
) -> None:
    from tests.fixtures.postgres import database_url_for

    bad = ingest_settings(
        database_url_for("hwtest_does_not_exist", postgres_server),
        mqtt_broker.url,
        topic_root,
        db_start_timeout_s=1.0,
    )
    with pytest.raises(ServiceError, match="database not reachable"):
        async with IngestService(bad):
            pass


async def test_health_reports_an_unreachable_database(
    settings: IngestSettings, postgres_server: str
) -> None:
    from tests.fixtures.postgres import database_url_for

    pool = db.create_pool(database_url_for("hwtest_does_not_exist", postgres_server), timeout=0.5)
    await pool.open()
    try:
        app = create_app(settings, pool=pool)
        async with app.router.lifespan_context(app):
            async with httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app),
                base_url="http://api",
                auth=PatientTokenAuth(),
            ) as http:
                response = await http.get("/health")
                assert (response.status_code, response.json()) == (
                    503,
                    {"status": "degraded", "database": "unavailable"},
                )
                assert (await http.get("/patients/p/readings")).status_code == 503
    finally:
        await pool.close()


async def test_service_starts_and_stops_cleanly(
    settings: IngestSettings, pool: db.Pool, mqtt_broker: BrokerEndpoint
) -> None:
    async with asyncio.timeout(20), IngestService(settings) as service:
        assert service.idle
        async with httpx.AsyncClient(base_url=service.api_url, timeout=5) as http:
            assert (await http.get("/health")).status_code == 200
        assert set(service.consumer.counters_snapshot()) >= {
            "received",
            "acked",
            "stored",
            "quarantined",
        }
    with pytest.raises(httpx.ConnectError):
        async with httpx.AsyncClient(base_url=service.api_url, timeout=2) as http:
            await http.get("/health")
