"""Bounds-checked little-endian reading of a characteristic value; failures are DecodeErrors."""

from __future__ import annotations

from .errors import DecodeError, EncodeError


class Reader:
    """Reads fields in order from ``data``; ``characteristic`` labels the errors it raises."""

    def __init__(self, characteristic: str, data: bytes) -> None:
        self.characteristic = characteristic
        self.data = bytes(data)
        self.offset = 0

    def error(self, reason: str) -> DecodeError:
        return DecodeError(self.characteristic, self.data, reason)

    def take(self, size: int, field: str) -> bytes:
        end = self.offset + size
        if end > len(self.data):
            raise self.error(
                f"truncated: need {size} byte(s) for {field} at offset {self.offset}, "
                f"payload has {len(self.data)}"
            )
        chunk = self.data[self.offset : end]
        self.offset = end
        return chunk

    def uint(self, size: int, field: str) -> int:
        return int.from_bytes(self.take(size, field), "little")

    def rest(self) -> bytes:
        chunk = self.data[self.offset :]
        self.offset = len(self.data)
        return chunk


def require_length(characteristic: str, name: str, data: bytes, size: int) -> None:
    """Fixed-length values (SPEC 7): anything but exactly ``size`` bytes is an error."""
    if len(data) != size:
        raise DecodeError(
            characteristic, data, f"{name} must be exactly {size} byte(s), got {len(data)}"
        )


def pack_uint(value: int, size: int, field: str) -> bytes:
    """Little-endian unsigned field; EncodeError when ``value`` does not fit in ``size`` bytes."""
    if not 0 <= value < 1 << (8 * size):
        raise EncodeError(f"{field} {value!r} does not fit in an unsigned {8 * size}-bit field")
    return value.to_bytes(size, "little")
