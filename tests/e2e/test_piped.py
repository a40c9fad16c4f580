"""``bulkrunner export --output - | bulkrunner run --input -``: two processes joined by a real
pipe (the other tests of piped input run in the test's process: ``tests/unit/input/test_piped.py``).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from bulkrunner.simulator import SimulatorConfig, SimulatorThread
from tests.unit.input.test_piped import KEY


@pytest.fixture(autouse=True)
def environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("SMARTLEAD_API_KEY", KEY)
    monkeypatch.delenv("SMARTLEAD_BASE_URL", raising=False)
    monkeypatch.chdir(tmp_path)


def test_export_piped_into_run_as_a_user_pipes_them(tmp_path: Path) -> None:
    """Two processes joined by a real pipe: the export's standard output is the run's input."""
    command = [sys.executable, "-m", "bulkrunner"]
    with SimulatorThread(SimulatorConfig(api_key=KEY, campaigns={11, 12, 13})) as sim:
        url = ["--base-url", sim.base_url]
        exporting = subprocess.run(
            [*command, "export", *url, "--output", "-"],
            capture_output=True,
            check=False,
            cwd=tmp_path,
            timeout=120,
        )
        assert exporting.returncode == 0, exporting.stderr
        assert exporting.stdout.startswith(b"campaign_id,name,")
        running = subprocess.run(
            [*command, "run", "--input", "-", *url],
            input=exporting.stdout,
            capture_output=True,
            check=False,
            cwd=tmp_path,
            timeout=120,
        )
        assert running.returncode == 0, running.stderr
        assert b"rows: 3 (3 unchanged)" in running.stdout
        assert sim.state.writes() == []
