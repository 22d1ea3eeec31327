"""A bleak backend over bumble: the gateway reaches simulated (or bumble-driven) BLE devices
through bleak's public API, exactly as it reaches real ones through BlueZ.

``BumbleCentral`` owns the bumble Device in the central role; its ``scanner_backend`` and
``client_backend`` are passed to ``BleakScanner(backend=...)`` and ``BleakClient(backend=...)``.
Pairing (``BleakClient(..., pair=True)``, ``pair()``, ``unpair()``) bonds in the central Device's
keystore and encrypts later links with the bond (``gateway.bleak_bumble.security``).
"""

from gateway.bleak_bumble.central import BumbleCentral, BumbleDeviceDetails
from gateway.bleak_bumble.errors import (
    BumbleBackendError,
    BumbleCentralStateError,
    BumbleDisconnectedError,
    BumblePairingError,
    BumbleTransportError,
)

__all__ = [
    "BumbleBackendError",
    "BumbleCentral",
    "BumbleCentralStateError",
    "BumbleDeviceDetails",
    "BumbleDisconnectedError",
    "BumblePairingError",
    "BumbleTransportError",
]
