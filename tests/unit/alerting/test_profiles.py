"""Programmes from conditions, per-patient targets over defaults, rule-set files as data."""

from datetime import UTC, datetime

import pytest

from alerting import (
    MeasurementSchedule,
    PatientProfile,
    ProfileError,
    RuleCatalogue,
    RuleSetError,
    Target,
    load_ruleset,
    load_ruleset_file,
)
from alerting.rulesets import PACKAGED_PROGRAMMES
from alerting.rulesets.schema import RULE_PARAMETERS

SET_AT = datetime(2026, 10, 1, 9, tzinfo=UTC)
CATALOGUE = RuleCatalogue.packaged()


@pytest.mark.parametrize(
    ("conditions", "programmes"),
    [
        (("I10",), ("hypertension",)),
        (("I11.9",), ("hypertension",)),
        (("I15.0",), ("hypertension",)),
        (("I16",), ()),  # outside I10-I15
        (("E11.65",), ("diabetes_type_2",)),
        (("E10",), ("diabetes_type_1",)),
        (("i10", " E11 "), ("diabetes_type_2", "hypertension")),  # normalised, priority order
        (("J44",), ()),
    ],
)
def test_programmes_come_from_icd10_categories(conditions, programmes):
    assert CATALOGUE.programmes_for(PatientProfile("p", conditions)) == programmes


def test_every_packaged_rule_set_loads_and_names_only_known_rules():
    for name in PACKAGED_PROGRAMMES:
        ruleset = load_ruleset(name)
        assert ruleset.programme == name and ruleset.conditions
        assert set(ruleset.rules) <= set(RULE_PARAMETERS)
        assert all(ruleset.rule_version(r) >= 1 for r in ruleset.rules)


def test_a_patient_in_two_programmes_gets_the_rules_of_both():
    rules = CATALOGUE.resolve(PatientProfile("p", ("I10", "E11")))
    assert {"bp.home_mean_above_target", "glucose.hypo_level_2", "glucose.variability"} <= set(
        rules.rules
    )
    # A shared rule comes from the programme first in priority order.
    assert rules.rules["device.silent"].programme == "diabetes_type_2"
    assert rules.schedule == {"glucose_per_week": 7.0, "blood_pressure_per_week": 14.0}


def test_a_clinicians_target_overrides_the_default_and_says_whose_it_is():
    target = Target(130, "Dr Ivanova", SET_AT, note="diabetes")
    profile = PatientProfile("p", ("I10",), targets={"home_systolic_mmhg": target})
    rule = CATALOGUE.resolve(profile).rules["bp.home_mean_above_target"]
    assert rule["systolic_target"] == 130 and rule["diastolic_target"] == 85
    assert rule.source_of("systolic_target") == (
        "the patient's target set by Dr Ivanova on 2026-10-01"
    )
    assert rule.source_of("diastolic_target") == "the hypertension programme default"
    default = CATALOGUE.resolve(PatientProfile("q", ("I10",))).rules["bp.home_mean_above_target"]
    assert default["systolic_target"] == 135


def test_a_target_for_a_rule_the_patient_does_not_have_is_reported_not_applied():
    target = Target(2, "Dr Ivanova", SET_AT)
    rules = CATALOGUE.resolve(
        PatientProfile("p", ("I10",), targets={"hypo_events_per_week_max": target})
    )
    assert rules.unused_targets == ("hypo_events_per_week_max",)


def test_the_patients_schedule_overrides_the_programmes():
    profile = PatientProfile("p", ("I10",), schedule=MeasurementSchedule(blood_pressure_per_week=7))
    assert CATALOGUE.resolve(profile).schedule["blood_pressure_per_week"] == 7


@pytest.mark.parametrize(
    ("kwargs", "field", "message"),
    [
        ({"conditions": ("hypertension",)}, "conditions", "not an ICD-10 code"),
        ({"conditions": "I10"}, "conditions", "list of ICD-10 codes"),
        ({"timezone": "Mars/Olympus"}, "timezone", "unknown time zone"),
        ({"targets": {"home_sys": Target(130, "Dr", SET_AT)}}, "home_sys", "unknown target"),
        (
            {"targets": {"home_systolic_mmhg": Target(13.0, "Dr", SET_AT)}},
            "home_systolic_mmhg",
            "outside 100-180",
        ),
        (
            {"targets": {"home_systolic_mmhg": Target(130, "", SET_AT)}},
            "home_systolic_mmhg",
            "who set it",
        ),
        ({"enrolled_at": datetime(2026, 1, 1)}, "enrolled_at", "time-zone aware"),
    ],
)
def test_a_malformed_profile_is_a_clear_error(kwargs, field, message):
    args = {"patient_id": "p", "conditions": ("I10",), **kwargs}
    with pytest.raises(ProfileError, match=message) as info:
        PatientProfile(**args)
    assert info.value.field == field


def test_a_profile_from_a_document():
    profile = PatientProfile.from_mapping(
        {
            "patient_id": "p-7",
            "conditions": ["I10", "E11.9"],
            "timezone": "Asia/Yekaterinburg",
            "schedule": {"glucose_per_week": 14},
            "targets": {
                "home_diastolic_mmhg": {
                    "value": 80,
                    "set_by": "Dr A",
                    "set_at": "2026-09-01T10:00+05:00",
                }
            },
        }
    )
    assert profile.targets["home_diastolic_mmhg"].set_by == "Dr A"
    assert profile.schedule.glucose_per_week == 14
    with pytest.raises(ProfileError, match="malformed profile"):
        PatientProfile.from_mapping({"conditions": ["I10"]})  # no patient_id
    with pytest.raises(ProfileError, match="UTC offset"):
        PatientProfile.from_mapping(
            {"patient_id": "p", "conditions": [], "enrolled_at": "2026-01-01T00:00"}
        )


def rules_file(tmp_path, body: str):
    path = tmp_path / "rules.toml"
    path.write_text('programme = "hypertension"\nversion = 9\nconditions = ["I10"]\n' + body)
    return path


def test_a_tuned_rule_set_replaces_the_packaged_programme(tmp_path):
    path = rules_file(
        tmp_path,
        '[rules."bp.hypertensive_crisis"]\nversion = 2\nsystolic_above = 170\n'
        "diastolic_above = 110\nconfirm_min_gap_minutes = 3\nconfirm_window_minutes = 30\n"
        "clear_below_systolic = 160\nclear_below_diastolic = 100\n",
    )
    tuned = CATALOGUE.with_rulesets(load_ruleset_file(path))
    rules = tuned.resolve(PatientProfile("p", ("I10",))).rules
    assert set(rules) == {"bp.hypertensive_crisis"}  # a rule not in the file is not evaluated
    assert rules["bp.hypertensive_crisis"].version == 2
    assert rules["bp.hypertensive_crisis"]["systolic_above"] == 170
    assert [rs.source for rs in tuned.rulesets if rs.programme == "hypertension"] == [str(path)]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ('[rules."bp.nonsense"]\nx = 1\n', "unknown rule 'bp.nonsense'"),
        ('[rules."device.silent"]\n', "lacks silent_days"),
        ('[rules."device.silent"]\nsilent_days = 3\nsilnt = 2\n', "unknown parameter 'silnt'"),
        ('[rules."device.silent"]\nsilent_days = "3"\n', "must be a number"),
        ('[rules."device.silent"]\nsilent_days = 365\n', "silent_days = 365 outside 1-60"),
        ("[rules\n", "cannot load"),
        ("[schedule]\nweight_per_week = 1\n[rules]\n", "unknown schedule"),
    ],
)
def test_a_malformed_rule_set_file_is_a_clear_error(tmp_path, body, message):
    with pytest.raises(RuleSetError, match=message):
        load_ruleset_file(rules_file(tmp_path, body))


def test_missing_files_are_clear_errors(tmp_path):
    with pytest.raises(RuleSetError, match="cannot read"):
        load_ruleset_file(tmp_path / "absent.toml")
    with pytest.raises(RuleSetError, match="no-such"):
        load_ruleset("no-such")
