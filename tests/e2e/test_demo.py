"""``homewatch demo`` as a newcomer runs it: the real command, embedded broker and database."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

pytestmark = pytest.mark.e2e


@pytest.mark.parametrize("broker", ["mosquitto", "amqtt"])
def test_demo_stores_readings_and_raises_the_crisis_alert(broker):
    run = subprocess.run(
        [sys.executable, "-m", "homewatch", "demo", "--duration", "20", "--json",
         "--api-port", "0", "--embedded-broker", broker],
        capture_output=True, text=True, timeout=180,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr[-3000:]
    summary = json.loads(run.stdout)
    # 20 s at 3600x covers Thursday 07:00 to Friday 03:00: morning and evening duplicates of
    # three patients, plus the crisis reading and its re-measurement.
    assert summary["readings_stored"] == 14
    assert summary["quarantined"] == 0
    assert summary["gateway"]["decode_errors"] == 0
    assert summary["alerts_raised"] == 1
    [alert] = summary["alerts"]
    assert (alert["patient_id"], alert["rule_id"]) == ("p-0003", "bp.hypertensive_crisis")
    assert (alert["severity"], alert["occurrences"], len(alert["reading_ids"])) == ("urgent", 2, 2)
    assert "ALERT [high] p-0003" in run.stderr  # told as it happened
    assert "alert updated [urgent] p-0003" in run.stderr
