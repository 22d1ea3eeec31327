"""Fixtures for the gateway tests that read simulated devices: a virtual radio, the gateway's
bumble central on it, and a way to start simulators that stop when the test ends."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import pytest

from device_simulators.radio import VirtualRadio
from gateway.bleak_bumble import BumbleCentral


@pytest.fixture
async def radio() -> AsyncIterator[VirtualRadio]:
    async with VirtualRadio() as radio:
        yield radio


@pytest.fixture
async def central(radio: VirtualRadio) -> AsyncIterator[BumbleCentral]:
    async with BumbleCentral(await radio.central_device()) as central:
        yield central


@pytest.fixture
async def start_simulator(radio: VirtualRadio):
    """``await start_simulator(Glucometer, identity, **options)``: a running simulator on the
    radio (on a device named after ``identity.name``)."""
    async with contextlib.AsyncExitStack() as stack:

        async def start(simulator_class, identity, **options):
            device = await radio.peripheral_device(identity.name)
            return await stack.enter_async_context(simulator_class(device, identity, **options))

        yield start
