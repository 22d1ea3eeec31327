"""Rule-set files, one per dispensary programme, loaded as data.

A file names its programme, its version, the ICD-10 categories that put a patient in the
programme, the default measurement schedule, and its rules with their parameters (checked
against ``schema.RULE_PARAMETERS``). Each rule carries its own ``version``; an alert records the
rule's version, falling back to the file's when the rule has none.
"""

from __future__ import annotations

import functools
import tomllib
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from alerting.errors import RuleSetError
from alerting.rulesets.schema import check_rule

__all__ = ["PACKAGED_PROGRAMMES", "RuleSet", "RuleSetError", "load_ruleset", "load_ruleset_file"]

#: The packaged programmes, in priority order: when two programmes of one patient define the
#: same rule, the first one's parameters win (diabetes programmes are the stricter on shared
#: rules such as device health).
PACKAGED_PROGRAMMES = ("diabetes_type_1", "diabetes_type_2", "hypertension")


@dataclass(frozen=True, slots=True)
class RuleSet:
    programme: str
    version: int
    rules: dict[str, dict[str, Any]]
    #: ICD-10 categories ("I10") that put a patient in this programme.
    conditions: tuple[str, ...] = ()
    #: Default prescribed readings per week (``blood_pressure_per_week``, ``glucose_per_week``,
    #: as in ``alerting.profiles.MeasurementSchedule``).
    schedule: dict[str, float] = field(default_factory=dict)
    #: Where it was loaded from ("packaged" or a file path), reported by the backtest.
    source: str = "packaged"

    def parameters(self, rule_id: str) -> dict[str, Any]:
        try:
            return self.rules[rule_id]
        except KeyError:
            raise RuleSetError(f"rule set {self.programme!r} has no rule {rule_id!r}") from None

    def rule_version(self, rule_id: str) -> int:
        """The rule's own version, or the file's when the rule has none."""
        return int(self.parameters(rule_id).get("version", self.version))


@functools.cache
def load_ruleset(programme: str) -> RuleSet:
    """The packaged rule set of a dispensary programme, e.g. ``"hypertension"``."""
    try:
        text = resources.files(__package__).joinpath(f"{programme}.toml").read_text("utf-8")
    except (FileNotFoundError, OSError) as exc:
        raise RuleSetError(f"cannot load rule set {programme!r}: {exc}") from exc
    return parse_ruleset(text, source="packaged", name=programme)


def load_ruleset_file(path: str | Path) -> RuleSet:
    """A rule-set file of one's own (to tune rules in a backtest before switching them on)."""
    try:
        text = Path(path).read_text("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise RuleSetError(f"cannot read rule set {str(path)!r}: {exc}") from exc
    return parse_ruleset(text, source=str(path), name=str(path))


def parse_ruleset(text: str, *, source: str, name: str) -> RuleSet:
    try:
        data = tomllib.loads(text)
        rules = data["rules"]
        if not isinstance(rules, dict) or not all(isinstance(r, dict) for r in rules.values()):
            raise TypeError("[rules] must hold one table per rule")
        ruleset = RuleSet(
            programme=str(data["programme"]),
            version=int(data["version"]),
            rules=rules,
            conditions=tuple(str(c).upper() for c in data.get("conditions", ())),
            schedule={str(k): float(v) for k, v in data.get("schedule", {}).items()},
            source=source,
        )
    except (tomllib.TOMLDecodeError, KeyError, TypeError, ValueError, AttributeError) as exc:
        raise RuleSetError(f"cannot load rule set {name!r}: {exc!r}") from exc
    for rule_id, parameters in ruleset.rules.items():
        problem = check_rule(rule_id, parameters)
        if problem:
            raise RuleSetError(f"rule set {name!r}: {problem}")
    unknown = set(ruleset.schedule) - {"blood_pressure_per_week", "glucose_per_week"}
    if unknown:
        raise RuleSetError(f"rule set {name!r}: unknown schedule metric(s) {sorted(unknown)}")
    return ruleset
