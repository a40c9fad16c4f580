"""A lead upload killed (``kill -9``) mid-flight, resumed, killed again, resumed to its end, then
rolled back (killed and resumed too), as a user runs it: whole processes against the simulator,
in both forms of its answer, under injected faults.

No lead is lost (every lead of the file is in its campaign at the end) nor sent after it went
in (each upload's leads carried equal its leads added, over every run: a lead in flight at a
kill is found by the resumed run's read, not sent again); the report and the backup name each
lead once; and the rollback leaves every campaign with exactly the leads it started with.
"""

from __future__ import annotations

import random
import time
from pathlib import Path

import pandas as pd
import pytest

from bulkrunner.config.paths import backup_path, journal_path
from bulkrunner.model import Rate
from bulkrunner.records.lead_ledger import read_ledger
from bulkrunner.simulator import FaultPlan, SimulatorConfig, SimulatorThread
from bulkrunner.simulator.state import LeadAnswer
from tests.fakes import rate_alone
from tests.realtime import JITTER, Commands, figures

KEY = "sk-leads-kill-SENTINEL-5"
CAMPAIGNS = (160_001, 160_002, 160_003)
SEEDED = 30  # leads each campaign holds before the run: they must stay
LEADS = 200  # each campaign's leads in the file
PER_REQUEST = 20
RATE = Rate(25, 0.5)  # 50 requests a second: a kill lands well before a run's end
FAULTS = FaultPlan(probabilities={"429": 0.02, "500": 0.04, "503": 0.04, "drop": 0.04}, seed=22)


@pytest.mark.slow
@pytest.mark.acceptance
@pytest.mark.timeout(300)
@pytest.mark.parametrize("form", ["detailed", "counts"])
def test_kill_9_during_an_upload_resume_then_rollback_leaves_each_campaign_as_it_was(
    tmp_path: Path, form: LeadAnswer
) -> None:
    rng = random.Random(f"leads-kill-{form}")
    source = tmp_path / "leads.csv"
    rows = [f"{cid},lead{n}.{cid}@example.com,Lead{n},{n % 7}" for cid in CAMPAIGNS
            for n in range(LEADS)]  # fmt: skip
    rng.shuffle(rows)  # a spreadsheet's order: campaigns interleaved
    source.write_text("\n".join(["campaign_id,email,first_name,Score", *rows]) + "\n")
    report, undo = tmp_path / "out" / "apply.csv", tmp_path / "out" / "undo.csv"
    config = SimulatorConfig(
        api_key=KEY,
        rates=[RATE],
        campaigns=set(CAMPAIGNS),
        faults=FAULTS,
        lead_answer=form,
        seeded_leads=SEEDED,
    )
    env = {"PATH": "/usr/bin:/bin", "SMARTLEAD_API_KEY": KEY, "PYTHONPATH": str(Path.cwd())}
    began = time.monotonic()

    with SimulatorThread(config) as sim:
        start = {cid: sim.state.leads.addresses(cid) for cid in CAMPAIGNS}
        options = (
            *("--base-url", sim.base_url, *rate_alone(str(RATE))),
            *("--concurrency", "4", "--max-attempts", "10", "--guard", str(JITTER)),
        )

        commands = Commands(tmp_path, env, options, lambda: rng.randint(15, 150))
        killed, finished = commands.killed, commands.finished

        applying = ("run", "--input", str(source), "--operation", "leads", "--report")
        per_request = ("--leads-per-request", str(PER_REQUEST))
        killed("run", journal_path(report), *applying, str(report), *per_request)
        killed("resumed", journal_path(report), *applying, str(report), *per_request, "--resume")
        finished("finished", *applying, str(report), *per_request, "--resume")
        added = {cid: sim.state.leads.addresses(cid) for cid in CAMPAIGNS}
        uploads = [r for r in sim.state.writes("leads") if r.applied]
        carried, stored = sum(r.leads for r in uploads), sum(r.added for r in uploads)
        ledger = read_ledger(backup_path(report))
        rolling = ("rollback", str(report), "--report", str(undo))
        killed("rollback", journal_path(undo), *rolling)
        finished("rollback resumed", *rolling, "--resume")
        end = {cid: sim.state.leads.addresses(cid) for cid in CAMPAIGNS}
        removals = len(sim.state.writes("lead-status"))
    lines = pd.read_csv(report, dtype=str, keep_default_na=False)
    print()
    print(
        figures(
            f"leads ({form} answers): kill -9, resume, rollback",
            {
                "leads": len(rows),
                "exit codes": commands.codes,
                "uploads applied": len(uploads),
                "leads carried, added": (carried, stored),
                "statuses": dict(lines["status"].value_counts()),
                "removals": removals,
                "seconds": round(time.monotonic() - began, 1),
            },
        )
    )

    # No lead lost: every lead of the file is in its campaign, after the seeded ones, once.
    for cid in CAMPAIGNS:
        mine = sorted(f"lead{n}.{cid}@example.com" for n in range(LEADS))
        assert added[cid][:SEEDED] == start[cid]
        assert sorted(added[cid][SEEDED:]) == mine
    # None sent after it went in, though runs were killed with uploads in flight...
    assert carried == stored == len(rows)
    # ...and the report and the backup name each lead once, as added by the job.
    assert set(lines["status"]) == {"succeeded"}
    assert sorted((e.campaign_id, e.email) for e in ledger) == sorted(
        (int(r.split(",")[0]), r.split(",")[1]) for r in rows
    )
    # The rollback leaves each campaign with exactly the leads it started with.
    assert end == start
    assert removals >= len(rows)
