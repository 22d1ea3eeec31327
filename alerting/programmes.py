"""From a patient profile to the rules that apply to them, with their effective parameters.

Programmes come from the patient's ICD-10 categories (each rule-set file lists its own). When
two programmes of one patient define the same rule, the programme earlier in the catalogue's
priority order wins. Then the clinician's per-patient targets replace the matching defaults,
and the schedule from the profile replaces the programme's default schedule.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from alerting.errors import RuleSetError
from alerting.profiles import TARGETS, PatientProfile, Target
from alerting.rulesets import PACKAGED_PROGRAMMES, RuleSet, load_ruleset


@dataclass(frozen=True, slots=True)
class ResolvedRule:
    """One rule as it applies to one patient."""

    rule_id: str
    programme: str
    version: int
    params: Mapping[str, float]
    #: parameter -> (target name, the clinician's target) for parameters a target overrode.
    targets: Mapping[str, tuple[str, Target]]

    def __getitem__(self, name: str) -> float:
        return float(self.params[name])

    @property
    def auto_resolve_after(self) -> timedelta | None:
        hours = self.params.get("auto_resolve_after_hours")
        return None if hours is None else timedelta(hours=float(hours))

    def source_of(self, parameter: str) -> str:
        """Where a parameter's value comes from, in words an alert can quote."""
        if parameter in self.targets:
            _, target = self.targets[parameter]
            return f"the patient's target set by {target.set_by} on {target.set_at:%Y-%m-%d}"
        return f"the {self.programme} programme default"


@dataclass(frozen=True, slots=True)
class PatientRules:
    programmes: tuple[str, ...]
    rules: Mapping[str, ResolvedRule]
    #: Prescribed readings per week: ``blood_pressure_per_week``, ``glucose_per_week``.
    schedule: Mapping[str, float]
    #: Targets the profile sets for rules none of the patient's programmes has.
    unused_targets: tuple[str, ...]


class RuleCatalogue:
    """The rule sets in force, in priority order. Immutable; patients' rules are cached."""

    def __init__(self, rulesets: Iterable[RuleSet]) -> None:
        self._rulesets: dict[str, RuleSet] = {}
        for ruleset in rulesets:
            if ruleset.programme in self._rulesets:
                raise RuleSetError(f"programme {ruleset.programme!r} given twice")
            self._rulesets[ruleset.programme] = ruleset
        self._cache: dict[tuple[Any, ...], PatientRules] = {}

    @classmethod
    def packaged(cls) -> RuleCatalogue:
        return _packaged()

    def with_rulesets(self, *rulesets: RuleSet) -> RuleCatalogue:
        """This catalogue with ``rulesets`` replacing the programmes of the same name (a new
        programme goes last in priority)."""
        replaced = dict(self._rulesets)
        for ruleset in rulesets:
            replaced[ruleset.programme] = ruleset
        return RuleCatalogue(replaced.values())

    @property
    def rulesets(self) -> tuple[RuleSet, ...]:
        return tuple(self._rulesets.values())

    def programmes_for(self, profile: PatientProfile) -> tuple[str, ...]:
        categories = profile.condition_categories
        return tuple(
            name for name, rs in self._rulesets.items() if categories.intersection(rs.conditions)
        )

    def resolve(self, profile: PatientProfile) -> PatientRules:
        key = profile.key()
        cached = self._cache.get(key)
        if cached is None:
            cached = self._cache[key] = self._resolve(profile)
        return cached

    def _resolve(self, profile: PatientProfile) -> PatientRules:
        programmes = self.programmes_for(profile)
        chosen: dict[str, tuple[str, RuleSet]] = {}
        schedule: dict[str, float] = {}
        for name in programmes:
            ruleset = self._rulesets[name]
            for rule_id in ruleset.rules:
                chosen.setdefault(rule_id, (name, ruleset))
            for metric, per_week in ruleset.schedule.items():
                schedule.setdefault(metric, per_week)
        overrides: dict[str, dict[str, tuple[str, Target]]] = {}
        unused = []
        for target_name, target in profile.targets.items():
            spec = TARGETS[target_name]
            if spec.rule_id in chosen:
                overrides.setdefault(spec.rule_id, {})[spec.parameter] = (target_name, target)
            else:
                unused.append(target_name)
        rules = {}
        for rule_id, (name, ruleset) in chosen.items():
            params = dict(ruleset.rules[rule_id])
            params.pop("version", None)
            for parameter, (_, target) in overrides.get(rule_id, {}).items():
                params[parameter] = target.value
            rules[rule_id] = ResolvedRule(
                rule_id=rule_id,
                programme=name,
                version=ruleset.rule_version(rule_id),
                params=params,
                targets=overrides.get(rule_id, {}),
            )
        for metric in ("blood_pressure_per_week", "glucose_per_week"):
            own = getattr(profile.schedule, metric)
            if own is not None:
                schedule[metric] = own
        return PatientRules(programmes, rules, schedule, tuple(sorted(unused)))


@functools.cache
def _packaged() -> RuleCatalogue:
    return RuleCatalogue(load_ruleset(name) for name in PACKAGED_PROGRAMMES)
