"""Reading one TOML document into typed values, with errors that say where and why.

``Table`` wraps a parsed table: typed getters (``text``, ``number`` with bounds, ``times``...),
any other check through ``get(key, default, check)``, nested ``table``/``tables``, and ``done()``,
which refuses keys nobody read, so a typo in a file is an error instead of a silent default.
Every problem is a ``ScenarioError`` naming the file, the place (``patients[1].events[0].day``)
and the reason; a check function raises ``Invalid`` with the reason only.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from datetime import time
from typing import Any, NoReturn, TypeVar

from device_simulators.errors import ScenarioError

T = TypeVar("T")
_TIME = re.compile(r"^([01][0-9]|2[0-3]):([0-5][0-9])$")


class Table:
    """One TOML table being read: typed getters, and an error for any key left unread."""

    def __init__(self, source: str, data: object, where: str = "") -> None:
        self.source = source
        self.where = where
        if not isinstance(data, dict):
            self.fail(f"must be a table, got {type_name(data)}")
        self.data: dict[str, Any] = data
        self.read: set[str] = set()

    def fail(self, reason: str, key: str | None = None) -> NoReturn:
        where = f"{self.where}.{key}" if key and self.where else key or self.where
        raise ScenarioError(self.source, where or None, reason)

    def has(self, key: str) -> bool:
        return key in self.data

    def raw(self, key: str, default: object = None) -> Any:
        self.read.add(key)
        return self.data.get(key, default)

    def get(self, key: str, default: T | None, check: Callable[[Any], T]) -> T:
        if key not in self.data:
            if default is None:
                self.fail("is required", key)
            return default
        try:
            return check(self.raw(key))
        except Invalid as exc:
            self.fail(str(exc), key)

    def text(self, key: str, default: str | None = None) -> str:
        return self.get(key, default, text)

    def number(
        self,
        key: str,
        default: float | None = None,
        *,
        low: float | None = None,
        high: float | None = None,
    ) -> float:
        return self.get(key, default, lambda v: number(v, low, high))

    def integer(
        self,
        key: str,
        default: int | None = None,
        *,
        low: int | None = None,
        high: int | None = None,
    ) -> int:
        return self.get(key, default, lambda v: integer(v, low, high))

    def boolean(self, key: str, default: bool | None = None) -> bool:
        return self.get(key, default, boolean)

    def times(self, key: str, default: tuple[time, ...] | None = None) -> tuple[time, ...]:
        return self.get(key, default, times)

    def strings(self, key: str, default: tuple[str, ...] | None = None) -> tuple[str, ...]:
        return self.get(key, default, strings)

    def table(self, key: str) -> Table | None:
        if key not in self.data:
            return None
        return Table(self.source, self.raw(key), f"{self.where}.{key}" if self.where else key)

    def tables(self, key: str) -> list[Table]:
        value = self.raw(key, [])
        if not isinstance(value, list):
            self.fail(f"must be an array of tables ([[{key}]]), got {type_name(value)}", key)
        prefix = f"{self.where}.{key}" if self.where else key
        return [Table(self.source, item, f"{prefix}[{i}]") for i, item in enumerate(value)]

    def done(self) -> None:
        unknown = sorted(set(self.data) - self.read)
        if unknown:
            self.fail(f"unknown key{'s' if len(unknown) > 1 else ''}: {', '.join(unknown)}")


class Invalid(Exception):
    """A value that does not fit: the reason, without the place (``Table`` adds it)."""


# --- value checks (raise Invalid with the reason) ---------------------------------------------


def type_name(value: object) -> str:
    return {dict: "a table", list: "an array", str: "a string", bool: "a boolean"}.get(
        type(value), type(value).__name__
    )


def text(value: object) -> str:
    if not isinstance(value, str):
        raise Invalid(f"must be a string, got {type_name(value)}")
    return value


def number(value: object, low: float | None, high: float | None) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise Invalid(f"must be a number, got {type_name(value)}")
    result = float(value)
    if not math.isfinite(result):
        raise Invalid("must be a finite number")
    if (low is not None and result < low) or (high is not None and result > high):
        raise Invalid(f"{result:g} is out of range {range_text(low, high)}")
    return result


def integer(value: object, low: int | None, high: int | None) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise Invalid(f"must be an integer, got {type_name(value)}")
    if (low is not None and value < low) or (high is not None and value > high):
        raise Invalid(f"{value} is out of range {range_text(low, high)}")
    return value


def range_text(low: float | None, high: float | None) -> str:
    def show(bound: float | None) -> str:
        if bound is None:
            return ""
        return str(int(bound)) if float(bound).is_integer() else f"{bound:g}"

    return f"{show(low)}..{show(high)}"


def boolean(value: object) -> bool:
    if not isinstance(value, bool):
        raise Invalid(f"must be true or false, got {type_name(value)}")
    return value


def time_of_day(value: object) -> time:
    written = text(value)
    match = _TIME.match(written)
    if match is None:
        raise Invalid(f"{written!r} is not a time of day HH:MM")
    return time(int(match[1]), int(match[2]))


def times(value: object) -> tuple[time, ...]:
    if not isinstance(value, list) or not value:
        raise Invalid('must be a non-empty array of times, e.g. ["07:00", "19:00"]')
    times = tuple(time_of_day(v) for v in value)
    if list(times) != sorted(set(times)):
        raise Invalid("times must be in increasing order, without repeats")
    return times


def strings(value: object) -> tuple[str, ...]:
    if not isinstance(value, list):
        raise Invalid(f"must be an array of strings, got {type_name(value)}")
    return tuple(text(v) for v in value)
