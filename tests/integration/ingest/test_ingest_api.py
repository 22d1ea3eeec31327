"""The service (consumer + API in one loop) and the API's reads, each audited."""

from __future__ import annotations

import asyncio

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
    bp_reading,
    device,
    ingest_settings,
    message,
    minutes_ago,
    publish,
    query,
    subscribed,
    unique,
    wait_until,
)


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

        async with httpx.AsyncClient(base_url=service.api_url, timeout=10) as http:
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
        ("anonymous", "read bp_readings", "127.0.0.1"),
        ("anonymous", "read bp_readings", "127.0.0.1"),
        ("anonymous", "read bp_readings", "127.0.0.1"),
        ("anonymous", "read alerts", "127.0.0.1"),
        ("anonymous", "read alerts", "127.0.0.1"),
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
        async with httpx.AsyncClient(transport=transport, base_url="http://api") as http:
            body = (await http.get(f"/patients/{patient_id}/readings")).json()
    assert [(r["reading_id"], r["pulse"], r["flags"]) for r in body] == [
        (str(reading.reading_id), None, [])
    ]
    assert body[0]["received_at"] is not None and body[0]["device_time"] is not None
    assert len(_access_rows(database_url, patient_id)) == 1


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
                transport=httpx.ASGITransport(app=app), base_url="http://api"
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
