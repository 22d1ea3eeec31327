"""The simulators' exceptions: one root, so a caller can tell a bad scenario from a bug."""

from __future__ import annotations


class SimulationError(Exception):
    """Root of the errors the simulators raise on purpose."""


class ScenarioError(SimulationError, ValueError):
    """A scenario file that cannot be used, with where and why.

    ``source`` names the file (or "<string>"), ``where`` the place inside it, e.g.
    ``patients[2].events[0].kind``; ``str()`` reads as one line for the command line.
    """

    def __init__(self, source: str, where: str | None, reason: str) -> None:
        super().__init__(reason)
        self.source = source
        self.where = where
        self.reason = reason

    def __str__(self) -> str:
        place = f"{self.source}: {self.where}" if self.where else self.source
        return f"{place}: {self.reason}"
