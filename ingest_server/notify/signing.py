"""HMAC signatures of webhook bodies, so a receiver can tell our requests from forgeries and
replays.

Header ``X-Homewatch-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>``:
the time is signed with the body, and a receiver rejects signatures older than its tolerance.
Pure functions; a receiver in another language needs only these few lines.
"""

from __future__ import annotations

import hashlib
import hmac

SIGNATURE_HEADER = "X-Homewatch-Signature"
DELIVERY_HEADER = "X-Homewatch-Delivery"
EVENT_HEADER = "X-Homewatch-Event"
DEFAULT_TOLERANCE_S = 300


def _mac(secret: str, timestamp: int, body: bytes) -> str:
    message = str(timestamp).encode() + b"." + body
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """The signature header's value for ``body`` sent at ``timestamp``."""
    return f"t={timestamp},v1={_mac(secret, timestamp, body)}"


def verify(
    secret: str, header: str, body: bytes, now: float, tolerance_s: int = DEFAULT_TOLERANCE_S
) -> bool:
    """Whether ``header`` signs ``body`` with ``secret`` and is at most ``tolerance_s`` old."""
    try:
        parts = dict(item.split("=", 1) for item in header.split(","))
        timestamp = int(parts["t"])
        given = parts["v1"]
    except (KeyError, ValueError):
        return False
    if abs(now - timestamp) > tolerance_s:
        return False
    return hmac.compare_digest(given, _mac(secret, timestamp, body))
