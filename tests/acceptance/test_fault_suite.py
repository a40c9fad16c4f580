"""Fault injection at scale: many rows under mixed faults, kill -9 followed by --resume, and for
every operation kill -9, an edit of the input, --resume and a rollback (killed and resumed too).

Every property is checked from the simulator's own record of each request (its fault, its status,
whether it changed the stored settings) and from the outcomes the runner reported. Each test
prints a one-line summary of its figures, which ``pytest -s`` shows. The thousand rows run on
virtual time (``tests.virtual_time``); the kill -9 scenarios run real processes on real time, the
simulator in its own thread and the client's guard ``JITTER`` (see ``tests.realtime``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import aiohttp
import pandas as pd
import pytest

from bulkrunner.config.paths import backup_path, journal_path
from bulkrunner.model import Answer, Outcome, Rate, Row, Status
from bulkrunner.operations.base import Request
from bulkrunner.records.backup import read_backup
from bulkrunner.records.journal import read_successes
from bulkrunner.sending.engine import Engine
from bulkrunner.sending.retry import Policy
from bulkrunner.sending.transport import HttpSender, limiter_tracing
from bulkrunner.simulator import (
    FaultPlan,
    Simulator,
    SimulatorConfig,
    SimulatorState,
    SimulatorThread,
    default_settings,
    default_status,
)
from bulkrunner.simulator.campaigns import Campaigns
from bulkrunner.simulator.faults import FAULT_KINDS
from tests.fakes import make_rows, rate_alone, target
from tests.realtime import JITTER, Commands, figures, line_count, wait_for_lines_or_exit
from tests.virtual_time import connection_on_loop_time, run_virtual

KEY = "fault-suite-key"


# --- shared helpers --------------------------------------------------------------------------


class RecordingSender(HttpSender):
    """An ``HttpSender`` that keeps every settings answer, as the client saw it."""

    def __init__(
        self, session: aiohttp.ClientSession, base_url: str, api_key: str, timeout: float
    ) -> None:
        super().__init__(session, base_url, api_key, timeout)
        self.answers: list[tuple[int, Answer]] = []

    async def send(self, request: Request) -> Answer:
        campaign_id, _ = target(request)
        answer = await super().send(request)
        self.answers.append((campaign_id, answer))
        return answer


def injected(state: SimulatorState) -> Counter[str]:
    """Injected faults per kind, from the server's record (every kind listed, even if 0)."""
    counts: Counter[str] = Counter({kind: 0 for kind in FAULT_KINDS})
    counts.update(r.fault for r in state.posts() if r.fault is not None)
    return counts


def rate_limited(state: SimulatorState) -> int:
    """429s the server's own rate limit answered (not injected ones)."""
    return sum(1 for r in state.requests if r.status == 429 and r.fault is None)


def describe(faults: Counter[str]) -> str:
    kinds = ", ".join(f"{kind} {n}" for kind, n in faults.items() if n)
    return f"{sum(faults.values())} ({kinds})"


# --- 1. many rows under mixed faults ---------------------------------------------------------

ROWS = 1000
RATE = Rate(200, 1)  # the server's limit and the client's, equal
CONCURRENCY = 16  # slow answers hold a worker for CLIENT_TIMEOUT: about 6 at a time here
CLIENT_TIMEOUT = 1.0
# 20% of settings POSTs fail. 429s are few: the limiter's adaptive control cuts the rate at each
# one and takes seconds to climb back to 200/s. With this seed the draws give exactly 1 of them
# (the draws, hence the counts, are the same every run: 1243 POSTs, 72 x 500, 68 x 503, 60
# drops, 42 slow).
MIXED_FAULTS = FaultPlan(
    probabilities={"429": 0.0015, "500": 0.06, "503": 0.06, "slow": 0.03, "drop": 0.0485},
    seed=2,
    retry_after=0.1,
    slow_seconds=CLIENT_TIMEOUT + 0.5,  # answered after the client gave up: always a timeout
    slow_applies=True,  # ...yet applied: the outcome the client cannot know
)


# On virtual time (tests.virtual_time): the simulator is served by the client's own loop, so it
# judges the client's windows without scheduling noise, with the limiter's own guard as the
# only margin, and the run's seconds of windows, latency and timeouts take no real time.
def test_a_thousand_rows_under_mixed_faults() -> None:
    rows = make_rows(ROWS, first_id=70_000)
    config = SimulatorConfig(api_key=KEY, rates=[RATE], faults=MIXED_FAULTS)
    journal: list[tuple[int, int, Outcome]] = []  # what a journal would record, in order

    def record(row: Row, outcome: Outcome) -> None:
        journal.append((row.number, row.campaign_id, outcome))

    async def run() -> tuple[Simulator, RecordingSender, Engine, dict[int, Outcome]]:
        loop = asyncio.get_running_loop()
        async with (
            Simulator(config, clock=loop.time) as simulator,
            aiohttp.ClientSession(trace_configs=[limiter_tracing()]) as session,
        ):
            sender = RecordingSender(session, simulator.base_url, KEY, CLIENT_TIMEOUT)
            through = connection_on_loop_time(
                sender, [RATE], Policy(max_attempts=10, backoff_base=0.01), CONCURRENCY, seed=7
            )
            engine = Engine(through, on_outcome=record)
            return simulator, sender, engine, await engine.run(rows)

    simulator, sender, engine, outcomes = run_virtual(run())
    state = simulator.state
    posts = state.posts()
    faults = injected(state)
    slow = [r for r in posts if r.fault == "slow"]
    timed_out = Counter(
        cid
        for cid, answer in sender.answers
        if answer.transport_error is not None and answer.transport_error.startswith("timed out")
    )
    unknown = sum(1 for _, answer in sender.answers if answer.outcome_unknown)
    lost = [n for n, outcome in outcomes.items() if outcome.status is not Status.SUCCEEDED]
    duplicates = sum(state.applied.values()) - ROWS
    arrivals = [r.arrival for r in state.requests]
    print()
    print(
        figures(
            "mixed faults",
            {
                "rows": ROWS,
                "requests": len(posts),
                "faults injected": describe(faults),
                "rate-limit 429s": rate_limited(state),
                "retries": engine.stats.retries,
                "outcome unknown": f"{unknown} ({sum(timed_out.values())} timed out, "
                f"{unknown - sum(timed_out.values())} dropped)",
                "duplicates": duplicates,
                "lost rows": len(lost),
                "fullest window": f"{state.max_in_window(RATE.seconds)} for {RATE}",
                "server span": f"{max(arrivals) - min(arrivals):.1f}s",
            },
        )
    )

    # Every input row has exactly one outcome, reported once, and every row succeeded.
    assert Counter(number for number, _, _ in journal) == {row.number: 1 for row in rows}
    assert {number: outcome for number, _, outcome in journal} == outcomes
    assert sorted(outcomes) == [row.number for row in rows]
    assert lost == [], [outcomes[n] for n in lost[:5]]
    assert engine.stats.aborted is None

    # Every succeeded row's campaign holds the row's settings; every applied campaign succeeded.
    for row in rows:
        stored = state.settings[row.campaign_id]
        assert {name: stored[name] for name in row.payload} == dict(row.payload), row.number
    assert set(state.applied) == {row.campaign_id for row in rows}

    # The server's limit was never exceeded: it saw no more than the limit in any window.
    assert state.max_in_window(RATE.seconds) <= RATE.limit

    # Every kind of fault really happened, and every failed request was retried.
    assert all(faults[kind] > 0 for kind in FAULT_KINDS), faults
    assert engine.stats.requests == len(posts) == len(sender.answers)
    assert engine.stats.retries == len(posts) - ROWS

    # Duplicates come only from requests whose outcome was unknown. Proof, from the record:
    # a slow answer comes after the client has given up, so every slow request is a client
    # timeout, and no other request timed out...
    assert timed_out == Counter(r.campaign_id for r in slow)
    # ...so each row's one clean application is the 200 its success came from...
    clean = [r for r in posts if r.applied and r.fault is None]
    assert Counter(r.campaign_id for r in clean) == {row.campaign_id: 1 for row in rows}
    # ...and every other application is a slow request, after which its row was sent again.
    assert all(r.applied for r in slow)
    slow_by_campaign = Counter(r.campaign_id for r in slow)
    for row in rows:
        outcome = outcomes[row.number]
        if slow_by_campaign[row.campaign_id]:
            assert outcome.attempts > slow_by_campaign[row.campaign_id]
            assert "outcome unknown, retried" in outcome.error
    assert dict(state.applied) == {
        row.campaign_id: 1 + slow_by_campaign[row.campaign_id] for row in rows
    }
    assert duplicates == len(slow)


# --- 2. kill -9 at random moments, then --resume ---------------------------------------------

KILL_ROWS = 100
KILL_CONCURRENCY = 4
# 100 requests/s in windows shorter than a process takes to start (~0.7 s), and well above the
# JITTER a loaded machine adds to arrivals. A resumed run counts the killed run's last requests
# from its journal; the server checks every window, across the restarts too.
KILL_RATE = Rate(50, 0.5)
KILL_FAULTS = FaultPlan(
    probabilities={"429": 0.02, "500": 0.04, "503": 0.04, "drop": 0.03},
    seed=99,
    retry_after=0.1,
)
KILL_SEED = 4242
DONE = {"succeeded", "unchanged"}
AT_START = 0  # a kill moment: at once, before the run has touched its journal


def write_plan(path: Path, count: int, first_id: int) -> list[tuple[int, int]]:
    """A CSV of ``count`` rows; returns each row's (campaign_id, sending_limit)."""
    rng = random.Random(count)
    plan = [(first_id + n, rng.randint(10, 300)) for n in range(count)]
    lines = ["campaign_id,sending_limit,stop_lead_settings"]
    lines += [f"{cid},{limit},REPLY_TO_AN_EMAIL" for cid, limit in plan]
    path.write_text("\n".join(lines) + "\n")
    return plan


def journaled_successes(path: Path) -> set[int]:
    """The campaigns a journal records as succeeded (a torn last line is skipped)."""
    campaigns: set[int] = set()
    for line in path.read_text().splitlines():
        with contextlib.suppress(ValueError):
            entry = json.loads(line)
            if entry.get("status") == "succeeded":
                campaigns.add(int(entry["campaign_id"]))
    return campaigns


@pytest.mark.slow
def test_kill_9_at_random_moments_then_resume_applies_every_row(tmp_path: Path) -> None:
    plan = write_plan(tmp_path / "plan.csv", KILL_ROWS, first_id=90_000)
    report = tmp_path / "out" / "report.csv"
    journal = journal_path(report)
    rng = random.Random(KILL_SEED)
    # One kill right after a start, two once the journal has grown by a random number of rows.
    moments = [AT_START, *(rng.randint(5, 30) for _ in range(2))]
    rng.shuffle(moments)
    env = {**os.environ, "SMARTLEAD_API_KEY": KEY}
    env.pop("SMARTLEAD_BASE_URL", None)
    # The account lists its campaigns, as SmartLead's does: each run reads them in one call.
    campaigns = {cid for cid, _ in plan}
    config = SimulatorConfig(
        api_key=KEY, rates=[KILL_RATE], campaigns=campaigns, faults=KILL_FAULTS
    )
    kills: list[str] = []  # the moment of each kill that ended a running process
    codes: list[int] = []
    done: list[int] = []  # rows the journal holds as succeeded, after each kill

    with SimulatorThread(config) as sim:

        def start(run: int) -> subprocess.Popen[bytes]:
            argv = [
                *(sys.executable, "-m", "bulkrunner", "run"),
                *("--input", str(tmp_path / "plan.csv"), "--report", str(report)),
                *("--base-url", sim.base_url, *rate_alone(str(KILL_RATE))),
                *("--concurrency", str(KILL_CONCURRENCY), "--max-attempts", "10"),
                *("--guard", str(JITTER)),
                *(("--resume",) if run > 0 else ()),
            ]
            with (tmp_path / f"run{run}.log").open("wb") as log:
                return subprocess.Popen(argv, env=env, stdout=log, stderr=subprocess.STDOUT)

        finished = False
        for run, moment in enumerate(moments):
            process = start(run)
            if moment != AT_START:
                wait_for_lines_or_exit(journal, line_count(journal) + moment, process)
            process.kill()  # SIGKILL; nothing if the process has already ended
            codes.append(process.wait(timeout=60))
            if codes[-1] == -signal.SIGKILL:
                kills.append("at start" if moment == AT_START else f"+{moment} rows")
            if report.exists() and not journal.exists():
                finished = True  # the run finished and reported before the kill landed
                assert codes[-1] in (0, -signal.SIGKILL)
                break
            assert codes[-1] == -signal.SIGKILL, (tmp_path / f"run{run}.log").read_text()
            if journal.exists():
                # The journal survives the kill readable, and keeps every earlier success;
                # each success it holds was applied at the server.
                done.append(len(read_successes(journal)))
                assert done[-1] >= max(done[:-1], default=0)
                assert journaled_successes(journal) <= set(dict(sim.state.applied))
        if not finished:
            final = start(len(moments))
            codes.append(final.wait(timeout=120))
    state = sim.state
    frame = pd.read_csv(report)
    applied = state.applied
    # A campaign that already has the planned values is found unchanged and never sent.
    already = {cid for cid, limit in plan if limit == default_settings(cid)["sending_limit"]}
    duplicates = sum(applied.values()) - (KILL_ROWS - len(already))
    bound = KILL_CONCURRENCY * len(kills)
    faults = injected(state)
    print()
    print(
        figures(
            "kill -9 and resume",
            {
                "rows": KILL_ROWS,
                "runs": len(codes),
                "kills": f"{len(kills)} ({', '.join(kills)})",
                "journaled successes at each kill": done,
                "exit codes": codes,
                "requests": f"{len(state.requests)} ({len(state.posts())} settings POSTs)",
                "faults injected": describe(faults),
                "rate-limit 429s": rate_limited(state),
                "duplicates": f"{duplicates} (bound {bound})",
                "statuses": dict(Counter(frame["status"])),
                "lost rows": int((~frame["status"].isin(DONE)).sum()),
                "fullest window": f"{state.max_in_window(KILL_RATE.seconds)} for {KILL_RATE}",
            },
        )
    )

    assert codes[-1] == 0, (tmp_path / f"run{len(codes) - 1}.log").read_text()
    assert frame["row"].tolist() == list(range(1, KILL_ROWS + 1))  # every row once, in order
    assert frame["campaign_id"].tolist() == [cid for cid, _ in plan]
    # "unchanged": a killed run applied the row but died before journaling it, and the resumed
    # run found the campaign already as wanted (it reads the current settings first).
    assert set(frame["status"]) <= DONE
    assert not journal.exists()

    # every campaign that needed it applied, and only those
    assert set(applied) == {cid for cid, _ in plan} - already
    assert frame[frame["campaign_id"].isin(already)]["status"].eq("unchanged").all()
    for cid, limit in plan:
        assert state.settings.get(cid, default_settings(cid))["sending_limit"] == limit
    assert state.max_in_window(KILL_RATE.seconds) <= KILL_RATE.limit
    # Only a kill can apply a row twice: the rows in flight when it landed, one per worker.
    assert duplicates <= bound
    assert all(faults[kind] > 0 for kind in ("429", "500", "503", "drop")), faults


# --- 3. the safety net end to end: kill -9 ten times, resume each time, then roll back ---------

LEDGER_ROWS = 1000
LEDGER_KILLS = 10
LEDGER_SEED = 8080
LEDGER_TIMEOUT = 1.0  # the client's; slow answers come after it, yet are applied
# 20% of settings POSTs fail, as in MIXED_FAULTS but without injected 429s: each one cuts the
# adaptive rate for seconds, 12 processes long (the 429 paths are covered above). The server's
# own limit still answers 429 around restarts, when a new process's limiter starts afresh.
LEDGER_FAULTS = FaultPlan(
    probabilities={"500": 0.06, "503": 0.064, "slow": 0.03, "drop": 0.046},
    seed=5,
    slow_seconds=LEDGER_TIMEOUT + 0.5,
    slow_applies=True,
)


@pytest.mark.slow
@pytest.mark.acceptance
@pytest.mark.timeout(600)
def test_kill_9_ten_times_resume_then_rollback_leaves_every_campaign_as_it_started(
    tmp_path: Path,
) -> None:
    plan = write_plan(tmp_path / "plan.csv", LEDGER_ROWS, first_id=120_000)
    ids = [cid for cid, _ in plan]
    original = {cid: default_settings(cid) for cid in ids}
    changing = {cid for cid, limit in plan if limit != original[cid]["sending_limit"]}
    report = tmp_path / "out" / "apply.csv"
    journal = journal_path(report)
    rng = random.Random(LEDGER_SEED)
    moments = [AT_START, *(rng.randint(10, 80) for _ in range(LEDGER_KILLS - 1))]
    rng.shuffle(moments)
    env = {**os.environ, "SMARTLEAD_API_KEY": KEY}
    env.pop("SMARTLEAD_BASE_URL", None)
    config = SimulatorConfig(api_key=KEY, rates=[RATE], campaigns=set(ids), faults=LEDGER_FAULTS)
    kills: list[str] = []
    codes: list[int] = []
    backed_up: list[int] = []  # campaigns in the backup after each kill
    seconds: list[float] = []  # each process's run, from its start to its end

    with SimulatorThread(config) as sim:
        options = (
            *("--base-url", sim.base_url, *rate_alone(str(RATE))),
            *("--concurrency", str(CONCURRENCY), "--max-attempts", "10"),
            *("--timeout", str(LEDGER_TIMEOUT)),
        )

        def start(name: str, *argv: str) -> subprocess.Popen[bytes]:
            command = [sys.executable, "-m", "bulkrunner", *argv, *options]
            with (tmp_path / f"{name}.log").open("wb") as log:
                return subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)

        def apply(run: int) -> subprocess.Popen[bytes]:
            resume = ("--resume",) if run > 0 else ()
            source = ("--input", str(tmp_path / "plan.csv"), "--report", str(report))
            return start(f"run{run}", "run", *source, *resume)

        finished = False
        for run, moment in enumerate(moments):
            began = time.monotonic()
            process = apply(run)
            if moment != AT_START:
                wait_for_lines_or_exit(journal, line_count(journal) + moment, process)
            process.kill()
            codes.append(process.wait(timeout=60))
            seconds.append(round(time.monotonic() - began, 1))
            if codes[-1] == -signal.SIGKILL:
                kills.append("at start" if moment == AT_START else f"+{moment} rows")
            if report.exists() and not journal.exists():
                finished = True
                break
            assert codes[-1] == -signal.SIGKILL, (tmp_path / f"run{run}.log").read_text()
            if backup_path(report).exists():
                backed_up.append(len(read_backup(backup_path(report))))
        began = time.monotonic()
        if not finished:
            codes.append(apply(len(moments)).wait(timeout=120))
        seconds.append(round(time.monotonic() - began, 1))
        assert codes[-1] == 0, (tmp_path / f"run{len(codes) - 1}.log").read_text()
        applied = {cid: sim.state.settings[cid]["sending_limit"] for cid in sim.state.settings}
        ledger = read_backup(backup_path(report))
        posts = len(sim.state.posts())
        undo = start("rollback", "rollback", str(report), "--report", str(tmp_path / "undo.csv"))
        began = time.monotonic()
        codes.append(undo.wait(timeout=120))
        seconds.append(round(time.monotonic() - began, 1))
        state = sim.state
        final = {cid: state.settings.get(cid, default_settings(cid)) for cid in ids}
    faults_seen = injected(state)
    wrong = [cid for cid in ids if final[cid] != original[cid]]
    print()
    print(
        figures(
            "kill -9 x10, resume, rollback",
            {
                "rows": LEDGER_ROWS,
                "campaigns changed": len(changing),
                "kills": f"{len(kills)} ({', '.join(kills)})",
                "campaigns in the backup after each kill": backed_up,
                "exit codes": codes,
                "seconds per process": seconds,
                "settings POSTs": f"{posts} applying, {len(state.posts()) - posts} rolling back",
                "faults injected": describe(faults_seen),
                "rate-limit 429s": rate_limited(state),
                "campaigns not as they started": len(wrong),
            },
        )
    )

    assert len(kills) == LEDGER_KILLS  # every kill landed on a running process
    assert codes[-1] == 0, (tmp_path / "rollback.log").read_text()
    # Before the rollback every campaign held its new value...
    assert {cid: applied.get(cid, original[cid]["sending_limit"]) for cid in ids} == dict(plan)
    # ...and the backup held every campaign that changed, with the value it had at the start.
    assert ledger == {cid: {"sending_limit": original[cid]["sending_limit"]} for cid in changing}
    # The backup only grows: each run after a kill kept what the earlier ones recorded.
    assert backed_up == sorted(backed_up)
    # After it, every campaign the run touched is exactly as it started.
    assert wrong == []
    assert sum(faults_seen.values()) > 0.15 * LEDGER_ROWS


# --- 4. every operation: kill -9, edit the input, --resume, roll back (killed and resumed too) --

EVERY_ROWS = 40
EVERY_RATE = Rate(25, 0.5)  # 50 requests a second: a kill lands well before a run's end
EVERY_FAULTS = FaultPlan(
    probabilities={"429": 0.01, "500": 0.03, "503": 0.03, "drop": 0.03},
    seed=19,
    retry_after=0.1,
)
EVERY_SEED = 1919
OPERATIONS = ("settings", "schedule", "status", "email-accounts")
HEADERS = {
    "settings": "campaign_id,sending_limit",
    "schedule": "campaign_id,timezone,days,start_hour,end_hour",
    "status": "campaign_id,status",
    "email-accounts": "campaign_id,add,remove",
}
ZONES = ("Asia/Tokyo", "America/Chicago", "Europe/Paris")  # none is a seeded campaign's
HOURS = (("06:00", "16:00"), ("07:30", "19:00"), ("10:00", "20:00"))
DAYS = ("mon;wed;fri", "tue-thu", "weekdays")

CampaignState = tuple[dict[str, Any], list[int]]


def campaign_states(
    config: SimulatorConfig, state: SimulatorState, ids: list[int]
) -> dict[int, CampaignState]:
    """Everything a campaign shows: as GET reads it (settings, status, schedule) and its email
    accounts, from the simulator's own record."""
    campaigns = Campaigns(config, state)
    return {cid: (campaigns.view(cid), sorted(campaigns.accounts(cid))) for cid in ids}


def row_versions(
    operation: str, cid: int, start: CampaignState, rng: random.Random
) -> tuple[list[str], list[str]]:
    """A row of ``operation`` that changes campaign ``cid``, and the row as a user edits it
    between a kill and ``--resume`` (a third of the rows: another value; for a status, which
    has only two, the campaign's own; for email accounts, one more account attached)."""
    view, attached = start
    again = rng.random() < 1 / 3
    if operation == "settings":
        first, second = rng.sample([n for n in range(10, 300) if n != view["sending_limit"]], 2)
        return [str(first)], [str(second if again else first)]
    if operation == "schedule":
        zone, days = rng.choice(ZONES), rng.choice(DAYS)
        hours, other = rng.sample(HOURS, 2)
        return [zone, days, *hours], [zone, days, *(other if again else hours)]
    if operation == "status":
        flipped, back = ("PAUSED", "START") if view["status"] == "ACTIVE" else ("START", "PAUSED")
        return [flipped], [back if again else flipped]
    added = rng.sample([i for i in range(1, 51) if i not in attached], 2)
    removed = str(attached[-1]) if len(attached) > 1 else ""  # never a campaign's last one
    grown = added if again else added[:1]
    return [str(added[0]), removed], [";".join(map(str, grown)), removed]


def plan_text(operation: str, rows: Mapping[int, list[str]]) -> str:
    lines = [HEADERS[operation], *(",".join([str(cid), *cells]) for cid, cells in rows.items())]
    return "\n".join(lines) + "\n"


@pytest.mark.slow
@pytest.mark.acceptance
@pytest.mark.timeout(300)
@pytest.mark.parametrize("operation", OPERATIONS)
def test_kill_9_edit_resume_then_rollback_leaves_every_campaign_as_it_started(
    tmp_path: Path, operation: str
) -> None:
    rng = random.Random(f"{EVERY_SEED}-{operation}")
    first_id = 140_000 + 1_000 * OPERATIONS.index(operation)
    # a status row only starts or pauses, and no write puts a campaign back to a draft
    seeded = range(first_id, first_id + 2 * EVERY_ROWS)
    ids = [cid for cid in seeded if default_status(cid) != "DRAFTED"][:EVERY_ROWS]
    config = SimulatorConfig(
        api_key=KEY, rates=[EVERY_RATE], campaigns=set(ids), faults=EVERY_FAULTS
    )
    source = tmp_path / "plan.csv"
    report, undo = tmp_path / "out" / "apply.csv", tmp_path / "out" / "undo.csv"
    env = {**os.environ, "SMARTLEAD_API_KEY": KEY}
    env.pop("SMARTLEAD_BASE_URL", None)
    began = time.monotonic()

    with SimulatorThread(config) as sim:
        start = campaign_states(config, sim.state, ids)
        versions = {cid: row_versions(operation, cid, start[cid], rng) for cid in ids}
        source.write_text(plan_text(operation, {cid: v[0] for cid, v in versions.items()}))
        options = (
            *("--base-url", sim.base_url, *rate_alone(str(EVERY_RATE))),
            *("--concurrency", "4", "--max-attempts", "10", "--guard", str(JITTER)),
        )

        commands = Commands(tmp_path, env, options, lambda: rng.randint(4, 15))
        killed, finished = commands.killed, commands.finished

        applying = ("run", "--input", str(source), "--operation", operation, "--report")
        killed("run", journal_path(report), *applying, str(report))
        source.write_text(plan_text(operation, {cid: v[1] for cid, v in versions.items()}))
        killed("resumed", journal_path(report), *applying, str(report), "--resume")
        finished("finished", *applying, str(report), "--resume")
        applied = {cid for cid in ids if sim.state.applied[cid]}  # by any run of the job
        changed = campaign_states(config, sim.state, ids)
        rolling = ("rollback", str(report), "--report", str(undo))
        killed("rollback", journal_path(undo), *rolling)
        finished("rollback resumed", *rolling, "--resume")
        end = campaign_states(config, sim.state, ids)
    lines = pd.read_csv(report, dtype=str, keep_default_na=False)
    wrong = [cid for cid in ids if end[cid] != start[cid]]
    print()
    print(
        figures(
            f"{operation}: kill -9, edit, resume, rollback",
            {
                "rows": EVERY_ROWS,
                "rows edited": sum(v[0] != v[1] for v in versions.values()),
                "exit codes": commands.codes,
                "campaigns the job wrote to": len(applied),
                "statuses": dict(Counter(lines["status"])),
                "campaigns not as they started": len(wrong),
                "seconds": round(time.monotonic() - began, 1),
            },
        )
    )

    # After the rollback, every campaign is exactly as it started, in everything it shows.
    assert wrong == [], {cid: (start[cid], end[cid]) for cid in wrong[:3]}
    # Before it, only campaigns the job wrote to had changed...
    assert {cid for cid in ids if changed[cid] != start[cid]} <= applied
    # ...and the report showed each change the job applied, with its values: a row is
    # unchanged only if no run of the job wrote to its campaign.
    assert lines["campaign_id"].tolist() == [str(cid) for cid in ids]
    assert set(lines["status"]) <= DONE
    done = lines[lines["status"] == "succeeded"]
    assert set(done["campaign_id"].astype(int)) == applied
    for before, after in zip(done["before"], done["after"], strict=True):
        assert before
        assert after
        assert json.loads(before) != json.loads(after)
