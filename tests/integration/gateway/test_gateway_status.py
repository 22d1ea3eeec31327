"""What a gateway says about itself: the retained status on ``.../status`` (online with devices,
battery, last reading, outbox depth, version; "offline" from a clean stop, and from the broker's
Will when the process dies), the status file and ``homewatch gateway status``, and the
Prometheus endpoint. Real parts: bumble cuff, gateway (in-process and as a process), Mosquitto."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import urllib.request
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from device_simulators.bp_cuff import BloodPressureCuff
from device_simulators.patients import Measurement
from device_simulators.radio import VirtualRadio
from gateway.bleak_bumble import BumbleCentral
from gateway.status import GatewayStatus, read_status_file, software_version
from gateway.topics import status_topic
from homewatch import cli_gateway
from tests.fixtures.mqtt import MqttTap
from tests.integration.gateway.ble_gateway_support import eventually, running_gateway
from tests.integration.gateway.test_gateway_cuff import identity, key

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture
async def radio() -> AsyncIterator[VirtualRadio]:
    async with VirtualRadio() as radio:
        yield radio


class StatusTap(MqttTap):
    def statuses(self) -> list[GatewayStatus]:
        return [GatewayStatus.from_bytes(m) for m in self.messages]


def status_cli(*args: str):
    app = typer.Typer()
    app.command()(cli_gateway.gateway_status)
    return CliRunner().invoke(app, list(args))


async def test_status_message_file_cli_and_metrics_of_a_running_gateway(
    radio, mqtt_broker, topic_root, tmp_path
):
    ident = identity("STATUS-1")
    cuff_device = await radio.peripheral_device(ident.name)
    outbox = tmp_path / "o.sqlite3"
    async with (
        BloodPressureCuff(cuff_device, ident, battery_level=77) as cuff,
        BumbleCentral(await radio.central_device()) as central,
        running_gateway(
            central,
            mqtt_broker,
            topic_root,
            outbox,
            gateway_id="gw-status",
            metrics_port=0,
            status_interval_seconds=0.5,
        ) as gw,
    ):
        tap = StatusTap(mqtt_broker, status_topic("gw-status", topic_root))
        try:
            await asyncio.wait_for(tap.subscribed.wait(), 5)
            at = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=1)
            await cuff.measure(Measurement(at, 128, 82, 64).encode())
            await eventually(lambda: gw.readings)
            online = await eventually(
                lambda: next(
                    (s for s in reversed(tap.statuses()) if s.published == 1 and s.devices), None
                )
            )
        finally:
            tap.close()
        assert online.state == "online" and online.mqtt_connected
        assert online.software_version == software_version() != "unknown"
        assert online.outbox is not None and online.outbox.depth == 0
        assert online.outbox.limit == 100_000 and not online.outbox.full
        [device] = online.devices
        assert (device.device_key, device.kind, device.battery_percent) == (key(ident), "cuff", 77)
        assert device.last_reading_at == gw.readings[0].received_at
        assert online.last_publish_at is not None

        # The same status in the file next to the outbox, and `homewatch gateway status`.
        assert read_status_file(gw.gateway.status_file).gateway_id == "gw-status"
        result = await asyncio.to_thread(status_cli, "--outbox", str(outbox))
        assert result.exit_code == 0, result.output
        assert "running" in result.output and "MQTT: connected" in result.output
        assert "outbox: 0 reading(s) queued (limit 100000)" in result.output
        assert f"{key(ident)} (cuff" in result.output and "battery 77%" in result.output

        metrics = await asyncio.to_thread(
            lambda: (
                urllib.request.urlopen(
                    f"http://127.0.0.1:{gw.gateway.metrics_port}/metrics", timeout=5
                )
                .read()
                .decode()
            )
        )
        for line in (
            'homewatch_gateway_readings_decoded_total{kind="blood_pressure"} 1.0',
            "homewatch_gateway_readings_published_total 1.0",
            'homewatch_gateway_ble_connects_total{kind="cuff"} 1.0',
            "homewatch_gateway_outbox_depth 0.0",
            "homewatch_gateway_mqtt_connected 1.0",
            "homewatch_gateway_publish_latency_seconds_count 1.0",
        ):
            assert line in metrics, line

    # A clean stop leaves a retained "offline" with the last figures; the CLI says so.
    late = StatusTap(mqtt_broker, status_topic("gw-status", topic_root))
    try:
        [retained] = await eventually(lambda: late.statuses())
    finally:
        late.close()
    assert retained.state == "offline" and retained.published == 1
    result = await asyncio.to_thread(status_cli, "--outbox", str(outbox), "--json")
    assert result.exit_code == 1 and '"running": false' in result.output


def test_status_of_nothing_is_exit_2(tmp_path):
    result = status_cli("--outbox", str(tmp_path / "none.sqlite3"))
    assert result.exit_code == 2


async def test_the_will_says_offline_when_the_gateway_process_dies(
    radio, mqtt_broker, topic_root, tmp_path
):
    port = await radio.serve_tcp()
    env = os.environ | {
        "HOMEWATCH_GATEWAY_GATEWAY_ID": "gw-will",
        "HOMEWATCH_GATEWAY_MQTT_URL": mqtt_broker.url,
        "HOMEWATCH_GATEWAY_TOPIC_ROOT": topic_root,
        "HOMEWATCH_GATEWAY_OUTBOX_PATH": str(tmp_path / "o.sqlite3"),
        "HOMEWATCH_GATEWAY_BLE_TRANSPORT": f"tcp-client:127.0.0.1:{port}",
        "HOMEWATCH_GATEWAY_LOG_FORMAT": "json",
    }
    tap = StatusTap(mqtt_broker, status_topic("gw-will", topic_root))
    log = (tmp_path / "gateway.log").open("wb")
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "homewatch.cli_gateway",
        "run",
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        await asyncio.wait_for(tap.subscribed.wait(), 5)
        online = await eventually(
            lambda: next((s for s in tap.statuses() if s.state == "online"), None), timeout=30
        )
        assert online.pid == process.pid
        process.send_signal(signal.SIGKILL)
        will = await eventually(
            lambda: next((s for s in tap.statuses() if s.state == "offline"), None)
        )
    finally:
        if process.returncode is None:
            process.kill()
        await process.wait()
        log.close()
        tap.close()
    assert will.updated_at is None and will.devices is None  # the Will, not a clean stop
    assert will.software_version == online.software_version
    # JSON logs: one object per line.
    first = (tmp_path / "gateway.log").read_text().splitlines()[0]
    assert first.startswith('{"ts": ') and '"logger": ' in first
