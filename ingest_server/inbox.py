"""The hand-over from paho's network thread to the event loop, bounded by messages held.

A slot is taken when a message arrives and given back only when the consumer is done with it
(acknowledged after its commit, or dropped to be redelivered), so at most ``capacity`` messages,
and at most ``max_bytes`` of payload (one message always fits), are ever held in memory,
whatever stage they are in. When the inbox is full, ``put`` blocks paho's network thread: it
stops reading its socket, TCP pushes back, and the broker keeps the rest (persistent session)
instead of this process buffering without bound.

Why not rely on MQTT 5 Receive Maximum alone: Mosquitto 2.0.11 (Debian) honours it only while
nothing is acknowledged. Each PUBACK lets it send up to another full window, however many are
still unacknowledged: measured here, a subscriber with Receive Maximum 100 that acknowledged in
batches of 50 had 4,150 messages outstanding. The client must bound itself.

The loop is woken once per burst, not once per message (``call_soon_threadsafe`` costs a
system call): the thread signals only when the queue goes from empty to non-empty.
"""

from __future__ import annotations

import asyncio
import threading
from collections import deque
from typing import Generic, TypeVar

T = TypeVar("T")

#: How often a blocked producer re-checks whether the inbox was closed.
_PRODUCER_POLL_S = 0.5


class InboxClosed(Exception):
    """``put`` on a closed inbox: the message is not taken (the broker redelivers it)."""


class Inbox(Generic[T]):
    """``put`` from one thread, ``take``/``done`` from the event loop given to ``bind``."""

    def __init__(self, capacity: int, max_bytes: int | None = None) -> None:
        if capacity < 1:
            raise ValueError(f"capacity must be at least 1, not {capacity}")
        self.capacity = capacity
        self.max_bytes = max_bytes
        self._items: deque[T] = deque()
        self._held = 0
        self._held_bytes = 0
        self._cond = threading.Condition()
        self._closed = False
        self._signalled = False
        self._ready = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        #: Most messages ever held at once (for tests and the bench).
        self.peak_held = 0
        #: How many times a producer had to wait for a slot.
        self.waits = 0

    def bind(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop

    @property
    def held(self) -> int:
        """Messages taken in and not yet ``done``: queued, being batched, or being stored."""
        return self._held

    @property
    def held_bytes(self) -> int:
        return self._held_bytes

    @property
    def queued(self) -> int:
        return len(self._items)

    def _full(self, size: int) -> bool:
        if self._held >= self.capacity:
            return True
        return (
            self.max_bytes is not None
            and self._held > 0
            and self._held_bytes + size > self.max_bytes
        )

    # --- producer side (paho's network thread) --------------------------------------------------

    def put(self, item: T, size: int = 0) -> None:
        """Hand ``item`` (of ``size`` bytes) over, waiting for room; ``InboxClosed`` once
        closed."""
        with self._cond:
            if self._full(size) and not self._closed:
                self.waits += 1
                while self._full(size) and not self._closed:
                    self._cond.wait(_PRODUCER_POLL_S)
            if self._closed:
                raise InboxClosed
            self._held += 1
            self._held_bytes += size
            self.peak_held = max(self.peak_held, self._held)
            self._items.append(item)
            if self._signalled:
                return
            self._signalled = True
        loop = self._loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(self._ready.set)

    # --- consumer side (the event loop) ----------------------------------------------------------

    async def take(self, max_items: int, timeout: float | None = None) -> list[T]:
        """Up to ``max_items`` queued items, waiting for at least one (``[]`` after ``timeout``)."""
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        while True:
            with self._cond:
                if self._items:
                    n = min(max_items, len(self._items))
                    taken = [self._items.popleft() for _ in range(n)]
                    if not self._items:
                        self._signalled = False
                        self._ready.clear()
                    return taken
                self._signalled = False
                self._ready.clear()
            if deadline is None:
                await self._ready.wait()
                continue
            remaining = deadline - loop.time()
            if remaining <= 0:
                return []
            try:
                async with asyncio.timeout(remaining):
                    await self._ready.wait()
            except TimeoutError:
                return []

    def done(self, size: int = 0) -> None:
        """Give back the slot of one message of ``size`` bytes (acknowledged or dropped)."""
        with self._cond:
            if self._held == 0:
                raise RuntimeError("more messages done than were held")
            self._held -= 1
            self._held_bytes = max(0, self._held_bytes - size)
            self._cond.notify()

    def close(self) -> None:
        """Refuse further items and release a blocked producer (e.g. for paho's loop_stop)."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
