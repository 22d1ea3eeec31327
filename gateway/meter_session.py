"""A session with a glucose meter: read its stored records incrementally over RACP, never losing
or duplicating one, then set its clock and let it go.

The meter's high-water mark (last record retrieved: sequence number *and* the meter's time
stamp of it) lives in the outbox and advances in the same transaction as the records it covers.
Each session asks for the records numbered from the mark on, the marked record included: when
it comes back with the same time stamp the numbering is continuous; when it does not, the meter
was reset (or its memory rolled over) and every record is read again — the reading ids, derived
from device + sequence number + time stamp, make the second copy of a known record a no-op.
When the numbering reached 65535 it wraps to 0, so the records below the first one fetched are
read too. A meter the quirk table says numbers backwards has no usable mark: it is read whole.

A link that drops mid-transfer keeps what arrived (stored with its mark); the next session
resumes from there.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from bleak import BleakClient

from gateway.ble import SessionEnded
from gateway.clock_sync import clock_characteristic, read_clock, sync_clock
from gateway.codec.racp import RacpRequest, RacpResponseValue
from gateway.device_time import ClockCheck
from gateway.glucose_transfer import (
    GlucoseRecord,
    GlucoseTransferError,
    PartialTransferError,
    RacpResponseError,
    TransferStats,
    count_records,
    report_records,
)
from gateway.outbox import HighWaterMark, OutboxFull
from gateway.quirks import DeviceQuirks
from gateway.readings import glucose_reading
from gateway.session_context import SessionContext
from homewatch.wire import DeviceIdentity

log = logging.getLogger(__name__)

MAX_SEQUENCE_NUMBER = 0xFFFF
_UNSUPPORTED = (
    RacpResponseValue.OP_CODE_NOT_SUPPORTED,
    RacpResponseValue.OPERATOR_NOT_SUPPORTED,
    RacpResponseValue.OPERAND_NOT_SUPPORTED,
)


async def serve_meter(
    client: BleakClient, identity: DeviceIdentity, ctx: SessionContext
) -> float | None:
    """Read what is new, set the clock, and leave the meter alone for ``ctx.meter_rest``."""
    quirks = ctx.quirks.for_device(identity.manufacturer, identity.model)
    if quirks.any:
        log.info("%s: quirks %s apply", identity.device_key, quirks.id)
    clock_uuid = clock_characteristic(quirks.clock_characteristic)
    clock = await read_clock(client, clock_uuid, ctx.clock, identity.device_key)
    transfer = _Transfer(client, identity, quirks, clock, ctx)
    try:
        await transfer.run()
    except PartialTransferError as exc:
        # What arrived is stored: reconnect (with back-off) and resume from the mark.
        raise SessionEnded(f"{identity.device_key}: {exc}") from exc
    except OutboxFull as exc:
        # Nothing of the refused batch was stored and the mark did not move: the records stay
        # on the meter and are read once the outbox has room.
        log.error("%s: %s", identity.device_key, exc)
        return ctx.meter_rest
    except GlucoseTransferError as exc:
        # The meter refused or failed the procedure: report it, try again after the rest.
        log.error("%s: transfer failed: %s", identity.device_key, exc)
        return ctx.meter_rest
    log.info(
        "%s: %d new record(s) of %d read",
        identity.device_key, transfer.new, transfer.received,
    )  # fmt: skip
    await sync_clock(client, clock_uuid, clock, ctx.clock, identity.device_key)
    return ctx.meter_rest


class _Transfer:
    def __init__(
        self,
        client: BleakClient,
        identity: DeviceIdentity,
        quirks: DeviceQuirks,
        clock: ClockCheck,
        ctx: SessionContext,
    ) -> None:
        self._client = client
        self._identity = identity
        self._quirks = quirks
        self._clock = clock
        self._ctx = ctx
        self.received = 0
        self.new = 0

    async def run(self) -> None:
        key = self._identity.device_key
        if self._quirks.glucose_sequence_descending:
            await self._fetch(RacpRequest.report_all_records(), keep_mark=False)
            return
        mark = await self._ctx.sink.high_water_mark(self._identity)
        if mark is None:
            log.info("%s: first contact; reading every stored record", key)
            await self._fetch(RacpRequest.report_all_records())
            return
        pending = await count_records(
            self._client, mark.sequence_number, timeout=self._ctx.transfer_timeout
        )
        log.info("%s: %d record(s) from #%d on", key, pending, mark.sequence_number)
        records = (
            await self._fetch(RacpRequest.report_records_greater_or_equal(mark.sequence_number))
            if pending
            else []
        )
        anchor = next((r for r in records if r.sequence_number == mark.sequence_number), None)
        if anchor is None or anchor.measurement.measured_at_device() != mark.device_time:
            log.warning(
                "%s: record #%d is gone or changed: the meter was reset; reading every record",
                key, mark.sequence_number,
            )  # fmt: skip
            await self._fetch(RacpRequest.report_all_records())
            return
        top = records[-1]
        if top.sequence_number == MAX_SEQUENCE_NUMBER and mark.sequence_number > 0:
            # Numbering wraps after 65535: newer records are numbered from 0 again, below older
            # ones still in memory; only those stamped after the top record move the mark.
            below = RacpRequest.report_records_less_or_equal(mark.sequence_number - 1)
            try:
                await self._fetch(below, newer_than=top)
            except RacpResponseError as exc:
                if exc.response_code not in _UNSUPPORTED:
                    raise
                # "<=" is optional in GLS; every meter supports "all".
                await self._fetch(RacpRequest.report_all_records(), newer_than=top)

    async def _fetch(
        self,
        request: RacpRequest,
        *,
        keep_mark: bool = True,
        newer_than: GlucoseRecord | None = None,
    ) -> list[GlucoseRecord]:
        """Run one RACP report and queue what it brought, with the new mark, durably."""
        stats = TransferStats()
        try:
            records = await report_records(
                self._client, request, timeout=self._ctx.transfer_timeout, stats=stats
            )
        except PartialTransferError as exc:
            # Keep what arrived before the link dropped or the meter stalled; resume from it.
            await self._store(exc.records, _new_mark(exc.records, keep_mark, newer_than))
            raise
        finally:
            await self._reject(stats)
        await self._store(records, _new_mark(records, keep_mark, newer_than))
        return records

    async def _reject(self, stats: TransferStats) -> None:
        """Keep what the meter sent that could not be decoded (logged by the transfer)."""
        received_at = datetime.now(UTC)
        for error in stats.malformed_errors:
            await self._ctx.sink.reject(
                self._identity, error.characteristic, error.payload, error.reason, received_at
            )

    async def _store(self, records: list[GlucoseRecord], mark: HighWaterMark | None) -> None:
        if not records:
            return
        received_at = datetime.now(UTC)
        readings = []
        for record in records:
            if record.measurement.is_control_solution and self._quirks.drop_control_solution:
                log.info(
                    "%s: control-solution record #%d dropped (quirk %s)",
                    self._identity.device_key, record.sequence_number, self._quirks.id,
                )  # fmt: skip
                continue
            readings.append(
                glucose_reading(
                    record, self._identity, received_at, self._ctx.clock.timezone, self._clock
                )
            )
        self.received += len(records)
        self.new += await self._ctx.sink.accept(readings, self._identity, mark=mark)


def _new_mark(
    records: list[GlucoseRecord], keep_mark: bool, newer_than: GlucoseRecord | None
) -> HighWaterMark | None:
    """The highest-numbered record of ``records`` (of those stamped after ``newer_than``)."""
    if not keep_mark:
        return None
    if newer_than is not None:
        after = newer_than.measurement.measured_at_device()
        records = [
            r
            for r in records
            if after is None or (t := r.measurement.measured_at_device()) is None or t > after
        ]
    if not records:
        return None
    last = max(records, key=lambda r: r.sequence_number)
    return HighWaterMark(last.sequence_number, last.measurement.measured_at_device())
