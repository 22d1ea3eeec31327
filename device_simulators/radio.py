"""An in-process virtual radio: bumble controllers on one ``LocalLink``.

Each device (the gateway's central, every simulated peripheral) gets its own bumble Controller
and host stack on the shared link, so they talk real HCI, link layer, L2CAP, ATT and GATT::

    async with VirtualRadio() as radio:
        central_device = await radio.central_device()          # for BumbleCentral(device)
        cuff_device = await radio.peripheral_device("HW-BP 01") # for BloodPressureCuff(...)
        port = await radio.serve_tcp()   # optional: a controller for a gateway in another
                                         # process, BumbleCentral.from_transport(
                                         #   f"tcp-client:127.0.0.1:{port}")
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import socket
from types import TracebackType
from typing import Self

from bumble import hci
from bumble.controller import Controller
from bumble.device import Device
from bumble.host import Host
from bumble.link import LocalLink
from bumble.transport.common import AsyncPipeSink, Transport
from bumble.transport.tcp_server import open_tcp_server_transport_with_socket

logger = logging.getLogger(__name__)

#: How long closing one device may take on exit.
CLOSE_TIMEOUT = 5.0


def random_static_address(index: int) -> hci.Address:
    """A deterministic random static address (two top bits set) for the ``index``-th device."""
    if not 0 <= index < 1 << 40:
        raise ValueError(f"address index out of range: {index}")
    raw = 0xC0_00_00_00_00_00 | (0x5A << 32) | index
    text = ":".join(f"{(raw >> shift) & 0xFF:02X}" for shift in range(40, -8, -8))
    return hci.Address(text, hci.Address.RANDOM_DEVICE_ADDRESS)


class VirtualRadio:
    """A ``LocalLink`` and the bumble devices on it; ``async with`` closes them all."""

    def __init__(self) -> None:
        self._link: LocalLink | None = None
        self._counter = itertools.count(1)
        self._controllers: list[Controller] = []
        self._devices: list[Device] = []
        self._transports: list[Transport] = []

    @property
    def link(self) -> LocalLink:
        if self._link is None:
            raise RuntimeError("the virtual radio is not open: use it as `async with`")
        return self._link

    async def __aenter__(self) -> Self:
        self._link = LocalLink()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        for device in reversed(self._devices):
            await self._close_device(device)
        for transport in self._transports:
            await _close_tcp_server_transport(transport)
        if self._link is not None:
            for controller in self._controllers:
                self._link.remove_controller(controller)
        self._devices.clear()
        self._transports.clear()
        self._controllers.clear()
        self._link = None

    async def create_device(
        self, name: str, *, address: str | None = None, public: bool = False
    ) -> Device:
        """A powered-on bumble Device with its own Controller on the link.

        ``address`` defaults to a fresh random static address; with ``public=True`` it is
        used (and required) as the controller's public address instead.
        """
        if public and address is None:
            raise ValueError("a public address must be given explicitly")
        index = next(self._counter)
        if public:
            assert address is not None
            own = hci.Address(address, hci.Address.PUBLIC_DEVICE_ADDRESS)
            controller = Controller(f"{name}-ctl", link=self.link, public_address=own)
            # The host still needs a random address for LE; derive one from the index.
            device = Device(name=name, address=random_static_address(index), host=None)
        else:
            own = hci.Address(address) if address else random_static_address(index)
            controller = Controller(f"{name}-ctl", link=self.link)
            device = Device(name=name, address=own)
        device.host = Host(controller, AsyncPipeSink(controller))
        self._controllers.append(controller)
        self._devices.append(device)
        await device.power_on()
        logger.debug("virtual device %s at %s", name, own)
        return device

    async def central_device(self, name: str = "homewatch-gateway") -> Device:
        """The Device the gateway's ``BumbleCentral`` runs on."""
        return await self.create_device(name)

    async def peripheral_device(self, name: str, *, address: str | None = None) -> Device:
        """A Device for a simulated peripheral (its GATT server and advertising are the
        simulator's job)."""
        return await self.create_device(name, address=address)

    async def serve_tcp(self, host: str = "127.0.0.1", port: int = 0) -> int:
        """A controller on this link served as HCI over TCP; returns the port.

        One host may attach to it, e.g. a gateway in another process with
        ``BumbleCentral.from_transport(f"tcp-client:{host}:{port}")``.
        """
        sock = socket.create_server((host, port))
        transport = await open_tcp_server_transport_with_socket(sock)
        bound_port: int = sock.getsockname()[1]
        controller = Controller(
            f"tcp-{bound_port}",
            host_source=transport.source,
            host_sink=transport.sink,
            link=self.link,
        )
        self._controllers.append(controller)
        self._transports.append(transport)
        logger.info("virtual radio controller served on %s:%d", host, bound_port)
        return bound_port

    async def _close_device(self, device: Device) -> None:
        try:
            async with asyncio.timeout(CLOSE_TIMEOUT):
                if device.is_scanning:
                    await device.stop_scanning()
                if device.is_advertising:
                    await device.stop_advertising()
                for connection in list(device.connections.values()):
                    await connection.disconnect()
                await device.power_off()
        except Exception:
            logger.exception("closing virtual device %s", device.name)


async def _close_tcp_server_transport(transport: Transport) -> None:
    # bumble's TCP server transport closes neither its listening socket nor the accepted
    # connection on close(): do both, or the sockets leak (ResourceWarning).
    await transport.close()
    connection = getattr(transport.sink, "transport", None)
    if connection is not None:
        connection.close()
    server = getattr(transport, "server", None)
    if server is not None:
        server.close()
        try:
            async with asyncio.timeout(CLOSE_TIMEOUT):
                await server.wait_closed()
        except TimeoutError:
            logger.warning("TCP server of the virtual radio did not close in time")
