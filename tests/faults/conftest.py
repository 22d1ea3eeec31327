"""Fault tests: real processes (simulators, gateway, Mosquitto) with faults injected.
Select them with ``-m faults``; each test stays under about a minute."""

import pytest


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "faults: kills and restarts real processes (broker, gateway, network)"
    )
