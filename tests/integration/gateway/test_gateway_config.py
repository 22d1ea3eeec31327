"""Gateway settings from a TOML file under the environment and the command line, secrets from a
file, and JSON logs. (Pure: no service needed; the gateway's settings live here beside the other
operations tests.)"""

from __future__ import annotations

import json
import logging

import pytest
import typer
from pydantic import ValidationError
from typer.testing import CliRunner

from gateway.logging_setup import JsonFormatter
from gateway.settings import GatewaySettings, SettingsFileError
from homewatch import cli_gateway

CONFIG = """\
gateway_id = "gw-file"
mqtt_url = "mqtts://broker.example:8883"
outbox_max_readings = 5000
allowed_devices = ["C0:5A:00:00:00:01", "Acme/BP-1/S1"]
metrics_port = 9464
log_format = "json"
"""


def test_the_config_file_is_overridden_by_the_environment_then_the_command_line(
    tmp_path, monkeypatch
):
    path = tmp_path / "gateway.toml"
    path.write_text(CONFIG)
    monkeypatch.setenv("HOMEWATCH_GATEWAY_OUTBOX_MAX_READINGS", "7000")
    monkeypatch.setenv("HOMEWATCH_GATEWAY_METRICS_PORT", "9000")
    settings = GatewaySettings.load(path, metrics_port=9100)
    assert settings.gateway_id == "gw-file"  # file
    assert settings.allowed_devices == ["C0:5A:00:00:00:01", "Acme/BP-1/S1"]
    assert settings.outbox_max_readings == 7000  # environment over file
    assert settings.metrics_port == 9100  # command line over environment
    assert settings.batch_size == 50  # default

    monkeypatch.setenv("HOMEWATCH_GATEWAY_CONFIG_FILE", str(path))
    assert GatewaySettings.load().gateway_id == "gw-file"
    assert GatewaySettings().gateway_id == "gw-local"  # plain construction reads no file


@pytest.mark.parametrize(
    ("name", "text", "error"),
    [
        ("missing.toml", None, SettingsFileError),
        ("gateway.yaml", "gateway_id: x\n", SettingsFileError),
        ("typo.toml", 'gateway_idd = "x"\n', ValidationError),
        ("bad.toml", "outbox_max_readings = 0\n", ValidationError),
        ("both.toml", 'mqtt_password = "x"\nmqtt_password_file = "/p"\n', ValidationError),
    ],
)
def test_a_bad_config_file_is_a_clear_start_up_error(tmp_path, name, text, error):
    path = tmp_path / name
    if text is not None:
        path.write_text(text)
    with pytest.raises(error):
        GatewaySettings.load(path)
    app = typer.Typer()
    app.command()(cli_gateway.gateway_run)
    result = CliRunner().invoke(app, ["--config", str(path)])
    assert result.exit_code == 2 and "invalid gateway settings" in result.output


def test_the_password_file_and_the_default_user_name(tmp_path, monkeypatch):
    secret = tmp_path / "pw"
    secret.write_text("s3cret\n")
    settings = GatewaySettings(gateway_id="gw-9", mqtt_password_file=secret)
    assert (settings.mqtt_security().username, settings.mqtt_security().password) == (
        "gw-9",
        "s3cret",
    )
    with pytest.raises(SettingsFileError):
        GatewaySettings(mqtt_password_file=tmp_path / "absent").mqtt_security()
    monkeypatch.setenv("HOMEWATCH_GATEWAY_MQTT_PASSWORD", "from-env")
    env = GatewaySettings(mqtt_username="other")
    assert env.mqtt_security().password == "from-env" and "from-env" not in repr(env)


def test_json_log_lines_keep_extra_fields_and_tracebacks():
    logger = logging.getLogger("test.json")
    record = logger.makeRecord(
        "test.json", logging.ERROR, __file__, 1, "outbox %s", ("full",), None,
        extra={"device_key": "Acme/BP-1/S1"},
    )  # fmt: skip
    entry = json.loads(JsonFormatter().format(record))
    assert entry["msg"] == "outbox full" and entry["level"] == "ERROR"
    assert entry["device_key"] == "Acme/BP-1/S1" and entry["ts"].endswith("+00:00")
    try:
        raise ValueError("boom")
    except ValueError:
        import sys

        record = logger.makeRecord("t", logging.ERROR, __file__, 1, "x", (), sys.exc_info())
    assert "ValueError: boom" in json.loads(JsonFormatter().format(record))["exc"]
