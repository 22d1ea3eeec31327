"""Per-model device quirks: a data table keyed by Device Information manufacturer and model.

Real devices break the SIG profiles in a few known ways (SPEC.md 8): a cuff that sends pulse
rate and status big-endian and always includes the user id without setting its flag, meters
whose record sequence numbers go down instead of up, a vendor Date Time characteristic (0x2A08)
where Current Time (0x2A2B) should be, control-solution records mixed with patient samples.
Guessing such things from the bytes at run time would silently corrupt readings of devices that
follow the spec, so each quirk is a named flag, set only for the models listed in
``gateway/quirks.toml`` (plus an optional operator file), and loaded once at start-up.

``decode_blood_pressure`` is the one place the byte-level quirks are applied: it rewrites the
vendor bytes into the SIG layout (same length, so offsets in errors stay true) and decodes them
with the ordinary codec. The glucose and clock flags are read by the code that talks to the
device; they change what it asks for or keeps, not how bytes are parsed.
"""

from __future__ import annotations

import fnmatch
import re
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, fields
from importlib import resources
from pathlib import Path
from typing import Any

from .codec import BloodPressureFlags, BloodPressureMeasurement, DecodeError, parse_uuid16

__all__ = [
    "NO_QUIRKS",
    "PACKAGED_TABLE",
    "SUPPORTED_CLOCK_CHARACTERISTICS",
    "DeviceQuirks",
    "QuirkEntry",
    "QuirkTable",
    "QuirkTableError",
    "decode_blood_pressure",
    "load_quirk_table",
]

#: Vendor clock characteristics the gateway can read instead of CTS 0x2A2B: only Date Time,
#: which the codec decodes. Anything else in a table is a load error, not a run-time surprise.
SUPPORTED_CLOCK_CHARACTERISTICS = frozenset({"2A08"})

#: What error messages call the packaged table.
PACKAGED_TABLE = "gateway/quirks.toml"

_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


@dataclass(frozen=True, slots=True)
class DeviceQuirks:
    """The quirks of one device model; the defaults are a device that follows the spec."""

    id: str = "none"  # table entry id, logged and put in the note
    description: str = ""
    bp_big_endian_pulse_and_status: bool = False  # pulse SFLOAT and status uint16 sent big-endian
    bp_user_id_without_flag: bool = False  # user id byte always present, flag bit 3 not set
    glucose_sequence_descending: bool = False  # new records get LOWER numbers: no high-water mark
    clock_characteristic: str | None = None  # e.g. "2A08": vendor Date Time instead of CTS 2A2B
    drop_control_solution: bool = False  # control-solution records are dropped at the gateway

    @property
    def any(self) -> bool:
        """True when any quirk is set (the id and description are not quirks)."""
        return (
            self.bp_big_endian_pulse_and_status
            or self.bp_user_id_without_flag
            or self.glucose_sequence_descending
            or self.clock_characteristic is not None
            or self.drop_control_solution
        )

    @property
    def bp_bytes(self) -> bool:
        """True when Blood Pressure Measurement bytes must be rewritten before decoding."""
        return self.bp_big_endian_pulse_and_status or self.bp_user_id_without_flag


NO_QUIRKS = DeviceQuirks()

_FLAG_FIELDS = tuple(f.name for f in fields(DeviceQuirks) if f.type in ("bool", bool))
_REQUIRED_KEYS = ("id", "manufacturer", "models", "description", "source")
_ALLOWED_KEYS = frozenset((*_REQUIRED_KEYS, *_FLAG_FIELDS, "clock_characteristic"))


class QuirkTableError(ValueError):
    """A quirk table file that cannot be used; ``file`` and ``entry`` say where.

    ``entry`` is the entry's id when it has one, else its position ``"[[device]] #n"``
    (1-based); None for a problem with the whole file.
    """

    def __init__(self, file: str, entry: str | None, reason: str) -> None:
        self.file = file
        self.entry = entry
        self.reason = reason
        super().__init__(file, entry, reason)

    def __str__(self) -> str:
        if self.entry is None:
            where = self.file
        elif self.entry.startswith("[[device]]"):
            where = f"{self.file}, {self.entry}"
        else:
            where = f"{self.file}, entry {self.entry!r}"
        return f"quirk table {where}: {self.reason}"


@dataclass(frozen=True, slots=True)
class QuirkEntry:
    """One ``[[device]]`` of a table file, validated."""

    quirks: DeviceQuirks
    manufacturer: str  # as written in the file
    models: tuple[str, ...]  # exact model numbers or fnmatch patterns, as written
    source: str  # where the quirk is known from
    file: str  # the file it came from (PACKAGED_TABLE or an operator path)

    @property
    def id(self) -> str:
        return self.quirks.id


def _key(text: str) -> str:
    """How manufacturer and model strings are compared: stripped, case-folded."""
    return text.strip().casefold()


def _is_pattern(model: str) -> bool:
    return any(char in model for char in "*?[")


def _literal_length(pattern: str) -> int:
    """How specific a pattern is: its characters that are not wildcards (``[...]`` counts 1)."""
    return len(re.sub(r"\[[^\]]*\]", "?", pattern).replace("*", "").replace("?", ""))


class QuirkTable:
    """The merged table; ``for_device`` answers which quirks a connected device has.

    Matching: the manufacturer is compared case-insensitively after stripping; the model is
    compared the same way against each entry's ``models``, which may be ``fnmatch`` patterns
    (``"BM77*"``). An exact model beats any pattern; among patterns the most specific (most
    non-wildcard characters) wins, then an operator entry over a packaged one, then file order.
    """

    def __init__(self, entries: tuple[QuirkEntry, ...]) -> None:
        self.entries = entries
        self._exact: dict[tuple[str, str], QuirkEntry] = {}
        patterns: dict[tuple[str, str], tuple[int, QuirkEntry]] = {}
        for index, entry in enumerate(entries):  # later entries (operator file) win on a model
            manufacturer = _key(entry.manufacturer)
            for model in entry.models:
                if _is_pattern(model):
                    patterns[manufacturer, _key(model)] = (index, entry)
                else:
                    self._exact[manufacturer, _key(model)] = entry
        ranked = sorted(
            patterns.items(),
            key=lambda item: (
                -_literal_length(item[0][1]),
                item[1][1].file == PACKAGED_TABLE,
                item[1][0],
            ),
        )
        self._patterns = [(mfr, pattern, entry) for (mfr, pattern), (_, entry) in ranked]

    def for_device(self, manufacturer: str | None, model: str | None) -> DeviceQuirks:
        """The quirks of a device by its Device Information strings; NO_QUIRKS when unknown."""
        if not manufacturer or not model or not manufacturer.strip() or not model.strip():
            return NO_QUIRKS
        wanted = (_key(manufacturer), _key(model))
        exact = self._exact.get(wanted)
        if exact is not None:
            return exact.quirks
        for entry_manufacturer, pattern, entry in self._patterns:
            if entry_manufacturer == wanted[0] and fnmatch.fnmatchcase(wanted[1], pattern):
                return entry.quirks
        return NO_QUIRKS

    def __repr__(self) -> str:
        return f"QuirkTable({', '.join(entry.id for entry in self.entries) or 'empty'})"


def load_quirk_table(extra: Path | None = None) -> QuirkTable:
    """The packaged ``gateway/quirks.toml`` plus an optional operator file.

    An operator entry replaces a packaged entry with the same id, and wins over packaged entries
    on the same manufacturer/model (an entry with no flags set turns a packaged quirk off).
    Every problem is a QuirkTableError naming the file and entry: call this once at start-up.
    """
    try:
        packaged_text = resources.files(__package__).joinpath("quirks.toml").read_text("utf-8")
    except OSError as exc:
        raise QuirkTableError(PACKAGED_TABLE, None, f"cannot read: {exc}") from exc
    entries = list(_parse_table(packaged_text, PACKAGED_TABLE))
    if extra is not None:
        try:
            extra_text = Path(extra).read_text("utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise QuirkTableError(str(extra), None, f"cannot read: {exc}") from exc
        operator = _parse_table(extra_text, str(extra))
        replaced = {entry.id for entry in operator}
        entries = [entry for entry in entries if entry.id not in replaced] + list(operator)
    return QuirkTable(tuple(entries))


def _parse_table(text: str, file: str) -> tuple[QuirkEntry, ...]:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise QuirkTableError(file, None, f"not valid TOML: {exc}") from exc
    unknown = sorted(set(data) - {"device"})
    if unknown:
        raise QuirkTableError(
            file, None, f"unknown top-level key(s) {unknown}: expected [[device]]"
        )
    devices = data.get("device", [])
    if not isinstance(devices, list):
        raise QuirkTableError(file, None, "'device' must be an array of tables ([[device]])")
    entries: list[QuirkEntry] = []
    seen_ids: set[str] = set()
    seen_models: dict[tuple[str, str], str] = {}
    for number, raw in enumerate(devices, start=1):
        entry = _parse_entry(raw, file, f"[[device]] #{number}")
        if entry.id in seen_ids:
            raise QuirkTableError(file, entry.id, "duplicate id")
        seen_ids.add(entry.id)
        for model in entry.models:
            key = (_key(entry.manufacturer), _key(model))
            if key in seen_models:
                raise QuirkTableError(
                    file, entry.id, f"model {model!r} is already listed by entry {seen_models[key]}"
                )
            seen_models[key] = entry.id
        entries.append(entry)
    return tuple(entries)


def _parse_entry(raw: object, file: str, position: str) -> QuirkEntry:
    if not isinstance(raw, dict):
        raise QuirkTableError(file, position, "each [[device]] must be a table")
    name = raw.get("id")
    where = name if isinstance(name, str) and name.strip() else position

    def fail(reason: str) -> QuirkTableError:
        return QuirkTableError(file, where, reason)

    unknown = sorted(set(raw) - _ALLOWED_KEYS)
    if unknown:
        raise fail(f"unknown key(s) {unknown}; allowed: {sorted(_ALLOWED_KEYS)}")
    missing = [key for key in _REQUIRED_KEYS if key not in raw]
    if missing:
        why = ""
        if "manufacturer" in missing or "models" in missing:
            why = " (without a manufacturer and models the entry matches no device)"
        raise fail(f"missing required key(s) {missing}{why}")
    for key in ("id", "manufacturer", "description", "source"):
        _require_text(raw[key], key, fail)
    if not _ID.fullmatch(raw["id"]) or raw["id"] == NO_QUIRKS.id:
        raise fail(f"id {raw['id']!r} must be letters, digits, '.', '_', '-' and not 'none'")
    models = raw["models"]
    if not isinstance(models, list) or not models:
        raise fail("'models' must be a non-empty array of strings")
    for model in models:
        _require_text(model, "models", fail)
    flags: dict[str, Any] = {}
    for key in _FLAG_FIELDS:
        if key in raw:
            if type(raw[key]) is not bool:
                raise fail(f"{key!r} must be true or false, got {raw[key]!r}")
            flags[key] = raw[key]
    clock = raw.get("clock_characteristic")
    if clock is not None:
        _require_text(clock, "clock_characteristic", fail)
        uuid16 = parse_uuid16(clock)
        clock = None if uuid16 is None else f"{uuid16:04X}"
        if clock not in SUPPORTED_CLOCK_CHARACTERISTICS:
            supported = sorted(SUPPORTED_CLOCK_CHARACTERISTICS)
            raise fail(f"clock_characteristic {raw['clock_characteristic']!r} not in {supported}")
    quirks = DeviceQuirks(
        id=raw["id"], description=raw["description"].strip(), clock_characteristic=clock, **flags
    )
    return QuirkEntry(
        quirks=quirks,
        manufacturer=raw["manufacturer"],
        models=tuple(models),
        source=raw["source"].strip(),
        file=file,
    )


def _require_text(value: object, key: str, fail: Callable[[str], QuirkTableError]) -> None:
    if not isinstance(value, str) or not value.strip():
        raise fail(f"{key!r} must be a non-empty string, got {value!r}")


# --- Blood Pressure Measurement bytes ---------------------------------------------------------

_PRESSURES_END = 1 + 3 * 2  # flags octet, then three SFLOAT pressure slots
_TIME_STAMP_SIZE = 7


def decode_blood_pressure(payload: bytes, quirks: DeviceQuirks) -> BloodPressureMeasurement:
    """0x2A35 from a device with ``quirks``: NO_QUIRKS is exactly ``from_bytes(payload)``.

    With the byte-order quirk the pulse-rate SFLOAT and the status uint16 are swapped back to
    little-endian; with the user-id quirk the byte after pulse rate is the user id whether or not
    flag bit 3 says so, and the flag is set before decoding. Errors are DecodeErrors that carry
    the payload as received, so the caller logs and quarantines the original hex.
    """
    data = bytes(payload)
    if not quirks.bp_bytes:
        return BloodPressureMeasurement.from_bytes(data)
    fixed = _sig_layout(data, quirks)
    try:
        return BloodPressureMeasurement.from_bytes(fixed)
    except DecodeError as exc:
        raise DecodeError(
            BloodPressureMeasurement.CHARACTERISTIC, data, f"{exc.reason} (quirk {quirks.id!r})"
        ) from exc


def _sig_layout(data: bytes, quirks: DeviceQuirks) -> bytes:
    """The vendor bytes rewritten in place into the SIG layout (same length)."""
    out = bytearray(data)

    def need(end: int, field: str) -> None:
        if len(data) < end:
            raise DecodeError(
                BloodPressureMeasurement.CHARACTERISTIC,
                data,
                f"truncated: quirk {quirks.id!r} needs {end} byte(s) to reach the end of "
                f"{field}, payload has {len(data)}",
            )

    need(_PRESSURES_END, "the pressure slots")
    flags = data[0]
    offset = _PRESSURES_END
    if flags & BloodPressureFlags.TIME_STAMP:
        offset += _TIME_STAMP_SIZE
    if flags & BloodPressureFlags.PULSE_RATE:
        need(offset + 2, "Pulse Rate")
        if quirks.bp_big_endian_pulse_and_status:
            out[offset : offset + 2] = data[offset : offset + 2][::-1]
        offset += 2
    if quirks.bp_user_id_without_flag or flags & BloodPressureFlags.USER_ID:
        need(offset + 1, "User ID (always sent by this model)")
        out[0] |= int(BloodPressureFlags.USER_ID)
        offset += 1
    if flags & BloodPressureFlags.MEASUREMENT_STATUS:
        need(offset + 2, "Measurement Status")
        if quirks.bp_big_endian_pulse_and_status:
            out[offset : offset + 2] = data[offset : offset + 2][::-1]
    return bytes(out)
