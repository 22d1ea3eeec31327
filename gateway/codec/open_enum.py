"""Code enums that keep values they have no member for (an unknown code is data, not an error)."""

from __future__ import annotations

import enum
from typing import Self


def _rfu_member(cls: type[enum.IntEnum], value: object, limit: int) -> enum.IntEnum | None:
    if not isinstance(value, int) or not 0 <= value <= limit:
        return None
    member = int.__new__(cls, value)
    member._value_ = value
    member._name_ = f"RFU_{value}"
    return member


class Code8(enum.IntEnum):
    """Base of the uint8 code enums: values 0..255 without a member become ``RFU_<n>``."""

    @classmethod
    def _missing_(cls, value: object) -> Self | None:
        return _rfu_member(cls, value, 0xFF)  # type: ignore[return-value]

    @property
    def is_reserved(self) -> bool:
        return self.name.startswith("RFU_")


class Nibble(enum.IntEnum):
    """Base of the 4-bit code enums: values 0..15 without a member become ``RFU_<n>``."""

    @classmethod
    def _missing_(cls, value: object) -> Self | None:
        return _rfu_member(cls, value, 0x0F)  # type: ignore[return-value]

    @property
    def is_reserved(self) -> bool:
        return self.name.startswith("RFU_")
