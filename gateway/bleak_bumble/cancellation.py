"""Awaiting bumble without losing a cancellation."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import TypeVar

T = TypeVar("T")


async def keep_cancellation(awaitable: Awaitable[T]) -> T:
    """Await a bumble operation; if the task was cancelled meanwhile, raise CancelledError.

    bumble waits for HCI and ATT responses with ``asyncio.wait_for``, which on Python 3.11
    returns the result instead of raising when a cancellation arrives just as the response does
    (CPython gh-86296, fixed in 3.12). The cancelled task then runs on: seen here as a gateway
    whose BLE scanner task never stopped on shutdown. The request is still pending on the task
    (``cancelling()`` counts it), so it is raised here.
    """
    task = asyncio.current_task()
    requested = task.cancelling() if task is not None else 0
    result = await awaitable
    if task is not None and task.cancelling() > requested:
        raise asyncio.CancelledError
    return result
