"""A job run from cron, in a process of its own, holds its locks: the same job from a shell, and a
run with the same key on the same server however its URL is written, are refused
(``tests/unit/records/test_locks.py`` tests the locks in the test's process)."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bulkrunner.simulator import SimulatorConfig, SimulatorThread
from tests.fakes import one_line_error, run
from tests.forked import Forked
from tests.unit.records.test_locks import KEY, source_and_server


def test_a_job_run_from_two_environments_or_with_its_server_spelled_otherwise_runs_once(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A run from cron (its own TMPDIR) holds the job's locks: the same job from a shell, and
    (the cron run being one without the state store, which holds its account alone) any run
    with the same key on the same server however its URL is written, are refused."""
    monkeypatch.setenv("SMARTLEAD_API_KEY", KEY)
    monkeypatch.delenv("SMARTLEAD_BASE_URL", raising=False)
    cron_tmp = tmp_path / "cron-tmp"
    cron_tmp.mkdir()
    nightly = source_and_server(tmp_path, 40)
    with SimulatorThread(SimulatorConfig(api_key=KEY, latency=0.2)) as sim:
        port = sim.base_url.split(":")[2].split("/")[0]
        first = Forked(
            [
                *(sys.executable, "-m", "bulkrunner", "run", str(nightly)),
                *("--base-url", sim.base_url, "--concurrency", "1"),
                *("--report", str(tmp_path / "cron.csv"), "--no-state"),
            ],
            env={**os.environ, "TMPDIR": str(cron_tmp)},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            while not sim.state.requests:  # the first run holds its locks once it sends
                assert first.poll() is None, first.communicate()[1]
                time.sleep(0.02)
            again = run(
                capsys, "run", str(nightly), "--base-url", sim.base_url,
                "--report", str(tmp_path / "shell.csv"),
            )  # fmt: skip
            spelled = {}
            for n, url in enumerate(
                [
                    f"http://localhost:{port}/api/v1",
                    f"HTTP://LocalHost:{port}/api/v1/",
                    f"http://[::1]:{port}/api/v1",
                    f"http://127.0.0.1:{port}//api/v1//",
                ]
            ):
                other = source_and_server(tmp_path, 1, first_id=9000 + n)
                spelled[url] = run(
                    capsys, "run", str(other), "--base-url", url,
                    "--report", str(tmp_path / f"other-{n}.csv"),
                )  # fmt: skip
        finally:
            first.terminate()  # (its end is not what this test is about)
            first.communicate(timeout=60)
        sent = {request.campaign_id for request in sim.state.requests} - {None}
    code, _, err = again
    assert code == 4, err
    assert f"{nightly}: another bulkrunner run (pid {first.pid}" in one_line_error(err)
    for url, (code, _, err) in spelled.items():
        assert code == 4, (url, err)
        assert "the key SMARTLEAD_API_KEY: another bulkrunner run" in one_line_error(err), url
    assert sent <= {100 + n for n in range(40)}  # nothing of the refused runs
    folder = Path(os.environ["BULKRUNNER_LOCK_DIR"])
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
