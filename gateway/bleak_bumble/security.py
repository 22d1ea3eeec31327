"""Pairing, bonds and link encryption for the bumble backend: bleak's ``pair=``, ``pair()`` and
``unpair()``.

Real glucose meters refuse the CCCD and RACP writes on a link that is not encrypted (SPEC.md
5.1), so a collector pairs once and encrypts every later link with the keys of that bond. This
module gives the bumble backend the semantics bleak has on BlueZ:

- pairing bonds: the keys are kept in the central Device's keystore (bumble's ``MemoryKeyStore``
  unless the Device was configured with another), under the peer's identity address;
- a device with a bond gets its link encrypted with the stored keys on every connection, paired
  or not (BlueZ raises the security of a bonded LE device's ATT link the same way), and is never
  paired again: a meter keeps a bounded list of bonds, and a fresh pairing at each visit would
  evict the others;
- when the device no longer has the bond (reset, or it forgot the gateway), encryption fails
  with "key missing": that is an error to fix by hand (``unpair()``, then pair again), never a
  silent re-pairing, because a device asking for a new bond under a known address is also what
  an impostor looks like;
- ``unpair()`` forgets the bond.

Pairing itself follows the central Device's pairing configuration (``Device.pairing_config_
factory``); bumble's default is Secure Connections, bonding, no input/output capability, i.e.
"Just Works", which is what the gateway (a box without display or keyboard) can do.

Callers bound every call here with ``asyncio.timeout``; nothing waits on its own.
"""

from __future__ import annotations

import asyncio
import enum
import logging
from collections.abc import Awaitable

from bumble import core, hci
from bumble.device import Connection, Device
from bumble.keys import PairingKeys

from gateway.bleak_bumble.cancellation import keep_cancellation
from gateway.bleak_bumble.central import address_key
from gateway.bleak_bumble.errors import BumbleDisconnectedError, BumblePairingError

logger = logging.getLogger(__name__)


class LinkSecurity(enum.Enum):
    """What ``secure_link`` did to the link."""

    PLAIN = "plain"
    """Left unencrypted: no bond with the device and no pairing asked for."""
    ALREADY_ENCRYPTED = "already encrypted"
    BOND_REUSED = "encrypted with the stored bond"
    PAIRED = "paired"


async def stored_keys(device: Device, address: hci.Address) -> PairingKeys | None:
    """The keys of the central's bond with ``address``, if it has one that can encrypt a link."""
    if device.keystore is None:  # only before power-on
        return None
    keys = await device.keystore.get(str(address))
    if keys is None or (keys.ltk is None and keys.ltk_central is None):
        return None
    return keys


async def secure_link(connection: Connection, *, pair: bool) -> LinkSecurity:
    """Encrypt ``connection`` with the stored bond, or pair (and bond) when ``pair`` and no bond
    exists yet. Raises ``BumblePairingError`` (or ``BumbleDisconnectedError``) on failure."""
    if connection.is_encrypted:
        # Pairing again on an encrypted link gains nothing (bumble's SMP does not even answer).
        return LinkSecurity.ALREADY_ENCRYPTED
    address = address_key(connection.peer_address)
    keys = await stored_keys(connection.device, connection.peer_address)
    if keys is not None:
        await _attempt(connection.encrypt(), "encrypting the link", address)
        logger.info("link with %s encrypted with the stored bond", address)
        return LinkSecurity.BOND_REUSED
    if not pair:
        return LinkSecurity.PLAIN
    await _attempt(connection.pair(), "pairing", address)
    # The peer's identity address, learnt while pairing, is what the keys are stored under.
    if await stored_keys(connection.device, connection.peer_address) is None:
        logger.warning(
            "paired with %s, but no bond was kept: the central's pairing configuration does "
            "not bond, so the device will be paired again at every connection",
            address,
        )
    else:
        logger.info("paired and bonded with %s", address)
    return LinkSecurity.PAIRED


async def forget_bond(device: Device, address: str) -> int:
    """Delete the central's bond(s) with ``address`` (as bleak writes it); how many there were.

    The keystore names a bond by the peer's identity address, with a ``/P`` suffix when it is a
    public one; bleak's address has no suffix, so both kinds are matched.
    """
    keystore = device.keystore
    if keystore is None:
        return 0
    wanted = address.upper()
    names = [name for name, _ in await keystore.get_all() if _bleak_form(name) == wanted]
    for name in names:
        await keystore.delete(name)
    if names:
        # The controller resolves the private addresses of bonded peers: drop the forgotten one.
        await keep_cancellation(device.refresh_resolving_list())
        logger.info("bond with %s forgotten", wanted)
    return len(names)


def _bleak_form(keystore_name: str) -> str:
    return keystore_name.split("/", 1)[0].upper()


async def _attempt(operation: Awaitable[None], what: str, address: str) -> None:
    try:
        await keep_cancellation(operation)
    except asyncio.CancelledError:
        task = asyncio.current_task()
        if task is not None and task.cancelling():
            raise  # our own cancellation (or the caller's timeout): not a pairing failure
        # bumble cancels the SMP / encryption wait when the link drops.
        raise BumbleDisconnectedError(f"{what} with {address}") from None
    except core.BaseBumbleError as exc:
        raise BumblePairingError(address, what, _reason(exc)) from exc


def _reason(exc: core.BaseBumbleError) -> str:
    if isinstance(exc, hci.HCI_Error) and exc.error_code == hci.HCI_PIN_OR_KEY_MISSING_ERROR:
        return (
            "the device has no key for this bond (it was reset or forgot the gateway); "
            "unpair it and pair again"
        )
    if isinstance(exc, core.ProtocolError) and exc.error_namespace == "smp":
        return f"the device refused to pair (SMP {exc.error_name})"
    return str(exc) or type(exc).__name__
