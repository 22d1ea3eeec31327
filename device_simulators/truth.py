"""Ground truth: what really happened in a simulated run, as JSON lines.

Alert quality (sensitivity, detection delay, false-alert rate) can only be measured against
what the patients and devices truly did, so every run can write it down. One JSON object a line,
each with a ``type``:

* ``run``: scenario, seed, the window [start, end), patient and device counts;
* ``patient``: id, name, kind, programme, conditions (ICD-10) and device keys (what to bind);
* ``event``: ``kind`` and ``category`` (clinical, behaviour, device), ``patient_id``,
  ``device_key`` where one device is concerned, ``start``/``end`` (ISO 8601, UTC; ``end`` null
  for a moment or "until the end") and the true ``values`` (a crisis's true pressure, a hypo's
  nadir, a deterioration's slope, why a patient stopped measuring...);
* ``device``: what each device produced: ``measurements`` (distinct readings), ``resent``
  (copies of earlier records sent again), ``records`` (both: what the device's memory held or
  sent), and ``labels`` (how many readings carried each label: scheduled, crisis, movement...).

Events are in start order; ``read_truth`` reads a file back into plain dicts.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Literal, TextIO

Category = Literal["clinical", "behaviour", "device"]


@dataclass(frozen=True, slots=True)
class TruthEvent:
    kind: str
    category: Category
    patient_id: str | None
    start: datetime
    end: datetime | None = None
    device_key: str | None = None
    values: Mapping[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "type": "event",
            "kind": self.kind,
            "category": self.category,
            "patient_id": self.patient_id,
            "device_key": self.device_key,
            "start": self.start.isoformat(),
            "end": None if self.end is None else self.end.isoformat(),
            "values": dict(self.values),
        }


@dataclass(frozen=True, slots=True)
class DeviceCount:
    device_key: str
    device_type: str
    patient_id: str | None
    serial_number: str
    model: str
    measurements: int
    resent: int = 0
    labels: Mapping[str, int] = field(default_factory=dict)

    @property
    def records(self) -> int:
        """What the device took in: its readings and the copies it sent again."""
        return self.measurements + self.resent

    def to_json(self) -> dict[str, Any]:
        return {
            "type": "device",
            "device_key": self.device_key,
            "device_type": self.device_type,
            "patient_id": self.patient_id,
            "serial_number": self.serial_number,
            "model": self.model,
            "measurements": self.measurements,
            "resent": self.resent,
            "records": self.records,
            "labels": dict(sorted(self.labels.items())),
        }


def write_lines(out: TextIO, objects: Iterable[Mapping[str, Any]]) -> int:
    """Write one compact JSON object a line; returns how many."""
    written = 0
    for obj in objects:
        out.write(json.dumps(obj, separators=(",", ":"), allow_nan=False))
        out.write("\n")
        written += 1
    return written


def read_truth(path: str | Path) -> list[dict[str, Any]]:
    """A truth file back as a list of dicts (one per line)."""
    with Path(path).open(encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]
