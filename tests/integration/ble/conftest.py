"""Fixtures for the BLE link tests: a real bumble virtual radio, a cuff, a gateway central.

Every wait in these tests is bounded: each test body runs under ``asyncio.timeout(TEST_TIMEOUT)``
and every bleak call has its own timeout.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from device_simulators.bp_cuff import BloodPressureCuff
from device_simulators.radio import VirtualRadio
from gateway.bleak_bumble import BumbleCentral
from tests.integration.ble.ble_support import (
    CUFF_BATTERY,
    CUFF_FEATURES,
    CUFF_IDENTITY,
    OtherPeripheral,
)


@pytest.fixture
async def radio() -> AsyncIterator[VirtualRadio]:
    async with VirtualRadio() as radio:
        yield radio


@pytest.fixture
async def cuff(radio: VirtualRadio) -> AsyncIterator[BloodPressureCuff]:
    device = await radio.peripheral_device(CUFF_IDENTITY.name)
    cuff = BloodPressureCuff(
        device, CUFF_IDENTITY, features=CUFF_FEATURES, battery_level=CUFF_BATTERY
    )
    async with cuff:
        yield cuff


@pytest.fixture
async def other(radio: VirtualRadio) -> OtherPeripheral:
    peripheral = OtherPeripheral(await radio.peripheral_device("Thermo 7"))
    await peripheral.start()
    return peripheral


@pytest.fixture
async def central(radio: VirtualRadio) -> AsyncIterator[BumbleCentral]:
    async with BumbleCentral(await radio.central_device()) as central:
        yield central
