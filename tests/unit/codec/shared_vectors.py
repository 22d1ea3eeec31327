"""The shared BLE test vectors (../shared/ble/vectors.json), loaded once for the codec tests."""

from __future__ import annotations

import json
import os
from collections.abc import Collection
from pathlib import Path
from typing import Any

import pytest


def vectors_path() -> Path:
    shared = os.environ.get("HOMEWATCH_SHARED_DIR")
    base = Path(shared) if shared else Path(__file__).resolve().parents[3] / ".." / "shared"
    return base / "ble" / "vectors.json"


def load_vectors(characteristics: Collection[str]) -> tuple[list[dict[str, Any]], str | None]:
    """The vectors of ``characteristics``, or no vectors and why (the tests then fail on it)."""
    path = vectors_path()
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        return [], f"cannot load BLE test vectors from {path} ({exc}); set HOMEWATCH_SHARED_DIR"
    return [v for v in document["vectors"] if v["characteristic"] in characteristics], None


def split(vectors: list[dict[str, Any]]) -> tuple[list[Any], list[Any]]:
    """(vectors that decode, vectors that must raise), as pytest params named by vector id."""
    good = [pytest.param(v, id=v["id"]) for v in vectors if "error" not in v["expected"]]
    bad = [pytest.param(v, id=v["id"]) for v in vectors if "error" in v["expected"]]
    return good, bad


def assert_subset(actual: Any, expected: Any, path: str = "") -> None:
    """Every key of ``expected`` is in ``actual`` with an equal value (extra keys are allowed)."""
    if isinstance(expected, dict):
        assert isinstance(actual, dict), path
        for key, value in expected.items():
            assert key in actual, f"{path}.{key} missing"
            assert_subset(actual[key], value, f"{path}.{key}")
    else:
        assert actual == expected, path
        assert type(actual) is type(expected) or {type(actual), type(expected)} == {int, float}
