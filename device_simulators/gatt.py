"""What every simulated peripheral does the same way on bumble's GATT server."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from bumble import att, gatt
from bumble.device import Connection, Device

logger = logging.getLogger(__name__)


def is_subscribed(
    device: Device, connection: Connection, characteristic: gatt.Characteristic, bit: int
) -> bool:
    """Whether the central on ``connection`` has ``bit`` (notify/indicate) set in the CCCD."""
    if connection.handle not in device.connections:
        return False
    cccd = device.gatt_server.subscribers.get(connection, {}).get(characteristic.handle)
    return bool(cccd) and bool(cccd[0] & bit)


async def indicate_confirmed(
    device: Device,
    connection: Connection,
    characteristic: gatt.Characteristic,
    payload: bytes,
    timeout: float,
) -> bool:
    """Indicate ``payload`` and wait for the confirmation; False when it does not come.

    bumble's ``indicate_subscriber()`` returns silently when nobody is subscribed and, when the
    link drops, waits for its own 30 s timeout: callers check the subscription first
    (``is_subscribed``), ``force=True`` makes a missing subscriber an error, and a disconnection
    ends the wait at once.
    """
    loop = asyncio.get_running_loop()
    disconnected: asyncio.Future[int] = loop.create_future()

    def on_disconnection(reason: int) -> None:
        if not disconnected.done():
            disconnected.set_result(reason)

    connection.on(Connection.EVENT_DISCONNECTION, on_disconnection)
    indication = loop.create_task(
        device.indicate_subscriber(connection, characteristic, payload, force=True)
    )
    try:
        done, _ = await asyncio.wait(
            {indication, disconnected}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED
        )
    finally:
        connection.remove_listener(Connection.EVENT_DISCONNECTION, on_disconnection)
        disconnected.cancel()
        if not indication.done():
            indication.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait({indication})
    if indication in done and not indication.cancelled() and indication.exception() is None:
        return True
    if indication.done() and not indication.cancelled() and indication.exception():
        logger.warning("indication failed: %s", indication.exception())
    return False


async def notify_if_subscribed(
    device: Device,
    connection: Connection,
    characteristic: gatt.Characteristic,
    payload: bytes,
    timeout: float,
) -> bool:
    """Notify ``payload`` to the central on ``connection`` if it enabled notifications.

    True once the notification is handed to the link (there is no confirmation: that is what
    notifying means); False when the central did not subscribe to notifications, or the link
    went away or did not take the notification within ``timeout``.
    """
    bit = gatt.ClientCharacteristicConfigurationBits.NOTIFICATION
    if not is_subscribed(device, connection, characteristic, bit):
        return False
    try:
        async with asyncio.timeout(timeout):
            await device.notify_subscriber(connection, characteristic, payload, force=True)
    except Exception as error:  # the link dropped under us: the caller keeps its data
        logger.warning("notification on handle 0x%04X failed: %r", characteristic.handle, error)
        return False
    return True


def read_not_permitted(_connection: Connection) -> bytes:
    """A read handler for characteristics without READ: bumble would serve them anyway."""
    raise att.ATT_Error(att.ErrorCode.READ_NOT_PERMITTED)


def write_not_permitted(_connection: Connection, _value: bytes) -> None:
    """A write handler for characteristics without WRITE: bumble does not check the properties
    nor the permissions of a written attribute, and would fail inside its own task without a
    handler; a real device answers Write Not Permitted."""
    raise att.ATT_Error(att.ErrorCode.WRITE_NOT_PERMITTED)
