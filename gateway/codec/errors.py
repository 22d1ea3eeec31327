"""Errors of the codec package: one root, typed subclasses with structured attributes."""

from __future__ import annotations


class CodecError(Exception):
    """Root of every error the codec raises."""


class DecodeError(CodecError):
    """A characteristic value that cannot be decoded.

    ``characteristic`` is the registry key of what was being decoded ("2A35", "SFLOAT", ...),
    ``payload`` the whole value as received, ``reason`` what is wrong with it.
    """

    def __init__(self, characteristic: str, payload: bytes, reason: str) -> None:
        self.characteristic = characteristic
        self.payload = bytes(payload)
        self.reason = reason
        super().__init__(characteristic, self.payload, reason)

    @property
    def payload_hex(self) -> str:
        return self.payload.hex()

    def __str__(self) -> str:
        return f"{self.characteristic}: {self.reason} (payload {self.payload_hex or '<empty>'})"


class EncodeError(CodecError):
    """A value that cannot be put on the wire (out of range for its field)."""
