"""Simulated glucose meters (and cuffs) in a process of their own, reachable over TCP, for the
fault tests and the gateway benches: the gateway process under test reaches them with
``--ble-transport tcp-client:127.0.0.1:PORT``, so killing the gateway never kills the devices.

    python tests/faults/sim_devices.py --meters 3 --records 60 --interval 0.05 \\
        --produced produced.jsonl [--stored 100] [--cuffs 1]

Prints ``PORT <n>`` once the controller is served, then adds ``--records`` records in total, one
every ``--interval`` seconds, round-robin over the meters (and measures on the cuffs), appending
one JSON line per record to ``--produced``: ``{"device_key", "sequence_number"}`` for a meter
record, ``{"device_key", "systolic"}`` for a cuff measurement. ``--stored`` records are in each
meter's memory before it first advertises (a full sync). Prints ``DONE`` when all are added,
then runs until SIGTERM/SIGINT.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import signal
import sys
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from bumble import ll
from bumble.controller import Controller
from bumble.transport.common import StreamPacketSource

from device_simulators.bp_cuff import BloodPressureCuff, CuffIdentity
from device_simulators.glucometer import Glucometer, MeterIdentity
from device_simulators.patients import Measurement
from device_simulators.radio import VirtualRadio
from device_simulators.vendor_quirks import SIMULATED_MANUFACTURER
from gateway.codec.date_time import DateTime
from gateway.codec.glucose import GlucoseMeasurement, GlucoseType, SampleLocation
from gateway.codec.ieee11073 import SFloat
from homewatch.wire import serial_device_key

METER_MODEL = "GL-Sim 1"
CUFF_MODEL = "BP-Sim 1"


def meter_identity(i: int) -> MeterIdentity:
    serial = f"FAULT-GL-{i:02d}"
    return MeterIdentity(f"Meter {serial}", SIMULATED_MANUFACTURER, METER_MODEL, serial, "1.0")


def cuff_identity(i: int) -> CuffIdentity:
    serial = f"FAULT-BP-{i:02d}"
    return CuffIdentity(f"Cuff {serial}", SIMULATED_MANUFACTURER, CUFF_MODEL, serial, "1.0")


def key(identity: MeterIdentity | CuffIdentity) -> str:
    return serial_device_key(identity.manufacturer, identity.model, identity.serial_number)


def glucose(at: datetime, mg_per_dl: int) -> GlucoseMeasurement:
    return GlucoseMeasurement(
        sequence_number=0,  # the meter numbers it
        base_time=DateTime.from_datetime(at.replace(tzinfo=None, microsecond=0)),
        time_offset=0,
        concentration=SFloat.from_value(Decimal(mg_per_dl) / 100_000, exponent=-5),
        sample_type=GlucoseType.CAPILLARY_PLASMA,
        sample_location=SampleLocation.FINGER,
    )


class _HostSink:
    """HCI packets from the controller to the gateway's host, while it is connected."""

    def __init__(self, writer: asyncio.StreamWriter) -> None:
        self.writer = writer

    def on_packet(self, packet: bytes) -> None:
        if not self.writer.is_closing():
            self.writer.write(packet)


async def serve_controllers(radio: VirtualRadio) -> asyncio.Server:
    """Like ``VirtualRadio.serve_tcp``, but one fresh controller per host connection, and the
    links of a host that went away are terminated, as when a real adapter is reset or loses its
    host: the devices see the link drop and advertise again. (``serve_tcp`` keeps the links of a
    host killed with -9, and the devices then wait for it forever.)"""

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        source = StreamPacketSource()
        controller = Controller("gateway-tcp", host_source=source, host_sink=_HostSink(writer))
        controller.link = radio.link
        radio.link.add_controller(controller)
        try:
            while data := await reader.read(65536):
                source.data_received(data)
        except ConnectionError:
            pass
        finally:
            controller.host = None
            for connection in list(controller.le_connections.values()):
                # 0x08: connection timeout, what the devices would see
                connection.send_ll_control_pdu(ll.TerminateInd(0x08))
            controller.le_connections.clear()
            radio.link.remove_controller(controller)
            writer.transport.abort()

    return await asyncio.start_server(serve, "127.0.0.1", 0)


async def main(args: argparse.Namespace) -> None:
    produced = Path(args.produced).open("a", buffering=1)  # noqa: ASYNC230 (before any task)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    start = datetime.now(UTC) - timedelta(days=30)
    async with VirtualRadio() as radio, contextlib.AsyncExitStack() as stack:
        meters: list[tuple[str, Glucometer]] = []
        for i in range(args.meters):
            ident = meter_identity(i)
            meter = Glucometer(
                await radio.peripheral_device(ident.name),
                ident,
                advertising_interval_ms=args.advertising_interval_ms,
            )
            for n in range(args.stored):  # a full memory, from before the gateway came
                seq = meter.add_record(glucose(start + timedelta(minutes=n), 90 + n % 100))
                produced.write(json.dumps({"device_key": key(ident), "sequence_number": seq}))
                produced.write("\n")
            meters.append((key(ident), await stack.enter_async_context(meter)))
        cuffs: list[tuple[str, BloodPressureCuff]] = []
        for i in range(args.cuffs):
            ident = cuff_identity(i)
            cuff = BloodPressureCuff(
                await radio.peripheral_device(ident.name),
                ident,
                advertising_interval_ms=args.advertising_interval_ms,
            )
            cuffs.append((key(ident), await stack.enter_async_context(cuff)))
        server = await serve_controllers(radio)
        print(f"PORT {server.sockets[0].getsockname()[1]}", flush=True)

        devices = [("meter", k, d) for k, d in meters] + [("cuff", k, d) for k, d in cuffs]
        pending: set[asyncio.Future[bool]] = set()
        base = datetime.now(UTC) - timedelta(hours=1)
        for n in range(args.records):
            kind, device_key, device = devices[n % len(devices)]
            at = base + timedelta(seconds=n)
            if kind == "meter":
                seq = device.add_record(glucose(at, 80 + n % 200))
                entry = {"device_key": device_key, "sequence_number": seq}
            else:
                systolic = 100 + n % 120
                # Not awaited to the end: the cuff keeps it until a central confirms it.
                measuring = asyncio.ensure_future(
                    device.measure(Measurement(at, systolic, 80, 60).encode())
                )
                pending.add(measuring)
                measuring.add_done_callback(pending.discard)
                entry = {"device_key": device_key, "systolic": systolic}
            produced.write(json.dumps(entry) + "\n")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), args.interval)
            if stop.is_set():
                break
        print("DONE", flush=True)
        await stop.wait()
        server.close()
    produced.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--meters", type=int, default=3)
    parser.add_argument("--cuffs", type=int, default=0)
    parser.add_argument("--records", type=int, default=60)
    parser.add_argument("--stored", type=int, default=0)
    parser.add_argument("--interval", type=float, default=0.05)
    parser.add_argument("--produced", required=True)
    parser.add_argument("--advertising-interval-ms", type=float, default=100.0)
    parser.add_argument("-v", "--verbose", action="store_true")
    arguments = parser.parse_args()
    logging.basicConfig(
        level=logging.INFO if arguments.verbose else logging.WARNING,
        format="%(asctime)s sim %(levelname)s %(name)s: %(message)s",
    )
    asyncio.run(main(arguments))
