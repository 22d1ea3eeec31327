"""Jittered exponential back-off for reconnect and retry loops."""

from __future__ import annotations

import random
from dataclasses import dataclass, field


@dataclass
class Backoff:
    """``next()`` gives the next delay: full jitter over an exponentially growing cap."""

    minimum: float = 1.0
    maximum: float = 30.0
    _attempt: int = field(default=0, init=False)

    def next(self) -> float:
        cap = min(self.maximum, self.minimum * 2**self._attempt)
        self._attempt += 1
        return random.uniform(self.minimum / 2, cap)

    def reset(self) -> None:
        self._attempt = 0
