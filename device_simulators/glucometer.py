"""A glucose meter simulator: a real bumble GATT server with the Glucose Service and its RACP.

Services: Glucose 0x1808 (Glucose Measurement 0x2A18, notify; Glucose Measurement Context
0x2A34, notify; Glucose Feature 0x2A51, read; Record Access Control Point 0x2A52, write +
indicate) and Device Information 0x180A. It advertises its name and 0x1808, connectable, and
advertises again after every disconnection (like the cuff, ``device_simulators.bp_cuff``).

The meter keeps its records in memory and numbers them itself (``add_record`` returns the
sequence number). A collector reads them with the RACP procedure of SPEC.md 5.1: report number
of stored records (all / >= sequence) -> ``05 00 <uint16>``; report stored records (all / >=
sequence / first / last) -> one 0x2A18 notification per record, its 0x2A34 right after it when
it has a context, then ``06 00 01 01`` (or ``06 00 01 06`` when nothing matched); abort ->
``06 00 03 01`` while a report runs, ``06 00 03 07`` when nothing runs. Other op codes and
operators get their RACP response code; a RACP write without the RACP indication CCCD set is
refused with ATT error 0x81, a request while one runs with 0x80::

    meter = Glucometer(await radio.peripheral_device(identity.name), identity)
    async with meter:
        sequence = meter.add_record(measurement, context)

Fault injection: ``drop_link_after(n)`` drops the link after n records of the next report;
``stall_after(n)`` stops the next report after n records without the final response (until
the collector aborts).

Sequence-number faults of real meters (SPEC.md 8): numbers are uint16 and wrap 0xFFFF -> 0x0000
(``first_sequence_number=65534`` reaches the wrap in two records); some meters number
backwards (``sequence_numbers="descending"``: 0xFFFF, 0xFFFE, ...); a reset meter forgets its
records and starts numbering again (``reset_memory()``). The RACP ">=" filter compares the raw
numbers, as a real meter does, so a collector that resumes from a high-water mark misses
records on such meters: that is what these modes are for.

Clock: ``clock=DeviceClock(...)`` exposes the meter's own wall clock, as a Current Time
Service (``clock_characteristic="2A2B"``) or, like Roche meters, as a Date Time 0x2A08 inside
the Glucose service (``"2A08"``); both writable (``device_simulators.current_time``).

Security: ``require_encryption=True`` is a meter like the nRF5 GLS and Accu-Chek ones (SPEC.md
5.1): on a link that is not encrypted, the CCCD writes of 0x2A18, 0x2A34 and 0x2A52, the RACP
write and the Glucose Feature read are refused with ATT "Insufficient Encryption" (0x0F). The
meter accepts "Just Works" pairing and keeps a bond per central (``SimulatedPeripheral``);
Device Information and the clock stay open.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
from dataclasses import dataclass
from typing import Literal, get_args

from bumble import att, gatt
from bumble.core import UUID
from bumble.device import Connection, Device

from device_simulators.current_time import current_time_service, date_time_characteristic
from device_simulators.device_clock import DeviceClock
from device_simulators.gatt import read_not_permitted, write_not_permitted
from device_simulators.peripheral import COMMAND_TIMEOUT, PeripheralIdentity, SimulatedPeripheral
from gateway.codec.errors import DecodeError
from gateway.codec.glucose import GlucoseFeature, GlucoseMeasurement
from gateway.codec.glucose_context import GlucoseMeasurementContext
from gateway.codec.racp import (
    RacpFilterType,
    RacpOpCode,
    RacpOperator,
    RacpRecordCount,
    RacpRequest,
    RacpResponse,
    RacpResponseValue,
)

logger = logging.getLogger(__name__)

GLUCOSE_SERVICE = 0x1808
GLUCOSE_MEASUREMENT = 0x2A18
GLUCOSE_MEASUREMENT_CONTEXT = 0x2A34
GLUCOSE_FEATURE = 0x2A51
RECORD_ACCESS_CONTROL_POINT = 0x2A52
#: GAP Appearance "Glucose Meter: Generic" (category 0x010, sub-category 0x00).
APPEARANCE_GENERIC_GLUCOSE_METER = 0x10 << 6
#: GLS application ATT errors (SPEC.md 5.1).
ATT_PROCEDURE_ALREADY_IN_PROGRESS = 0x80
ATT_CCCD_IMPROPERLY_CONFIGURED = 0x81
_MAX_SEQUENCE_NUMBER = 0xFFFF
#: How many records a meter can hold: one per sequence number.
MEMORY_CAPACITY = _MAX_SEQUENCE_NUMBER + 1

ClockCharacteristic = Literal["2A2B", "2A08"]
SequenceNumbering = Literal["ascending", "descending"]


#: A meter's identity: the name it advertises and its Device Information strings.
MeterIdentity = PeripheralIdentity


@dataclass(frozen=True)
class _Record:
    sequence_number: int
    measurement: bytes
    context: bytes | None


class _RacpFailure(Exception):
    def __init__(self, code: RacpResponseValue) -> None:
        super().__init__(code.text)
        self.code = code


class Glucometer(SimulatedPeripheral):
    """A simulated BLE glucose meter on a bumble ``Device``; ``async with`` runs it.

    Args:
        device: a powered-on bumble Device used for nothing else.
        identity: name and Device Information strings.
        feature: the Glucose Feature value.
        advertising_interval_ms: advertising interval (short by default, for quick discovery).
        indication_timeout: how long one RACP indication may wait for its confirmation.
        clock: the meter's own wall clock (None: the meter exposes no clock).
        clock_characteristic: where the clock is exposed: "2A2B" a Current Time Service,
            "2A08" a Date Time characteristic inside the Glucose service (ignored without
            a clock).
        sequence_numbers: "ascending" (0, 1, ... wrapping 0xFFFF -> 0) or "descending"
            (0xFFFF, 0xFFFE, ... wrapping 0 -> 0xFFFF).
        first_sequence_number: the number of the first record (default 0 ascending, 0xFFFF
            descending), and again after ``reset_memory()``.
        require_encryption: refuse the transfer's CCCD and RACP writes and the Glucose Feature
            read with 0x0F until the link is encrypted (paired, or a bond reused).
    """

    KIND = "meter"
    SERVICE_UUID16 = GLUCOSE_SERVICE
    APPEARANCE = APPEARANCE_GENERIC_GLUCOSE_METER

    def __init__(
        self,
        device: Device,
        identity: MeterIdentity,
        *,
        feature: GlucoseFeature | None = None,
        advertising_interval_ms: float = 100.0,
        indication_timeout: float = 5.0,
        clock: DeviceClock | None = None,
        clock_characteristic: ClockCharacteristic = "2A2B",
        sequence_numbers: SequenceNumbering = "ascending",
        first_sequence_number: int | None = None,
        require_encryption: bool = False,
    ) -> None:
        if clock_characteristic not in get_args(ClockCharacteristic):
            raise ValueError(
                f"clock_characteristic must be '2A2B' or '2A08', got {clock_characteristic!r}"
            )
        if sequence_numbers not in get_args(SequenceNumbering):
            raise ValueError(
                f"sequence_numbers must be 'ascending' or 'descending', got {sequence_numbers!r}"
            )
        if first_sequence_number is None:
            first_sequence_number = 0 if sequence_numbers == "ascending" else _MAX_SEQUENCE_NUMBER
        if not 0 <= first_sequence_number <= _MAX_SEQUENCE_NUMBER:
            raise ValueError(f"first_sequence_number must be 0..65535, got {first_sequence_number}")
        self.feature = feature if feature is not None else GlucoseFeature()
        self.sequence_numbers: SequenceNumbering = sequence_numbers
        self.first_sequence_number = first_sequence_number

        self._measurement = gatt.Characteristic(
            UUID.from_16_bits(GLUCOSE_MEASUREMENT, "Glucose Measurement"),
            gatt.Characteristic.Properties.NOTIFY,
            gatt.Characteristic.Permissions(0),
            gatt.CharacteristicValue(read=read_not_permitted, write=write_not_permitted),
        )
        self._context = gatt.Characteristic(
            UUID.from_16_bits(GLUCOSE_MEASUREMENT_CONTEXT, "Glucose Measurement Context"),
            gatt.Characteristic.Properties.NOTIFY,
            gatt.Characteristic.Permissions(0),
            gatt.CharacteristicValue(read=read_not_permitted, write=write_not_permitted),
        )
        # bumble checks these permissions before the value's handlers run.
        read_permission = gatt.Characteristic.Permissions.READABLE
        write_permission = gatt.Characteristic.Permissions.WRITEABLE
        if require_encryption:
            read_permission |= gatt.Characteristic.Permissions.READ_REQUIRES_ENCRYPTION
            write_permission |= gatt.Characteristic.Permissions.WRITE_REQUIRES_ENCRYPTION
        self._racp = gatt.Characteristic(
            UUID.from_16_bits(RECORD_ACCESS_CONTROL_POINT, "Record Access Control Point"),
            gatt.Characteristic.Properties.WRITE | gatt.Characteristic.Properties.INDICATE,
            write_permission,
            gatt.CharacteristicValue(read=read_not_permitted, write=self._on_racp_write),
        )
        services = [
            gatt.Service(
                UUID.from_16_bits(GLUCOSE_SERVICE, "Glucose"),
                [
                    self._measurement,
                    self._context,
                    gatt.Characteristic(
                        UUID.from_16_bits(GLUCOSE_FEATURE, "Glucose Feature"),
                        gatt.Characteristic.Properties.READ,
                        read_permission,
                        bytes(self.feature),
                    ),
                    self._racp,
                    *(
                        [date_time_characteristic(clock, writable=True)]
                        if clock is not None and clock_characteristic == "2A08"
                        else []
                    ),
                ],
            ),
        ]
        if clock is not None and clock_characteristic == "2A2B":
            services.append(current_time_service(clock, writable=True))
        super().__init__(
            device,
            identity,
            services,
            advertising_interval_ms=advertising_interval_ms,
            indication_timeout=indication_timeout,
            clock=clock,
            require_encryption=require_encryption,
            encrypted_subscriptions=[self._measurement, self._context, self._racp],
        )
        self._records: list[_Record] = []
        self._next_sequence = first_sequence_number
        self._drop_after: int | None = None
        self._stall_after: int | None = None
        self._procedure: asyncio.Task[None] | None = None
        #: Every RACP request received, as written (for tests and logs).
        self.racp_requests: list[bytes] = []

    # --- state ------------------------------------------------------------------------------

    @property
    def stored_count(self) -> int:
        return len(self._records)

    # --- records and fault injection --------------------------------------------------------

    def add_record(
        self,
        measurement: GlucoseMeasurement,
        context: GlucoseMeasurementContext | None = None,
    ) -> int:
        """Store a measurement (and its context); returns the sequence number the meter gave it.

        The sequence numbers in ``measurement`` / ``context`` are replaced by the meter's, and
        the measurement's Context Information Follows flag is set when a context is given.
        """
        sequence = self._take_sequence()
        stored = dataclasses.replace(
            measurement, sequence_number=sequence, context_follows=context is not None
        )
        context_bytes = None
        if context is not None:
            context_bytes = bytes(dataclasses.replace(context, sequence_number=sequence))
        self._records.append(_Record(sequence, bytes(stored), context_bytes))
        return sequence

    def add_raw_record(self, payload: bytes) -> int:
        """Store a record whose 0x2A18 notification is ``payload`` as is (malformed on purpose,
        for robustness tests); it still takes a sequence number for the RACP filters."""
        sequence = self._take_sequence()
        self._records.append(_Record(sequence, bytes(payload), None))
        return sequence

    def reset_memory(self) -> None:
        """A reset meter: every record is forgotten and numbering restarts from its start."""
        self._records.clear()
        self._next_sequence = self.first_sequence_number
        logger.info("meter %s: memory reset", self.identity.name)

    def drop_link_after(self, records: int) -> None:
        """Drop the link after notifying ``records`` records in the next report procedure."""
        if records < 0:
            raise ValueError(f"record count must be >= 0, got {records}")
        self._drop_after = records

    def stall_after(self, records: int) -> None:
        """Stop the next report after ``records`` records without sending its final response
        (it waits for an abort, as a meter that hung would)."""
        if records < 0:
            raise ValueError(f"record count must be >= 0, got {records}")
        self._stall_after = records

    def _take_sequence(self) -> int:
        if len(self._records) >= MEMORY_CAPACITY:
            raise ValueError(
                f"the meter's memory is full ({MEMORY_CAPACITY} records, one per sequence number)"
            )
        sequence = self._next_sequence
        step = 1 if self.sequence_numbers == "ascending" else -1
        self._next_sequence = (sequence + step) & _MAX_SEQUENCE_NUMBER
        return sequence

    # --- lifecycle hook --------------------------------------------------------------------

    def _on_disconnected(self, connection: Connection, reason: int) -> None:
        if self._procedure is not None:
            self._procedure.cancel()

    # --- RACP ---------------------------------------------------------------------------------

    def _on_racp_write(self, connection: Connection, value: bytes) -> None:
        # Runs while bumble handles the Write Request: refusals are ATT errors; the procedure
        # itself runs in a task, after the Write Response.
        value = bytes(value)
        if not value:
            raise att.ATT_Error(att.ATT_INVALID_ATTRIBUTE_LENGTH_ERROR, self._racp.handle)
        if not self._subscribed(
            connection, self._racp, gatt.ClientCharacteristicConfigurationBits.INDICATION
        ):
            raise att.ATT_Error(ATT_CCCD_IMPROPERLY_CONFIGURED, self._racp.handle)
        running = self._procedure is not None and not self._procedure.done()
        if value[0] == RacpOpCode.ABORT_OPERATION:
            self.racp_requests.append(value)
            self._spawn(self._abort(connection, value), "meter-racp-abort")
            return
        if running:
            raise att.ATT_Error(ATT_PROCEDURE_ALREADY_IN_PROGRESS, self._racp.handle)
        self.racp_requests.append(value)
        self._procedure = self._spawn(self._run(connection, value), "meter-racp")

    async def _abort(self, connection: Connection, value: bytes) -> None:
        code = RacpResponseValue.ABORT_UNSUCCESSFUL
        if len(value) != 2 or value[1] != RacpOperator.NULL:
            code = RacpResponseValue.INVALID_OPERATOR
        elif self._procedure is not None and not self._procedure.done():
            self._procedure.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.wait({self._procedure})
            code = RacpResponseValue.SUCCESS
        await self._indicate(connection, bytes(RacpResponse(RacpOpCode.ABORT_OPERATION, code)))

    async def _run(self, connection: Connection, value: bytes) -> None:
        try:
            request = RacpRequest.from_bytes(value)
        except DecodeError as error:
            logger.info("meter %s: malformed RACP request: %s", self.identity.name, error)
            code = RacpResponseValue.INVALID_OPERAND
            if value[0] in (RacpOpCode.NUMBER_OF_STORED_RECORDS_RESPONSE, RacpOpCode.RESPONSE_CODE):
                code = RacpResponseValue.OP_CODE_NOT_SUPPORTED
            await self._respond(connection, RacpOpCode(value[0]), code)
            return
        op_code = request.op_code
        if op_code not in (
            RacpOpCode.REPORT_STORED_RECORDS,
            RacpOpCode.REPORT_NUMBER_OF_STORED_RECORDS,
        ):
            await self._respond(connection, op_code, RacpResponseValue.OP_CODE_NOT_SUPPORTED)
            return
        try:
            selected = self._select(request)
        except _RacpFailure as failure:
            await self._respond(connection, op_code, failure.code)
            return
        if op_code is RacpOpCode.REPORT_NUMBER_OF_STORED_RECORDS:
            await self._indicate(connection, bytes(RacpRecordCount(len(selected))))
            return
        if not selected:
            await self._respond(connection, op_code, RacpResponseValue.NO_RECORDS_FOUND)
            return
        drop_after, self._drop_after = self._drop_after, None
        stall_after, self._stall_after = self._stall_after, None
        for sent, record in enumerate(selected):
            if drop_after is not None and sent == drop_after:
                await self._drop(connection)
                return
            if stall_after is not None and sent == stall_after:
                logger.info("meter %s: report stalled after %d records", self.identity.name, sent)
                await asyncio.Event().wait()  # until an abort or a disconnection cancels it
            await self._device.notify_subscriber(connection, self._measurement, record.measurement)
            if record.context is not None:
                await self._device.notify_subscriber(connection, self._context, record.context)
        if drop_after is not None and drop_after == len(selected):
            await self._drop(connection)
            return
        await self._respond(connection, op_code, RacpResponseValue.SUCCESS)

    async def _drop(self, connection: Connection) -> None:
        logger.info("meter %s: dropping the link (fault injection)", self.identity.name)
        async with asyncio.timeout(COMMAND_TIMEOUT):
            await connection.disconnect()

    def _select(self, request: RacpRequest) -> list[_Record]:
        operator = request.operator
        if operator in (
            RacpOperator.ALL_RECORDS,
            RacpOperator.FIRST_RECORD,
            RacpOperator.LAST_RECORD,
        ):
            if request.filter is not None or request.operand_bytes:
                raise _RacpFailure(RacpResponseValue.INVALID_OPERAND)
            if operator is RacpOperator.ALL_RECORDS:
                return list(self._records)
            if operator is RacpOperator.FIRST_RECORD:
                return self._records[:1]
            return self._records[-1:]
        if operator is RacpOperator.GREATER_THAN_OR_EQUAL_TO:
            record_filter = request.filter
            if record_filter is None or request.operand_bytes:
                raise _RacpFailure(RacpResponseValue.INVALID_OPERAND)
            if record_filter.filter_type is not RacpFilterType.SEQUENCE_NUMBER:
                raise _RacpFailure(RacpResponseValue.OPERAND_NOT_SUPPORTED)
            (first,) = record_filter.values
            return [record for record in self._records if record.sequence_number >= first]
        if operator in (RacpOperator.LESS_THAN_OR_EQUAL_TO, RacpOperator.WITHIN_RANGE_OF):
            raise _RacpFailure(RacpResponseValue.OPERATOR_NOT_SUPPORTED)
        raise _RacpFailure(RacpResponseValue.INVALID_OPERATOR)  # Null or RFU

    async def _respond(
        self, connection: Connection, op_code: RacpOpCode, code: RacpResponseValue
    ) -> None:
        await self._indicate(connection, bytes(RacpResponse(op_code, code)))

    async def _indicate(self, connection: Connection, payload: bytes) -> bool:
        if not self._subscribed(
            connection, self._racp, gatt.ClientCharacteristicConfigurationBits.INDICATION
        ):
            logger.info("meter %s: RACP indication dropped: not subscribed", self.identity.name)
            return False
        confirmed = await self._indicate_to(connection, self._racp, payload)
        if not confirmed:
            logger.info("meter %s: RACP indication not confirmed", self.identity.name)
        return confirmed
