"""One run of a job at a time: a second run of the same input, while the first runs in a
process of its own, is refused before it reads or sends anything."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from bulkrunner.cli.app import main
from bulkrunner.config.paths import journal_path
from bulkrunner.simulator import SimulatorConfig, SimulatorThread
from tests.forked import Forked
from tests.realtime import wait_for_lines
from tests.unit.commands.test_resumption import KEY, plan


@pytest.fixture(autouse=True)
def environment(monkeypatch: pytest.MonkeyPatch, no_ambient_settings: None) -> None:
    monkeypatch.setenv("SMARTLEAD_API_KEY", KEY)


def test_an_overlapping_run_of_the_same_input_is_refused_with_exit_4(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = plan(tmp_path, range(1, 41))
    first, second = tmp_path / "first.csv", tmp_path / "second.csv"
    listed = set(range(1, 41))  # one list call reads them all: the first run makes one GET
    with SimulatorThread(SimulatorConfig(api_key=KEY, latency=0.5, campaigns=listed)) as sim:
        process = Forked(
            [
                *(sys.executable, "-m", "bulkrunner", "run", "--input", str(source)),
                *("--report", str(first), "--base-url", sim.base_url, "--concurrency", "1"),
            ],
            env={**os.environ, "SMARTLEAD_API_KEY": KEY},
            text=True,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        try:
            wait_for_lines(journal_path(first), 1)  # the first run is sending
            argv = ["run", "--input", str(source), "--report", str(second)]
            assert main([*argv, "--base-url", sim.base_url]) == 4
            err = capsys.readouterr().err
            assert f"{source}: another bulkrunner run (pid {process.pid}, started" in err
            assert "nothing was sent" in err
            assert not second.exists()
            assert not journal_path(second).exists()
            reads = [r for r in sim.state.requests if r.method == "GET"]
            assert len(reads) == 1  # the first run's: the second did not even read
        finally:
            process.send_signal(signal.SIGINT)
            process.communicate(timeout=60)
    assert process.returncode == 3
