"""``--operation leads`` end to end, in this process, on a fake clock, against the simulator in
both forms of its answer: every row's outcome, a hundred leads a request, the pages of a long
campaign, the lead capacity (exit 3, then resumed), an interrupted run resumed, retry,
rollback, ``--verify``, ``plan``, ``export``, several accounts and the Python API.

The simulator's own record says what happened: the leads each campaign holds, and each
upload's leads carried and added (a lead sent twice would be carried more than added).
"""

from __future__ import annotations

import io
import json
import logging
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import aiohttp
import pandas as pd
import pytest
from aiohttp import web

import bulkrunner
from bulkrunner.api import _apply, _export, _plan
from bulkrunner.commands.export import export_job
from bulkrunner.commands.plan import plan_job
from bulkrunner.commands.retry import retry_job
from bulkrunner.commands.rollback import rollback_job
from bulkrunner.commands.run import run_job
from bulkrunner.config.job_file import build_config
from bulkrunner.config.paths import backup_path, journal_path
from bulkrunner.errors import ExitCode, UsageError
from bulkrunner.model import Rate
from bulkrunner.operations.lead_uploads import CAUSES, SKIPPED
from bulkrunner.records.lead_ledger import read_ledger
from bulkrunner.simulator import FaultPlan, SimulatorConfig, SimulatorThread
from tests.fakes import FakeClock
from tests.hostile import ServerThread

KEY = "sk-leads-SENTINEL-31"
ENVIRON = {"SMARTLEAD_API_KEY": KEY}
RATE = Rate(10, 2)
A, B, ELSEWHERE = 501, 502, 503  # ELSEWHERE holds a lead, and is not in the files
SEED = "seed@held.com"


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def simulator(clock: FakeClock, **config: Any) -> SimulatorThread:
    settings = {"api_key": KEY, "campaigns": {A, B, ELSEWHERE}, "rates": [RATE], **config}
    sim = SimulatorThread(SimulatorConfig(**settings), clock=clock)
    leads = sim.state.leads
    leads.join(A, leads.lead(SEED))
    leads.join(ELSEWHERE, leads.lead("other@held.com"))
    return sim


def write(path: Path, *lines: str, header: str = "campaign_id,email,first_name,Industry") -> Path:
    path.write_text("\n".join([header, *lines]) + "\n")
    return path


def flags(source: Path, report: Path, sim: SimulatorThread, **more: Any) -> dict[str, Any]:
    return {
        "input": str(source),
        "report": str(report),
        "base_url": sim.base_url,
        "rate": [str(RATE)],
        "operation": "leads",
        **more,
    }


def run(clock: FakeClock, **given: Any) -> ExitCode:
    return run_job(build_config({}, given), io.StringIO(), ENVIRON, clock.clock)


def lines(report: Path) -> pd.DataFrame:
    return pd.read_csv(report, dtype=str, keep_default_na=False)


def held(sim: SimulatorThread, campaign: int) -> list[str]:
    return sim.state.leads.addresses(campaign)


def remove(sim: SimulatorThread, campaign: int, email: str) -> None:
    """Take a lead out of a campaign, as someone does by hand."""
    lead = sim.state.leads.find(email)
    assert lead is not None
    sim.state.leads.leave(campaign, lead)


def carried_and_added(sim: SimulatorThread) -> tuple[int, int]:
    uploads = sim.state.writes("leads")
    return sum(r.leads for r in uploads), sum(r.added for r in uploads)


# --- every row's outcome ----------------------------------------------------------------------


OUTCOMES = [
    # (cells, status in the detailed form, status in the counts form, error's start)
    ("501,new1@x.com,Ada,SaaS", "succeeded", "succeeded", ""),
    ("501,NEW1@x.com,Ada,SaaS", "unchanged", "unchanged", "the same lead as row 1"),
    (f"501,{SEED},Seed,", "unchanged", "unchanged", ""),
    ("501,not an address,Bob,", "invalid", "invalid", "email: 'not an address'"),
    ("501,,Blank,", "invalid", "invalid", "email: missing"),
    ("501,   ,Spaces,", "invalid", "invalid", "email: missing"),
    ("501,jo@blocked.com,Jo,", "failed", "failed", f"not added: {CAUSES['blocked']}"),
    ("501,gone@x.com,Gone,", "failed", "failed", f"not added: {CAUSES['unsubscribed']}"),
    ("501,bounced@x.com,Bo,", "failed", "failed", f"not added: {CAUSES['bounced']}"),
    ("501,other@held.com,Ot,", "failed", "failed", f"not added: {CAUSES['elsewhere']}"),
    ("501,nope@suppressed.com,No,", "suppressed", "suppressed", "suppressed: its domain"),
    ("502,new2@x.com,Grace,Retail", "succeeded", "succeeded", ""),
]


@pytest.mark.parametrize(
    ("form", "added_in"),
    [("detailed", "upload_count"), ("detailed", "total_leads"), ("counts", "upload_count")],
)
def test_every_row_ends_as_the_server_left_its_lead(
    tmp_path: Path, clock: FakeClock, form: str, added_in: str
) -> None:
    source = write(tmp_path / "leads.csv", *(cells for cells, *_ in OUTCOMES))
    suppress = tmp_path / "suppress.txt"
    suppress.write_text("suppressed.com\n")
    report = tmp_path / "r.csv"
    refused = {
        "block_list": ["blocked.com"],
        "unsubscribed": ["gone@x.com"],
        "bounced": ["bounced@x.com"],
    }
    with simulator(clock, lead_answer=form, lead_added_field=added_in, **refused) as sim:
        given = flags(source, report, sim, suppress=str(suppress))
        assert run(clock, **given) == ExitCode.ROWS_FAILED
        assert held(sim, A) == [SEED, "new1@x.com"]
        assert held(sim, B) == ["new2@x.com"]
        assert len(sim.state.writes("leads")) == 2  # a request a campaign
    found = lines(report)
    column = 1 if form == "detailed" else 2
    assert found["status"].tolist() == [outcome[column] for outcome in OUTCOMES]
    for error, (_, detailed, _, start) in zip(found["error"], OUTCOMES, strict=True):
        if form == "counts" and detailed == "failed":
            assert error == SKIPPED  # the counts say no more
        elif detailed == "failed" and "unsubscribed" not in start:
            # refused in one request for three reasons, counted but not named: each lead not
            # in the campaign is failed with the three
            assert start.removeprefix("not added: ") in error
            assert error.startswith("not added: refused by SmartLead")
        else:
            assert error.startswith(start)
    ledger = read_ledger(backup_path(report))
    assert {(e.campaign_id, e.email) for e in ledger} == {(A, "new1@x.com"), (B, "new2@x.com")}


def test_the_upload_settings_add_leads_the_server_refuses_by_default(
    tmp_path: Path, clock: FakeClock
) -> None:
    source = write(tmp_path / "leads.csv", "501,jo@blocked.com,Jo,", "501,other@held.com,O,")
    report = tmp_path / "r.csv"
    with simulator(clock, block_list=["blocked.com"]) as sim:
        options = {"ignore_global_block_list": True, "ignore_duplicate_leads_in_other_campaign": 1}
        assert run(clock, **flags(source, report, sim, **options)) == ExitCode.OK
        assert held(sim, A) == [SEED, "jo@blocked.com", "other@held.com"]
    assert set(lines(report)["status"]) == {"succeeded"}


def test_sending_every_row_anyway_never_backs_up_a_lead_that_was_there(
    tmp_path: Path, clock: FakeClock
) -> None:
    """--no-skip-unchanged does not send a lead the campaign holds (SmartLead would only count
    it as there already): unchanged, not backed up, left by the rollback."""
    source = write(tmp_path / "leads.csv", f"501,{SEED},S,", "501,new@x.com,N,")
    report = tmp_path / "r.csv"
    with simulator(clock) as sim:
        assert run(clock, **flags(source, report, sim, skip_unchanged=False)) == ExitCode.OK
        assert lines(report)["status"].tolist() == ["unchanged", "succeeded"]
        assert sum(r.leads for r in sim.state.writes("leads")) == 1
        assert [e.email for e in read_ledger(backup_path(report))] == ["new@x.com"]
        clock.now += 10
        undo = build_config({}, {**flags(report, tmp_path / "u.csv", sim)})
        assert rollback_job(undo, io.StringIO(), ENVIRON, clock.clock) == ExitCode.OK
        assert held(sim, A) == [SEED]


# --- requests and pages --------------------------------------------------------------------------


@pytest.mark.parametrize(("per_request", "uploads"), [(None, 3), (400, 1)])
def test_a_campaigns_leads_go_a_hundred_to_a_request_after_reading_its_pages(
    tmp_path: Path, clock: FakeClock, per_request: int | None, uploads: int
) -> None:
    source = write(tmp_path / "leads.csv", *(f"502,l{n}@x.com,L{n}," for n in range(250)))
    report = tmp_path / "r.csv"
    more = {} if per_request is None else {"leads_per_request": per_request}
    with simulator(clock, seeded_leads={B: 150}) as sim:
        assert run(clock, **flags(source, report, sim, **more)) == ExitCode.OK
        reads = [r for r in sim.state.requests if r.method == "GET"]
        assert [r.path.rsplit("/", 1)[-1] for r in reads] == ["leads", "leads"]  # 2 pages
        assert len(sim.state.writes("leads")) == uploads
        assert carried_and_added(sim) == (250, 250)
        assert len(held(sim, B)) == 400


# --- the lead capacity ------------------------------------------------------------------------


@pytest.mark.parametrize("form", ["detailed", "counts"])
def test_a_full_lead_capacity_stops_the_run_and_resume_adds_the_rest(
    tmp_path: Path, clock: FakeClock, form: str
) -> None:
    """The account holds its capacity once 7 of 20 leads are added: the run stops (exit 3),
    no lead is reported added that is not, and no request follows another that added none;
    once room is made, --resume adds the rest, and no lead is sent after it went in."""
    rows = [f"{cid},l{n}@{cid}.com,L," for cid in (A, B) for n in range(10)]
    source = write(tmp_path / "leads.csv", *rows)
    report = tmp_path / "r.csv"
    # held: the seed, the other campaign's lead and 13 fillers: 15 of 22
    with simulator(clock, lead_capacity=22, lead_answer=form, seeded_leads={ELSEWHERE: 13}) as sim:
        fillers = held(sim, ELSEWHERE)[:13]
        given = flags(source, report, sim, leads_per_request=3, concurrency=1)
        assert run(clock, **given) == ExitCode.ABORTED
        found = lines(report)
        added = set(held(sim, A) + held(sim, B)) - {SEED}
        assert len(added) == 7
        assert set(found[found["status"] == "succeeded"]["email"]) == added
        assert set(found["status"]) <= {"succeeded", "not_attempted", "failed"}
        cut = int(((found["status"] != "succeeded") & (found["attempts"] != "0")).sum())
        assert carried_and_added(sim) == (7 + cut, 7)
        assert cut <= 3 + 1 + 3  # the requests the capacity cut, then it stopped
        for email in fillers:  # room is made
            remove(sim, ELSEWHERE, email)
        clock.now += 60
        assert run(clock, **given, resume=True) == ExitCode.OK
        assert len(held(sim, A)) == 11
        assert len(held(sim, B)) == 10
        assert carried_and_added(sim) == (20 + cut, 20)  # each lead sent once after it failed
    assert set(lines(report)["status"]) == {"succeeded"}


# --- interrupted, resumed, retried, rolled back ------------------------------------------------


def test_a_stopped_run_resumes_and_no_lead_is_sent_twice(tmp_path: Path, clock: FakeClock) -> None:
    rows = [f"{cid},l{n}@{cid}.com,L," for cid in (A, B) for n in range(30)]
    source = write(tmp_path / "leads.csv", *rows)
    report = tmp_path / "r.csv"
    faults = FaultPlan(scripted={B: ["ok", "429"]}, retry_after=900)  # past --max-wait
    with simulator(clock, faults=faults) as sim:
        given = flags(source, report, sim, leads_per_request=10, max_wait=60, concurrency=1)
        assert run(clock, **given) == ExitCode.ABORTED
        assert "not_attempted" in set(lines(report)["status"])
        assert journal_path(report).exists()
        clock.now += 60
        assert run(clock, **given, resume=True) == ExitCode.OK
        assert carried_and_added(sim) == (60, 60)
        assert len(held(sim, A)) == 31
        assert len(held(sim, B)) == 30
    assert set(lines(report)["status"]) == {"succeeded"}
    assert len(read_ledger(backup_path(report))) == 60


def test_retry_sends_the_failed_leads_again_and_rollback_removes_only_what_was_added(
    tmp_path: Path, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    rows = [f"{cid},l{n}@{cid}.com,L," for cid in (A, B) for n in range(5)]
    source = write(tmp_path / "leads.csv", *rows, f"501,{SEED},S,")
    report, again, undo = tmp_path / "r.csv", tmp_path / "again.csv", tmp_path / "undo.csv"
    faults = FaultPlan(scripted={B: ["500", "500"]})
    with simulator(clock, faults=faults) as sim:
        before = {c: held(sim, c) for c in (A, B, ELSEWHERE)}
        with caplog.at_level(logging.INFO, "bulkrunner"):
            code = run(clock, **flags(source, report, sim, max_attempts=2))
        assert code == ExitCode.ROWS_FAILED
        retries = [r.getMessage() for r in caplog.records if "retry in" in r.getMessage()]
        assert len(retries) == 1  # the one request of B's five leads, said once
        assert retries[0].startswith("5 rows from row 6 (campaign 502): retry in ")
        assert held(sim, B) == []
        clock.now += 10
        retried = build_config({}, {**flags(report, again, sim), "operation": "settings"})
        assert retry_job(retried, io.StringIO(), ENVIRON, clock.clock) == ExitCode.OK
        assert lines(again)["row"].tolist() == ["6", "7", "8", "9", "10"]
        assert len(held(sim, B)) == 5
        clock.now += 10
        remove(sim, A, "l0@501.com")  # removed by hand since
        preview, out = tmp_path / "preview.csv", io.StringIO()
        given = build_config({}, {**flags(report, preview, sim), "dry_run": True})
        assert rollback_job(given, out, ENVIRON, clock.clock) == ExitCode.OK
        assert "campaign 501: 4 to remove, 1 not there any more" in out.getvalue()
        assert {c: held(sim, c) for c in (A, B)} != before  # a dry run removes nothing
        clock.now += 10
        for name, backup in (("r", report), ("again", again)):
            target = tmp_path / f"undo-{name}.csv"
            given = build_config({}, {**flags(backup, target, sim), "operation": "settings"})
            assert rollback_job(given, io.StringIO(), ENVIRON, clock.clock) == ExitCode.OK
            clock.now += 10
        assert {c: held(sim, c) for c in (A, B, ELSEWHERE)} == before  # the seed stays
        undone = lines(tmp_path / "undo-r.csv")
        assert undone.set_index("email")["status"]["l0@501.com"] == "unchanged"
        # and B's five: its uploads were answered 500, which may have added them (an outcome
        # unknown, kept in the backup), as the retry did
        assert (undone["status"] == "succeeded").sum() == 9
        given = build_config({}, {**flags(report, undo, sim), "operation": "leads"})
        assert rollback_job(given, io.StringIO(), ENVIRON, clock.clock) == ExitCode.OK
        assert set(lines(undo)["status"]) == {"unchanged"}  # run again: nothing left to remove


def test_the_plan_of_a_leads_rollback_does_not_call_its_ledger_an_old_backup(
    tmp_path: Path, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    """Nothing in a ledger of added leads can drift: it records no values a run set, and
    says nothing of an earlier bulkrunner (its plan warned that its drift could not be shown)."""
    source = write(tmp_path / "leads.csv", "501,new@x.com,N,")
    report = tmp_path / "r.csv"
    with simulator(clock) as sim:
        assert run(clock, **flags(source, report, sim)) == ExitCode.OK
        clock.now += 10
        given = build_config({}, {**flags(report, tmp_path / "preview.csv", sim), "dry_run": True})
        with caplog.at_level(logging.WARNING, logger="bulkrunner"):
            assert rollback_job(given, io.StringIO(), ENVIRON, clock.clock) == ExitCode.OK
    assert not [r.getMessage() for r in caplog.records if "earlier bulkrunner" in r.getMessage()]


def test_verify_reads_each_campaign_back_once(tmp_path: Path, clock: FakeClock) -> None:
    rows = [f"{cid},l{n}@{cid}.com,L," for cid in (A, B) for n in range(150)]
    source = write(tmp_path / "leads.csv", *rows)
    report = tmp_path / "r.csv"
    with simulator(clock) as sim:
        assert run(clock, **flags(source, report, sim, verify=True)) == ExitCode.OK
        reads = [r.campaign_id or 0 for r in sim.state.requests if r.method == "GET"]
    # before: a page each; after: two pages each (151 and 150 leads)
    assert sorted(reads) == [A, A, A, B, B, B]
    assert set(lines(report)["status"]) == {"succeeded"}


# --- plan, export ---------------------------------------------------------------------------


def test_plan_counts_each_campaigns_leads(
    tmp_path: Path, clock: FakeClock, capsys: pytest.CaptureFixture[str]
) -> None:
    source = write(
        tmp_path / "leads.csv",
        "501,a@x.com,A,",
        "501,A@x.com,A,",
        f"501,{SEED},S,",
        "501,bad,B,",
        "502,b@no.com,B,",
        "502,c@x.com,C,",
    )
    suppress = tmp_path / "s.txt"
    suppress.write_text("no.com\n")
    report = tmp_path / "plan.csv"
    with simulator(clock) as sim:
        given = build_config({}, flags(source, report, sim, suppress=str(suppress)))
        out = io.StringIO()
        assert plan_job(given, out, ENVIRON, clock.clock) == ExitCode.ROWS_FAILED
        assert sim.state.writes("leads") == []
    text = out.getvalue()
    assert "campaign 501: 1 to add, 1 already there, 1 invalid, 1 repeating an earlier row" in text
    assert "campaign 502: 1 to add, 1 suppressed" in text


def test_a_saved_plan_of_leads_carries_their_custom_fields(
    tmp_path: Path, clock: FakeClock
) -> None:
    """plan --out, then run --plan: each lead arrives with the custom fields of its row, and
    one added since the plan was made is left as it is (unchanged: as the plan wanted it)."""
    source = write(tmp_path / "leads.csv", "501,a@x.com,Ada,SaaS", "502,b@x.com,Bo,Retail")
    saved = tmp_path / "tonight.plan"
    with simulator(clock) as sim:
        planning = build_config({}, flags(source, tmp_path / "p.csv", sim, out=str(saved)))
        assert plan_job(planning, io.StringIO(), ENVIRON, clock.clock) == ExitCode.OK
        sim.state.leads.join(B, sim.state.leads.lead("b@x.com"))  # added by hand since
        clock.now += 10
        given = flags(source, tmp_path / "r.csv", sim, plan=str(saved))
        assert run(clock, **given) == ExitCode.OK
        lead = sim.state.leads.find("a@x.com")
        assert lead is not None
        assert lead.custom_fields == {"Industry": "SaaS"}
    assert lines(tmp_path / "r.csv")["status"].tolist() == ["succeeded", "unchanged"]


def test_a_saved_plan_of_leads_is_refused_to_a_run_with_other_upload_settings(
    tmp_path: Path, clock: FakeClock
) -> None:
    source = write(tmp_path / "leads.csv", "501,a@x.com,Ada,SaaS")
    saved = tmp_path / "tonight.plan"
    with simulator(clock) as sim:
        planning = build_config({}, flags(source, tmp_path / "p.csv", sim, out=str(saved)))
        assert plan_job(planning, io.StringIO(), ENVIRON, clock.clock) == ExitCode.OK
        clock.now += 10
        for other in ({"ignore_global_block_list": True}, {"leads_per_request": 50}):
            given = flags(source, tmp_path / "r.csv", sim, plan=str(saved), **other)
            with pytest.raises(UsageError, match="the plan was made with"):
                run(clock, **given)
        assert sim.state.writes("leads") == []


def test_export_writes_the_leads_as_input_that_runs_again_unchanged(
    tmp_path: Path, clock: FakeClock
) -> None:
    output, report = tmp_path / "leads.csv", tmp_path / "r.csv"
    with simulator(clock, seeded_leads={B: 120}) as sim:
        given = {
            "input": "-",
            "base_url": sim.base_url,
            "operation": "leads",
            "output": str(output),
            "campaign_id": f"{A},{B}",
        }
        config = build_config({}, given)
        assert export_job(config, io.StringIO(), ENVIRON, clock.clock) == ExitCode.OK
        exported = pd.read_csv(output, dtype=str, keep_default_na=False)
        assert len(exported) == 121
        assert {"campaign_id", "email", "first_name", "Industry"} <= set(exported.columns)
        clock.now += 10
        assert run(clock, **flags(output, report, sim)) == ExitCode.OK
        assert sim.state.writes("leads") == []
    assert set(lines(report)["status"]) == {"unchanged"}


def test_export_leaves_out_a_lead_holding_the_key(
    tmp_path: Path, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    """Written REDACTED, a run of the file against another campaign would copy that there."""
    source = write(tmp_path / "leads.csv", "501,a@x.com,Ada,SaaS", f"501,k@x.com,Kay,{KEY} inc")
    output = tmp_path / "out.csv"
    with simulator(clock) as sim:
        assert run(clock, **flags(source, tmp_path / "r.csv", sim)) == ExitCode.OK
        clock.now += 10
        given = {"input": "-", "base_url": sim.base_url, "operation": "leads"}
        config = build_config({}, {**given, "output": str(output), "campaign_id": "501"})
        with caplog.at_level(logging.WARNING, "bulkrunner"):
            export_job(config, io.StringIO(), ENVIRON, clock.clock)
    assert "k@x.com" not in pd.read_csv(output)["email"].tolist()
    assert "a@x.com" in pd.read_csv(output)["email"].tolist()
    assert "lead k@x.com is not exported: its Industry holds the API key" in caplog.text
    assert "SENTINEL" not in output.read_text() + caplog.text


# --- several accounts, the Python API -----------------------------------------------------------


def test_several_accounts_upload_each_with_its_own_key(tmp_path: Path, clock: FakeClock) -> None:
    keys = {"acme": "sk-acme-SENTINEL-1", "globex": "sk-globex-SENTINEL-2"}
    sims = {
        name: SimulatorThread(SimulatorConfig(api_key=key, rates=[RATE]), clock=clock)
        for name, key in keys.items()
    }
    accounts = tmp_path / "accounts.toml"
    with sims["acme"], sims["globex"]:
        accounts.write_text(
            "".join(
                f'[accounts.{name}]\nkey_env = "{name.upper()}_KEY"\nrate = ["10/2"]\n'
                f'base_url = "{sim.base_url}"\n'
                for name, sim in sims.items()
            )
        )
        rows = [
            f"{cid},{name},l{n}@x.com"
            for name, cid in (("acme", 7), ("globex", 8))
            for n in range(120)
        ]
        source = write(tmp_path / "leads.csv", *rows, header="campaign_id,account,email")
        report = tmp_path / "r.csv"
        given = build_config(
            {},
            {
                "input": str(source),
                "report": str(report),
                "accounts": str(accounts),
                "operation": "leads",
            },
        )
        environ = {f"{name.upper()}_KEY": key for name, key in keys.items()}
        assert run_job(given, io.StringIO(), environ, clock.clock) == ExitCode.OK
        assert len(sims["acme"].state.leads.addresses(7)) == 120
        assert len(sims["globex"].state.leads.addresses(8)) == 120
        assert sims["acme"].state.leads.addresses(8) == []
        ledger = read_ledger(backup_path(report))
        assert {e.account for e in ledger} == {"acme", "globex"}
        clock.now += 10
        undo = build_config(
            {}, {"input": str(report), "report": str(tmp_path / "u.csv"), "accounts": str(accounts)}
        )
        assert rollback_job(undo, io.StringIO(), environ, clock.clock) == ExitCode.OK
        assert sims["acme"].state.leads.addresses(7) == []
        assert sims["globex"].state.leads.addresses(8) == []


def test_the_python_api_plans_applies_and_exports_leads(
    tmp_path: Path, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SMARTLEAD_API_KEY", KEY)
    frame = pd.DataFrame(
        {"campaign_id": [A, A, B], "email": ["a@x.com", SEED, "b@x.com"], "Size": [5, 6, None]}
    )
    with simulator(clock) as sim:
        options = {"base_url": sim.base_url, "rate": [str(RATE)], "report": str(tmp_path / "p.csv")}
        planned = _plan(frame, "leads", options, clock.clock)
        assert planned["status"].tolist() == ["dry_run", "unchanged", "dry_run"]
        clock.now += 10
        options["report"] = str(tmp_path / "r.csv")
        applied = _apply(frame, "leads", options, clock.clock)
        assert applied["status"].tolist() == ["succeeded", "unchanged", "succeeded"]
        (lead,) = [e for e in sim.state.leads.campaign(A).ordered() if e.lead.email == "a@x.com"]
        assert lead.lead.custom_fields == {"Size": 5}
        clock.now += 10
        exported = _export("leads", {"base_url": sim.base_url, "campaign_id": [A, B]}, clock.clock)
        assert sorted(exported["email"]) == ["a@x.com", "b@x.com", SEED]
    assert bulkrunner.apply is not None


@pytest.mark.slow  # the client's timeout is real time
@pytest.mark.parametrize("form", ["detailed", "counts"])
def test_leads_whose_answer_was_lost_are_found_added_not_refused(
    tmp_path: Path, clock: FakeClock, form: str
) -> None:
    """The first upload is applied but its answer never comes (the client times out): the
    retry's answer says none was added (they are there already). Read back, they are the
    run's: succeeded, in the backup, and the capacity is not taken as used up."""
    source = write(tmp_path / "leads.csv", *(f"501,l{n}@x.com,L," for n in range(5)))
    report = tmp_path / "r.csv"
    faults = FaultPlan(scripted={A: ["slow"]}, slow_applies=True, slow_seconds=1.5)
    with simulator(clock, faults=faults, lead_answer=form) as sim:
        assert run(clock, **flags(source, report, sim, timeout=0.5)) == ExitCode.OK
        assert carried_and_added(sim) == (10, 5)  # sent twice: the second time, already there
        assert len(held(sim, A)) == 6
    found = lines(report)
    assert set(found["status"]) == {"succeeded"}
    assert len(read_ledger(backup_path(report))) == 5


@pytest.mark.slow  # the client's timeout is real time
@pytest.mark.parametrize("form", ["detailed", "counts"])
def test_unread_campaigns_lost_answer_never_makes_a_lead_that_was_there_succeeded(
    tmp_path: Path, clock: FakeClock, form: str
) -> None:
    """With --no-skip-unchanged --no-backup nothing is read first: after a lost answer, the
    retry's "already there" cannot tell the run's leads from those there before, so none is
    called added (a lead the campaign held before the run is never succeeded)."""
    source = write(tmp_path / "leads.csv", f"501,{SEED},S,", "501,new@x.com,N,")
    report = tmp_path / "r.csv"
    faults = FaultPlan(scripted={A: ["slow"]}, slow_applies=True, slow_seconds=1.5)
    given = {"timeout": 0.5, "skip_unchanged": False, "no_backup": True}
    with simulator(clock, faults=faults, lead_answer=form) as sim:
        assert run(clock, **flags(source, report, sim, **given)) == ExitCode.OK
        assert carried_and_added(sim) == (4, 1)
    found = lines(report)
    assert found["status"].tolist() == ["unchanged", "unchanged"]


def test_leads_added_by_an_upload_answered_504_are_succeeded_and_rolled_back(
    tmp_path: Path, clock: FakeClock
) -> None:
    """A gateway's 504 says nothing of the upload its server went on to make: the retry's
    answer, "already in the campaign", made the rows unchanged, left out of the backup, and
    the rollback removed nothing."""
    from aiohttp import web

    from tests.hostile import ServerThread

    held: dict[str, int] = {}  # campaign 501's leads: address -> id
    posts: list[int] = []

    async def gateway(request: web.Request) -> web.Response:
        if request.method == "GET" and request.path.endswith("/leads/"):  # one, by address
            email = request.query["email"]
            if email not in held:
                return web.json_response({})
            campaigns = [{"campaign_id": 501, "status": "ACTIVE"}]
            return web.json_response(
                {"id": held[email], "email": email, "lead_campaign_data": campaigns}
            )
        if request.method == "GET":  # a page of the campaign's
            shown = [{"lead": {"id": number, "email": email}} for email, number in held.items()]
            return web.json_response({"data": shown, "total_leads": len(held)})
        if request.method == "DELETE":
            number = int(request.path.rsplit("/", 1)[1])
            held.pop(next(e for e, n in held.items() if n == number))
            return web.json_response({"ok": True})
        sent = [lead["email"] for lead in (await request.json())["lead_list"]]
        posts.append(len(sent))
        there = sum(email in held for email in sent)
        for email in sent:
            held.setdefault(email, 7000 + len(held))
        if len(posts) == 1:
            return web.Response(status=504, text="<html>Gateway Time-out</html>")
        counts = {"upload_count": 0, "total_leads": len(held), "already_added_to_campaign": there}
        return web.json_response(counts)

    source = write(tmp_path / "leads.csv", "501,a@x.com,A,", "501,b@x.com,B,")
    report = tmp_path / "r.csv"
    with ServerThread(gateway) as server:
        given = {"input": str(source), "report": str(report), "operation": "leads"}
        assert run(clock, base_url=server.url + "/api/v1", **given) == ExitCode.OK
        assert lines(report)["status"].tolist() == ["succeeded", "succeeded"]
        assert sorted(e.email for e in read_ledger(backup_path(report))) == ["a@x.com", "b@x.com"]
        undo = {"input": str(report), "report": str(tmp_path / "undo.csv")}
        config = build_config({}, {**undo, "base_url": server.url + "/api/v1"})
        assert rollback_job(config, io.StringIO(), ENVIRON, clock.clock) == ExitCode.OK
    assert held == {}  # both removed


def test_an_upload_answered_2xx_but_failed_is_read_back_and_what_it_added_is_undone(
    tmp_path: Path, clock: FakeClock
) -> None:
    """``200 {"ok": false}``, the leads added all the same: they were `failed`, left out of the
    backup, and no rollback removed them. Read back, they are `succeeded` and undone."""
    source = write(tmp_path / "leads.csv", "501,a@x.com,A,", "501,b@x.com,B,")
    report, undo = tmp_path / "r.csv", tmp_path / "undo.csv"
    with simulator(clock) as sim:

        async def failing(request: web.Request) -> web.StreamResponse:
            url = f"{sim.base_url}{request.path_qs.removeprefix('/api/v1')}"
            async with aiohttp.ClientSession() as session:
                body = await request.read()
                async with session.request(request.method, url, data=body) as answer:
                    text, status = await answer.text(), answer.status
            if request.method == "POST" and request.path.endswith("/leads"):
                text, status = json.dumps({"ok": False, "message": "partial failure"}), 200
            return web.Response(text=text, status=status, content_type="application/json")

        with ServerThread(failing) as proxy:
            there = SimpleNamespace(base_url=f"{proxy.url}/api/v1")
            assert run(clock, **flags(source, report, there)) == ExitCode.OK  # type: ignore[arg-type]
        assert sorted(held(sim, 501)) == ["a@x.com", "b@x.com", SEED]
        rows = lines(report)
        assert rows["status"].tolist() == ["succeeded", "succeeded"]
        assert set(rows["error"]) == {"in the campaign, though the answer said the upload failed"}
        clock.now += 10
        undone = build_config({}, {**flags(report, undo, sim), "operation": "settings"})
        assert rollback_job(undone, io.StringIO(), ENVIRON, clock.clock) == ExitCode.OK
        assert held(sim, 501) == [SEED]
