"""The simulator in a process of its own, as an operator starts it, stopped with Ctrl-C (the
simulator's other tests run it in a thread of the test's process: ``tests/unit/simulator/``)."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys

from tests import ROOT
from tests.unit.simulator.test_operations import FLAT, KEY, NESTED, OK, _call, message


def test_the_simulate_command_takes_the_schedule_shape_and_the_cron_form() -> None:
    """``bulkrunner simulate`` as an operator starts it, reached with plain urllib."""
    command = [sys.executable, "-m", "bulkrunner", "simulate", "--port", "0"]
    command += ["--schedule-shape", "flat", "--cron-as-string"]
    environment = {**os.environ, "SMARTLEAD_API_KEY": KEY}
    with subprocess.Popen(
        command, env=environment, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    ) as process:
        assert process.stdout is not None
        announced = process.stdout.readline()
        base = re.search(r"http://127\.0\.0\.1:\d+/api/v1", announced)
        try:
            assert base is not None, announced
            nested = _call(base[0], "POST", "/campaigns/5/schedule", NESTED)
            flat = _call(base[0], "POST", "/campaigns/5/schedule", FLAT)
            campaign = _call(base[0], "GET", "/campaigns/5")
        finally:
            process.send_signal(signal.SIGINT)
            _, stderr = process.communicate(timeout=10)

    assert nested[0] == 400
    assert "Expected the flat shape" in message(nested)
    assert flat == OK
    assert json.loads(campaign[1]["scheduler_cron_value"])["tz"] == "Europe/Bratislava"
    assert process.returncode == 0
    assert KEY not in stderr


def test_serve_forever_stops_cleanly_on_ctrl_c() -> None:
    code = (
        "from bulkrunner.simulator import SimulatorConfig, serve_forever\n"
        "serve_forever(SimulatorConfig(), 0, lambda url: print(url, flush=True))\n"
    )
    with subprocess.Popen(
        [sys.executable, "-c", code],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ) as process:
        assert process.stdout is not None
        url = process.stdout.readline().strip()
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=10)

    assert url.startswith("http://127.0.0.1:")
    assert url.endswith("/api/v1")
    assert process.returncode == 0
    assert stderr == ""
