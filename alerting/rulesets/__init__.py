"""Rule-set files, one per dispensary programme, loaded as data."""

from __future__ import annotations

import functools
import tomllib
from dataclasses import dataclass
from importlib import resources
from typing import Any


class RuleSetError(Exception):
    """A rule-set file is missing or malformed."""


@dataclass(frozen=True, slots=True)
class RuleSet:
    programme: str
    version: int
    rules: dict[str, dict[str, Any]]

    def parameters(self, rule_id: str) -> dict[str, Any]:
        try:
            return self.rules[rule_id]
        except KeyError:
            raise RuleSetError(f"rule set {self.programme!r} has no rule {rule_id!r}") from None


@functools.cache
def load_ruleset(programme: str) -> RuleSet:
    """The packaged rule set of a dispensary programme, e.g. ``"hypertension"``."""
    try:
        text = resources.files(__package__).joinpath(f"{programme}.toml").read_text("utf-8")
        data = tomllib.loads(text)
        return RuleSet(
            programme=data["programme"], version=int(data["version"]), rules=data["rules"]
        )
    except (FileNotFoundError, tomllib.TOMLDecodeError, KeyError, TypeError, ValueError) as exc:
        raise RuleSetError(f"cannot load rule set {programme!r}: {exc}") from exc
