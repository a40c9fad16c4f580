"""``--operation lead-status`` through every command, end to end through ``cli.main`` against the
simulator on 127.0.0.1: a run with every action and outcome and ``--verify``, the plan, the
rollback, retry, ``--resume`` of an interrupted run, several accounts, ``--simulate`` and the
Python API. Each checks the simulator's own record of the account and of every request."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import aiohttp
import pandas as pd
import pytest
from aiohttp import web

import bulkrunner
from bulkrunner.cli.app import main
from bulkrunner.config.paths import backup_path, journal_path
from bulkrunner.operations.fields import SET_BY_RUN
from bulkrunner.simulator import FaultPlan, SimulatorConfig, SimulatorThread
from tests.hostile import ServerThread

KEY = "sk-lead-runs-SENTINEL-64"
CAMPAIGN, OTHER = 5, 6
# campaign 5's leads, each with the status the tests give it
STARTING = {
    "run@x.example.com": "STARTED",
    "held@x.example.com": "PAUSED",
    "gone@x.example.com": "STARTED",
    "left@x.example.com": "STARTED",
    "out@x.example.com": "UNSUBSCRIBED",
    "last@x.example.com": "PAUSED",  # on its last sequence step: cannot be resumed
    "again@x.example.com": "STARTED",
}
SOLO = "solo@x.example.com"  # campaign 6's one lead


@pytest.fixture(autouse=True)
def environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SMARTLEAD_API_KEY", KEY)
    monkeypatch.delenv("SMARTLEAD_BASE_URL", raising=False)


def run(*argv: str) -> int:
    return main(list(argv))


@pytest.fixture
def sim() -> Iterator[SimulatorThread]:
    config = SimulatorConfig(
        api_key=KEY,
        campaigns={CAMPAIGN, OTHER},
        named_leads={CAMPAIGN: list(STARTING), OTHER: [SOLO]},
        last_step_leads=["last@x.example.com"],
    )
    with SimulatorThread(config) as server:
        statuses(server, {CAMPAIGN: STARTING, OTHER: {SOLO: "STARTED"}})
        yield server


def statuses(sim: SimulatorThread, wanted: Mapping[int, Mapping[str, str]]) -> None:
    for campaign, leads in wanted.items():
        for email, status in leads.items():
            member = sim.state.leads.member(campaign, email)
            assert member is not None
            member.status = status


def status(sim: SimulatorThread, email: str, campaign: int = CAMPAIGN) -> str | None:
    member = sim.state.leads.member(campaign, email)
    return None if member is None else member.status


def writes(sim: SimulatorThread, since: int = 0) -> list[tuple[str | None, str]]:
    """The lead-status writes the simulator received (action, path), in order."""
    return [(r.action, r.path) for r in sim.state.requests[since:] if r.action is not None]


def report_of(path: Path) -> pd.DataFrame:
    return pd.read_csv(path, dtype=str, keep_default_na=False)


def every_action(tmp_path: Path) -> Path:
    source = tmp_path / "leads.csv"
    source.write_text(
        "campaign_id,email,action,delay_days\n"
        f"{CAMPAIGN},run@x.example.com,pause,\n"  # 1 succeeded
        f"{CAMPAIGN},HELD@x.example.com,Resume,2\n"  # 2 succeeded, in any case
        f"{CAMPAIGN},gone@x.example.com,unsubscribe,\n"  # 3 succeeded (irreversible)
        f"{CAMPAIGN},left@x.example.com,remove,\n"  # 4 succeeded (irreversible)
        f"{CAMPAIGN},out@x.example.com,pause,\n"  # 5 failed unsent: unsubscribed
        f"{CAMPAIGN},last@x.example.com,resume,\n"  # 6 failed: the last step's 500
        f"{CAMPAIGN},again@x.example.com,resume,\n"  # 7 unchanged
        f"{CAMPAIGN},nobody@x.example.com,pause,\n"  # 8 failed unsent: not in the campaign
        f"{OTHER},{SOLO},pause,\n"  # 9 succeeded (found by address: one row of its campaign)
        f"{CAMPAIGN},not-an-address,pause,\n"  # 10 invalid
    )
    return source


def test_a_run_applies_every_action_and_accounts_for_every_row(
    tmp_path: Path, sim: SimulatorThread, capsys: pytest.CaptureFixture[str]
) -> None:
    report = tmp_path / "r.csv"
    common = ("--operation", "lead-status", "--base-url", sim.base_url, "--report", str(report))
    code = run("run", str(every_action(tmp_path)), *common, "--allow-irreversible", "--verify")
    assert code == 1  # rows failed
    frame = report_of(report)
    assert frame["status"].tolist() == [
        *("succeeded", "succeeded", "succeeded", "succeeded", "failed", "failed", "unchanged"),
        *("failed", "succeeded", "invalid"),
    ]
    errors = frame["error"].tolist()
    assert errors[4] == (
        f"campaign {CAMPAIGN}: the lead is UNSUBSCRIBED in it, and an unsubscribed lead cannot "
        "be paused; not sent"
    )
    assert errors[5].startswith("HTTP 500: INTERNAL_ERROR: Lead ")
    assert errors[5].endswith(
        "is on the last sequence step of campaign 5: it cannot be resumed (final: not retried)"
    )
    assert errors[7] == f"campaign {CAMPAIGN}: no lead with this address in the campaign; not sent"
    assert frame["attempts"][5] == "1"
    assert [json.loads(b)["status"] for b in frame["before"][:4]] == [
        "STARTED",
        "PAUSED",
        "STARTED",
        "STARTED",
    ]
    assert [json.loads(a)["status"] for a in frame["after"][:4]] == [
        "PAUSED",
        "STARTED",
        "UNSUBSCRIBED",
        "REMOVED",
    ]
    # the account as the rows left it
    assert status(sim, "run@x.example.com") == "PAUSED"
    assert status(sim, "held@x.example.com") == "STARTED"
    assert status(sim, "gone@x.example.com") == "UNSUBSCRIBED"
    assert status(sim, "left@x.example.com") is None  # out of the campaign...
    assert sim.state.leads.find("left@x.example.com") is not None  # ...not of the account
    assert status(sim, "out@x.example.com") == "UNSUBSCRIBED"
    assert status(sim, "last@x.example.com") == "PAUSED"
    assert status(sim, SOLO, OTHER) == "PAUSED"
    # each write once: the last step's 500 was not tried again; no write for the rest
    actions = sorted(action or "" for action, _ in writes(sim))
    assert actions == ["pause", "pause", "remove", "resume", "resume", "unsubscribe"]
    resumed = [path for action, path in writes(sim) if action == "resume"]
    assert len(resumed) == len(set(resumed)) == 2  # held's and last's, once each
    out, err = capsys.readouterr()
    assert "verifying 5 leads by reading them back" in err
    assert "rows: 10 (5 succeeded, 3 failed, 1 invalid, 1 unchanged)" in out


def test_any_other_500_is_retried_and_the_last_steps_is_not(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """On a fake clock: the retry's backoff is the run's time, not the test's."""
    import io

    from bulkrunner.commands.run import run_job
    from bulkrunner.config.job_file import build_config
    from tests.fakes import FakeClock

    clock = FakeClock()
    faults = FaultPlan(scripted={OTHER: ["500"]})  # campaign 6's first write answers a plain 500
    config = SimulatorConfig(
        api_key=KEY,
        campaigns={CAMPAIGN, OTHER},
        named_leads={CAMPAIGN: ["last@x.example.com"], OTHER: [SOLO]},
        last_step_leads=["last@x.example.com"],
        faults=faults,
    )
    source = tmp_path / "leads.csv"
    source.write_text(
        f"campaign_id,email,action\n{CAMPAIGN},last@x.example.com,resume\n{OTHER},{SOLO},resume\n"
    )
    report = tmp_path / "r.csv"
    with SimulatorThread(config, clock=clock) as server:
        statuses(server, {CAMPAIGN: {"last@x.example.com": "PAUSED"}, OTHER: {SOLO: "PAUSED"}})
        flags = {"input": str(source), "report": str(report), "base_url": server.base_url}
        built = build_config({}, {**flags, "operation": "lead-status"})
        assert run_job(built, io.StringIO(), {"SMARTLEAD_API_KEY": KEY}, clock.clock) == 1
        resumes = [(r.campaign_id, r.status) for r in server.state.requests if r.action == "resume"]
    assert sorted(resumes) == [(CAMPAIGN, 500), (OTHER, 200), (OTHER, 500)]
    frame = report_of(report)
    assert frame["status"].tolist() == ["failed", "succeeded"]
    assert frame["attempts"].tolist() == ["1", "2"]


def test_unsubscribe_and_remove_are_invalid_unless_allowed_and_the_plan_marks_them(
    tmp_path: Path, sim: SimulatorThread, capsys: pytest.CaptureFixture[str]
) -> None:
    source = every_action(tmp_path)
    common = ("--operation", "lead-status", "--base-url", sim.base_url)
    assert run("plan", str(source), *common, "--report", str(tmp_path / "p.csv")) == 1
    out = capsys.readouterr().out
    assert (
        "rows to change: 4, unchanged: 1, invalid: 3, missing from the account: 0, refused: 2"
        in out
    )
    frame = report_of(tmp_path / "p.csv")
    assert frame["error"][2].startswith("action: unsubscribe cannot be undone")
    assert frame["error"][3].startswith("action: remove cannot be undone")

    allowed = ("--allow-irreversible", "--report", str(tmp_path / "p2.csv"))
    assert run("plan", str(source), *common, *allowed) == 1
    out = capsys.readouterr().out
    assert "row 1 (campaign 5): status STARTED -> PAUSED\n" in out
    assert "row 3 (campaign 5): status STARTED -> UNSUBSCRIBED [irreversible]\n" in out
    assert "row 4 (campaign 5): status STARTED -> REMOVED [irreversible]\n" in out
    assert (
        "rows to change: 6 (2 a rollback could not undo: --allow-irreversible), unchanged: 1, "
        "invalid: 1, missing from the account: 0, refused: 2" in out
    )
    assert writes(sim) == []  # a plan reads, and writes nothing
    assert status(sim, "gone@x.example.com") == "STARTED"


def test_a_rollback_undoes_the_pauses_and_resumes_and_names_what_it_cannot(
    tmp_path: Path, sim: SimulatorThread, capsys: pytest.CaptureFixture[str]
) -> None:
    report = tmp_path / "r.csv"
    common = ("--base-url", sim.base_url)
    source = every_action(tmp_path)
    applying = ("--operation", "lead-status", "--report", str(report), "--allow-irreversible")
    assert run("run", str(source), *applying, *common) == 1
    err = capsys.readouterr().err
    assert (
        "a rollback could not restore 1 lead (gone@x.example.com in 5): the run unsubscribes it"
        in err
    )
    assert (
        "a rollback could not restore 1 lead (left@x.example.com in 5): the run removes it" in err
    )
    backup = pd.read_parquet(backup_path(report)).drop(columns=[SET_BY_RUN])
    assert backup.to_dict("records") == [
        {"campaign_id": CAMPAIGN, "email": "run@x.example.com", "action": "resume"},
        {"campaign_id": CAMPAIGN, "email": "held@x.example.com", "action": "pause"},
        {"campaign_id": CAMPAIGN, "email": "last@x.example.com", "action": "pause"},
        {"campaign_id": OTHER, "email": SOLO, "action": "resume"},
    ]
    sent = len(sim.state.requests)
    undo = tmp_path / "undo.csv"
    assert run("rollback", str(report), *common, "--report", str(undo), "--verify") == 1
    out = capsys.readouterr().out
    assert (
        "lead gone@x.example.com in 5: cannot be restored: the run unsubscribes it, which cannot "
        "be undone (SmartLead has no call to subscribe a lead again)" in out
    )
    assert "lead left@x.example.com in 5: cannot be restored: the run removes it" in out
    assert "not restored: 2 leads (listed above)" in out
    assert report_of(undo)["status"].tolist() == [
        "succeeded",
        "succeeded",
        "unchanged",
        "succeeded",
    ]
    assert sorted(action or "" for action, _ in writes(sim, sent)) == ["pause", "resume", "resume"]
    assert status(sim, "run@x.example.com") == "STARTED"
    assert status(sim, "held@x.example.com") == "PAUSED"
    assert status(sim, SOLO, OTHER) == "STARTED"
    assert status(sim, "gone@x.example.com") == "UNSUBSCRIBED"  # as said: not restored


def test_retry_sends_the_failed_rows_again(
    tmp_path: Path, sim: SimulatorThread, capsys: pytest.CaptureFixture[str]
) -> None:
    report = tmp_path / "r.csv"
    common = ("--base-url", sim.base_url)
    source = every_action(tmp_path)
    assert (
        run(
            "run",
            str(source),
            "--operation",
            "lead-status",
            "--report",
            str(report),
            "--allow-irreversible",
            *common,
        )
        == 1
    )
    # the missing lead joins the campaign, and the unsubscribed one is no longer asked of
    lead = sim.state.leads.lead("nobody@x.example.com")
    sim.state.leads.join(CAMPAIGN, lead)
    again = tmp_path / "again.csv"
    assert run("retry", str(report), "--report", str(again), *common) == 1
    frame = report_of(again)
    assert dict(zip(frame["row"], frame["status"], strict=True)) == {
        "5": "failed",
        "6": "failed",  # on its last step, still: failed again, once
        "8": "succeeded",
    }
    assert status(sim, "nobody@x.example.com") == "PAUSED"


def test_an_interrupted_run_resumes_and_sends_nothing_twice(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The run stops at campaign 6's first write (a Retry-After past --max-wait), after campaign
    5's rows. Before it is resumed, three of campaign 6's rows are found applied, as a run
    killed with their requests in flight leaves them: a pause, an unsubscribe and a removal
    (which SmartLead does not take twice: a second DELETE is a 404). The resumed run reports
    them succeeded, applied by the interrupted run, and sends only the rest."""
    ids = {
        CAMPAIGN: ["a@x.example.com", "b@x.example.com"],
        OTHER: [f"{n}@x.example.com" for n in "cdefg"],
    }
    faults = FaultPlan(scripted={OTHER: ["429"]}, retry_after=900)
    config = SimulatorConfig(api_key=KEY, campaigns=set(ids), named_leads=ids, faults=faults)
    source = tmp_path / "leads.csv"
    source.write_text(
        "campaign_id,email,action\n"
        f"{CAMPAIGN},a@x.example.com,pause\n{CAMPAIGN},b@x.example.com,pause\n"
        f"{OTHER},c@x.example.com,pause\n{OTHER},d@x.example.com,unsubscribe\n"
        f"{OTHER},e@x.example.com,remove\n{OTHER},f@x.example.com,pause\n"
        f"{OTHER},g@x.example.com,remove\n"
    )
    report = tmp_path / "r.csv"
    with SimulatorThread(config) as server:
        statuses(server, {c: dict.fromkeys(emails, "STARTED") for c, emails in ids.items()})
        common = (
            "--operation",
            "lead-status",
            "--base-url",
            server.base_url,
            "--report",
            str(report),
        )
        applying = (*common, "--allow-irreversible", "--concurrency", "1", "--max-wait", "60")
        assert run("run", str(source), *applying) == 3
        assert journal_path(report).exists()
        assert report_of(report)["status"].tolist()[:2] == ["succeeded", "succeeded"]
        # in flight when the run was killed: applied, never journaled
        server.state.leads.member(OTHER, "c@x.example.com").status = "PAUSED"  # type: ignore[union-attr]
        server.state.leads.member(OTHER, "d@x.example.com").status = "UNSUBSCRIBED"  # type: ignore[union-attr]
        server.state.leads.leave(OTHER, server.state.leads.find("e@x.example.com"))  # type: ignore[arg-type]
        sent = len(server.state.requests)
        assert run("run", str(source), *applying, "--resume") == 0
        again = writes(server, sent)
        assert status(server, "f@x.example.com", OTHER) == "PAUSED"
        assert status(server, "g@x.example.com", OTHER) is None
    assert sorted(action or "" for action, _ in again) == ["pause", "remove"]  # f and g alone
    frame = report_of(report)
    assert frame["status"].tolist() == ["succeeded"] * 7
    assert (
        frame["error"].tolist()[2:5]
        == ["applied by the interrupted run: found as this row sets it"] * 3
    )
    assert not journal_path(report).exists()


def test_the_simulator_takes_a_lead_action_twice_but_a_second_removal() -> None:
    """What makes an action in flight safe to send again, or not: pausing, resuming and
    unsubscribing twice leave the lead as once; a second removal is a 404 (so a resumed run
    must find that the interrupted run removed it, not send it again)."""
    import asyncio

    import aiohttp

    config = SimulatorConfig(api_key=KEY, campaigns={CAMPAIGN}, named_leads={CAMPAIGN: ["t@x.com"]})

    async def twice() -> list[tuple[str, int, int, str | None]]:
        from bulkrunner.simulator import Simulator

        found = []
        async with Simulator(config) as server, aiohttp.ClientSession() as session:
            lead = server.state.leads.find("t@x.com")
            assert lead is not None
            path = f"{server.base_url}/campaigns/{CAMPAIGN}/leads/{lead.id}"
            for action, method, url, body in [
                ("pause", "POST", f"{path}/pause", {}),
                ("resume", "POST", f"{path}/resume", {"resume_lead_with_delay_days": 1}),
                ("unsubscribe", "POST", f"{path}/unsubscribe", {}),
                ("remove", "DELETE", path, {}),
            ]:
                codes = []
                for _ in range(2):
                    async with session.request(
                        method, url, json=body, params={"api_key": KEY}
                    ) as answer:
                        codes.append(answer.status)
                member = server.state.leads.member(CAMPAIGN, "t@x.com")
                found.append((action, codes[0], codes[1], member.status if member else None))
        return found

    assert asyncio.run(twice()) == [
        ("pause", 200, 200, "PAUSED"),
        ("resume", 200, 200, "STARTED"),
        ("unsubscribe", 200, 200, "UNSUBSCRIBED"),
        ("remove", 200, 404, None),
    ]


def test_each_accounts_leads_are_changed_with_its_own_key_and_rolled_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    keys = {"acme": "sk-acme-lead-111111", "globex": "sk-globex-lead-222222"}
    with ExitStack() as stack:
        servers = {
            name: stack.enter_context(
                SimulatorThread(
                    SimulatorConfig(
                        api_key=key, campaigns={CAMPAIGN}, named_leads={CAMPAIGN: [f"{name}@x.com"]}
                    )
                )
            )
            for name, key in keys.items()
        }
        for name, server in servers.items():
            monkeypatch.setenv(f"{name.upper()}_KEY", keys[name])
            statuses(server, {CAMPAIGN: {f"{name}@x.com": "STARTED"}})
        accounts = tmp_path / "accounts.toml"
        accounts.write_text(
            "".join(
                f'[accounts.{name}]\nkey_env = "{name.upper()}_KEY"\nbase_url = "{s.base_url}"\n'
                for name, s in servers.items()
            )
        )
        source = tmp_path / "leads.csv"
        source.write_text(
            "campaign_id,account,email,action\n"
            f"{CAMPAIGN},acme,acme@x.com,pause\n{CAMPAIGN},globex,globex@x.com,pause\n"
        )
        report = tmp_path / "r.csv"
        common = ("--accounts", str(accounts))
        assert (
            run("run", str(source), "--operation", "lead-status", "--report", str(report), *common)
            == 0
        )
        for name, server in servers.items():
            assert status(server, f"{name}@x.com") == "PAUSED"
            assert {r.status for r in server.state.requests} == {200}  # its own key each
        backup = pd.read_parquet(backup_path(report))  # each account's batch as it wrote
        assert sorted(zip(backup["email"], backup["account"], strict=True)) == [
            ("acme@x.com", "acme"),
            ("globex@x.com", "globex"),
        ]
        assert run("rollback", str(report), "--report", str(tmp_path / "undo.csv"), *common) == 0
        for name, server in servers.items():
            assert status(server, f"{name}@x.com") == "STARTED"


def test_simulate_finds_the_files_leads_in_its_campaigns(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = tmp_path / "leads.csv"
    source.write_text(
        "campaign_id,email,action\n11,a@x.com,pause\n11,b@x.com,pause\n12,c@x.com,pause\n"
    )
    report = tmp_path / "r.csv"
    code = run(
        "run",
        str(source),
        "--operation",
        "lead-status",
        "--simulate",
        "--report",
        str(report),
        "--verify",
    )
    assert code == 0
    assert set(report_of(report)["status"]) <= {"succeeded", "unchanged"}


def test_the_python_api_plans_and_applies_lead_actions(
    tmp_path: Path, sim: SimulatorThread
) -> None:
    rows = pd.DataFrame(
        {
            "campaign_id": [CAMPAIGN, CAMPAIGN],
            "email": ["run@x.example.com", "held@x.example.com"],
            "action": ["pause", "resume"],
        }
    )
    options = {"base_url": sim.base_url, "report": str(tmp_path / "api.csv")}
    planned = bulkrunner.plan(rows, operation="lead-status", **options)
    assert planned["status"].tolist() == ["dry_run", "dry_run"]
    assert writes(sim) == []
    applied = bulkrunner.apply(rows, operation="lead-status", **options)
    assert applied["status"].tolist() == ["succeeded", "succeeded"]
    assert status(sim, "run@x.example.com") == "PAUSED"
    assert status(sim, "held@x.example.com") == "STARTED"


def test_a_dry_run_names_each_lead_by_what_finds_it_and_export_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = every_action(tmp_path)
    report = tmp_path / "dry.csv"
    assert (
        run("run", str(source), "--operation", "lead-status", "--dry-run", "--report", str(report))
        == 1
    )
    out = capsys.readouterr().out
    assert "row 1: POST /campaigns/5/leads/<id of run@x.example.com>/pause {}" in out
    assert (
        "row 2: POST /campaigns/5/leads/<id of held@x.example.com>/resume "
        '{"resume_lead_with_delay_days": 2}' in out
    )
    assert run("export", "--operation", "lead-status", "--simulate") == 2
    assert "a lead-status row is an action on a lead, not a state of the campaign" in (
        capsys.readouterr().err
    )


def proxy(sim: SimulatorThread, answer: Callable[[web.Request], web.Response | None]) -> Any:
    """A server passing every request on to ``sim``, but those ``answer`` answers itself."""

    async def handle(request: web.Request) -> web.StreamResponse:
        own = answer(request)
        if own is not None:
            return own
        url = f"{sim.base_url}{request.path_qs.removeprefix('/api/v1')}"
        async with aiohttp.ClientSession() as session:
            body = await request.read()
            async with session.request(request.method, url, data=body) as passed:
                text, status = await passed.text(), passed.status
        return web.Response(text=text, status=status, content_type="application/json")

    return ServerThread(handle)


def test_a_first_removal_answered_404_is_read_back_not_taken_as_done(
    tmp_path: Path, sim: SimulatorThread
) -> None:
    """A 404 to a removal is "not in the campaign, as the row asks" only after a try whose
    answer was lost: to the first try, the lead may well be there still (read back)."""

    def refused(request: web.Request) -> web.Response | None:
        if request.method == "DELETE":
            return web.json_response({"message": "Lead not found in campaign"}, status=404)
        return None

    source = tmp_path / "leads.csv"
    source.write_text(f"campaign_id,email,action\n{CAMPAIGN},left@x.example.com,remove\n")
    report = tmp_path / "r.csv"
    with proxy(sim, refused) as server:
        code = run(
            "run", str(source), "--operation", "lead-status", "--allow-irreversible",
            "--report", str(report), "--base-url", f"{server.url}/api/v1",
        )  # fmt: skip
    assert code == 1
    assert status(sim, "left@x.example.com") == "STARTED"  # never removed
    (row,) = report_of(report).to_dict("records")
    assert (row["status"], row["http_status"]) == ("failed", "404")


def test_a_lookup_answering_a_lead_without_its_address_is_never_acted_on(
    tmp_path: Path, sim: SimulatorThread
) -> None:
    """A lookup by address answering a lead (an id) but not its address: it is no proof of
    being the lead asked for, and a pause or a removal of it could be another's, for good."""

    def unnamed(request: web.Request) -> web.Response | None:
        if request.method == "GET" and request.path.rstrip("/").endswith("/leads"):
            lead = {"id": 9, "first_name": "Someone", "lead_campaign_data": [
                {"campaign_id": CAMPAIGN, "lead_status": "STARTED"}]}  # fmt: skip
            return web.json_response(lead)
        return None

    source = tmp_path / "leads.csv"
    source.write_text(f"campaign_id,email,action\n{CAMPAIGN},nobody@x.example.com,pause\n")
    report = tmp_path / "r.csv"
    before = len(sim.state.requests)
    with proxy(sim, unnamed) as server:
        code = run(
            "run", str(source), "--operation", "lead-status", "--report", str(report),
            "--base-url", f"{server.url}/api/v1", "--no-skip-unchanged",
        )  # fmt: skip
    assert code == 1
    assert writes(sim, before) == []
    (row,) = report_of(report).to_dict("records")
    assert row["status"] == "failed"
    assert "the lookup answered a lead without its address" in row["error"]
