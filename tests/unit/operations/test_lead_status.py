"""The ``lead-status`` operation: pause, resume, unsubscribe or remove leads named by address.

Unit tests of the cells, the wire, what a row changes, refuses and undoes, the 500 that is
final, and the backup of a lead per row; then every command end to end through ``cli.main``
against the simulator on 127.0.0.1 (validate, plan, run with --verify, rollback, retry,
--resume, --simulate). Finding the leads is ``tests/unit/sending/test_lead_reads.py``'s.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from bulkrunner.cli.app import main
from bulkrunner.model import Answer, Change
from bulkrunner.operations import operation
from bulkrunner.operations.addresses import parse_address
from bulkrunner.operations.base import Request, Undo, Wire
from bulkrunner.operations.fields import SET_BY_RUN
from bulkrunner.operations.lead_answers import LEADS, LeadState
from bulkrunner.operations.lead_status import LEAD_STATUS, parse_action
from bulkrunner.records.backup import read_unrestorable, record_backup
from bulkrunner.sending.retry import Outage, Policy, Verdict, classify

KEY = "sk-lead-status-SENTINEL-31"
LAST = "The lead 7 is on the last sequence step of campaign 5: it cannot be resumed"


@pytest.fixture(autouse=True)
def environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SMARTLEAD_API_KEY", KEY)
    monkeypatch.delenv("SMARTLEAD_BASE_URL", raising=False)


def run(*argv: str) -> int:
    return main(list(argv))


# --- cells ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cell", "parsed"),
    [
        ("pause", ("pause", None)),
        (" Resume ", ("resume", None)),
        ("UNSUBSCRIBE", ("unsubscribe", None)),
        ("remove", ("remove", None)),
        ("paus", (None, "'paus' is not an action (did you mean pause?)")),
        ("stop", (None, "'stop' is not an action (use pause, resume, unsubscribe, remove)")),
        (3, (None, "3 is not an action (use pause, resume, unsubscribe, remove)")),
    ],
)
def test_an_action_cell_is_read_in_any_case(cell: object, parsed: tuple[Any, Any]) -> None:
    assert parse_action(cell) == parsed


@pytest.mark.parametrize(
    ("cell", "parsed"),
    [
        (" Ada@Example.COM ", ("ada@example.com", None)),  # addresses compare in any case
        ("a+tag@x.co", ("a+tag@x.co", None)),
        ("ada@example", (None, "'ada@example' is not an email address")),
        ("a..b@x.com", (None, "'a..b@x.com' is not an email address")),
        ("mailto:a@x.com", (None, "'mailto:a@x.com' is a link: write the address alone (a@x.com)")),
        (7, (None, "7 is not an email address")),
    ],
)
def test_an_address_cell_is_checked_before_sending(cell: object, parsed: tuple[Any, Any]) -> None:
    assert parse_address(cell) == parsed


@pytest.mark.parametrize("path", ["quick", "pandas"])
def test_validate_names_each_bad_row_and_both_paths_agree(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    path: str,
) -> None:
    monkeypatch.setenv("BULKRUNNER_VALIDATE_PATH", path)
    source = tmp_path / "leads.csv"
    source.write_text(
        "campaign_id,email,action,delay_days\n"
        "1,a@x.com,pause,\n"
        "1,A@X.COM,resume,\n"  # the same lead of the same campaign
        "2,a@x.com,pause,\n"  # the same address in another campaign: another lead
        "3,b@x,pause,\n"
        "4,c@x.com,unsubscribe,\n"
        "5,d@x.com,remove,\n"
        "6,e@x.com,pause,3\n"
        "7,,pause,\n"
        "8,f@x.com,,\n"
        "9,g@x.com,resume,2\n"
    )
    assert run("validate", str(source), "--operation", "lead-status") == 1
    assert capsys.readouterr().out.splitlines() == [
        f"{source} row 1: email: the same email and campaign_id are in rows 1 and 2",
        f"{source} row 2: email: the same email and campaign_id are in rows 1 and 2",
        f"{source} row 4: email: 'b@x' is not an email address",
        f"{source} row 5: action: unsubscribe cannot be undone (SmartLead has no call to "
        "subscribe a lead again): run with --allow-irreversible to unsubscribe leads",
        f"{source} row 6: action: remove cannot be undone (a lead added again starts its "
        "sequence over): run with --allow-irreversible to remove leads",
        f"{source} row 7: delay_days: only a resume takes a delay (this row's action is pause)",
        f"{source} row 8: email: missing",
        f"{source} row 9: action: missing",
        f"{source}: 10 rows, 2 valid, 8 invalid",
    ]
    assert run("validate", str(source), "--operation", "lead-status", "--allow-irreversible") == 1
    out = capsys.readouterr().out
    assert "row 5" not in out
    assert "row 6" not in out


def test_a_lead_on_two_rows_far_apart_is_found_across_batches(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from bulkrunner.sending import batches

    monkeypatch.setattr(batches, "BATCH_ROWS", 2)
    source = tmp_path / "leads.csv"
    source.write_text(
        "campaign_id,email,action\n1,a@x.com,pause\n1,b@x.com,pause\n2,c@x.com,pause\n"
        "1,B@x.com,resume\n"
    )
    report = tmp_path / "r.csv"
    assert (
        run("run", str(source), "--operation", "lead-status", "--simulate", "--report", str(report))
        == 1
    )
    frame = pd.read_csv(report, dtype=str, keep_default_na=False)
    assert frame["status"].tolist() == ["succeeded", "invalid", "succeeded", "invalid"]
    assert frame["error"][1] == "email: the same email and campaign_id are in rows 2 and 4"


# --- the wire, what a row changes, refuses and undoes ------------------------------------------


def test_the_operation_is_registered_and_sends_each_action_to_the_lead_id() -> None:
    assert operation("lead-status") is LEAD_STATUS
    assert LEAD_STATUS.columns == ("email", "action", "delay_days")
    wire = Wire()
    row = {"email": "a@x.com", "lead_id": 77}
    assert LEAD_STATUS.requests(5, {**row, "action": "pause"}, wire) == [
        Request("POST", "/campaigns/5/leads/77/pause", {})
    ]
    assert LEAD_STATUS.requests(5, {**row, "action": "resume"}, wire) == [
        Request("POST", "/campaigns/5/leads/77/resume", {"resume_lead_with_delay_days": 0})
    ]
    assert LEAD_STATUS.requests(5, {**row, "action": "resume", "delay_days": 3}, wire) == [
        Request("POST", "/campaigns/5/leads/77/resume", {"resume_lead_with_delay_days": 3})
    ]
    assert LEAD_STATUS.requests(5, {**row, "action": "unsubscribe"}, wire) == [
        Request("POST", "/campaigns/5/leads/77/unsubscribe", {})  # this campaign's alone
    ]
    assert LEAD_STATUS.requests(5, {**row, "action": "remove"}, wire) == [
        Request("DELETE", "/campaigns/5/leads/77", {})
    ]
    # a dry run reads nothing: the id is named by what finds it
    (preview,) = LEAD_STATUS.requests(5, {"email": "a@x.com", "action": "pause"}, wire)
    assert preview.path == "/campaigns/5/leads/<id of a@x.com>/pause"


def campaign(**leads: tuple[int, str]) -> dict[str, Any]:
    """A campaign's state as the read stage makes it: {address: (id, status)}."""
    found = {f"{name}@x.com": LeadState(*lead) for name, lead in leads.items()}
    return {"id": 5, LEADS: found, "unread": {}}


@pytest.mark.parametrize(
    ("status", "action", "changes"),
    [
        ("STARTED", "pause", {"status": Change("STARTED", "PAUSED")}),
        ("PAUSED", "pause", {}),
        ("PAUSED", "resume", {"status": Change("PAUSED", "STARTED")}),
        ("STARTED", "resume", {}),
        ("INPROGRESS", "resume", {}),  # running: a resume leaves it as it is
        ("INPROGRESS", "pause", {"status": Change("INPROGRESS", "PAUSED")}),
        ("COMPLETED", "resume", {"status": Change("COMPLETED", "STARTED")}),
        ("PAUSED", "unsubscribe", {"status": Change("PAUSED", "UNSUBSCRIBED")}),
        ("UNSUBSCRIBED", "unsubscribe", {}),
        ("STARTED", "remove", {"status": Change("STARTED", "REMOVED")}),
    ],
)
def test_a_row_changes_the_leads_status_unless_it_already_is_as_asked(
    status: str, action: str, changes: dict[str, Change]
) -> None:
    state = campaign(a=(7, status))
    assert LEAD_STATUS.changes({"email": "a@x.com", "action": action}, state) == changes


def test_rows_the_leads_state_refuses_and_the_id_a_row_sends() -> None:
    state = campaign(a=(7, "STARTED"), u=(8, "UNSUBSCRIBED"))
    refuse = LEAD_STATUS.refuse
    assert refuse({"email": "a@x.com", "action": "pause"}, state) == ""
    assert refuse({"email": "z@x.com", "action": "remove"}, state) == (
        "no lead with this address in the campaign"
    )
    assert refuse({"email": "u@x.com", "action": "resume"}, state) == (
        "the lead is UNSUBSCRIBED in it, and an unsubscribed lead cannot be resumed"
    )
    assert refuse({"email": "u@x.com", "action": "remove"}, state) == ""
    assert refuse({"email": "a@x.com", "action": "pause"}, None).startswith(
        "its leads could not be read"
    )
    resolved = LEAD_STATUS.resolve({"email": "a@x.com", "action": "pause"}, state)
    assert resolved == {"email": "a@x.com", "action": "pause", "lead_id": 7}


@pytest.mark.parametrize(
    ("before", "after", "undo"),
    [
        ("STARTED", "PAUSED", Undo({"action": "resume"})),
        ("INPROGRESS", "PAUSED", Undo({"action": "resume"})),
        ("PAUSED", "STARTED", Undo({"action": "pause"})),
        (
            "COMPLETED",
            "STARTED",
            Undo({}, "it was COMPLETED before the run, which no lead action restores"),
        ),
        (None, "PAUSED", Undo({}, "its status before the run could not be read")),
        (
            "STARTED",
            "UNSUBSCRIBED",
            Undo(
                {},
                "the run unsubscribes it, which cannot be undone (SmartLead has no call to "
                "subscribe a lead again)",
            ),
        ),
        (
            "PAUSED",
            "REMOVED",
            Undo(
                {},
                "the run removes it, which cannot be undone (a lead added again starts its "
                "sequence over)",
            ),
        ),
    ],
)
def test_a_rollback_pauses_what_was_resumed_and_resumes_what_was_paused(
    before: str | None, after: str, undo: Undo
) -> None:
    assert LEAD_STATUS.undo({"status": Change(before, after)}) == undo
    assert LEAD_STATUS.irreversible({"status": Change(before, after)}) == (
        ["status"] if after in ("UNSUBSCRIBED", "REMOVED") else []
    )


def test_only_a_500_that_says_last_sequence_step_is_final() -> None:
    last = Answer(500, json.dumps({"error": {"code": "INTERNAL_ERROR", "message": LAST}}))
    assert LEAD_STATUS.final(last) == f"HTTP 500: INTERNAL_ERROR: {LAST} (final: not retried)"
    assert LEAD_STATUS.final(Answer(500, "Internal Server Error")) == ""
    assert LEAD_STATUS.final(Answer(503, LAST)) == ""  # only the 500 SmartLead answers so
    # the policy: the one answer final, every other 500 retried as ever
    assert classify(last, LEAD_STATUS.final).verdict is Verdict.FAILED
    assert classify(last).verdict is Verdict.RETRY  # a read, or another operation's write
    assert classify(Answer(500, "boom"), LEAD_STATUS.final).verdict is Verdict.RETRY
    step = Policy().after(last, 1, random.Random(0), Outage(None, 0.0), 0.0, LEAD_STATUS.final)
    assert (step.decision.verdict, step.delay) == (Verdict.FAILED, None)


# --- the backup holds a row per lead ------------------------------------------------------------


def test_the_backup_keeps_a_row_per_lead_and_its_first_record_of_each(tmp_path: Path) -> None:
    path = tmp_path / "r.csv.backup.parquet"
    first = {
        (5, "a@x.com"): {"status": Change("STARTED", "PAUSED")},
        (5, "b@x.com"): {"status": Change("PAUSED", "STARTED")},
        (5, "c@x.com"): {"status": Change("STARTED", "UNSUBSCRIBED")},
        (6, "a@x.com"): {"status": Change("PAUSED", "STARTED")},
    }
    recorded = record_backup(path, first, keep=False, operation=LEAD_STATUS)
    assert (recorded.campaigns, recorded.total) == (3, 3)
    assert list(recorded.unrestorable) == [(5, "c@x.com")]
    table = pd.read_parquet(path)
    assert table.drop(columns=[SET_BY_RUN]).to_dict("records") == [
        {"campaign_id": 5, "email": "a@x.com", "action": "resume"},
        {"campaign_id": 5, "email": "b@x.com", "action": "pause"},
        {"campaign_id": 6, "email": "a@x.com", "action": "pause"},
    ]
    # what the run set each lead to, for a rollback to see a later change (drift)
    assert [json.loads(each) for each in table[SET_BY_RUN]] == [
        {"status": "PAUSED"},
        {"status": "STARTED"},
        {"status": "STARTED"},
    ]
    # a later batch (or a resumed run): a lead already recorded keeps its first record, the
    # campaign's other leads stay, a new lead of the campaign is added
    later = {
        (5, "a@x.com"): {"status": Change("PAUSED", "STARTED")},
        (5, "d@x.com"): {"status": Change("STARTED", "PAUSED")},
    }
    record_backup(path, later, keep=True, operation=LEAD_STATUS)
    table = pd.read_parquet(path)
    assert [json.loads(each)["status"] for each in table[SET_BY_RUN]] == [
        "STARTED",  # a resumed run's value is what the run set last
        "STARTED",
        "STARTED",
        "PAUSED",
    ]
    assert table.drop(columns=[SET_BY_RUN]).to_dict("records") == [
        {"campaign_id": 5, "email": "a@x.com", "action": "resume"},
        {"campaign_id": 5, "email": "b@x.com", "action": "pause"},
        {"campaign_id": 6, "email": "a@x.com", "action": "pause"},
        {"campaign_id": 5, "email": "d@x.com", "action": "resume"},
    ]
    assert read_unrestorable(path) == {
        (5, "c@x.com"): "the run unsubscribes it, which cannot be undone (SmartLead has no call "
        "to subscribe a lead again)"
    }


# --- a removal whose answer was lost, tried again --------------------------------------------


async def test_a_removal_tried_again_after_a_lost_answer_and_answered_404_is_done() -> None:
    from bulkrunner.model import Row, Status
    from bulkrunner.sending.engine import Engine
    from tests.fakes import FakeClock, ScriptedSender, connection

    lost = Answer(None, transport_error="timed out after 30s", outcome_unknown=True)
    gone = Answer(404, '{"error": "Lead not found in this campaign"}')
    sender = ScriptedSender({5: [lost, gone], 6: [gone]})
    rows = [
        Row(1, 5, {"email": "a@x.com", "action": "remove", "lead_id": 7}),
        Row(2, 6, {"email": "b@x.com", "action": "pause", "lead_id": 8}),
    ]
    engine = Engine(connection(sender, FakeClock(), concurrency=1), operation=LEAD_STATUS)
    outcomes = await engine.run(rows)
    assert (outcomes[1].status, outcomes[1].attempts) == (Status.SUCCEEDED, 2)
    assert outcomes[1].error == (
        "HTTP 404: Lead not found in this campaign: not in the campaign, as the row asks; "
        "attempt 1 timed out after 30s: outcome unknown, retried"
    )
    assert outcomes[2].status is Status.FAILED  # a pause of a lead not there: not done
