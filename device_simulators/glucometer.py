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
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import struct
from collections.abc import Coroutine
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Self

from bumble import att, gatt, hci
from bumble.core import UUID, AdvertisingData
from bumble.device import Connection, Device
from bumble.profiles.device_information_service import DeviceInformationService

from device_simulators.gatt import indicate_confirmed, is_subscribed, read_not_permitted
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
#: GAP Appearance "Glucose Meter: Generic" (category 0x00D, sub-category 0x00).
APPEARANCE_GENERIC_GLUCOSE_METER = 0x0D << 6
#: GLS application ATT errors (SPEC.md 5.1).
ATT_PROCEDURE_ALREADY_IN_PROGRESS = 0x80
ATT_CCCD_IMPROPERLY_CONFIGURED = 0x81
_MAX_SEQUENCE_NUMBER = 0xFFFF
_MAX_ADVERTISING_DATA = 31
_COMMAND_TIMEOUT = 5.0


@dataclass(frozen=True)
class MeterIdentity:
    """What the meter says about itself: advertised name and Device Information strings."""

    name: str
    manufacturer: str
    model: str
    serial_number: str
    firmware_revision: str


@dataclass(frozen=True)
class _Record:
    sequence_number: int
    measurement: bytes
    context: bytes | None


class _RacpFailure(Exception):
    def __init__(self, code: RacpResponseValue) -> None:
        super().__init__(code.text)
        self.code = code


class Glucometer:
    """A simulated BLE glucose meter on a bumble ``Device``; ``async with`` runs it.

    Args:
        device: a powered-on bumble Device used for nothing else.
        identity: name and Device Information strings.
        feature: the Glucose Feature value.
        advertising_interval_ms: advertising interval (short by default, for quick discovery).
        indication_timeout: how long one RACP indication may wait for its confirmation.
    """

    def __init__(
        self,
        device: Device,
        identity: MeterIdentity,
        *,
        feature: GlucoseFeature | None = None,
        advertising_interval_ms: float = 100.0,
        indication_timeout: float = 5.0,
    ) -> None:
        self._device = device
        self.identity = identity
        self.feature = feature if feature is not None else GlucoseFeature()
        self._advertising_interval_ms = advertising_interval_ms
        self._indication_timeout = indication_timeout
        self._advertising_data = _advertising_data(identity.name)

        self._measurement = gatt.Characteristic(
            UUID.from_16_bits(GLUCOSE_MEASUREMENT, "Glucose Measurement"),
            gatt.Characteristic.Properties.NOTIFY,
            gatt.Characteristic.Permissions(0),
            gatt.CharacteristicValue(read=read_not_permitted),
        )
        self._context = gatt.Characteristic(
            UUID.from_16_bits(GLUCOSE_MEASUREMENT_CONTEXT, "Glucose Measurement Context"),
            gatt.Characteristic.Properties.NOTIFY,
            gatt.Characteristic.Permissions(0),
            gatt.CharacteristicValue(read=read_not_permitted),
        )
        self._racp = gatt.Characteristic(
            UUID.from_16_bits(RECORD_ACCESS_CONTROL_POINT, "Record Access Control Point"),
            gatt.Characteristic.Properties.WRITE | gatt.Characteristic.Properties.INDICATE,
            gatt.Characteristic.WRITEABLE,
            gatt.CharacteristicValue(read=read_not_permitted, write=self._on_racp_write),
        )
        self._services = [
            gatt.Service(
                UUID.from_16_bits(GLUCOSE_SERVICE, "Glucose"),
                [
                    self._measurement,
                    self._context,
                    gatt.Characteristic(
                        UUID.from_16_bits(GLUCOSE_FEATURE, "Glucose Feature"),
                        gatt.Characteristic.Properties.READ,
                        gatt.Characteristic.READABLE,
                        bytes(self.feature),
                    ),
                    self._racp,
                ],
            ),
            DeviceInformationService(
                manufacturer_name=identity.manufacturer,
                model_number=identity.model,
                serial_number=identity.serial_number,
                firmware_revision=identity.firmware_revision,
            ),
        ]
        self._records: list[_Record] = []
        self._next_sequence = 0
        self._drop_after: int | None = None
        self._stall_after: int | None = None
        self._procedure: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._connection: Connection | None = None
        self._running = False
        self._services_added = False
        #: Every RACP request received, as written (for tests and logs).
        self.racp_requests: list[bytes] = []

    # --- state ------------------------------------------------------------------------------

    @property
    def address(self) -> str:
        """The meter's address as bleak shows it (upper case, no type suffix)."""
        return self._device.random_address.to_string(with_type_qualifier=False).upper()

    @property
    def stored_count(self) -> int:
        return len(self._records)

    @property
    def is_connected(self) -> bool:
        return self._connection is not None

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
        if self._next_sequence > _MAX_SEQUENCE_NUMBER:
            raise ValueError("the meter's sequence numbers are exhausted (uint16)")
        sequence = self._next_sequence
        self._next_sequence += 1
        return sequence

    # --- lifecycle --------------------------------------------------------------------------

    async def __aenter__(self) -> Self:
        if not self._services_added:
            self._device.add_services(self._services)
            self._services_added = True
        self._device.on(Device.EVENT_CONNECTION, self._on_connection)
        self._running = True
        await self._start_advertising()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._running = False
        self._device.remove_listener(Device.EVENT_CONNECTION, self._on_connection)
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        async with asyncio.timeout(_COMMAND_TIMEOUT):
            if self._connection is not None:
                await self._connection.disconnect()
            await self._device.stop_advertising()

    async def _start_advertising(self) -> None:
        async with asyncio.timeout(_COMMAND_TIMEOUT):
            await self._device.start_advertising(
                advertising_data=self._advertising_data,
                advertising_interval_min=self._advertising_interval_ms,
                advertising_interval_max=self._advertising_interval_ms,
            )
        logger.debug("meter %s advertising", self.identity.name)

    def _spawn(self, coro: Coroutine[Any, Any, None], name: str) -> asyncio.Task[None]:
        task = asyncio.get_running_loop().create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            logger.error(
                "meter %s: task %s failed",
                self.identity.name,
                task.get_name(),
                exc_info=task.exception(),
            )

    def _on_connection(self, connection: Connection) -> None:
        if connection.role != hci.Role.PERIPHERAL:
            return
        logger.info("meter %s connected to %s", self.identity.name, connection.peer_address)
        self._connection = connection
        connection.on(
            Connection.EVENT_DISCONNECTION,
            lambda reason: self._on_disconnection(connection, reason),
        )

    def _on_disconnection(self, connection: Connection, reason: int) -> None:
        if self._connection is connection:
            self._connection = None
        if self._procedure is not None:
            self._procedure.cancel()
        logger.info("meter %s disconnected (reason 0x%02X)", self.identity.name, reason)
        if self._running:
            self._spawn(self._start_advertising(), "meter-readvertise")

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
        async with asyncio.timeout(_COMMAND_TIMEOUT):
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

    def _subscribed(
        self, connection: Connection, characteristic: gatt.Characteristic, bit: int
    ) -> bool:
        return is_subscribed(self._device, connection, characteristic, bit)

    async def _indicate(self, connection: Connection, payload: bytes) -> bool:
        if not self._subscribed(
            connection, self._racp, gatt.ClientCharacteristicConfigurationBits.INDICATION
        ):
            logger.info("meter %s: RACP indication dropped: not subscribed", self.identity.name)
            return False
        confirmed = await indicate_confirmed(
            self._device, connection, self._racp, payload, self._indication_timeout
        )
        if not confirmed:
            logger.info("meter %s: RACP indication not confirmed", self.identity.name)
        return confirmed


def _advertising_data(name: str) -> bytes:
    """Flags, 0x1808, appearance and the (complete or shortened) name: everything a gateway
    filters on is in the advertising data (bumble's virtual controller sends no scan response)."""
    encoded_name = name.encode("utf-8")
    if not encoded_name:
        raise ValueError("the meter needs a name")
    base = [
        (AdvertisingData.Type.FLAGS, bytes([0x06])),
        (
            AdvertisingData.Type.COMPLETE_LIST_OF_16_BIT_SERVICE_CLASS_UUIDS,
            struct.pack("<H", GLUCOSE_SERVICE),
        ),
        (AdvertisingData.Type.APPEARANCE, struct.pack("<H", APPEARANCE_GENERIC_GLUCOSE_METER)),
    ]
    with_name = bytes(
        AdvertisingData([*base, (AdvertisingData.Type.COMPLETE_LOCAL_NAME, encoded_name)])
    )
    if len(with_name) <= _MAX_ADVERTISING_DATA:
        return with_name
    room = _MAX_ADVERTISING_DATA - len(bytes(AdvertisingData(base))) - 2
    short = encoded_name[:room].decode("utf-8", errors="ignore").encode("utf-8")
    return bytes(AdvertisingData([*base, (AdvertisingData.Type.SHORTENED_LOCAL_NAME, short)]))
