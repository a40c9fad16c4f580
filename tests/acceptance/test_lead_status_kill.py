"""``lead-status`` killed with SIGKILL mid-run, resumed, then rolled back (killed and resumed
too), against the simulator under faults: no row is lost, every lead ends as its row asks, and
the rollback leaves every lead it can restore as it started. A lead action in flight when the
run was killed is sent again or found done: pausing, resuming and unsubscribing twice leave a
lead as once, and a lead the killed run removed is found removed (its backup says the run was
about to), not failed as missing."""

from __future__ import annotations

import os
import random
from collections import Counter
from pathlib import Path

import pandas as pd
import pytest

from bulkrunner.config.paths import journal_path
from bulkrunner.model import Rate
from bulkrunner.simulator import FaultPlan, SimulatorConfig, SimulatorThread
from tests.fakes import rate_alone
from tests.realtime import JITTER, Commands

KEY = "sk-lead-kill-SENTINEL-88"
RATE = Rate(25, 0.5)  # 50 requests a second: a kill lands well before a run's end
FAULTS = FaultPlan(
    probabilities={"429": 0.01, "500": 0.03, "503": 0.03, "drop": 0.03}, seed=23, retry_after=0.1
)
CAMPAIGNS = (301, 302, 303, 304)
LEADS = 12  # a campaign's leads: its rows


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_kill_9_resume_then_rollback_leaves_every_lead_as_asked_then_as_it_started(
    tmp_path: Path,
) -> None:
    rng = random.Random(2222)
    addresses = {c: [f"lead{n}.{c}@x.example.com" for n in range(LEADS)] for c in CAMPAIGNS}
    start = {(c, e): rng.choice(["STARTED", "PAUSED"]) for c in CAMPAIGNS for e in addresses[c]}
    # each lead: paused if running, resumed if paused; one in six unsubscribed or removed
    wanted: dict[tuple[int, str], str] = {}
    lines = ["campaign_id,email,action"]
    for (campaign, email), status in start.items():
        action = rng.choice(["unsubscribe", "remove"]) if rng.random() < 1 / 6 else None
        action = action or ("pause" if status == "STARTED" else "resume")
        lines.append(f"{campaign},{email},{action}")
        wanted[(campaign, email)] = {
            "pause": "PAUSED",
            "resume": "STARTED",
            "unsubscribe": "UNSUBSCRIBED",
        }.get(action, "")
    source = tmp_path / "leads.csv"
    source.write_text("\n".join(lines) + "\n")
    config = SimulatorConfig(
        api_key=KEY, rates=[RATE], campaigns=set(CAMPAIGNS), named_leads=addresses, faults=FAULTS
    )
    report, undo = tmp_path / "out" / "apply.csv", tmp_path / "out" / "undo.csv"
    env = {**os.environ, "SMARTLEAD_API_KEY": KEY}
    env.pop("SMARTLEAD_BASE_URL", None)

    with SimulatorThread(config) as sim:
        for (campaign, email), status in start.items():
            member = sim.state.leads.member(campaign, email)
            assert member is not None
            member.status = status
        options = (
            *("--base-url", sim.base_url, *rate_alone(str(RATE))),
            *("--concurrency", "4", "--max-attempts", "10", "--guard", str(JITTER)),
        )

        commands = Commands(tmp_path, env, options, lambda: rng.randint(4, 12))
        killed, finished = commands.killed, commands.finished

        applying = ("run", str(source), "--operation", "lead-status", "--allow-irreversible")
        killed("run", journal_path(report), *applying, "--report", str(report))
        killed("resumed", journal_path(report), *applying, "--report", str(report), "--resume")
        finished("finished", *applying, "--report", str(report), "--resume")
        after_run = {
            key: (m.status if (m := sim.state.leads.member(*key)) is not None else "")
            for key in start
        }
        rolling = ("rollback", str(report), "--report", str(undo))
        killed("rollback", journal_path(undo), *rolling)
        finished("rollback resumed", *rolling, "--resume", expected=1)  # the irreversible ones
        end = {
            key: (m.status if (m := sim.state.leads.member(*key)) is not None else "")
            for key in start
        }
        removals = Counter(r.status for r in sim.state.requests if r.action == "remove")

    frame = pd.read_csv(report, dtype=str, keep_default_na=False)
    print()
    print(
        f"lead-status: kill -9, resume, rollback: rows {len(start)}, exit codes {commands.codes}, "
        f"statuses {dict(Counter(frame['status']))}, "
        f"found applied by a killed run {int(frame['error'].str.startswith('applied').sum())}, "
        f"removals answered {dict(removals)}"
    )
    assert set(frame["status"]) <= {"succeeded", "unchanged"}, frame[["status", "error"]]
    assert len(frame) == len(start)  # every row accounted for
    assert after_run == wanted  # every lead as its row asks
    # every lead the rollback can restore is as it started; the rest as the run left them
    reversible = {key for key, status in wanted.items() if status in ("PAUSED", "STARTED")}
    assert {key: end[key] for key in reversible} == {key: start[key] for key in reversible}
    assert {key: end[key] for key in start if key not in reversible} == {
        key: wanted[key] for key in start if key not in reversible
    }
    # a removal is never sent twice to a lead already removed, unless in flight at a kill
    assert removals[404] <= 4 * 3, removals
