"""A streamed run in processes of its own: killed with -9 in its second batch and resumed, and a
real run on the command line with Arrow allocating through jemalloc
(``tests/unit/sending/test_batches.py`` tests the rest in the test's process)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from bulkrunner.config.paths import backup_path, journal_path
from bulkrunner.records.backup import read_backup
from bulkrunner.simulator.state import default_settings
from tests import forked
from tests.fakes import rate_alone
from tests.forked import Forked
from tests.realtime import wait_for_lines
from tests.unit.sending.test_batches import (
    BATCH,
    FAST,
    KEY,
    RETURNING,
    ROWS,
    plan,
    report_rows,
    simulator,
)


def test_a_streamed_run_killed_in_its_second_batch_resumes_with_its_backup_whole(
    tmp_path: Path,
) -> None:
    """kill -9 while the second batch is being sent; the resumed run sends the rest, and the
    backup still holds every campaign's value from before the first run."""
    source = plan(tmp_path / "plan.csv")
    report = tmp_path / "report.csv"
    journal = journal_path(report)
    streamed = (
        f"import sys, bulkrunner.sending.batches as b; b.BATCH_ROWS = {BATCH}; "
        "from bulkrunner.cli.app import main; sys.exit(main(sys.argv[1:]))"
    )
    env = {**os.environ, "SMARTLEAD_API_KEY": KEY}
    with simulator(latency=0.05) as sim:
        argv = [*("run", "--input", str(source), "--report", str(report))]
        argv += ["--concurrency", "4", "--base-url", sim.base_url]
        process = Forked(
            [sys.executable, "-c", streamed, *argv, *rate_alone("10/1")],  # slow, to be killed
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            wait_for_lines(journal, 1 + BATCH + 2)  # the header, the first batch, two more
        finally:
            process.kill()
        assert process.wait(timeout=60) == -signal.SIGKILL
        assert not report.exists()
        killed = set(sim.state.applied)
        assert set(range(101, 108)) <= killed
        assert not killed & set(range(122, 141))  # nothing past the third batch
        resume = [*argv, *rate_alone("100/1"), "--resume"]  # the rest, at speed
        done = forked.run([sys.executable, "-c", streamed, *resume], env=env)
        assert done.returncode == 1  # the two invalid rows
        applied = set(sim.state.applied)
    changed = {c for c in range(101, 141) if c not in (109, 133)}
    assert applied == changed
    ledger = read_backup(backup_path(report))
    assert sorted(ledger) == sorted(changed)
    assert all(ledger[c]["sending_limit"] == default_settings(c)["sending_limit"] for c in changed)
    # a row applied but not journaled before the kill is found applied: unchanged, not sent
    statuses = [r["status"] for r in report_rows(report)]
    assert statuses.count("succeeded") + statuses.count("unchanged") == ROWS - 2


@pytest.mark.skipif(
    not sys.platform.startswith("linux") or RETURNING != "jemalloc", reason="no jemalloc"
)
def test_a_real_run_on_the_command_line_has_all_of_arrow_allocate_through_jemalloc(
    tmp_path: Path,
) -> None:
    """Parquet's reader and writer allocate from the allocator chosen as pyarrow is imported,
    whatever it is told later: the command line chooses it first, for a real run only."""
    source, report = plan(tmp_path / "plan.csv"), tmp_path / "report.csv"
    script = (
        "import sys; from bulkrunner.cli.app import main; code = main(sys.argv[1:]); "
        "import pyarrow as pa; print(code, pa.mimalloc_memory_pool().max_memory() > 0)"
    )  # whether anything of Arrow allocated through mimalloc
    env = {k: v for k, v in os.environ.items() if k != "ARROW_DEFAULT_MEMORY_POOL"}
    env["SMARTLEAD_API_KEY"] = KEY
    with simulator() as sim:
        for extra, expected in (([], "1 False"), (["--dry-run"], "1 True")):
            named = report.with_stem("dry") if extra else report  # (a run's report stays)
            done = subprocess.run(
                [sys.executable, "-c", script, "run", "--input", str(source), *FAST,
                 "--report", str(named), "--base-url", sim.base_url, "--fresh", *extra],
                capture_output=True, text=True, env=env, timeout=120, check=False,
            )  # fmt: skip
            assert done.stdout.split("\n")[-2] == expected, done.stderr[-2000:]
