"""Whole commands sharing an account's budget through the state store, on a fake clock the
simulator counts its windows on too: ``export``, ``plan``, ``run --verify`` (and the Python
API's) back to back draw no 429 where, each starting with an empty limiter, they drew one; each
account starts with its own requests alone; ``--rate`` overrides only the windows it names. In
real processes: ``tests/e2e/test_shared_budget.py``."""

from __future__ import annotations

import io
import logging
import os
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest

from bulkrunner.commands.export import export_job
from bulkrunner.commands.plan import plan_job
from bulkrunner.commands.run import run_job
from bulkrunner.config.folders import account_id
from bulkrunner.config.job_file import build_config
from bulkrunner.errors import Aborted, ExitCode
from bulkrunner.limits.rates import max_in_window
from bulkrunner.model import Rate
from bulkrunner.records.budget import Ledger
from bulkrunner.records.store import StateStore
from bulkrunner.simulator import SimulatorConfig, SimulatorState, SimulatorThread
from tests.fakes import FakeClock

KEY = "sk-shared-budget-SENTINEL-31"
ENVIRON = {"SMARTLEAD_API_KEY": KEY}
SMARTLEAD = [Rate(10, 2), Rate(60, 60)]  # its limits, as the issue measured them
IDS = list(range(301, 321))


def throttled(state: SimulatorState) -> int:
    """The 429s the server's rate limit answered."""
    return sum(1 for record in state.requests if record.status == 429 and record.fault is None)


def write_input(path: Path, ids: list[int], shift: int = 1) -> Path:
    lines = ["campaign_id,sending_limit", *(f"{cid},{cid % 97 + shift}" for cid in ids)]
    path.write_text("\n".join(lines) + "\n")
    return path


def back_to_back(tmp_path: Path, clock: FakeClock, **more: Any) -> SimulatorState:
    """``export``, ``plan`` and ``run --verify`` one after another against a server holding
    SmartLead's limits (Retry-After 30), at the default limits; the server's record."""
    simulated = SimulatorConfig(
        api_key=KEY, campaigns=set(IDS), rates=SMARTLEAD, limit_retry_after=30
    )
    with SimulatorThread(simulated, clock=clock) as sim:
        base = {"base_url": sim.base_url, "concurrency": 1, **more}
        exported = build_config({}, {"input": "", "output": str(tmp_path / "e.csv"), **base})
        assert export_job(exported, io.StringIO(), ENVIRON, clock.clock) == ExitCode.OK
        source = write_input(tmp_path / "edited.csv", IDS)
        report = str(tmp_path / "r.csv")
        planned = build_config({}, {"input": str(source), "report": report, **base})
        assert plan_job(planned, io.StringIO(), ENVIRON, clock.clock) == ExitCode.OK
        applied = build_config({}, {"input": str(source), "verify": True, **base})
        assert run_job(applied, io.StringIO(), ENVIRON, clock.clock) == ExitCode.OK
        return sim.state


def test_export_plan_and_run_back_to_back_share_the_accounts_windows(tmp_path: Path) -> None:
    """Each command starts with every request the ones before sent on the account (the store's
    ledger): no 429, and each window of the server held at most its limit."""
    state = back_to_back(tmp_path, FakeClock())
    arrivals = sorted(record.arrival for record in state.requests)
    assert len(arrivals) >= 2 + 20 + 2  # the export's and plan's reads, the run's
    assert throttled(state) == 0
    for rate in SMARTLEAD:
        assert max_in_window(arrivals, rate.seconds) <= rate.limit


def test_without_the_store_each_command_starts_with_an_empty_limiter(tmp_path: Path) -> None:
    """What the store prevents (the issue's 429s), with --no-state: the run's first burst of
    ten lands in the window the export's and plan's reads are still in."""
    state = back_to_back(tmp_path, FakeClock(), no_state=True)
    assert throttled(state) >= 1
    assert not (tmp_path / "state").exists()


def test_rate_2_per_1_still_holds_the_published_minute_and_hour(tmp_path: Path) -> None:
    """`--rate 2/1` names the one-second window only: 10/2, 60/60 and 1000/3600 hold too, so 70
    rows on a key held to 60 a minute draw no 429 (2/1 alone sent 120 a minute)."""
    clock = FakeClock()
    ids = list(range(5001, 5071))
    simulated = SimulatorConfig(api_key=KEY, campaigns=set(ids), rates=[Rate(60, 60)])
    with SimulatorThread(simulated, clock=clock) as sim:
        source = write_input(tmp_path / "in.csv", ids)
        flags = {"input": str(source), "base_url": sim.base_url, "rate": "2/1", "concurrency": 1}
        config = build_config({}, flags)
        assert config.rates == (Rate(2, 1), Rate(10, 2), Rate(60, 60), Rate(1000, 3600))
        assert run_job(config, io.StringIO(), ENVIRON, clock.clock) == ExitCode.OK
        assert throttled(sim.state) == 0
        assert len(sim.state.applied) == 70
    assert clock.now - clock.start > 60  # the minute's window held the last ten back


def test_a_limit_above_the_published_one_is_allowed_with_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    clock = FakeClock()
    with SimulatorThread(SimulatorConfig(api_key=KEY, campaigns={7}), clock=clock) as sim:
        source = write_input(tmp_path / "in.csv", [7])
        flags = {"input": str(source), "base_url": sim.base_url, "rate": ["20/2", "5/1"]}
        config = build_config({}, flags)
        assert config.rates == (Rate(5, 1), Rate(20, 2), Rate(60, 60), Rate(1000, 3600))
        with caplog.at_level(logging.WARNING, logger="bulkrunner"):
            assert run_job(config, io.StringIO(), ENVIRON, clock.clock) == ExitCode.OK
    warned = [r.getMessage() for r in caplog.records if "published" in r.getMessage()]
    assert warned == [
        "20/2 (published 10/2) above SmartLead's published limits: allowed, for a plan that "
        "allows more; a key that does not will answer 429s"
    ]


def test_an_accounts_files_limits_override_only_the_windows_they_name(tmp_path: Path) -> None:
    from bulkrunner.config.accounts import Accounts

    accounts = tmp_path / "accounts.toml"
    accounts.write_text('[accounts.acme]\nkey_env = "ACME_KEY"\nrate = ["3/1", "100/60"]\n')
    config = build_config({}, {"input": "in.csv", "accounts": str(accounts)})
    loaded = Accounts.load(config, {"ACME_KEY": KEY})
    assert loaded is not None
    (acme,) = loaded.accounts.values()
    assert acme.rates == (Rate(3, 1), Rate(10, 2), Rate(100, 60), Rate(1000, 3600))


def test_the_python_api_back_to_back_shares_the_accounts_windows(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``bulkrunner.export``, ``plan`` and ``apply`` one after another in one notebook count
    each other's requests as the commands do; with ``no_state=True`` each starts afresh and the
    server answers 429 (Retry-After 30)."""
    from bulkrunner.api import _apply, _export, _plan

    monkeypatch.setenv("SMARTLEAD_API_KEY", KEY)
    for no_state in (False, True):
        clock = FakeClock()
        simulated = SimulatorConfig(
            api_key=KEY, campaigns=set(IDS), rates=SMARTLEAD, limit_retry_after=30
        )
        with SimulatorThread(simulated, clock=clock) as sim:
            common = {"base_url": sim.base_url, "concurrency": 1, "no_state": no_state}
            exported = _export("settings", {**common, "quiet": True}, clock.clock)
            edited = exported.assign(sending_limit=exported["sending_limit"] + 1)
            _plan(edited, "settings", {**common, "quiet": True}, clock.clock)
            report = _apply(edited, "settings", {**common, "quiet": True}, clock.clock)
            state = sim.state
        assert set(report["status"]) == {"succeeded"}
        if no_state:
            assert throttled(state) >= 1
        else:
            assert throttled(state) == 0
            arrivals = sorted(record.arrival for record in state.requests)
            for rate in SMARTLEAD:
                assert max_in_window(arrivals, rate.seconds) <= rate.limit


def test_each_account_starts_with_its_own_requests_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A command of two accounts right after one that spent the minute of the first: the first
    waits for its minute to free, the second starts at once (a resumed run of several accounts
    once held every account to every account's requests: one sat silent for 50 s)."""
    clock = FakeClock()
    keys = {"acme": "sk-acme-shared-0303", "globex": "sk-globex-shared-0404"}
    ids = {"acme": list(range(100, 170)), "globex": list(range(200, 209))}
    with ExitStack() as stack:
        sims = {
            name: stack.enter_context(
                SimulatorThread(
                    SimulatorConfig(api_key=key, campaigns=set(ids[name]), rates=SMARTLEAD),
                    clock=clock,
                )
            )
            for name, key in keys.items()
        }
        accounts = tmp_path / "accounts.toml"
        accounts.write_text(
            "".join(
                f'[accounts.{name}]\nkey_env = "{name.upper()}_KEY"\nbase_url = "{sim.base_url}"\n'
                for name, sim in sims.items()
            )
        )
        for name, key in keys.items():
            monkeypatch.setenv(f"{name.upper()}_KEY", key)

        def run(rows: list[tuple[str, int]], name: str) -> None:
            lines = [f"{cid},{account},{cid % 50 + 3}" for account, cid in rows]
            source = tmp_path / f"{name}.csv"
            source.write_text("campaign_id,account,sending_limit\n" + "\n".join(lines) + "\n")
            flags = {"input": str(source), "accounts": str(accounts), "concurrency": 1}
            flags["skip_unchanged"] = False  # every row a request
            config = build_config({}, {**flags, "report": str(tmp_path / f"{name}.r.csv")})
            code = run_job(config, io.StringIO(), dict(os.environ), clock.clock)
            assert code == ExitCode.OK

        run([("acme", cid) for cid in ids["acme"][:59]], "first")  # the minute's 60, in 12 s
        started = clock.now
        second = [("acme", cid) for cid in ids["acme"][50:]] + [
            ("globex", c) for c in ids["globex"]
        ]
        with caplog.at_level(logging.INFO, logger="bulkrunner"):
            run(second, "second")
        states = {name: sim.state for name, sim in sims.items()}
    waits = [r.getMessage() for r in caplog.records if "to leave the rate window" in r.getMessage()]
    assert waits == [  # until the first of the first run's 60 is a minute old
        "account acme: waiting 50s for earlier requests on this account to leave the rate window"
    ]
    assert sum(throttled(state) for state in states.values()) == 0
    acme = sorted(record.arrival for record in states["acme"].requests)
    assert acme[-1] - started > 50
    assert max_in_window(acme, 60) <= 60


@pytest.mark.parametrize("command", ["run", "export"])
def test_a_pause_another_command_recorded_longer_than_max_wait_stops_at_once(
    tmp_path: Path, own_state_folder: Path, caplog: pytest.LogCaptureFixture, command: str
) -> None:
    """A 429's Retry-After another command got (and waited for, under its own --max-wait) is
    this command's too: longer than its --max-wait, it stops at once (exit 3), as for its own
    429, rather than wait the rest of it without a word."""
    clock = FakeClock()
    with SimulatorThread(SimulatorConfig(api_key=KEY, campaigns=set(IDS)), clock=clock) as sim:
        with StateStore.open(own_state_folder) as store:
            until = clock.wall().timestamp() + 250
            Ledger(store).pause(account_id(sim.base_url, KEY), until)
        given: dict[str, Any] = {"base_url": sim.base_url, "max_wait": 5}
        with caplog.at_level(logging.INFO, "bulkrunner"):
            if command == "run":
                source = write_input(tmp_path / "in.csv", IDS[:2])
                config = build_config({}, {"input": str(source), **given})
                code = run_job(config, io.StringIO(), ENVIRON, clock.clock)
            else:
                config = build_config({}, {"input": "", "output": str(tmp_path / "e.csv"), **given})
                with pytest.raises(Aborted) as aborted:
                    export_job(config, io.StringIO(), ENVIRON, clock.clock)
                code = aborted.value.exit_code
                caplog.records.append(logging.makeLogRecord({"msg": str(aborted.value)}))
    assert code == ExitCode.ABORTED
    assert sim.state.requests == []
    assert max(clock.sleeps, default=0.0) < 5  # nothing waited out
    said = "the server asked to wait 250s (a 429 on this account), more than --max-wait 5"
    assert said in "\n".join(record.getMessage() for record in caplog.records)
