"""Glucose record transfer over RACP (SPEC.md 5.1), through bleak's public ``BleakClient`` API.

On a connected client (services discovered)::

    count = await count_records(client, since_sequence=None, timeout=10.0)
    records = await fetch_records(client, since_sequence=last_seen + 1, timeout=30.0)

The transfer subscribes to Glucose Measurement 0x2A18 and Glucose Measurement Context 0x2A34
notifications and to RACP 0x2A52 indications, writes the request with response and waits for
the RACP response, the end-of-transfer marker. Records come back in sequence order with their
context merged. Errors, all ``GlucoseTransferError``:

- ``RacpResponseError``: the meter answered another response code than Success / No records
  found (``response_code``);
- ``TransferInterruptedError``: the link dropped before the response; ``records`` holds what
  arrived, so the caller keeps them and resumes at ``high_water_mark + 1``;
- ``TransferTimeoutError``: no response in time; an abort was sent; ``records`` as above;
- ``GlucoseTransferError`` itself: the meter lacks the characteristics or a GATT operation failed.

A malformed notification is logged with its hex, skipped and counted (``TransferStats``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable
from dataclasses import dataclass, field

from bleak import BleakClient
from bleak.backends.characteristic import BleakGATTCharacteristic
from bleak.exc import BleakError
from bleak.uuids import normalize_uuid_16

from gateway.codec.errors import DecodeError
from gateway.codec.glucose import GlucoseMeasurement
from gateway.codec.glucose_context import GlucoseMeasurementContext
from gateway.codec.racp import (
    RacpMessage,
    RacpOpCode,
    RacpRecordCount,
    RacpRequest,
    RacpResponse,
    RacpResponseValue,
    decode_racp,
)

logger = logging.getLogger(__name__)

GLUCOSE_MEASUREMENT_UUID = normalize_uuid_16(0x2A18)
GLUCOSE_CONTEXT_UUID = normalize_uuid_16(0x2A34)
RACP_UUID = normalize_uuid_16(0x2A52)
#: Bound on one GATT operation (subscribe, write, unsubscribe).
GATT_TIMEOUT = 10.0
#: How long to wait for the abort's own response after a timeout.
ABORT_TIMEOUT = 5.0
DEFAULT_COUNT_TIMEOUT = 10.0
_MAX_SEQUENCE_NUMBER = 0xFFFF
_LINK_POLL = 0.05


@dataclass(frozen=True)
class GlucoseRecord:
    """One stored record: the measurement as decoded and as received, with its context."""

    measurement: GlucoseMeasurement
    raw: bytes
    context: GlucoseMeasurementContext | None = None
    raw_context: bytes | None = None

    @property
    def sequence_number(self) -> int:
        return self.measurement.sequence_number


@dataclass
class TransferStats:
    """What a transfer skipped: malformed notifications / indications, orphan contexts."""

    malformed: int = 0
    orphan_contexts: int = 0
    #: The malformed values themselves, so the caller can keep them (nothing is lost).
    malformed_errors: list[DecodeError] = field(default_factory=list)


class GlucoseTransferError(Exception):
    """Root of the glucose transfer errors."""


class RacpResponseError(GlucoseTransferError):
    """The meter ended the procedure with a response code other than Success / No records."""

    def __init__(self, request_op_code: RacpOpCode, response_code: RacpResponseValue) -> None:
        super().__init__(
            f"RACP {request_op_code.text}: {response_code.text} ({int(response_code):#04x})"
        )
        self.request_op_code = request_op_code
        self.response_code = response_code


class PartialTransferError(GlucoseTransferError):
    """A transfer that ended early; ``records`` are the complete records received, in order."""

    def __init__(self, message: str, records: list[GlucoseRecord]) -> None:
        super().__init__(f"{message} after {len(records)} record(s)")
        self.records = records

    @property
    def high_water_mark(self) -> int | None:
        """Highest sequence number received (resume at this + 1), None when nothing came."""
        return self.records[-1].sequence_number if self.records else None


class TransferInterruptedError(PartialTransferError):
    """The link dropped before the RACP response."""


class TransferTimeoutError(PartialTransferError):
    """No RACP response in time (an abort was sent)."""


def _check_sequence(since_sequence: int | None) -> None:
    if since_sequence is not None and not 0 <= since_sequence <= _MAX_SEQUENCE_NUMBER:
        raise ValueError(f"sequence number must be 0..65535, got {since_sequence}")


async def count_records(
    client: BleakClient,
    since_sequence: int | None,
    *,
    timeout: float = DEFAULT_COUNT_TIMEOUT,
) -> int:
    """Number of stored records (all, or with sequence number >= ``since_sequence``)."""
    _check_sequence(since_sequence)
    request = (
        RacpRequest.report_number_of_records()
        if since_sequence is None
        else RacpRequest.report_number_of_records_greater_or_equal(since_sequence)
    )
    async with _Session(client, TransferStats()) as session:
        message = await session.run(request, timeout)
    if isinstance(message, RacpRecordCount):
        return message.number_of_records
    raise RacpResponseError(message.request_op_code, message.response_code)


async def fetch_records(
    client: BleakClient,
    since_sequence: int | None,
    *,
    timeout: float,
    stats: TransferStats | None = None,
) -> list[GlucoseRecord]:
    """Stored records (all, or with sequence number >= ``since_sequence``), in sequence order.

    ``timeout`` bounds the whole procedure, from the request to the RACP response.
    """
    _check_sequence(since_sequence)
    request = (
        RacpRequest.report_all_records()
        if since_sequence is None
        else RacpRequest.report_records_greater_or_equal(since_sequence)
    )
    return await report_records(client, request, timeout=timeout, stats=stats)


async def report_records(
    client: BleakClient,
    request: RacpRequest,
    *,
    timeout: float,
    stats: TransferStats | None = None,
) -> list[GlucoseRecord]:
    """Run any RACP request whose procedure ends with a Response Code; the records notified."""
    async with _Session(client, stats if stats is not None else TransferStats()) as session:
        message = await session.run(request, timeout)
        records = session.records()
    if isinstance(message, RacpRecordCount):
        raise GlucoseTransferError(f"unexpected {message!r} to {request.op_code.text}")
    if message.response_code is RacpResponseValue.NO_RECORDS_FOUND:
        return []
    if not message.is_success:
        raise RacpResponseError(message.request_op_code, message.response_code)
    return records


class _Session:
    """Subscriptions for one RACP procedure and what they collected."""

    def __init__(self, client: BleakClient, stats: TransferStats) -> None:
        self._client = client
        self._stats = stats
        self._measurements: dict[int, tuple[GlucoseMeasurement, bytes]] = {}
        self._contexts: dict[int, tuple[GlucoseMeasurementContext, bytes]] = {}
        self._racp: asyncio.Queue[RacpMessage] = asyncio.Queue()
        self._subscribed: list[str] = []

    async def __aenter__(self) -> _Session:
        services = self._client.services
        for uuid in (GLUCOSE_MEASUREMENT_UUID, RACP_UUID):
            if services.get_characteristic(uuid) is None:
                raise GlucoseTransferError(f"the meter has no characteristic {uuid}")
        wanted = [
            (GLUCOSE_MEASUREMENT_UUID, self._on_measurement),
            (GLUCOSE_CONTEXT_UUID, self._on_context),
            (RACP_UUID, self._on_racp),
        ]
        try:
            for uuid, callback in wanted:
                if services.get_characteristic(uuid) is None:
                    continue  # 0x2A34 is optional
                await self._gatt(f"subscribe to {uuid}", self._client.start_notify(uuid, callback))
                self._subscribed.append(uuid)
        except BaseException:
            await self._unsubscribe()
            raise
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self._unsubscribe()

    async def _unsubscribe(self) -> None:
        while self._subscribed:
            uuid = self._subscribed.pop()
            if not self._client.is_connected:
                continue
            try:
                async with asyncio.timeout(GATT_TIMEOUT):
                    await self._client.stop_notify(uuid)
            except (BleakError, TimeoutError) as error:
                logger.info("stop_notify on %s failed: %s", uuid, error)

    async def _gatt(self, what: str, operation: Awaitable[object]) -> None:
        try:
            async with asyncio.timeout(GATT_TIMEOUT):
                await operation
        except (BleakError, TimeoutError) as error:
            if not self._client.is_connected:
                raise TransferInterruptedError(
                    f"link lost during {what}", self.records()
                ) from error
            raise GlucoseTransferError(f"{what} failed: {error}") from error

    # --- notifications ---------------------------------------------------------------------

    def _on_measurement(self, _characteristic: BleakGATTCharacteristic, data: bytearray) -> None:
        raw = bytes(data)
        try:
            measurement = GlucoseMeasurement.from_bytes(raw)
        except DecodeError as error:
            self._malformed(error)
            return
        if measurement.sequence_number in self._measurements:
            logger.warning("duplicate glucose record %d ignored", measurement.sequence_number)
            return
        self._measurements[measurement.sequence_number] = (measurement, raw)

    def _on_context(self, _characteristic: BleakGATTCharacteristic, data: bytearray) -> None:
        raw = bytes(data)
        try:
            context = GlucoseMeasurementContext.from_bytes(raw)
        except DecodeError as error:
            self._malformed(error)
            return
        self._contexts.setdefault(context.sequence_number, (context, raw))

    def _on_racp(self, _characteristic: BleakGATTCharacteristic, data: bytearray) -> None:
        try:
            message = decode_racp(bytes(data))
        except DecodeError as error:
            self._malformed(error)
            return
        self._racp.put_nowait(message)

    def _malformed(self, error: DecodeError) -> None:
        self._stats.malformed += 1
        self._stats.malformed_errors.append(error)
        logger.warning(
            "malformed %s notification skipped: %s (payload %s)",
            error.characteristic,
            error.reason,
            error.payload_hex,
        )

    # --- procedure ---------------------------------------------------------------------------

    def records(self) -> list[GlucoseRecord]:
        records = []
        for sequence in sorted(self._measurements):
            measurement, raw = self._measurements[sequence]
            context, raw_context = self._contexts.get(sequence, (None, None))
            records.append(GlucoseRecord(measurement, raw, context, raw_context))
        self._stats.orphan_contexts = len(self._contexts.keys() - self._measurements.keys())
        return records

    async def run(self, request: RacpRequest, timeout: float) -> RacpResponse | RacpRecordCount:
        """Write ``request`` and wait for the message that ends it."""
        await self._gatt(
            f"RACP write {request.op_code.text}",
            self._client.write_gatt_char(RACP_UUID, bytes(request), response=True),
        )
        try:
            return await self._wait_end(request.op_code, timeout)
        except TimeoutError:
            await self._abort()
            raise TransferTimeoutError(
                f"no RACP response to {request.op_code.text} within {timeout} s", self.records()
            ) from None

    async def _wait_end(
        self, op_code: RacpOpCode, timeout: float
    ) -> RacpResponse | RacpRecordCount:
        async with asyncio.timeout(timeout):
            while True:
                if self._racp.empty() and not self._client.is_connected:
                    raise TransferInterruptedError(
                        f"link lost during {op_code.text}", self.records()
                    )
                try:
                    async with asyncio.timeout(_LINK_POLL):
                        message = await self._racp.get()
                except TimeoutError:
                    continue
                if isinstance(message, RacpRecordCount):
                    if op_code is RacpOpCode.REPORT_NUMBER_OF_STORED_RECORDS:
                        return message
                elif isinstance(message, RacpResponse) and message.request_op_code is op_code:
                    return message
                logger.warning("unexpected RACP message ignored: %r", message)

    async def _abort(self) -> None:
        if not self._client.is_connected:
            return
        try:
            await self._gatt(
                "RACP abort",
                self._client.write_gatt_char(RACP_UUID, bytes(RacpRequest.abort()), response=True),
            )
            with contextlib.suppress(TimeoutError):
                response = await self._wait_end(RacpOpCode.ABORT_OPERATION, ABORT_TIMEOUT)
                logger.info("RACP abort answered: %s", response)
        except GlucoseTransferError as error:
            logger.warning("RACP abort failed: %s", error)
