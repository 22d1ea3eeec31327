"""Settings come from HOMEWATCH_* variables and refuse what the server cannot use."""

from __future__ import annotations

import pydantic
import pytest

from homewatch import wire
from ingest_server.settings import IngestSettings


def test_defaults_and_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("HOMEWATCH_MQTT_URL", "HOMEWATCH_SHARED_GROUP", "HOMEWATCH_TOPIC_ROOT"):
        monkeypatch.delenv(name, raising=False)
    assert IngestSettings().topic_root == wire.TOPIC_ROOT
    assert IngestSettings().shared_group == "ingest"
    monkeypatch.setenv("HOMEWATCH_MQTT_URL", "mqtt://user:p%40ss@broker.example:1884")
    monkeypatch.setenv("HOMEWATCH_MQTT_PROTOCOL", "3.1.1")
    monkeypatch.setenv("HOMEWATCH_SHARED_GROUP", "")
    settings = IngestSettings()
    endpoint = settings.mqtt_endpoint()
    assert (endpoint.host, endpoint.port, endpoint.username, endpoint.password) == (
        "broker.example",
        1884,
        "user",
        "p@ss",
    )
    assert settings.mqtt_protocol == "3.1.1"
    assert settings.shared_group is None


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("mqtt_url", "http://broker:1883"),
        ("mqtt_url", "mqtt://broker:notaport"),
        ("mqtt_protocol", "4"),
        ("receive_maximum", 0),
        ("api_port", 70000),
    ],
)
def test_bad_values_are_refused(field: str, value: object) -> None:
    with pytest.raises(pydantic.ValidationError):
        IngestSettings(**{field: value})
