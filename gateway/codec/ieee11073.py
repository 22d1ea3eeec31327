"""IEEE 11073-20601 numbers: SFLOAT (16-bit) and FLOAT (32-bit), SPEC.md 1.1 and 1.2.

``value = mantissa x 10**exponent``, both fields two's complement, little-endian on the wire.
With exponent 0 the five largest/smallest mantissas are special values (NaN, NRes, +/-INF, RFU).

Edge decided here (SPEC 1.1, vector SFLOAT-19): a reserved mantissa with a non-zero exponent,
e.g. ``FF F7``, is **not** special: specials are exact 16/32-bit patterns (11073-20601 defines
NaN as 0x07FF only), so ``FF F7`` decodes as 2047 x 10**-1 = 204.7, as Nordic's parsers do.
Such a value is flagged by ``ambiguous_reserved_mantissa`` so a caller can log it (Antidote and
PureSwift read it as NaN). Conformant senders never emit it; our encoders keep
``|mantissa| <= max - 2``.

Decoded values keep their mantissa and exponent, so re-encoding is byte-exact; ``value`` is computed
through ``Decimal`` so that ``BD F0`` gives 18.9, not 18.900000000000002.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal
from typing import ClassVar, Self

from ._reader import Reader
from .errors import DecodeError, EncodeError


class SpecialValue(enum.Enum):
    """The reserved exponent-0 patterns; the enum value is the name the vectors use."""

    NAN = "NaN"
    NRES = "NRes"
    POSITIVE_INFINITY = "+INF"
    NEGATIVE_INFINITY = "-INF"
    RESERVED = "RFU"


@dataclass(frozen=True)
class MedFloat:
    """Base of SFloat and Float32: one decoded number, exactly as on the wire."""

    mantissa: int
    exponent: int

    NAME: ClassVar[str]
    SIZE: ClassVar[int]
    MANTISSA_BITS: ClassVar[int]
    EXPONENT_BITS: ClassVar[int]

    # -- layout -------------------------------------------------------------------------------
    @classmethod
    def mantissa_range(cls) -> tuple[int, int]:
        half = 1 << (cls.MANTISSA_BITS - 1)
        return -half, half - 1

    @classmethod
    def exponent_range(cls) -> tuple[int, int]:
        half = 1 << (cls.EXPONENT_BITS - 1)
        return -half, half - 1

    @classmethod
    def max_finite_mantissa(cls) -> int:
        """Largest |mantissa| an encoder uses: 2045 (SFLOAT), 0x7FFFFD (FLOAT)."""
        return cls.mantissa_range()[1] - 2

    @classmethod
    def _specials(cls) -> dict[int, SpecialValue]:
        low, high = cls.mantissa_range()
        return {
            high: SpecialValue.NAN,
            high - 1: SpecialValue.POSITIVE_INFINITY,
            low: SpecialValue.NRES,
            low + 1: SpecialValue.RESERVED,
            low + 2: SpecialValue.NEGATIVE_INFINITY,
        }

    def __post_init__(self) -> None:
        low, high = self.mantissa_range()
        if not low <= self.mantissa <= high:
            raise EncodeError(f"{self.NAME} mantissa {self.mantissa!r} outside {low}..{high}")
        low, high = self.exponent_range()
        if not low <= self.exponent <= high:
            raise EncodeError(f"{self.NAME} exponent {self.exponent!r} outside {low}..{high}")

    # -- meaning ------------------------------------------------------------------------------
    @property
    def special(self) -> SpecialValue | None:
        if self.exponent != 0:
            return None
        return self._specials().get(self.mantissa)

    @property
    def is_finite(self) -> bool:
        return self.special is None

    @property
    def ambiguous_reserved_mantissa(self) -> bool:
        """A reserved mantissa with a non-zero exponent: read as a number here (see module doc)."""
        return self.exponent != 0 and self.mantissa in self._specials()

    @property
    def decimal(self) -> Decimal | None:
        """The exact value, or None for a special value."""
        if self.special is not None:
            return None
        return Decimal(self.mantissa).scaleb(self.exponent)

    @property
    def value(self) -> float:
        """As a float: NaN for NaN/NRes/RFU, +/-inf for the infinities."""
        special = self.special
        if special is SpecialValue.POSITIVE_INFINITY:
            return math.inf
        if special is SpecialValue.NEGATIVE_INFINITY:
            return -math.inf
        if special is not None:
            return math.nan
        return float(Decimal(self.mantissa).scaleb(self.exponent))

    @property
    def raw(self) -> int:
        """The unsigned 16/32-bit word."""
        e_mask = (1 << self.EXPONENT_BITS) - 1
        m_mask = (1 << self.MANTISSA_BITS) - 1
        return ((self.exponent & e_mask) << self.MANTISSA_BITS) | (self.mantissa & m_mask)

    def __str__(self) -> str:
        special = self.special
        return special.value if special is not None else str(self.decimal)

    # -- wire ---------------------------------------------------------------------------------
    @classmethod
    def from_raw(cls, raw: int) -> Self:
        m_bits, e_bits = cls.MANTISSA_BITS, cls.EXPONENT_BITS
        mantissa = raw & ((1 << m_bits) - 1)
        if mantissa >> (m_bits - 1):
            mantissa -= 1 << m_bits
        exponent = (raw >> m_bits) & ((1 << e_bits) - 1)
        if exponent >> (e_bits - 1):
            exponent -= 1 << e_bits
        return cls(mantissa, exponent)

    @classmethod
    def from_bytes(cls, data: bytes) -> Self:
        if len(data) != cls.SIZE:
            raise DecodeError(cls.NAME, data, f"{cls.NAME} needs {cls.SIZE} bytes, got {len(data)}")
        return cls.from_raw(int.from_bytes(data, "little"))

    @classmethod
    def read(cls, reader: Reader, field: str) -> Self:
        """Read one number as field ``field`` of a larger value."""
        return cls.from_raw(reader.uint(cls.SIZE, field))

    def __bytes__(self) -> bytes:
        return self.raw.to_bytes(self.SIZE, "little")

    # -- construction from numbers -----------------------------------------------------------
    @classmethod
    def coerce(cls, value: Self | float | Decimal) -> Self:
        """``value`` as this type: kept when it already is one, else ``from_value``."""
        return value if isinstance(value, cls) else cls.from_value(value)

    @classmethod
    def from_special(cls, special: SpecialValue) -> Self:
        mantissa = {v: k for k, v in cls._specials().items()}[special]
        return cls(mantissa, 0)

    @classmethod
    def nan(cls) -> Self:
        return cls.from_special(SpecialValue.NAN)

    @classmethod
    def from_value(cls, value: float | Decimal, *, exponent: int | None = None) -> Self:
        """Encode a number. NaN and +/-inf become the special values.

        Without ``exponent`` the exponent is chosen for the best precision: the value exactly when
        it fits (integers keep exponent 0: 120 -> 120e0), else rounded (half even) to the smallest
        exponent whose mantissa stays within ``max_finite_mantissa()``. EncodeError when the value
        is too large, or does not fit with the ``exponent`` given.
        """
        number = _to_decimal(value)
        if number.is_nan():
            return cls.nan()
        if number.is_infinite():
            return cls.from_special(
                SpecialValue.NEGATIVE_INFINITY if number < 0 else SpecialValue.POSITIVE_INFINITY
            )
        limit = cls.max_finite_mantissa()
        e_min, e_max = cls.exponent_range()
        if exponent is not None:
            if not e_min <= exponent <= e_max:
                raise EncodeError(f"{cls.NAME} exponent {exponent!r} outside {e_min}..{e_max}")
            mantissa = _scaled(number, exponent)
            if abs(mantissa) > limit:
                raise EncodeError(
                    f"{value!r} does not fit {cls.NAME} at exponent {exponent}: "
                    f"mantissa {mantissa} beyond +/-{limit}"
                )
            return cls(mantissa, exponent)
        if number == 0:
            return cls(0, 0)
        exp = min(int(number.normalize().as_tuple().exponent), 0)
        # Fewer digits than the limit can hold never need a larger exponent: start there.
        exp = max(exp, e_min, number.adjusted() - len(str(limit)) + 1)
        while exp <= e_max:
            mantissa = _scaled(number, exp)
            if abs(mantissa) <= limit:
                return cls(mantissa, exp) if mantissa else cls(0, 0)
            exp += 1
        raise EncodeError(f"{value!r} is too large for {cls.NAME}")


def _to_decimal(value: float | Decimal) -> Decimal:
    if isinstance(value, Decimal):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return Decimal(value)
    if isinstance(value, float):
        # repr is the shortest decimal that round-trips: 18.9 -> Decimal("18.9").
        return Decimal(repr(value))
    raise EncodeError(f"not a number: {value!r}")


def _scaled(number: Decimal, exponent: int) -> int:
    return int(number.scaleb(-exponent).to_integral_value(rounding=ROUND_HALF_EVEN))


@dataclass(frozen=True)
class SFloat(MedFloat):
    """16-bit SFLOAT: 4-bit exponent (-8..7), 12-bit mantissa (-2048..2047)."""

    NAME = "SFLOAT"
    SIZE = 2
    MANTISSA_BITS = 12
    EXPONENT_BITS = 4


@dataclass(frozen=True)
class Float32(MedFloat):
    """32-bit FLOAT: 8-bit exponent (-128..127), 24-bit mantissa."""

    NAME = "FLOAT"
    SIZE = 4
    MANTISSA_BITS = 24
    EXPONENT_BITS = 8


def decode_sfloat(data: bytes) -> SFloat:
    return SFloat.from_bytes(data)


def decode_float(data: bytes) -> Float32:
    return Float32.from_bytes(data)


def encode_sfloat(value: float | Decimal, *, exponent: int | None = None) -> bytes:
    return bytes(SFloat.from_value(value, exponent=exponent))


def encode_float(value: float | Decimal, *, exponent: int | None = None) -> bytes:
    return bytes(Float32.from_value(value, exponent=exponent))
