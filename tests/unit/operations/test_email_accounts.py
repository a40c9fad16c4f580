"""The ``email-accounts`` operation: add and remove a campaign's sending accounts.

Units: every form of an ``add``/``remove`` cell (good and bad, each error naming its column),
the requests a row becomes, the state read in both answer shapes, what a row changes, what is
refused before sending, and the undo. End to end: the CLI against the simulator on 127.0.0.1
(run, skip-unchanged, --verify, --dry-run, rollback, --resume, retry, a job file, Parquet), with
the simulator's state read back over HTTP.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import urllib.request
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from bulkrunner.cli.app import main
from bulkrunner.config.paths import backup_path, journal_path
from bulkrunner.input.validation import validate
from bulkrunner.limits.limiter import SlidingWindowLimiter
from bulkrunner.model import Answer, Change, Rate, Row, Status
from bulkrunner.operations import operation
from bulkrunner.operations.base import Request, Wire
from bulkrunner.operations.email_accounts import EMAIL_ACCOUNTS, parse_ids
from bulkrunner.operations.fields import Vocabulary
from bulkrunner.records.backup import backup_operation, read_backup, record_backup
from bulkrunner.sending.connection import Connection
from bulkrunner.sending.plan import plan
from bulkrunner.sending.reads import read_current
from bulkrunner.sending.transport import Sender
from bulkrunner.sending.verify import MATCHES, ReadBack, verify
from bulkrunner.simulator import FaultPlan, SimulatorConfig, SimulatorThread
from tests.fakes import FakeClock, RecordingSleep, connection, rate_alone

KEY = "sk-accounts-SENTINEL-7f3e"
OP = EMAIL_ACCOUNTS
WIRE = Wire()
FAST = rate_alone("200/1")  # the simulator has no limit here: keep runs quick


@pytest.fixture(autouse=True)
def environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SMARTLEAD_API_KEY", KEY)
    monkeypatch.delenv("SMARTLEAD_BASE_URL", raising=False)


def judged(**columns: list[Any]) -> tuple[list[dict[str, Any]], list[str]]:
    """Validate a frame of ``email-accounts`` rows: (payloads of valid rows, errors by row)."""
    count = len(next(iter(columns.values())))
    frame = pd.DataFrame(
        {"campaign_id": [str(10 + n) for n in range(count)], **columns}, dtype=object
    )
    result = validate(frame, Vocabulary.DOCUMENTED, operation=OP, wire=WIRE)
    errors = [""] * count
    for rejection in result.rejections:
        errors[rejection.number - 1] = rejection.error
    return [dict(row.payload) for row in result.rows], errors


# --- cells ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cell", "ids"),
    [
        ("5", [5]),
        ("5;6", [5, 6]),
        ("5,6", [5, 6]),
        (" 5 ; 6 ; ", [5, 6]),  # spaces and a trailing separator
        ("[5, 6]", [5, 6]),
        ("6;5;6", [6, 5]),  # the order given, each once
        (5, [5]),  # a Parquet int64 column
        (5.0, [5]),  # an int64 column with nulls, read as floats
        (np.int64(7), [7]),
        ([5, 6], [5, 6]),  # a Parquet list<int64> cell
        (np.array([5, 6], dtype=np.int64), [5, 6]),
        (["5", "6"], [5, 6]),  # list<string>
        (("8",), [8]),
        ("9223372036854775807", [2**63 - 1]),
    ],
)
def test_an_id_cell_is_read_in_every_form(cell: Any, ids: list[int]) -> None:
    assert parse_ids(cell) == (ids, None)


@pytest.mark.parametrize(
    ("cell", "error"),
    [
        ("abc", "'abc' is not an email account id (a whole number)"),
        ("5;x", "'x' is not an email account id (a whole number)"),
        ("0", "0 is not an email account id (ids are whole numbers from 1)"),
        ("-3", "'-3' is not an email account id (a whole number)"),
        (-3, "-3 is not an email account id (ids are whole numbers from 1)"),
        ("5.5", "'5.5' is not an email account id (a whole number)"),
        (5.5, "5.5 is not an email account id (a whole number)"),
        (True, "True is a boolean, not an email account id"),
        ("[]", "names no email account id (leave the cell blank to change nothing)"),
        (";", "names no email account id (leave the cell blank to change nothing)"),
        ([], "names no email account id (leave the cell blank to change nothing)"),
        ([5, None], "None is not an email account id (a whole number)"),
        ("9223372036854775808", "9223372036854775808 is too large for an email account id"),
        (
            "ops@acme.example",
            "'ops@acme.example' is an email address: name the account by its id "
            "(GET /email-accounts lists them)",
        ),
    ],
)
def test_a_bad_id_cell_says_why(cell: Any, error: str) -> None:
    assert parse_ids(cell) == (None, error)


def test_validation_names_the_column_of_each_bad_cell_and_keeps_the_good_rows() -> None:
    payloads, errors = judged(
        add=["5;6", "x", None, "2", None],
        remove=[None, None, "0", "2", None],
    )
    assert payloads == [{"add": [5, 6]}]
    assert errors == [
        "",
        "add: 'x' is not an email account id (a whole number)",
        "remove: 0 is not an email account id (ids are whole numbers from 1)",
        "add, remove: email account 2 is in both (an account is either added or removed)",
        "nothing to send: every field is blank",
    ]


def test_ids_in_both_columns_are_all_named() -> None:
    _, errors = judged(add=["1;2;3"], remove=["3;2"])
    assert errors == [
        "add, remove: email accounts 2 and 3 are in both (an account is either added or removed)"
    ]


# --- requests -----------------------------------------------------------------------------------


def test_a_row_with_both_columns_adds_first_then_removes() -> None:
    requests = OP.requests(42, {"remove": [1], "add": [7, 8]}, WIRE)
    assert requests == [
        Request("POST", "/campaigns/42/email-accounts", {"email_account_ids": [7, 8]}),
        Request("DELETE", "/campaigns/42/email-accounts", {"email_account_ids": [1]}),
    ]


def test_a_row_with_one_column_is_one_request() -> None:
    assert OP.requests(1, {"add": [3]}, WIRE) == [
        Request("POST", "/campaigns/1/email-accounts", {"email_account_ids": [3]})
    ]
    assert OP.requests(1, {"remove": [4, 5]}, WIRE) == [
        Request("DELETE", "/campaigns/1/email-accounts", {"email_account_ids": [4, 5]})
    ]


def test_the_operation_is_registered_under_its_name() -> None:
    assert operation("email-accounts") is EMAIL_ACCOUNTS
    assert OP.columns == ("add", "remove")


# --- state, changes, refusals, undo ---------------------------------------------------------------


def campaign(status: str, *ids: int) -> dict[str, Any]:
    """A campaign as the preflight holds it: the list's status, the accounts read merged in."""
    return {
        "id": 1,
        "status": status,
        "email-accounts": [{"id": i, "from_email": "x"} for i in ids],
    }


def test_only_accounts_not_attached_count_as_added_and_only_attached_ones_as_removed() -> None:
    current = campaign("ACTIVE", 1, 2)
    assert OP.changes({"add": [2, 3], "remove": [1, 9]}, current) == {
        "email_accounts": Change([1, 2], [2, 3])
    }
    assert OP.changes({"add": [1]}, current) == {}  # attached already
    assert OP.changes({"remove": [9]}, current) == {}  # not attached
    assert OP.changes({"add": [2], "remove": [7]}, current) == {}  # both: unchanged


def test_a_row_an_interrupted_run_applied_is_shown_from_the_accounts_before_it() -> None:
    """Resumed, a row found as wanted whose change the backup holds (the interrupted run
    applied it): its change runs from the accounts the backup's undo puts back."""
    now = campaign("ACTIVE", 2, 5)  # the backup would remove 5 and add back 3
    undo = {"add": [3], "remove": [5]}
    assert OP.applied_changes({"add": [5], "remove": [3]}, undo, now) == {
        "email_accounts": Change([2, 3], [2, 5])
    }
    # the row as edited since changes nothing from there (an earlier version of it did)
    assert OP.applied_changes({"remove": [9]}, undo, now) == {}
    assert OP.applied_changes({"add": [5]}, undo, None) == {}  # accounts not known


def test_without_a_known_state_the_row_is_the_change() -> None:
    assert OP.changes({"add": [3], "remove": [1]}, None) == {
        "add": Change(None, [3]),
        "remove": Change(None, [1]),
    }
    # a campaign read without its accounts (or an answer that is not a list of them)
    assert OP.changes({"add": [3]}, {"id": 1, "status": "ACTIVE"}) == {"add": Change(None, [3])}
    odd = {"id": 1, "email-accounts": [{"name": "no id"}]}
    assert OP.changes({"add": [3]}, odd) == {"add": Change(None, [3])}


@pytest.mark.parametrize("accounts", [[{"name": "no id"}], [{"id": "x"}], [{"id": 0}], [None]])
async def test_accounts_read_back_without_usable_ids_refuse_the_row(accounts: list[Any]) -> None:
    sender = AccountsSender(
        [{"id": 11, "status": "PAUSED"}], {11: Answer(200, json.dumps([{"id": 2}, *accounts]))}
    )
    current = await read_current(reading(sender), {11}, operation=OP)
    planned = plan([Row(1, 11, {"add": [3]})], current, True, require_backup=True, operation=OP)
    assert planned.send == []
    assert planned.refused[1].error == (
        "campaign 11: its email accounts were read but are not a list of accounts with numeric "
        "ids, so the change could neither be checked nor backed up; not sent"
    )


def test_accounts_are_known_by_id_as_number_text_or_email_account_id() -> None:
    current = {"id": 1, "email-accounts": [{"id": "4"}, {"email_account_id": 5}, 6]}
    assert OP.state(current) == {"add": [4, 5, 6]}
    assert OP.changes({"add": [4, 5, 6]}, current) == {}


def test_removing_the_last_accounts_of_an_active_campaign_is_refused() -> None:
    reason = OP.refuse({"remove": [1, 2]}, campaign("ACTIVE", 1, 2))
    assert reason == (
        "removing email accounts 1 and 2 would leave the ACTIVE campaign with no sending "
        "account, which SmartLead refuses (add another in the same row, or pause the campaign "
        "first)"
    )
    assert OP.refuse({"remove": [1]}, campaign("active", 1)).startswith(
        "removing email account 1 would leave"
    )


@pytest.mark.parametrize(
    ("payload", "current"),
    [
        ({"remove": [1], "add": [3]}, campaign("ACTIVE", 1)),  # its adds count
        ({"remove": [1]}, campaign("ACTIVE", 1, 2)),  # one is left
        ({"remove": [1]}, campaign("PAUSED", 1)),  # not active
        ({"remove": [1]}, campaign("DRAFTED", 1)),
        ({"remove": [5]}, campaign("ACTIVE")),  # removes nothing attached: unchanged, not refused
        ({"remove": [1]}, None),  # state unknown: the server decides
        ({"add": [1]}, campaign("ACTIVE")),
    ],
)
def test_other_removals_are_not_refused(payload: dict[str, Any], current: Any) -> None:
    assert OP.refuse(payload, current) == ""


def test_undo_removes_what_was_added_and_adds_back_what_was_removed() -> None:
    undo = OP.undo({"email_accounts": Change([1, 2, 5], [2, 3, 4])})
    assert undo.values == {"add": [1, 5], "remove": [3, 4]}
    assert undo.reason == ""
    assert OP.undo({"email_accounts": Change([1], [1, 2])}).values == {"remove": [2]}
    unknown = OP.undo({"add": Change(None, [3])})
    assert unknown.values == {}
    assert "not known" in unknown.reason


def test_the_backup_holds_the_undo_as_typed_lists(tmp_path: Path) -> None:
    path = tmp_path / "r.csv.backup.parquet"
    changes = {
        7: {"email_accounts": Change([1, 2], [2, 3])},
        8: {"email_accounts": Change([4], [4, 5])},
    }
    recorded = record_backup(path, changes, keep=False, operation=OP)
    assert (recorded.campaigns, recorded.unknown) == (2, 0)
    assert read_backup(path) == {7: {"add": [1], "remove": [3]}, 8: {"remove": [5]}}
    schema = pq.read_schema(path)
    assert schema.field("add").type == pa.list_(pa.int64())
    assert backup_operation(path) == "email-accounts"


def test_a_resumed_runs_changes_are_added_to_the_ledger_account_by_account(tmp_path: Path) -> None:
    """Each id keeps the state it had before the first run that touched it; ids a later run
    touches first are added, whichever direction (the lists are changes, not values)."""
    path = tmp_path / "r.csv.backup.parquet"
    record_backup(path, {7: {"email_accounts": Change([1, 2], [2, 3])}}, keep=False, operation=OP)
    # the input edited and resumed: 7 now also gains 4 and loses 2; 3 goes again, 1 comes back
    later = {7: {"email_accounts": Change([2, 3], [1, 4])}}
    record_backup(path, later, keep=True, operation=OP)
    # put back: 1 and 2 (attached before the first run), away: 3 and 4 (not attached then)
    assert read_backup(path) == {7: {"add": [1, 2], "remove": [3, 4]}}
    # any number of resumptions later, an id keeps the direction it was first recorded with
    record_backup(path, {7: {"email_accounts": Change([1, 4], [3])}}, keep=True, operation=OP)
    assert read_backup(path) == {7: {"add": [1, 2], "remove": [3, 4]}}


# --- reading the state ------------------------------------------------------------------------


class AccountsSender:
    """Answers the list call and each campaign's ``/email-accounts`` read; records reads."""

    def __init__(self, listing: list[dict[str, Any]], accounts: Mapping[int, Answer]) -> None:
        self.listing = listing
        self.accounts = accounts
        self.paths: list[str] = []

    async def send(self, request: Request) -> Answer:
        raise AssertionError("nothing is sent while reading")

    async def get_campaign(self, campaign_id: int) -> Answer:
        self.paths.append(f"/campaigns/{campaign_id}")
        return Answer(200, json.dumps(next(c for c in self.listing if c["id"] == campaign_id)))

    async def list_campaigns(self) -> Answer:
        self.paths.append("/campaigns/")
        await asyncio.sleep(0)
        return Answer(200, json.dumps(self.listing))

    async def read(self, path: str) -> Answer:
        self.paths.append(path)
        await asyncio.sleep(0)
        return self.accounts[int(path.split("/")[2])]


def reading(sender: Sender) -> Connection:
    return connection(sender, FakeClock(), RecordingSleep(), max_attempts=3)


async def test_the_state_is_read_in_both_answer_shapes_and_planned() -> None:
    bare = [{"id": 3, "from_email": "a@x"}]
    wrapped = {"data": [{"id": 4}, {"id": 5}]}
    sender = AccountsSender(
        [
            {"id": 11, "name": "A", "status": "ACTIVE", "sending_limit": 5},
            {"id": 12, "name": "B", "status": "PAUSED"},
        ],
        {11: Answer(200, json.dumps(bare)), 12: Answer(200, json.dumps(wrapped))},
    )
    current = await read_current(reading(sender), {11, 12}, operation=OP)
    assert sorted(sender.paths) == [
        "/campaigns/",
        "/campaigns/11/email-accounts",
        "/campaigns/12/email-accounts",
    ]
    assert current.campaigns[11] == {"id": 11, "status": "ACTIVE", "email-accounts": bare}
    assert OP.state(current.campaigns[12]) == {"add": [4, 5]}
    rows = [
        Row(1, 11, {"remove": [3]}),  # the last account of an active campaign
        Row(2, 12, {"add": [4], "remove": [9]}),  # nothing to change
        Row(3, 12, {"remove": [4, 5]}),  # a paused campaign may be left without accounts
    ]
    planned = plan(rows, current, skip=True, require_backup=True, operation=OP)
    assert planned.refused[1].status is Status.FAILED
    assert (
        "campaign 11: removing email account 3 would leave the ACTIVE" in planned.refused[1].error
    )
    assert planned.unchanged == {2: planned.unchanged[2]}
    assert [row.number for row in planned.send] == [3]
    assert planned.changes[3] == {"email_accounts": Change([4, 5], [])}


async def test_a_campaign_whose_accounts_cannot_be_read_is_not_sent() -> None:
    sender = AccountsSender(
        [{"id": 11, "status": "ACTIVE"}], {11: Answer(200, '{"unexpected": "shape"}')}
    )
    current = await read_current(reading(sender), {11}, operation=OP)
    assert current.unreadable == {
        11: "its email-accounts could not be read (the answer is not a list of email-accounts)"
    }
    planned = plan([Row(1, 11, {"add": [2]})], current, True, require_backup=True, operation=OP)
    assert planned.send == []
    assert "could not be backed up" in planned.refused[1].error


async def test_verify_reads_the_accounts_back_and_names_a_difference() -> None:
    sender = AccountsSender(
        [{"id": 11, "status": "ACTIVE"}, {"id": 12, "status": "ACTIVE"}],
        {11: Answer(200, json.dumps([{"id": 1}, {"id": 5}])), 12: Answer(200, '[{"id": 1}]')},
    )
    rows = [Row(1, 11, {"add": [5]}), Row(2, 12, {"add": [5], "remove": [1]})]
    through = Connection(sender, SlidingWindowLimiter([Rate(100, 1)]), concurrency=1)
    found = await verify(through, rows, operation=OP)
    assert found == {1: MATCHES, 2: ReadBack(False, "email_accounts: sent [5], server has [1]")}
    assert "/campaigns/12/email-accounts" in sender.paths


# --- end to end against the simulator -------------------------------------------------------------


def attached(sim: SimulatorThread, campaign_id: int) -> list[int]:
    """The campaign's accounts as the simulator answers ``GET .../email-accounts`` (loopback)."""
    url = f"{sim.base_url}/campaigns/{campaign_id}/email-accounts?api_key={KEY}"
    with urllib.request.urlopen(url, timeout=10) as answer:
        return sorted(account["id"] for account in json.loads(answer.read()))


def simulator(**options: Any) -> SimulatorThread:
    return SimulatorThread(SimulatorConfig(api_key=KEY, campaigns=set(range(1, 30)), **options))


def run(*argv: str) -> int:
    return main(list(argv))


def rolled_back(report: Path, undo: Path, base_url: str) -> int:
    """``bulkrunner rollback`` of ``report``'s run, reporting to ``undo``."""
    return run("rollback", str(report), "--report", str(undo), "--base-url", base_url, *FAST)


def report_of(path: Path) -> pd.DataFrame:
    return pd.read_csv(path, dtype=object, keep_default_na=False)


# Seeded campaigns (simulator/campaigns.py): 1 ACTIVE [2]; 2 ACTIVE [3]; 3 PAUSED [4, 21];
# 6 ACTIVE [7, 24]; 9 ACTIVE [10, 27].
PLAN = (
    "campaign_id,add,remove\n"
    "1,5;6,\n"  # adds two
    "2,,3\n"  # the last account of an active campaign: refused
    "3,7,4;22\n"  # adds 7, removes 4 (22 is not attached)
    "6,9,7\n"  # swaps the only... one of two accounts of an active campaign
    "9,10,\n"  # already attached: unchanged
)


def test_run_skip_unchanged_verify_and_rollback_against_the_simulator(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = tmp_path / "plan.csv"
    source.write_text(PLAN)
    first, second, undone = (tmp_path / name for name in ("1.csv", "2.csv", "undo.csv"))
    with simulator() as sim:
        before = {cid: attached(sim, cid) for cid in (1, 2, 3, 6, 9)}
        assert before == {1: [2], 2: [3], 3: [4, 21], 6: [7, 24], 9: [10, 27]}
        code = run(
            "run",
            str(source),
            "--operation",
            "email-accounts",
            "--report",
            str(first),
            "--base-url",
            sim.base_url,
            "--verify",
            *FAST,
        )
        assert code == 1  # row 2 refused
        refused = "1 row not sent: the campaign does not exist, could not be read, or its state"
        assert refused in capsys.readouterr().err
        after = {cid: attached(sim, cid) for cid in (1, 2, 3, 6, 9)}
        assert after == {1: [2, 5, 6], 2: [3], 3: [7, 21], 6: [9, 24], 9: [10, 27]}
        writes = [(r.method, r.campaign_id, r.status) for r in sim.state.writes("email-accounts")]
        # every write answered 200, campaign 2 got none, a row's add went before its remove
        assert {status for *_, status in writes} == {200}
        assert 2 not in {cid for _, cid, _ in writes}
        for cid in (3, 6):
            assert [m for m, c, _ in writes if c == cid] == ["POST", "DELETE"]
        sent = len(writes)

        again = run(
            "run",
            str(source),
            "--operation",
            "email-accounts",
            "--report",
            str(second),
            "--base-url",
            sim.base_url,
            *FAST,
        )
        assert again == 1
        assert len(sim.state.writes()) == sent  # the second run sent nothing

        assert (
            run(
                "rollback",
                str(first),
                "--report",
                str(undone),
                "--base-url",
                sim.base_url,
                "--verify",
                *FAST,
            )
            == 0
        )
        assert {cid: attached(sim, cid) for cid in (1, 2, 3, 6, 9)} == before

    report = report_of(first)
    assert report["status"].tolist() == [
        "succeeded",
        "failed",
        "succeeded",
        "succeeded",
        "unchanged",
    ]
    assert "would leave the ACTIVE campaign with no sending account" in report["error"][1]
    assert json.loads(report["before"][2]) == {"email_accounts": [4, 21]}
    assert json.loads(report["after"][2]) == {"email_accounts": [7, 21]}
    assert report["attempts"].tolist()[2:4] == ["2", "2"]  # two requests for two columns
    assert report_of(second)["status"].tolist() == [
        "unchanged",
        "failed",
        "unchanged",
        "unchanged",
        "unchanged",
    ]
    assert read_backup(backup_path(first)) == {
        1: {"remove": [5, 6]},
        3: {"add": [4], "remove": [7]},
        6: {"add": [7], "remove": [9]},
    }
    assert set(report_of(undone)["status"]) == {"succeeded"}


def test_a_dry_run_previews_both_requests_and_sends_nothing(tmp_path: Path) -> None:
    source = tmp_path / "plan.csv"
    source.write_text("campaign_id,add,remove\n6,9,7\n8,x,\n")
    out = tmp_path / "dry.csv"
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        code = run(
            "run", str(source), "--operation", "email-accounts", "--dry-run", "--report", str(out)
        )
    assert code == 1  # one invalid row
    text = printed.getvalue()
    assert (
        'row 1: POST /campaigns/6/email-accounts {"email_account_ids": [9]}; '
        'DELETE /campaigns/6/email-accounts {"email_account_ids": [7]}'
    ) in text
    assert report_of(out)["error"].tolist() == [
        "",
        "add: 'x' is not an email account id (a whole number)",
    ]


def test_validate_refuses_the_columns_under_another_operation(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = tmp_path / "plan.csv"
    source.write_text("campaign_id,add\n6,9\n")
    assert run("validate", str(source)) == 2
    error = capsys.readouterr().err
    assert "column 'add' belongs to the email-accounts operation" in error
    assert "Traceback" not in error
    assert run("validate", str(source), "--operation", "email-accounts") == 0


def test_a_row_whose_remove_fails_after_its_add_is_still_rolled_back(tmp_path: Path) -> None:
    source = tmp_path / "plan.csv"
    # account 99 is not in the simulated account (1..50): the DELETE is refused with a 400
    source.write_text("campaign_id,add,remove\n6,11,99\n")
    report = tmp_path / "r.csv"
    with simulator() as sim:
        code = run(
            "run",
            str(source),
            "--operation",
            "email-accounts",
            "--report",
            str(report),
            "--base-url",
            sim.base_url,
            *FAST,
        )
        assert code == 1
        assert attached(sim, 6) == [7, 11, 24]  # the add went through
        assert rolled_back(report, tmp_path / "u.csv", sim.base_url) == 0
        assert attached(sim, 6) == [7, 24]
    row = report_of(report).iloc[0]
    assert (row["status"], row["http_status"], row["attempts"]) == ("failed", "400", "2")
    assert "email account 99 not found" in row["error"]


def test_resume_after_an_abort_between_a_rows_two_requests(tmp_path: Path) -> None:
    source = tmp_path / "plan.csv"
    source.write_text("campaign_id,add,remove\n1,5,\n3,7,4\n6,9,7\n")
    report = tmp_path / "r.csv"
    # campaign 3's add goes through, its remove draws a 429 asking for 1000 s: the run stops
    faults = FaultPlan(scripted={3: ["ok", "429"]}, retry_after=1000)
    with simulator(faults=faults) as sim:
        base = [
            "--operation",
            "email-accounts",
            "--report",
            str(report),
            "--base-url",
            sim.base_url,
            "--concurrency",
            "1",
            "--max-wait",
            "5",
            *FAST,
        ]
        assert run("run", str(source), *base) == 3
        assert journal_path(report).exists()
        assert attached(sim, 3) == [4, 7, 21]  # half of row 2 applied
        assert report_of(report)["status"].tolist()[1] == "failed"
        assert run("run", str(source), *base, "--resume") == 0
        assert {cid: attached(sim, cid) for cid in (1, 3, 6)} == {1: [2, 5], 3: [7, 21], 6: [9, 24]}
        posts_to_1 = [r for r in sim.state.writes("email-accounts") if r.campaign_id == 1]
        assert len(posts_to_1) == 1  # row 1 succeeded before the stop: not sent again
        # the backup kept what the first run recorded: a rollback restores the original state
        assert rolled_back(report, tmp_path / "u.csv", sim.base_url) == 0
        assert {cid: attached(sim, cid) for cid in (1, 3, 6)} == {1: [2], 3: [4, 21], 6: [7, 24]}
    assert report_of(report)["status"].tolist() == ["succeeded"] * 3


def test_kill_edit_resume_then_rollback_removes_what_every_run_attached(tmp_path: Path) -> None:
    """Issue 19: the resumed run's additions were not recorded (the ledger kept the first run's
    list), so a rollback left them attached, and exited 0."""
    source = tmp_path / "plan.csv"
    source.write_text("campaign_id,add,remove\n1,5,\n3,8,\n6,9,7\n")
    report = tmp_path / "r.csv"
    # row 1 is applied; row 2 draws a 429 asking for 1000 s: the run stops
    faults = FaultPlan(scripted={3: ["429"]}, retry_after=1000)
    with simulator(faults=faults) as sim:
        start = {cid: attached(sim, cid) for cid in (1, 3, 6)}
        base = [
            "--operation",
            "email-accounts",
            "--report",
            str(report),
            "--base-url",
            sim.base_url,
            "--concurrency",
            "1",
            "--max-wait",
            "5",
            *FAST,
        ]
        assert run("run", str(source), *base) == 3
        assert attached(sim, 1) == [2, 5]
        # the input edited before resuming: campaign 1 gets 6 too, campaign 6 keeps 7
        source.write_text("campaign_id,add,remove\n1,5;6,\n3,8,\n6,9,\n")
        assert run("run", str(source), *base, "--resume") == 0
        assert {cid: attached(sim, cid) for cid in (1, 3, 6)} == {
            1: [2, 5, 6],
            3: [4, 8, 21],
            6: [7, 9, 24],
        }
        assert rolled_back(report, tmp_path / "u.csv", sim.base_url) == 0
        assert {cid: attached(sim, cid) for cid in (1, 3, 6)} == start
    assert read_backup(backup_path(report)) == {
        1: {"remove": [5, 6]},
        3: {"remove": [8]},
        6: {"add": [7], "remove": [9]},  # the first run was about to remove 7: kept, harmless
    }


def test_retry_resends_a_failed_row(tmp_path: Path) -> None:
    source = tmp_path / "plan.csv"
    source.write_text("campaign_id,add,remove\n1,5,\n6,9,7\n")
    report = tmp_path / "r.csv"
    with simulator(faults=FaultPlan(scripted={6: ["500"]})) as sim:
        common = ["--operation", "email-accounts", "--base-url", sim.base_url, *FAST]
        assert run("run", str(source), "--report", str(report), "--max-attempts", "1", *common) == 1
        assert attached(sim, 6) == [7, 24]
        retried = tmp_path / "retry.csv"
        assert run("retry", str(report), "--report", str(retried), *common) == 0
        assert attached(sim, 6) == [9, 24]
    assert report_of(retried)[["row", "status"]].values.tolist() == [["2", "succeeded"]]


def test_a_job_file_names_the_operation(tmp_path: Path) -> None:
    (tmp_path / "plan.csv").write_text("campaign_id,add\n1,5\n")
    with simulator() as sim:
        job = tmp_path / "accounts.toml"
        job.write_text(
            'input = "plan.csv"\nreport = "out.csv"\noperation = "email-accounts"\n'
            f'base_url = "{sim.base_url}"\nrate = ["200/1"]\n'
        )
        assert run("run", str(job)) == 0
        assert attached(sim, 1) == [2, 5]
    assert report_of(tmp_path / "out.csv")["status"].tolist() == ["succeeded"]


def test_a_parquet_input_with_list_columns_runs(tmp_path: Path) -> None:
    source = tmp_path / "plan.parquet"
    table = pa.table(
        {
            "campaign_id": pa.array([1, 3], pa.int64()),
            "add": pa.array([[5, 6], None], pa.list_(pa.int64())),
            "remove": pa.array([None, ["4"]], pa.list_(pa.string())),
        }
    )
    pq.write_table(table, source)
    with simulator() as sim:
        code = run(
            "run",
            str(source),
            "--operation",
            "email-accounts",
            "--report",
            str(tmp_path / "r.csv"),
            "--base-url",
            sim.base_url,
            *FAST,
        )
        assert code == 0
        assert (attached(sim, 1), attached(sim, 3)) == ([2, 5, 6], [21])
