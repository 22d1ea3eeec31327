"""What a device session needs from the gateway around it: where readings go, the quirk table,
the clock policy and the protocol timings. Kept apart so that sessions do not import the
service that runs them."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from gateway.clock_sync import ClockPolicy
from gateway.outbox import HighWaterMark
from gateway.quirks import QuirkTable
from homewatch.wire import DeviceIdentity, Reading


class ReadingSink(Protocol):
    """The gateway's outbox, as the sessions see it."""

    async def accept(
        self,
        readings: list[Reading],
        device: DeviceIdentity,
        *,
        mark: HighWaterMark | None = None,
    ) -> int:
        """Queue readings durably (with a meter's new high-water mark); how many were new."""
        ...

    async def reject(
        self,
        device: DeviceIdentity,
        characteristic: str,
        payload: bytes,
        reason: str,
        received_at: datetime,
    ) -> None:
        """Keep a payload that could not be decoded (never published)."""
        ...

    async def high_water_mark(self, device: DeviceIdentity) -> HighWaterMark | None: ...

    def has_room(self) -> bool:
        """False while the outbox is at its bound (records should stay on the device)."""
        ...


#: Live progress of a measurement: the device and the cuff pressure in mmHg (None: unknown).
OnProgress = Callable[[DeviceIdentity, float | None], None]


@dataclass(frozen=True, slots=True)
class SessionContext:
    sink: ReadingSink
    quirks: QuirkTable
    clock: ClockPolicy
    #: A cuff without RACP sends its stored records right after subscription; this long without
    #: one ends that backlog (then its clock is set, which would mis-stamp records still coming).
    stored_records_quiet: float = 2.0
    #: After a meter was read, leave it alone this long (it has nothing new meanwhile).
    meter_rest: float = 300.0
    #: Bound on one RACP procedure (a meter with a thousand records needs a while).
    transfer_timeout: float = 120.0
    on_progress: OnProgress | None = None
