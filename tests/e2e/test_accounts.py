"""Many accounts in runs of their own processes: a run interrupted by a signal, and a second run
of an account a first run holds (``tests/unit/commands/test_accounts_runs.py`` runs the rest in the
test's process)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from contextlib import ExitStack
from pathlib import Path

import pandas as pd
import pytest

from bulkrunner.simulator import SimulatorConfig, SimulatorThread
from tests.fakes import one_line_error, run
from tests.forked import Forked
from tests.unit.commands.test_accounts_runs import (
    FIRST_ID,
    KEYS,
    ROWS,
    export_keys,
    run_accounts,
    write_accounts,
    write_plan,
)

pytestmark = pytest.mark.usefixtures("no_ambient_settings")


def test_a_second_run_using_an_account_a_run_without_the_store_holds_is_refused_with_exit_4(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two cron jobs, two inputs, two accounts files: the same key on the same server is one
    account, whatever its variable is called. The first runs without the state store
    (--no-state), so no other run can count its requests: the second run sends nothing, with
    the store or without."""
    slow = SimulatorConfig(api_key=KEYS["acme"], latency=0.5)
    with SimulatorThread(slow) as server:
        first_accounts = tmp_path / "first.toml"
        first_accounts.write_text(
            f'[accounts.acme]\nkey_env = "ACME_SMARTLEAD_KEY"\nbase_url = "{server.base_url}"\n'
        )
        second_accounts = tmp_path / "second.toml"
        second_accounts.write_text(
            f'[accounts.client-a]\nkey_env = "CLIENT_A_KEY"\nbase_url = "{server.base_url}"\n'
        )
        first_plan = write_plan(tmp_path, ["acme"], "first.csv")
        second_plan = tmp_path / "second.csv"
        second_plan.write_text("campaign_id,account,sending_limit\n5000,client-a,10\n")
        env = {**os.environ, "ACME_SMARTLEAD_KEY": KEYS["acme"]}
        first = Forked(
            [
                *(sys.executable, "-m", "bulkrunner", "run", str(first_plan)),
                *("--accounts", str(first_accounts), "--report", str(tmp_path / "first.r.csv")),
                "--no-state",
            ],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            while not server.state.requests:  # the first run holds its locks once it sends
                assert first.poll() is None, first.communicate()[1]
                time.sleep(0.02)
            monkeypatch.setenv("CLIENT_A_KEY", KEYS["acme"])
            code, _, err = run_accounts(
                capsys, "run", second_plan, second_accounts, tmp_path / "second.r.csv"
            )
            # A run without an accounts file, with the same key, is the same account too.
            monkeypatch.setenv("SMARTLEAD_API_KEY", KEYS["acme"])
            single = tmp_path / "single.csv"
            single.write_text("campaign_id,sending_limit\n6000,10\n")
            code_single, _, err_single = run(
                capsys,
                "run",
                str(single),
                "--base-url",
                server.base_url,
                "--report",
                str(tmp_path / "single.r.csv"),
                "--no-state",
            )
        finally:
            first.send_signal(signal.SIGINT)  # (its end is not what this test is about)
            _, first_err = first.communicate(timeout=60)
            assert first.returncode in (0, 3), first_err
        campaigns = {r.campaign_id for r in server.state.requests} - {None}  # None: a list read
    assert code == 4, err
    line = one_line_error(err)
    assert "account 'client-a'" in line
    assert "another bulkrunner run" in line
    assert "using this account without the state store (--no-state) is in progress" in line
    assert code_single == 4, err_single
    assert "the key SMARTLEAD_API_KEY: another bulkrunner run" in one_line_error(err_single)
    assert campaigns <= {FIRST_ID["acme"] + n for n in range(ROWS)}  # nothing of the others
    assert KEYS["acme"] not in err + err_single


def test_an_interrupted_run_of_several_accounts_stops_them_all_and_resumes(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    names = ["acme", "globex"]
    with ExitStack() as stack:
        servers = {
            name: stack.enter_context(
                SimulatorThread(SimulatorConfig(api_key=KEYS[name], latency=0.1))
            )
            for name in names
        }
        accounts = write_accounts(tmp_path, servers)
        plan = write_plan(tmp_path, names)
        report = tmp_path / "r.csv"
        argv = ["run", str(plan), "--accounts", str(accounts), "--report", str(report)]
        process = Forked(
            [sys.executable, "-m", "bulkrunner", *argv, "--concurrency", "1"],
            env={**os.environ, **{f"{n.upper()}_SMARTLEAD_KEY": KEYS[n] for n in names}},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            while not all(server.state.posts() for server in servers.values()):
                assert process.poll() is None, process.communicate()
                time.sleep(0.02)
        finally:
            process.send_signal(signal.SIGINT)
            out, err = process.communicate(timeout=60)
        assert process.returncode == 3, err
        frame = pd.read_csv(report)
        for name in names:
            statuses = set(frame[frame["account"] == name]["status"])
            assert statuses == {"succeeded", "not_attempted"}, (name, statuses)
        assert "run interrupted" in out
        assert "to resume:" in out
        export_keys(monkeypatch)
        code, _, err = run(capsys, *argv, "--resume")
        assert code == 0, err
        assert set(pd.read_csv(report)["status"]) == {"succeeded"}
        for name, server in servers.items():
            assert sorted(server.state.applied) == [FIRST_ID[name] + n for n in range(ROWS)]
            assert set(server.state.applied.values()) == {1}  # none sent twice
