"""Blood Pressure Measurement codec throughput against a struct.unpack floor, same run."""

from __future__ import annotations

import struct
import timeit

from gateway.codec import BloodPressureMeasurement

PAYLOAD = bytes.fromhex("1e780050005d00e807030f081e004800020000")  # all fields present
N = 20_000


def floor() -> None:
    struct.unpack("<BHHHHBBBBBHBH", PAYLOAD)


def decode() -> None:
    BloodPressureMeasurement.from_bytes(PAYLOAD)


def round_trip() -> None:
    bytes(BloodPressureMeasurement.from_bytes(PAYLOAD))


def main() -> None:
    base = min(timeit.repeat(floor, number=N, repeat=5)) / N
    print(f"struct.unpack floor      {1 / base:12,.0f} payloads/s")
    for name, func in (("decode", decode), ("decode + encode", round_trip)):
        t = min(timeit.repeat(func, number=N, repeat=5)) / N
        print(f"{name:<24} {1 / t:12,.0f} payloads/s   {t / base:6.1f}x the floor's time")


if __name__ == "__main__":
    main()
