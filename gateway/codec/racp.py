"""Record Access Control Point 0x2A52 for the Glucose Service (SPEC.md 5).

``Op Code (uint8) | Operator (uint8) | Operand``. The collector writes a ``RacpRequest``; the meter
indicates a ``RacpRecordCount`` (op 0x05, uint16 count for GLS) or a ``RacpResponse`` (op 0x06:
request op code + response code value). ``decode_racp`` picks the class from the op code.

Unknown (RFU) op codes, operators, filter types and response codes are kept as ``RFU_<n>``
pseudo-members and reported, never fatal. Operand bytes this codec cannot interpret (after an RFU
op code, operator or filter type, or where no operand is defined) are kept in ``operand_bytes`` so
that re-encoding stays byte-exact; a server answers such a request with Invalid Operand.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import ClassVar, Self

from ._reader import Reader, pack_uint, require_length
from .date_time import DateTime
from .errors import DecodeError, EncodeError
from .open_enum import Code8

CHARACTERISTIC = "2A52"

__all__ = [
    "RacpFilterType",
    "RacpMessage",
    "RacpOpCode",
    "RacpOperator",
    "RacpRecordCount",
    "RacpRequest",
    "RacpResponse",
    "RacpResponseValue",
    "RecordFilter",
    "decode_racp",
]


class RacpOpCode(Code8):
    REPORT_STORED_RECORDS = 0x01
    DELETE_STORED_RECORDS = 0x02
    ABORT_OPERATION = 0x03
    REPORT_NUMBER_OF_STORED_RECORDS = 0x04
    NUMBER_OF_STORED_RECORDS_RESPONSE = 0x05
    RESPONSE_CODE = 0x06

    @property
    def text(self) -> str:
        return _OP_CODE_TEXTS.get(self.value, "RFU")


_OP_CODE_TEXTS = {
    0x01: "Report stored records",
    0x02: "Delete stored records",
    0x03: "Abort operation",
    0x04: "Report number of stored records",
    0x05: "Number of stored records response",
    0x06: "Response Code",
}


class RacpOperator(Code8):
    NULL = 0x00
    ALL_RECORDS = 0x01
    LESS_THAN_OR_EQUAL_TO = 0x02
    GREATER_THAN_OR_EQUAL_TO = 0x03
    WITHIN_RANGE_OF = 0x04
    FIRST_RECORD = 0x05
    LAST_RECORD = 0x06

    @property
    def text(self) -> str:
        return _OPERATOR_TEXTS.get(self.value, "RFU")

    @property
    def operand_values(self) -> int | None:
        """How many filter values follow the filter type; None when there is no filter."""
        return {0x02: 1, 0x03: 1, 0x04: 2}.get(self.value)


_OPERATOR_TEXTS = {
    0x00: "Null",
    0x01: "All records",
    0x02: "Less than or equal to",
    0x03: "Greater than or equal to",
    0x04: "Within range of (inclusive)",
    0x05: "First record",
    0x06: "Last record",
}


class RacpFilterType(Code8):
    """GLS filter types: sequence number (uint16) or user facing time (Date Time, 7 octets)."""

    SEQUENCE_NUMBER = 0x01
    USER_FACING_TIME = 0x02

    @property
    def text(self) -> str:
        return _FILTER_TEXTS.get(self.value, "RFU")


_FILTER_TEXTS = {0x01: "Sequence Number", 0x02: "User Facing Time"}


class RacpResponseValue(Code8):
    SUCCESS = 0x01
    OP_CODE_NOT_SUPPORTED = 0x02
    INVALID_OPERATOR = 0x03
    OPERATOR_NOT_SUPPORTED = 0x04
    INVALID_OPERAND = 0x05
    NO_RECORDS_FOUND = 0x06
    ABORT_UNSUCCESSFUL = 0x07
    PROCEDURE_NOT_COMPLETED = 0x08
    OPERAND_NOT_SUPPORTED = 0x09

    @property
    def text(self) -> str:
        return _RESPONSE_TEXTS.get(self.value, "RFU")


_RESPONSE_TEXTS = {
    0x01: "Success",
    0x02: "Op Code not supported",
    0x03: "Invalid Operator",
    0x04: "Operator not supported",
    0x05: "Invalid Operand",
    0x06: "No records found",
    0x07: "Abort unsuccessful",
    0x08: "Procedure not completed",
    0x09: "Operand not supported",
}

#: Op codes whose operator may carry a filter operand.
_FILTERED_OP_CODES = (
    RacpOpCode.REPORT_STORED_RECORDS,
    RacpOpCode.DELETE_STORED_RECORDS,
    RacpOpCode.REPORT_NUMBER_OF_STORED_RECORDS,
)


def _time(value: DateTime | datetime) -> DateTime:
    return DateTime.from_datetime(value) if isinstance(value, datetime) else value


@dataclass(frozen=True)
class RecordFilter:
    """``Filter Type | value`` (operators <=, >=) or ``Filter Type | min | max`` (within range).

    Values are sequence numbers (int) or user facing times (DateTime) per ``filter_type``; an RFU
    filter type has no values here (its bytes go to ``RacpRequest.operand_bytes``).
    """

    filter_type: RacpFilterType
    values: tuple[int, ...] | tuple[DateTime, ...] = ()

    def __post_init__(self) -> None:
        bytes(self)

    def __bytes__(self) -> bytes:
        parts = [pack_uint(int(self.filter_type), 1, "filter type")]
        for value in self.values:
            if self.filter_type is RacpFilterType.SEQUENCE_NUMBER and isinstance(value, int):
                parts.append(pack_uint(value, 2, "sequence number"))
            elif self.filter_type is RacpFilterType.USER_FACING_TIME and isinstance(
                value, DateTime
            ):
                parts.append(bytes(value))
            else:
                raise EncodeError(f"{value!r} is not a value of filter type {self.filter_type!r}")
        return b"".join(parts)


@dataclass(frozen=True)
class RacpRequest:
    """A request the collector writes (op codes 0x01..0x04; RFU op codes are kept here too)."""

    op_code: RacpOpCode
    operator: RacpOperator = RacpOperator.NULL
    filter: RecordFilter | None = None
    operand_bytes: bytes = b""  # operand bytes not interpreted (see module doc), as sent

    CHARACTERISTIC: ClassVar[str] = CHARACTERISTIC

    def __post_init__(self) -> None:
        if self.op_code in (RacpOpCode.NUMBER_OF_STORED_RECORDS_RESPONSE, RacpOpCode.RESPONSE_CODE):
            raise EncodeError(f"op code {self.op_code!r} is a response, not a request")
        count = self._filter_values()
        if count is None and self.filter is not None:
            raise EncodeError(f"{self.op_code.text} / {self.operator.text} takes no filter operand")
        if count is not None:
            if self.filter is None:
                raise EncodeError(f"operator {self.operator.text} needs a filter operand")
            known = not self.filter.filter_type.is_reserved
            if len(self.filter.values) != (count if known else 0):
                raise EncodeError(
                    f"operator {self.operator.text} with filter {self.filter.filter_type.text} "
                    f"takes {count if known else 0} value(s), got {len(self.filter.values)}"
                )
        bytes(self)

    def _filter_values(self) -> int | None:
        if self.op_code not in _FILTERED_OP_CODES:
            return None
        return self.operator.operand_values

    # -- friendly constructors ---------------------------------------------------------------
    @classmethod
    def report_all_records(cls) -> Self:
        return cls(RacpOpCode.REPORT_STORED_RECORDS, RacpOperator.ALL_RECORDS)

    @classmethod
    def report_first_record(cls) -> Self:
        return cls(RacpOpCode.REPORT_STORED_RECORDS, RacpOperator.FIRST_RECORD)

    @classmethod
    def report_last_record(cls) -> Self:
        return cls(RacpOpCode.REPORT_STORED_RECORDS, RacpOperator.LAST_RECORD)

    @classmethod
    def report_records_greater_or_equal(cls, sequence_number: int) -> Self:
        """Records with sequence number >= ``sequence_number`` (resume after the last seen)."""
        return cls(
            RacpOpCode.REPORT_STORED_RECORDS,
            RacpOperator.GREATER_THAN_OR_EQUAL_TO,
            RecordFilter(RacpFilterType.SEQUENCE_NUMBER, (sequence_number,)),
        )

    @classmethod
    def report_records_less_or_equal(cls, sequence_number: int) -> Self:
        return cls(
            RacpOpCode.REPORT_STORED_RECORDS,
            RacpOperator.LESS_THAN_OR_EQUAL_TO,
            RecordFilter(RacpFilterType.SEQUENCE_NUMBER, (sequence_number,)),
        )

    @classmethod
    def report_records_in_range(cls, first: int, last: int) -> Self:
        """Sequence numbers ``first``..``last`` inclusive."""
        return cls(
            RacpOpCode.REPORT_STORED_RECORDS,
            RacpOperator.WITHIN_RANGE_OF,
            RecordFilter(RacpFilterType.SEQUENCE_NUMBER, (first, last)),
        )

    @classmethod
    def report_records_since(cls, user_facing_time: DateTime | datetime) -> Self:
        """Records with user facing time >= the given device wall-clock time (many meters answer
        Operand not supported: prefer sequence numbers)."""
        return cls(
            RacpOpCode.REPORT_STORED_RECORDS,
            RacpOperator.GREATER_THAN_OR_EQUAL_TO,
            RecordFilter(RacpFilterType.USER_FACING_TIME, (_time(user_facing_time),)),
        )

    @classmethod
    def report_number_of_records(cls) -> Self:
        """Count of all stored records; the meter answers with a ``RacpRecordCount``."""
        return cls(RacpOpCode.REPORT_NUMBER_OF_STORED_RECORDS, RacpOperator.ALL_RECORDS)

    @classmethod
    def report_number_of_records_greater_or_equal(cls, sequence_number: int) -> Self:
        return cls(
            RacpOpCode.REPORT_NUMBER_OF_STORED_RECORDS,
            RacpOperator.GREATER_THAN_OR_EQUAL_TO,
            RecordFilter(RacpFilterType.SEQUENCE_NUMBER, (sequence_number,)),
        )

    @classmethod
    def delete_all_records(cls) -> Self:
        return cls(RacpOpCode.DELETE_STORED_RECORDS, RacpOperator.ALL_RECORDS)

    @classmethod
    def abort(cls) -> Self:
        return cls(RacpOpCode.ABORT_OPERATION, RacpOperator.NULL)

    # -- wire ---------------------------------------------------------------------------------
    @classmethod
    def from_bytes(cls, data: bytes) -> Self:
        reader = Reader(CHARACTERISTIC, data)
        op_code = RacpOpCode(reader.uint(1, "Op Code"))
        if op_code in (RacpOpCode.NUMBER_OF_STORED_RECORDS_RESPONSE, RacpOpCode.RESPONSE_CODE):
            raise reader.error(f"op code {int(op_code):#04x} ({op_code.text}) is not a request")
        operator = RacpOperator(reader.uint(1, "Operator"))
        count = operator.operand_values if op_code in _FILTERED_OP_CODES else None
        record_filter = None
        if count is not None:
            filter_type = RacpFilterType(reader.uint(1, "Filter Type"))
            values: tuple[int, ...] | tuple[DateTime, ...] = ()
            if filter_type is RacpFilterType.SEQUENCE_NUMBER:
                values = tuple(reader.uint(2, "Sequence Number operand") for _ in range(count))
            elif filter_type is RacpFilterType.USER_FACING_TIME:
                values = tuple(
                    DateTime.read(reader, "User Facing Time operand") for _ in range(count)
                )
            record_filter = RecordFilter(filter_type, values)
        return cls(op_code, operator, record_filter, reader.rest())

    def __bytes__(self) -> bytes:
        parts = [
            pack_uint(int(self.op_code), 1, "op code"),
            pack_uint(int(self.operator), 1, "operator"),
        ]
        if self.filter is not None:
            parts.append(bytes(self.filter))
        return b"".join(parts) + self.operand_bytes


@dataclass(frozen=True)
class RacpRecordCount:
    """0x05 Number of stored records response: ``05 00 <uint16 count>`` (exactly 4 bytes)."""

    number_of_records: int
    operator: RacpOperator = RacpOperator.NULL  # always Null from a conformant server

    CHARACTERISTIC: ClassVar[str] = CHARACTERISTIC
    OP_CODE: ClassVar[RacpOpCode] = RacpOpCode.NUMBER_OF_STORED_RECORDS_RESPONSE

    def __post_init__(self) -> None:
        bytes(self)

    @property
    def op_code(self) -> RacpOpCode:
        return self.OP_CODE

    @classmethod
    def from_bytes(cls, data: bytes) -> Self:
        _require_op_code(data, cls.OP_CODE)
        if len(data) != 4:
            raise DecodeError(
                CHARACTERISTIC,
                data,
                f"Number of stored records response must be 4 bytes "
                f"(uint16 count for this service), got {len(data)}",
            )
        return cls(int.from_bytes(data[2:4], "little"), RacpOperator(data[1]))

    def __bytes__(self) -> bytes:
        return (
            bytes((int(self.OP_CODE),))
            + pack_uint(int(self.operator), 1, "operator")
            + pack_uint(self.number_of_records, 2, "number_of_records")
        )


@dataclass(frozen=True)
class RacpResponse:
    """0x06 Response Code: ``06 00 <request op code> <response code value>`` (exactly 4 bytes).

    ``NO_RECORDS_FOUND`` is a normal end of a report procedure, not a failure (``completed``).
    """

    request_op_code: RacpOpCode
    response_code: RacpResponseValue
    operator: RacpOperator = RacpOperator.NULL  # always Null from a conformant server

    CHARACTERISTIC: ClassVar[str] = CHARACTERISTIC
    OP_CODE: ClassVar[RacpOpCode] = RacpOpCode.RESPONSE_CODE

    def __post_init__(self) -> None:
        bytes(self)

    @property
    def op_code(self) -> RacpOpCode:
        return self.OP_CODE

    @property
    def is_success(self) -> bool:
        return self.response_code is RacpResponseValue.SUCCESS

    @property
    def completed(self) -> bool:
        """The procedure ended normally: success, or no records matched."""
        return self.response_code in (
            RacpResponseValue.SUCCESS,
            RacpResponseValue.NO_RECORDS_FOUND,
        )

    @classmethod
    def from_bytes(cls, data: bytes) -> Self:
        _require_op_code(data, cls.OP_CODE)
        require_length(CHARACTERISTIC, "Response Code", data, 4)
        return cls(RacpOpCode(data[2]), RacpResponseValue(data[3]), RacpOperator(data[1]))

    def __bytes__(self) -> bytes:
        return bytes((int(self.OP_CODE),)) + b"".join(
            pack_uint(int(value), 1, name)
            for value, name in (
                (self.operator, "operator"),
                (self.request_op_code, "request op code"),
                (self.response_code, "response code"),
            )
        )


RacpMessage = RacpRequest | RacpRecordCount | RacpResponse


def _require_op_code(data: bytes, op_code: RacpOpCode) -> None:
    got = Reader(CHARACTERISTIC, data).uint(1, "Op Code")
    if got != op_code:
        raise DecodeError(
            CHARACTERISTIC, data, f"op code {got:#04x} is not {int(op_code):#04x} ({op_code.text})"
        )


def decode_racp(data: bytes) -> RacpMessage:
    """A RACP value in either direction; the op code picks the class."""
    op_code = Reader(CHARACTERISTIC, data).uint(1, "Op Code")
    if op_code == RacpOpCode.NUMBER_OF_STORED_RECORDS_RESPONSE:
        return RacpRecordCount.from_bytes(data)
    if op_code == RacpOpCode.RESPONSE_CODE:
        return RacpResponse.from_bytes(data)
    return RacpRequest.from_bytes(data)
