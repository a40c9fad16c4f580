"""The sample jobs of ``jobs/`` as a user runs them: ``bulkrunner run jobs/<job>.toml
--simulate``, on the command line in this process, its run (and the embedded simulator's rate
limit, faults and Retry-After waits) on a fake clock: minutes of the run's time, not the test's.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from tests import ROOT
from tests.fakes import FakeClock, commands_on
from tests.hostile import RunCli


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    fake = FakeClock()
    commands_on(fake, monkeypatch)
    return fake


def test_the_readme_demo_command_runs_end_to_end(
    tmp_path: Path, cli_here: RunCli, clock: FakeClock
) -> None:
    """`bulkrunner run jobs/campaign_settings.toml --simulate`, as a user runs it."""
    done = cli_here(
        tmp_path, "", "run", str(ROOT / "jobs" / "campaign_settings.toml"), "--simulate"
    )
    assert done.returncode == 0, done.stderr
    (report,) = (tmp_path / "reports").glob("campaign_settings-*/report.csv")
    frame = pd.read_csv(report)
    assert len(frame) == len(pd.read_csv(ROOT / "sample_data" / "campaign_settings.csv"))
    assert set(frame["status"]) == {"succeeded"}
    assert "(attempt 2 of 6) after HTTP 429" in done.stderr
    assert "(attempt 2 of 6) after HTTP 503" in done.stderr
    assert f"report: reports/{report.parent.name}/report.csv" in done.stdout
    assert clock.sleeps  # its windows and retries waited on the fake clock


@pytest.mark.parametrize("job", ["schedule", "status", "email_accounts", "leads", "lead_status"])
def test_the_sample_job_of_each_operation_runs_on_the_simulator(
    tmp_path: Path, job: str, cli_here: RunCli, clock: FakeClock
) -> None:
    """`bulkrunner run jobs/campaign_<operation>.toml --simulate`: every row accounted for,
    none failed (a sample row already as wanted is ``unchanged``)."""
    job_file = str(ROOT / "jobs" / f"campaign_{job}.toml")
    done = cli_here(tmp_path, "", "run", job_file, "--simulate")
    assert done.returncode == 0, done.stderr
    (report,) = (tmp_path / "reports").glob(f"campaign_{job}-*/report.csv")
    frame = pd.read_csv(report)
    assert len(frame) == len(pd.read_csv(ROOT / "sample_data" / f"campaign_{job}.csv"))
    assert set(frame["status"]) <= {"succeeded", "unchanged"}
    assert "succeeded" in set(frame["status"])
    assert "Traceback" not in done.stderr
