"""Errors of the bumble backend, and the one place where bumble's errors become bleak's.

Every error this package raises is a :class:`bleak.exc.BleakError`, so gateway code that handles
bleak errors on BlueZ handles them here too. bumble exceptions never leave the package.
"""

from __future__ import annotations

import asyncio

from bleak.exc import BleakError, BleakGATTProtocolError
from bumble import att, core


class BumbleBackendError(BleakError):
    """Root of the errors raised by the bumble backend itself."""


class BumbleTransportError(BumbleBackendError):
    """The HCI transport to the (virtual) controller could not be opened."""

    def __init__(self, spec: str, reason: str) -> None:
        super().__init__(f"cannot open bumble transport {spec!r}: {reason}")
        self.spec = spec
        self.reason = reason


class BumbleCentralStateError(BumbleBackendError):
    """The central is used outside its ``async with`` block."""


class BumblePairingError(BumbleBackendError):
    """Pairing with a device, or encrypting the link with the keys of its bond, failed."""

    def __init__(self, address: str, operation: str, reason: str) -> None:
        super().__init__(f"{operation} with {address} failed: {reason}")
        self.address = address
        self.operation = operation
        self.reason = reason


class BumbleDisconnectedError(BumbleBackendError):
    """The link dropped while an operation was in progress."""

    def __init__(self, operation: str) -> None:
        super().__init__(f"{operation} failed: the device disconnected")
        self.operation = operation


def translate_error(exc: BaseException, operation: str) -> BaseException:
    """The bleak exception to raise for ``exc``, a failure of ``operation``.

    ``asyncio.CancelledError`` is translated only when the current task is not itself being
    cancelled: bumble cancels a pending GATT request when the link drops, and that must reach the
    caller as an error, not as a cancellation of its task.
    """
    if isinstance(exc, BleakError):
        return exc
    if isinstance(exc, att.ATT_Error):
        return BleakGATTProtocolError(exc.error_code)
    if isinstance(exc, asyncio.CancelledError):
        task = asyncio.current_task()
        if task is not None and task.cancelling():
            return exc
        return BumbleDisconnectedError(operation)
    if isinstance(exc, core.TimeoutError | TimeoutError):
        return BumbleBackendError(f"{operation} timed out")
    if isinstance(exc, core.BaseBumbleError):
        return BumbleBackendError(f"{operation} failed: {exc}")
    return exc
