"""A virtual clock: simulated days pass in seconds, then real time takes over.

The clock starts in the past and runs ``speed`` times faster than real time until it catches up
with the real clock; from then on it *is* the real clock. Simulated devices therefore never
stamp a measurement in the future, and a long demo ends up live.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime


class VirtualClock:
    def __init__(self, start: datetime, speed: float) -> None:
        if start.tzinfo is None:
            raise ValueError("start must be timezone-aware")
        if speed < 1:
            raise ValueError("speed must be >= 1")
        self.start = start
        self.speed = speed
        self._t0 = time.monotonic()
        self._real_start = datetime.now(UTC)

    def now(self) -> datetime:
        elapsed = time.monotonic() - self._t0
        accelerated = self.start.timestamp() + elapsed * self.speed
        real = self._real_start.timestamp() + elapsed
        return datetime.fromtimestamp(min(accelerated, real), UTC)

    def real_seconds_until(self, when: datetime) -> float:
        """Real seconds until the clock shows ``when`` (0 if it already has)."""
        elapsed = time.monotonic() - self._t0
        # Accelerated phase lasts until the virtual clock meets the real one.
        catch_up = (
            (self._real_start.timestamp() - self.start.timestamp()) / (self.speed - 1)
            if self.speed > 1
            else 0.0
        )
        target = when.timestamp()
        accelerated_target = (target - self.start.timestamp()) / self.speed
        real_target = target - self._real_start.timestamp()
        when_elapsed = accelerated_target if accelerated_target <= catch_up else real_target
        return max(0.0, when_elapsed - elapsed)

    async def sleep_until(self, when: datetime) -> None:
        while (delay := self.real_seconds_until(when)) > 0:
            await asyncio.sleep(min(delay, 1.0))
