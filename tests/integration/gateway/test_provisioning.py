"""Provisioning at run time: the server's retained config topic and a local file set the device
allowlist (and device settings); changes apply without a restart, an invalid configuration is
logged and ignored with the last good one kept, and the server's last configuration survives a
restart without a network. Real parts: bumble cuffs, the gateway, Mosquitto."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest

from device_simulators.bp_cuff import BloodPressureCuff
from device_simulators.patients import Measurement
from device_simulators.radio import VirtualRadio
from gateway.bleak_bumble import BumbleCentral
from gateway.provisioning import ProvisionedConfig, Provisioner, json_config
from gateway.settings import GatewaySettings
from gateway.status import read_status_file
from gateway.topics import config_topic
from homewatch.embedded.broker import free_port
from tests.fixtures.mqtt import MqttTap
from tests.integration.gateway.ble_gateway_support import eventually, running_gateway
from tests.integration.gateway.test_gateway_cuff import identity, key

#: Closed from the start: nothing is read before the provisioned allowlist arrives.
NOBODY = ["00:00:00:00:00:00"]


@pytest.fixture
async def radio() -> AsyncIterator[VirtualRadio]:
    async with VirtualRadio() as radio:
        yield radio


@pytest.fixture
async def central(radio: VirtualRadio) -> AsyncIterator[BumbleCentral]:
    async with BumbleCentral(await radio.central_device()) as central:
        yield central


@pytest.fixture
async def two_cuffs(radio: VirtualRadio) -> AsyncIterator[tuple[BloodPressureCuff, ...]]:
    """Two cuffs, each holding one measurement."""
    async with contextlib.AsyncExitStack() as stack:
        cuffs = []
        at = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=2)
        for serial, systolic in (("PROV-A", 121), ("PROV-B", 142)):
            ident = identity(serial)
            cuff = await stack.enter_async_context(
                BloodPressureCuff(await radio.peripheral_device(ident.name), ident)
            )
            await cuff.measure(Measurement(at, systolic, 80, 60).encode())
            cuffs.append(cuff)
        yield tuple(cuffs)


def publish_retained(broker, topic: str, payload: bytes) -> None:
    tap = MqttTap(broker, f"{topic}/unused")
    try:
        tap.client.publish(topic, payload, qos=1, retain=True).wait_for_publish(5)
    finally:
        tap.close()


async def test_the_servers_retained_config_sets_the_allowlist_and_changes_apply_live(
    two_cuffs, central, mqtt_broker, topic_root, tmp_path, caplog
):
    caplog.set_level(logging.ERROR, logger="gateway.provisioning")
    cuff_a, cuff_b = two_cuffs
    topic = config_topic("gw-prov", topic_root)
    publish_retained(mqtt_broker, topic, json_config(revision=1, allowed_devices=[cuff_a.address]))
    outbox = tmp_path / "o.sqlite3"
    async with running_gateway(
        central,
        mqtt_broker,
        topic_root,
        outbox,
        gateway_id="gw-prov",
        allowed_devices=NOBODY,
        status_interval_seconds=0.5,
    ) as gw:
        [first] = await eventually(lambda: gw.readings)
        assert first.device.device_key == key(identity("PROV-A"))
        await asyncio.sleep(1.0)  # time enough for B to be read, were it allowed
        assert len(gw.readings) == 1 and cuff_b.stored_count == 1

        # The server allows B as well: read without a restart.
        publish_retained(
            mqtt_broker,
            topic,
            json_config(revision=2, allowed_devices=[cuff_a.address, cuff_b.address]),
        )
        await eventually(lambda: len(gw.readings) == 2)
        assert gw.readings[1].device.device_key == key(identity("PROV-B"))

        # An invalid configuration is ignored: logged, shown in the status, last good one kept.
        publish_retained(mqtt_broker, topic, json_config(revision=3, allowed_devices="B"))
        status = await eventually(
            lambda: (s := read_status_file(gw.gateway.status_file)).config_error and s
        )
        assert status.config_revision == 2 and status.config_source == "server"
        assert "allowed_devices" in status.config_error
        assert gw.gateway.allowlist.may_connect(cuff_b.address)
        assert any("invalid provisioned configuration" in r.getMessage() for r in caplog.records)
        publish_retained(mqtt_broker, topic, b"{not json")
        await asyncio.sleep(0.3)
        assert gw.gateway.in_force.allowed_devices == [cuff_a.address, cuff_b.address]

    # Restarted with no broker: the last good server configuration is in force at once.
    async with running_gateway(
        central,
        mqtt_broker.__class__(mqtt_broker.host, free_port()),
        topic_root,
        outbox,
        gateway_id="gw-prov",
        allowed_devices=NOBODY,
    ) as gw:
        await eventually(lambda: gw.gateway.in_force.allowed_devices != NOBODY)
        assert gw.gateway.in_force.allowed_devices == [cuff_a.address, cuff_b.address]
    publish_retained(mqtt_broker, topic, b"")  # clear the retained message


async def test_a_local_provisioning_file_is_watched(
    two_cuffs, central, mqtt_broker, topic_root, tmp_path
):
    cuff_a, cuff_b = two_cuffs
    path = tmp_path / "provisioning.json"
    path.write_bytes(json_config(revision=7, allowed_devices=[cuff_b.address]))
    async with running_gateway(
        central,
        mqtt_broker,
        topic_root,
        tmp_path / "o.sqlite3",
        gateway_id="gw-file",
        allowed_devices=NOBODY,
        provisioning_file=path,
        meter_rest_seconds=1.0,
    ) as gw:
        [first] = await eventually(lambda: gw.readings)
        assert first.device.device_key == key(identity("PROV-B"))
        assert gw.gateway.in_force.meter_rest_seconds == 1.0

        path.write_text("{ broken")  # ignored, the last good one stays
        await asyncio.sleep(2.5)
        assert gw.gateway.in_force.allowed_devices == [cuff_b.address]

        path.write_bytes(
            json_config(revision=8, allowed_devices=[cuff_a.address], meter_rest_seconds=9)
        )
        await eventually(lambda: len(gw.readings) == 2, timeout=10)
        assert gw.readings[1].device.device_key == key(identity("PROV-A"))
        assert gw.gateway.in_force.meter_rest_seconds == 9
        assert gw.gateway._ctx.meter_rest == 9  # what new sessions get


def test_precedence_and_the_cache(tmp_path):
    """settings < local file < server; an empty server message withdraws the server's part."""
    applied = []
    base = GatewaySettings(allowed_devices=["AA:AA:AA:AA:AA:AA"], clock_drift_bound_seconds=60)
    cache = tmp_path / "provisioned.json"
    provisioner = Provisioner(base, cache, applied.append)
    provisioner.from_file_text(
        json_config(revision=1, allowed_devices=["file"], set_device_clocks=False), cache
    )
    provisioner.from_server(json_config(revision=4, allowed_devices=["server"]))
    now = applied[-1]
    assert now.settings.allowed_devices == ["server"]
    assert now.settings.set_device_clocks is False  # from the file, the server did not say
    assert now.settings.clock_drift_bound_seconds == 60  # from the settings
    assert (now.revision, now.source) == (4, "server")
    assert json.loads(cache.read_text())["revision"] == 4

    again = Provisioner(base, cache, applied.append)
    again.load_cache()
    assert applied[-1].settings.allowed_devices == ["server"]

    again.from_server(b"")
    assert applied[-1].settings.allowed_devices == ["AA:AA:AA:AA:AA:AA"]
    assert not cache.exists()


@pytest.mark.parametrize(
    "payload",
    [
        b"[]",
        b'{"schema": "homewatch.gateway-config/1"}',  # no revision
        b'{"schema": "homewatch.gateway-config/2", "revision": 1}',
        b'{"schema": "homewatch.gateway-config/1", "revision": 1, "unknown": true}',
        b'{"schema": "homewatch.gateway-config/1", "revision": 1, "meter_rest_seconds": -1}',
        b'{"schema": "homewatch.gateway-config/1", "revision": 1, "allowed_devices": [""]}',
    ],
)
def test_invalid_configurations_are_refused_with_a_reason(payload, tmp_path):
    applied = []
    provisioner = Provisioner(GatewaySettings(), tmp_path / "c.json", applied.append)
    provisioner.from_server(payload)
    assert applied[-1].error and applied[-1].revision is None
    assert not (tmp_path / "c.json").exists()
    with pytest.raises(ValueError):
        ProvisionedConfig.from_bytes(payload)
