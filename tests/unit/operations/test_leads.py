"""The ``leads`` operation's parts, without a network: its cells, the upload body and how rows go
together into requests, what each form of the answer says of each lead (``lead_uploads``), the
lead capacity, the campaign's leads as read, the suppression list, the same lead twice in a
file, custom fields under their headers as written, and the backup's ledger of the leads added.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from bulkrunner.errors import UsageError
from bulkrunner.input.custom_fields import as_read, custom_columns
from bulkrunner.input.duplicates import first_rows, lead_keys
from bulkrunner.input.loading import read_input
from bulkrunner.input.suppression import Suppression, suppression_of
from bulkrunner.input.validation import validate
from bulkrunner.model import Answer, Numbering, Outcome, Row, Status
from bulkrunner.operations import fitting, operation
from bulkrunner.operations.base import Said, Wire
from bulkrunner.operations.fields import Vocabulary
from bulkrunner.operations.lead_removal import LEAD_REMOVAL
from bulkrunner.operations.lead_uploads import (
    CAUSES,
    SKIPPED,
    UNCOUNTED,
    UNSAID,
    LeadCapacity,
    attribute_leads,
    parse_upload,
)
from bulkrunner.operations.leads import LEADS, LeadIndex, parse_custom, parse_email, parse_text
from bulkrunner.records import lead_ledger
from bulkrunner.sending.engine import _maybe_applied

EMAILS = ["a@x.com", "b@x.com", "c@x.com", "d@x.com"]
NUMBERS = [11, 12, 13, 14]


def rows(campaign: int, *emails: str, first: int = 1) -> list[Row]:
    return [Row(first + i, campaign, {"email": email}) for i, email in enumerate(emails)]


def answer(**body: Any) -> Answer:
    return Answer(200, json.dumps(body))


def detailed(sent: int, added: int, **counts: Any) -> Answer:
    """A detailed answer, upload_count counting the leads added (as the simulator's default)."""
    return answer(ok=True, upload_count=added, total_leads=sent, **counts)


# --- cells -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cell", "expected"),
    [
        (" Ada@Acme.com ", ("Ada@Acme.com", None)),
        ("a.b+tag@mail.example.co.uk", ("a.b+tag@mail.example.co.uk", None)),
        ("not-an-address", (None, "'not-an-address' is not an email address")),
        ("a@b", (None, "'a@b' is not an email address")),
        ("a..b@x.com", (None, "'a..b@x.com' is not an email address")),
        ("a@x.com b@x.com", (None, "'a@x.com b@x.com' is not an email address")),
        (["a@x.com"], (None, "a list is not an email address")),
    ],
)
def test_an_address_is_checked_before_sending(cell: object, expected: tuple[Any, Any]) -> None:
    assert parse_email(cell) == expected


@pytest.mark.parametrize(
    ("cell", "value"),
    [("SaaS", "SaaS"), (" spaced ", " spaced "), (12, 12), (12.0, 12), (2.5, 2.5), (True, "true")],
)
def test_a_custom_field_is_text_as_written_or_a_number(cell: object, value: object) -> None:
    assert parse_custom(cell) == (value, None)


@pytest.mark.parametrize("whole", [2**53 + 1, 1234567890123456789, 2**63 - 1, -(2**63), 2**64 - 1])
def test_a_parquet_whole_number_is_sent_as_it_is_not_through_a_float(whole: int) -> None:
    """A CRM's 19-digit id in an int64 column: 1234567890123456789 went as ...768."""
    kind = np.uint64 if whole >= 2**63 else np.int64
    for cell in (kind(whole), whole):
        assert parse_custom(cell) == (whole, None)
        assert parse_text(cell) == (str(whole), None)


# --- requests ----------------------------------------------------------------------------------


def test_a_campaigns_rows_go_together_a_hundred_to_a_request_by_default() -> None:
    sent = [*rows(5, *(f"l{i}@x.com" for i in range(250))), *rows(6, "z@x.com", first=300)]
    groups = LEADS.groups(sent, Wire())
    assert [len(group) for group in groups] == [100, 100, 50, 1]
    assert {row.campaign_id for row in groups[-1]} == {6}
    assert [len(g) for g in LEADS.groups(sent, Wire(leads_per_request=400))] == [250, 1]


def test_an_upload_carries_each_lead_its_custom_fields_and_the_settings() -> None:
    payloads: list[dict[str, Any]] = [
        {"email": "a@x.com", "first_name": "Ada", "Industry": "SaaS", "Size": 12},
        {"email": "b@x.com"},
    ]
    group = [Row(n + 1, 7, p) for n, p in enumerate(payloads)]
    wire = Wire(lead_settings=(("ignore_global_block_list", True),))
    (request,) = LEADS.group_requests(group, wire)
    assert (request.method, request.path) == ("POST", "/campaigns/7/leads")
    assert request.body == {
        "lead_list": [
            {
                "email": "a@x.com",
                "first_name": "Ada",
                "custom_fields": {"Industry": "SaaS", "Size": 12},
            },
            {"email": "b@x.com"},
        ],
        "settings": {
            "ignore_global_block_list": True,
            "ignore_unsubscribe_list": False,
            "ignore_duplicate_leads_in_other_campaign": False,
        },
    }


def test_every_other_column_is_a_custom_field_but_the_account_and_the_kept_ones() -> None:
    frame = pd.DataFrame(
        {
            "campaign_id": ["5"],
            "email": ["a@x.com"],
            "Industry": ["SaaS"],
            "status": ["hot"],  # another operation's column name: a custom field here
            "account": ["main"],
            "notes": ["mine"],
        }
    )
    wire = Wire(kept=frozenset({"notes"}))
    (row,) = validate(frame, Vocabulary.DOCUMENTED, operation=LEADS, wire=wire).rows
    assert row.payload == {"email": "a@x.com", "Industry": "SaaS", "status": "hot"}
    assert custom_columns(list(frame.columns), LEADS, ["notes"]) == ["Industry", "status"]


def test_a_custom_fields_header_is_kept_as_written() -> None:
    raw = ["Campaign ID", "E-mail", "First Name", "Status", "Industry"]
    canonical = ["campaign_id", "email", "first_name", "status", "Industry"]
    assert as_read(raw, canonical, LEADS) == [
        "campaign_id",
        "email",
        "first_name",
        "Status",  # not the status operation's column: sent as the user wrote it
        "Industry",
    ]
    assert as_read(raw, canonical, operation("settings")) == canonical


def test_a_file_of_leads_is_read_with_its_custom_fields_and_says_which(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    source = tmp_path / "leads.csv"
    source.write_text("Campaign ID,Email,Status,Compnay_Name\n5,a@x.com,hot,Acme\n")
    with caplog.at_level("INFO", logger="bulkrunner"):
        frame, _ = read_input(source, LEADS)
    assert list(frame.columns) == ["campaign_id", "email", "Status", "Compnay_Name"]
    said = [r.getMessage() for r in caplog.records if "custom fields" in r.getMessage()]
    assert said == [
        f"{source}: sending 2 columns as custom fields: Status, Compnay_Name (did you mean "
        "company_name?) (--keep-columns keeps a column unsent)"
    ]


def test_a_leads_file_needs_an_email_column(tmp_path: Path) -> None:
    source = tmp_path / "leads.csv"
    source.write_text("campaign_id,address\n5,a@x.com\n")
    with pytest.raises(UsageError, match="no 'email' column"):
        read_input(source, LEADS)


def test_a_campaign_on_many_rows_is_no_error_for_leads() -> None:
    frame = pd.DataFrame({"campaign_id": ["5", "5"], "email": ["a@x.com", "b@x.com"]})
    checked = validate(frame, Vocabulary.DOCUMENTED, operation=LEADS, wire=Wire())
    assert [row.number for row in checked.rows] == [1, 2]
    assert checked.rejections == ()


def test_a_report_of_removals_is_retried_as_removals_not_as_an_upload() -> None:
    assert fitting(["campaign_id", "email", "lead_id"], "settings") == "lead-removal"
    assert fitting(["campaign_id", "email", "first_name", "Industry"], "settings") == "leads"


# --- the answer: the detailed form ----------------------------------------------------------


def test_an_answer_that_every_lead_went_in_makes_each_succeeded() -> None:
    said = attribute_leads(NUMBERS, EMAILS, detailed(4, 4), read_first=True)
    assert said == dict.fromkeys(NUMBERS, "")


@pytest.mark.parametrize("added_in", ["upload_count", "total_leads"])
def test_either_field_may_count_the_leads_added(added_in: str) -> None:
    other = "total_leads" if added_in == "upload_count" else "upload_count"
    body = {added_in: 3, other: 4, "block_count": 1}
    said = attribute_leads(NUMBERS, EMAILS, answer(**body), read_first=True)
    reason = f"not added: {CAUSES['blocked']}"
    assert said == dict.fromkeys(NUMBERS, Said(None, reason))  # read back: which one?


def test_counts_that_do_not_add_up_are_not_trusted() -> None:
    body = {"upload_count": 4, "total_leads": 4, "block_count": 1}
    said = attribute_leads(NUMBERS, EMAILS, answer(**body), read_first=True)
    assert said == dict.fromkeys(NUMBERS, Said(None, UNCOUNTED))


def test_the_addresses_the_answer_names_fail_with_the_servers_reason() -> None:
    body = {
        "invalid_email_count": 1,
        "invalid_emails": ["A@x.com"],
        "unsubscribed_leads": ["b@X.com"],
    }
    said = attribute_leads(NUMBERS, EMAILS, detailed(4, 2, **body), read_first=True)
    assert said == {
        11: f"not added: {CAUSES['invalid']} (invalid_emails)",
        12: f"not added: {CAUSES['unsubscribed']}",
        13: "",
        14: "",
    }


def test_leads_counted_but_not_named_are_read_back_with_every_reason_counted() -> None:
    body = {"block_count": 1, "bounce_count": 1, "duplicate_count": 1}
    (said,) = set(attribute_leads(NUMBERS, EMAILS, detailed(4, 1, **body), True).values())
    assert isinstance(said, Said)
    assert (said.status, said.present, said.absent) == (None, Status.SUCCEEDED, Status.FAILED)
    assert said.error == (
        "not added: refused by SmartLead; this request's answer counts 1 lead "
        f"{CAUSES['blocked']}; 1 lead {CAUSES['bounced']}; 1 lead {CAUSES['elsewhere']}, "
        "without saying which"
    )


def test_when_none_went_in_each_is_known_refused_without_a_read() -> None:
    said = attribute_leads(NUMBERS, EMAILS, detailed(4, 0, block_count=4), read_first=True)
    assert said == dict.fromkeys(NUMBERS, Said(Status.FAILED, f"not added: {CAUSES['blocked']}"))


def test_leads_already_in_the_campaign_are_unchanged() -> None:
    body = {"already_added_to_campaign": 4}
    said = attribute_leads(NUMBERS, EMAILS, detailed(4, 0, **body), read_first=True)
    assert {s.status for s in said.values() if isinstance(s, Said)} == {Status.UNCHANGED}
    # some there, some added: a lead the campaign holds now is not counted as added
    mixed = attribute_leads(NUMBERS, EMAILS, detailed(4, 2, already_added_to_campaign=2), True)
    assert {s.present for s in mixed.values() if isinstance(s, Said)} == {Status.UNCHANGED}


def test_leads_the_capacity_stopped_are_not_attempted() -> None:
    body = {"is_lead_limit_exhausted": True, "lead_import_stopped_count": 4}
    said = attribute_leads(NUMBERS, EMAILS, detailed(4, 0, **body), read_first=True)
    reason = f"not added: {CAUSES['capacity']}"
    assert said == dict.fromkeys(NUMBERS, Said(Status.NOT_ATTEMPTED, reason))
    partly = attribute_leads(NUMBERS, EMAILS, detailed(4, 2, lead_import_stopped_count=2), True)
    assert set(partly.values()) == {Said(None, reason, absent=Status.NOT_ATTEMPTED)}


@pytest.mark.parametrize("body", ['{"ok": true}', "success", '{"data": {}}'])
def test_an_answer_that_says_nothing_of_the_leads_is_read_back(body: str) -> None:
    said = attribute_leads(NUMBERS, EMAILS, Answer(200, body), read_first=True)
    assert said == dict.fromkeys(NUMBERS, Said(None, UNSAID))


# --- the answer: counts only --------------------------------------------------------------------


def test_counts_only_every_lead_added() -> None:
    said = attribute_leads(NUMBERS, EMAILS, answer(added_count=4, skipped_count=0), True)
    assert said == dict.fromkeys(NUMBERS, "")


def test_counts_only_some_skipped_are_read_back() -> None:
    said = attribute_leads(NUMBERS, EMAILS, answer(added_count=3, skipped_count=1), True)
    assert said == dict.fromkeys(NUMBERS, Said(None, SKIPPED))


def test_counts_only_none_added_of_leads_read_absent_first_each_failed_unread() -> None:
    said = attribute_leads(NUMBERS, EMAILS, answer(added_count=0, skipped_count=4), True)
    assert said == dict.fromkeys(NUMBERS, SKIPPED)


def test_without_reading_first_a_lead_found_after_the_upload_is_not_claimed_added() -> None:
    said = attribute_leads(NUMBERS, EMAILS, answer(added_count=1, skipped_count=3), False)
    (hint,) = set(said.values())
    assert isinstance(hint, Said)
    assert hint.present is Status.UNCHANGED
    assert "not read first" in hint.note


def test_after_a_lost_answer_a_refused_or_unchanged_row_is_read_back() -> None:
    """The answer to a retry says "already in the campaign": the attempt whose answer was
    lost added it. Read back, it ends succeeded if the campaign holds it."""
    assert _maybe_applied("refused") == Said(None, "refused")
    unchanged = _maybe_applied(Said(Status.UNCHANGED, "already"))
    assert unchanged == Said(None, "already", absent=Status.UNCHANGED)
    assert _maybe_applied(Said(None, "x", present=Status.UNCHANGED, note="n")) == Said(None, "x")
    assert _maybe_applied("") == ""


# --- the lead capacity --------------------------------------------------------------------------


def test_an_exhausted_capacity_stops_the_run_at_once() -> None:
    judge = LeadCapacity(read_first=True)
    row = Row(1, 5, {"email": "a@x.com"})
    assert judge(row, detailed(4, 4), "") is None
    said = judge(row, detailed(4, 1, is_lead_limit_exhausted=True), "")
    assert said is not None
    assert "lead capacity is used up" in said
    assert "--resume" in said


def test_counts_only_requests_that_add_none_in_a_row_stop_the_run() -> None:
    judge = LeadCapacity(read_first=True)
    row = Row(1, 5, {"email": "a@x.com"})
    assert judge(row, answer(added_count=0, skipped_count=1), "") is None  # a lone refusal
    assert judge(row, answer(added_count=1, skipped_count=0), "") is None  # starts again
    assert judge(row, answer(added_count=0, skipped_count=2), "") is None
    said = judge(row, answer(added_count=0, skipped_count=1), "")
    assert said is not None
    assert "added none of their 3 leads" in said
    # without reading the campaigns first, skipped leads may have been there already
    unread = LeadCapacity(read_first=False)
    assert unread(row, answer(added_count=0, skipped_count=100), "") is None


# --- the campaign's leads as read -------------------------------------------------------------


def test_a_campaigns_leads_are_kept_as_addresses_and_ids() -> None:
    index = LeadIndex()
    page = [
        {"lead": {"id": 7, "email": "Ada@X.com"}},
        {"lead": {"id": "8", "email": "b@x.com"}},
        {"lead": {"email": "c@x.com"}},
        {"lead": {"id": 9}},  # no address: not a lead
        "junk",
    ]
    assert index.add(page) == 3
    assert ("ada@x.com" in index, "ADA@x.com " in index, "z@x.com" in index) == (True, True, False)
    assert [index.lead_id(e) for e in ("ada@x.com", "b@x.com", "c@x.com")] == [7, 8, None]
    campaign = {"id": 5, "leads": index}
    assert LEADS.changes({"email": "ada@x.com"}, campaign) == {}
    assert list(LEADS.changes({"email": "new@x.com"}, campaign)) == ["email"]


def test_a_removal_takes_the_id_the_campaign_shows_and_leaves_a_lead_added_again() -> None:
    index = LeadIndex({"a@x.com": 7, "b@x.com": 8})
    campaign = {"id": 5, "leads": index}
    row = Row(1, 5, {"email": "a@x.com"})
    assert LEAD_REMOVAL.resolve(row.payload, campaign) == {"email": "a@x.com", "lead_id": 7}
    (request,) = LEAD_REMOVAL.requests(5, {"email": "a@x.com", "lead_id": 7}, Wire())
    assert (request.method, request.path) == ("DELETE", "/campaigns/5/leads/7")
    assert LEAD_REMOVAL.changes({"email": "gone@x.com"}, campaign) == {}  # nothing to remove
    refusal = LEAD_REMOVAL.refuse({"email": "b@x.com", "lead_id": 99}, campaign)
    assert "lead 8 in it now, not lead 99" in refusal


# --- suppression --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "email,domain\nJo@Acme.com,\n,globex.com\n",
        "Email;Name\njo@acme.com;Jo\n@globex.com;G\n",
        "jo@acme.com\n\nglobex.com\n",
    ],
)
def test_a_suppression_list_is_a_csv_or_one_entry_a_line(tmp_path: Path, text: str) -> None:
    path = tmp_path / "suppress.csv"
    path.write_text(text)
    found = Suppression.load(path)
    assert found.match("JO@acme.com ") == (
        "suppressed: jo@acme.com is on the suppression list suppress.csv"
    )
    assert found.match("x@eu.globex.com") == (
        "suppressed: its domain globex.com is on the suppression list suppress.csv"
    )
    assert found.match("x@acme.com") is None


def test_a_suppression_list_is_for_leads_only(tmp_path: Path) -> None:
    path = tmp_path / "s.txt"
    path.write_text("a@x.com\n")
    with pytest.raises(UsageError, match="it is for --operation leads, not settings"):
        suppression_of(path, operation("settings"))
    with pytest.raises(UsageError, match="not found"):
        suppression_of(tmp_path / "none.txt", LEADS)


# --- the same lead twice ------------------------------------------------------------------------


def test_the_same_lead_twice_for_one_campaign_is_found_in_any_case() -> None:
    ids = np.array([5, 5, 6, 5, 0, 5], dtype=np.int64)
    emails = pd.Series(["a@x.com", " A@X.com", "a@x.com", None, "a@x.com", "a@x.com"])
    assert first_rows(lead_keys(ids, emails), Numbering()) == {2: 1, 6: 1}
    assert first_rows(lead_keys(ids, emails), Numbering([10, 20, 30, 40, 50, 60])) == {
        20: 10,
        60: 10,
    }


# --- the ledger ---------------------------------------------------------------------------------


def test_the_ledger_keeps_the_leads_added_and_only_those(tmp_path: Path) -> None:
    path = tmp_path / "r.csv.backup.parquet"
    sent = rows(5, "a@x.com", "b@x.com", "c@x.com", "d@x.com")
    recorded = lead_ledger.record_intended(path, sent, keep=False)
    assert (recorded.leads, recorded.total) == (4, 4)
    outcomes = {
        1: Outcome(Status.SUCCEEDED),
        2: Outcome(Status.FAILED, error="not added: on a block list"),
        3: Outcome(
            Status.FAILED, error="run aborted while a request was in flight: outcome unknown"
        ),
        4: Outcome(Status.NOT_ATTEMPTED),
    }
    read = {5: {"id": 5, "leads": LeadIndex({"a@x.com": 70})}}
    assert lead_ledger.settle(path, sent, outcomes, read) == 2
    assert lead_ledger.read_ledger(path) == [
        lead_ledger.Entry(5, "a@x.com", 70),
        lead_ledger.Entry(5, "c@x.com", None),  # it may have gone in: kept
    ]
    # a resumed run adds to it, never twice the same lead
    again = lead_ledger.record_intended(path, rows(5, "A@x.com", "e@x.com"), keep=True)
    assert (again.leads, again.total) == (1, 3)


@pytest.mark.parametrize("path", ["quick", "pandas"])
def test_validate_reads_a_leads_file_the_same_way_with_or_without_pandas(
    tmp_path: Path,
    path: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from bulkrunner.cli.app import main

    monkeypatch.setenv("BULKRUNNER_VALIDATE_PATH", path)
    source = tmp_path / "leads.csv"
    source.write_text(
        "campaign_id,email,Status,notes\n5,a@x.com,hot,n\n5,a@x.com,,\n5,bad,,\n6,b@x.com,,\n"
    )
    assert main(["validate", str(source), "--operation", "leads", "--keep-columns", "notes"]) == 1
    assert capsys.readouterr().out.splitlines() == [
        f"{source} row 3: email: 'bad' is not an email address",
        f"{source}: 4 rows, 3 valid, 1 invalid",
    ]


def test_a_column_of_addresses_is_judged_at_once_as_each_cell_alone_would_be() -> None:
    """The column-at-once path (``Field.fast``) takes only what the cell's parser takes."""
    cells = [
        "a@x.com",
        "first.middle.last@mail.example.co.uk",
        "a.b.c.d@x.com",
        " padded@x.com ",
        ".dot@x.com",
        "dot.@x.com",
        "a..b@x.com",
        "a@x",
        "a@-x.com",
        "ü@x.com",
        "a" * 64 + "@x.com",
        "a" * 65 + "@x.com",
        "x@" + "d" * 63 + ".com",
        "x@" + "d" * 64 + ".com",
    ]
    frame = pd.DataFrame({"campaign_id": ["5"] * len(cells), "email": cells})
    checked = validate(frame, Vocabulary.DOCUMENTED, operation=LEADS, wire=Wire())
    judged = {row.number: row.payload["email"] for row in checked.rows}
    for number, cell in enumerate(cells, start=1):
        assert judged.get(number) == parse_email(cell)[0], cell


@pytest.mark.parametrize("given", [0, 401])
def test_leads_per_request_is_between_1_and_400(given: int) -> None:
    from bulkrunner.config.job_file import build_config

    with pytest.raises(UsageError, match="leads per request must be between 1 and 400"):
        build_config({}, {"input": "in.csv", "operation": "leads", "leads_per_request": given})


# --- odd answers --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        # no count of the leads added at all: the refusals counted are none, but nothing says
        # the leads went in
        {"is_lead_limit_exhausted": False},
        {"block_count": 0, "invalid_emails": []},
        # one count says none went in, the other counts the leads sent (the capacity ran out
        # without lead_import_stopped_count)
        {"upload_count": 0, "total_leads": 4, "is_lead_limit_exhausted": True},
        {"upload_count": 4, "total_leads": 2},
        # a count that is not a number
        {"upload_count": "lots", "total_leads": 4},
        {"upload_count": None, "total_leads": None},
        {"upload_count": 4, "total_leads": 4, "block_count": "one"},
    ],
)
def test_an_answer_that_does_not_say_every_lead_went_in_makes_none_succeeded_unread(
    body: dict[str, Any],
) -> None:
    said = attribute_leads(NUMBERS, EMAILS, answer(**body), read_first=True)
    assert all(isinstance(s, Said) and s.status is None for s in said.values()), said


@pytest.mark.parametrize(
    "body",
    [
        {"upload_count": "4", "total_leads": "4"},
        {"upload_count": 4.0, "total_leads": " 4 "},
        {"data": {"upload_count": 4, "total_leads": 1004}},  # total_leads: the campaign's
    ],
)
def test_counts_written_as_text_or_the_campaigns_total_still_tell(body: dict[str, Any]) -> None:
    assert attribute_leads(NUMBERS, EMAILS, answer(**body), True) == dict.fromkeys(NUMBERS, "")


def test_every_lead_counted_refused_is_known_without_a_count_of_those_added() -> None:
    said = attribute_leads(NUMBERS, EMAILS, answer(block_count=4), read_first=True)
    assert said == dict.fromkeys(NUMBERS, Said(Status.FAILED, f"not added: {CAUSES['blocked']}"))


@pytest.mark.parametrize("flag", [True, "true", "TRUE", 1, "1"])
def test_the_capacity_used_up_is_read_in_any_spelling(flag: object) -> None:
    judge = LeadCapacity(read_first=True)
    body = json.dumps({"upload_count": 0, "total_leads": 4, "is_lead_limit_exhausted": flag})
    assert judge(Row(1, 501, {}), Answer(200, body), "") is not None


def test_an_answer_of_an_error_says_it_in_each_leads_reason() -> None:
    body = json.dumps({"error": "Lead import paused for this workspace"})
    said = attribute_leads(NUMBERS, EMAILS, Answer(200, body), read_first=True)
    (hint,) = set(said.values())
    assert isinstance(hint, Said)
    assert hint.status is None  # read back: it may have added some
    assert "Lead import paused for this workspace" in hint.error


@pytest.mark.parametrize("digits", ["²", "١٢", "1" * 50])
def test_numbers_an_answer_spells_in_other_digits_are_no_numbers_and_crash_nothing(
    digits: str,
) -> None:
    """``str.isdigit`` holds for superscripts and other scripts' digits, which ``int`` may not
    read (a hostile server's count, total or lead id raised ValueError)."""
    from bulkrunner.sending.pages import _entries

    counted = json.dumps({"added_count": digits, "skipped_count": 0})
    assert parse_upload(counted, ["a@example.com"]) is None
    assert _entries(json.dumps({"data": [], "total_leads": digits})) == ([], None)
    index = LeadIndex()
    assert index.add([{"lead": {"email": "a@example.com", "id": digits}}]) == 1
    assert index.ids == {"a@example.com": None}
