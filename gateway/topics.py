"""The gateway's own topics beside its readings topic (``homewatch.wire.readings_topic``).

Same shape as ``wire.py`` — ``{root}/gateways/{gateway_id}/...``, one subtree per gateway — so a
broker ACL with one pattern (``pattern write homewatch/v1/gateways/%u/#``) confines a gateway to
its own prefix. They live here until the server side needs them too (it publishes the config
topic): then they belong in ``homewatch.wire`` with the readings topic.
"""

from __future__ import annotations

from homewatch.wire import TOPIC_ROOT


def gateway_prefix(gateway_id: str, root: str = TOPIC_ROOT) -> str:
    return f"{root}/gateways/{gateway_id}"


def status_topic(gateway_id: str, root: str = TOPIC_ROOT) -> str:
    """Retained: the gateway's latest ``GatewayStatus`` (its Will says "offline")."""
    return f"{gateway_prefix(gateway_id, root)}/status"


def config_topic(gateway_id: str, root: str = TOPIC_ROOT) -> str:
    """Retained, published by the server: the gateway's provisioned configuration."""
    return f"{gateway_prefix(gateway_id, root)}/config"
