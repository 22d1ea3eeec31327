"""The pure parts behind the API (no service needed): adherence, alert transitions, FHIR date
search values, ids, password hashes. They would sit in tests/unit; they live here with the
API's other tests until the lead moves them."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from ingest_server.api.routes.fhir import date_window
from ingest_server.auth.passwords import hash_password, verify_password
from ingest_server.fhir.export import device_id, fhir_id
from ingest_server.profile import programmes
from ingest_server.profile.alerts import next_status
from ingest_server.profile.errors import InvalidTransition, InvalidValue
from ingest_server.profile.models import AlertAction, AlertStatus


@pytest.mark.parametrize(
    ("schedule", "counts", "expected"),
    [
        ({"blood_pressure_per_week": 14}, {"blood_pressure_per_week": 7}, 0.5),
        ({"blood_pressure_per_week": 14}, {"blood_pressure_per_week": 30}, 1.0),
        # Extra glucose readings do not make up for missing blood pressure.
        ({"blood_pressure_per_week": 14, "glucose_per_week": 7},
         {"blood_pressure_per_week": 0, "glucose_per_week": 21}, 7 / 21),
        ({"glucose_per_week": 0}, {"glucose_per_week": 3}, None),
        ({}, {}, None),
    ],
)  # fmt: skip
def test_adherence(
    schedule: dict[str, float], counts: dict[str, int], expected: float | None
) -> None:
    result = programmes.adherence(schedule, counts)
    assert result == (None if expected is None else pytest.approx(expected, abs=1e-3))


def test_programmes_come_from_the_rule_sets() -> None:
    assert [programmes.programme_for(c) for c in ("I10", "i11.9", "E11.65", "E10", "J45")] == [
        "hypertension",
        "hypertension",
        "diabetes_type_2",
        "diabetes_type_1",
        None,
    ]
    assert programmes.check_target("home_systolic_mmhg", 130) == "mmHg"
    assert programmes.check_target("home_systolic_mmhg", None) == "mmHg"
    with pytest.raises(InvalidValue):
        programmes.check_target("home_systolic_mmhg", 10)
    with pytest.raises(InvalidValue):
        programmes.check_target("mood", 1)


@pytest.mark.parametrize(
    ("status", "action", "after"),
    [
        ("open", AlertAction.ACKNOWLEDGE, AlertStatus.ACKNOWLEDGED),
        ("open", AlertAction.RESOLVE, AlertStatus.RESOLVED),
        ("acknowledged", AlertAction.RESOLVE, AlertStatus.RESOLVED),
        ("open", AlertAction.SNOOZE, AlertStatus.OPEN),
        ("acknowledged", AlertAction.SNOOZE, AlertStatus.ACKNOWLEDGED),
        ("acknowledged", AlertAction.ACKNOWLEDGE, None),
        ("resolved", AlertAction.ACKNOWLEDGE, None),
        ("resolved", AlertAction.RESOLVE, None),
        ("resolved", AlertAction.SNOOZE, None),
    ],
)
def test_alert_transitions(status: str, action: AlertAction, after: AlertStatus | None) -> None:
    if after is None:
        with pytest.raises(InvalidTransition) as refused:
            next_status(7, status, action)
        assert (refused.value.alert_id, refused.value.status) == (7, status)
    else:
        assert next_status(7, status, action) is after


def test_fhir_date_search_values() -> None:
    assert date_window(["ge2026-01-01", "lt2026-01-02T06:00:00+01:00"]) == (
        datetime(2026, 1, 1, tzinfo=UTC),
        datetime(2026, 1, 2, 5, tzinfo=UTC),
    )
    assert date_window([]) == (None, None)
    for bad in (["2026-01-01"], ["ge2026-13-01"], ["lt2026-01-01T00:00:00"], ["gtnow"]):
        with pytest.raises(InvalidValue):
            date_window(bad)


def test_fhir_ids_are_valid_and_stable() -> None:
    assert fhir_id("patient", "p-0003") == "p-0003"
    derived = fhir_id("patient", "p_0003")
    assert derived == fhir_id("patient", "p_0003") != "p_0003" and len(derived) == 36
    assert device_id("Acme/BP-1/SN") == device_id("Acme/BP-1/SN") != device_id("Acme/BP-1/SN2")


def test_password_hashes() -> None:
    stored = hash_password("correct horse battery")
    assert stored.startswith("scrypt$") and "correct" not in stored
    assert verify_password("correct horse battery", stored)
    assert not verify_password("correct horse batterY", stored)
    assert stored != hash_password("correct horse battery")  # salted
    for malformed in ("", "scrypt$1$2", "bcrypt$x$y$z$a$b", "scrypt$x$8$1$AA==$AA=="):
        assert not verify_password("correct horse battery", malformed)
    with pytest.raises(ValueError):
        hash_password("short")
