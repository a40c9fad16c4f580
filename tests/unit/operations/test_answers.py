"""Hostile answers as pure rules: failure bodies, redirects, rate-limit headers, odd
GET /campaigns/ shapes, values of the wrong type in a backup."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from urllib.parse import quote

import pyarrow.parquet as pq
import pytest

from bulkrunner.config.redaction import REDACTED, redact, redact_url, remember
from bulkrunner.model import Answer, Change
from bulkrunner.operations.answers import (
    error_message,
    header_reset,
    header_retry_after,
    parse_json,
    reports_failure,
)
from bulkrunner.operations.settings import SETTINGS
from bulkrunner.operations.state import parse_campaigns
from bulkrunner.records.backup import read_unrestorable, record_backup
from bulkrunner.sending.retry import Decision, Verdict, classify

KEY = "sk-hostile-SENTINEL+/=9f3a"  # characters a URL must encode, so both spellings are checked


@pytest.mark.parametrize(
    ("body", "failed"),
    [
        ('{"success": true, "data": {}}', False),
        ('{"success": false}', True),
        ('{"success": "false"}', True),
        ('{"success": " False "}', True),
        ('{"ok": false}', True),
        ('{"ok": "false"}', True),
        ('{"status": "error", "message": "quota"}', True),
        ('{"status": "failed"}', True),
        ('{"status": "ERROR"}', True),
        ('{"status": "ok"}', False),
        ('{"status": "success"}', False),
        ('{"success": "true"}', False),
        ('[{"success": false}]', False),
        ("plain text", False),
        ("", False),
    ],
)
def test_a_2xx_whose_body_says_failure_is_a_failed_row(body: str, failed: bool) -> None:
    assert reports_failure(body) is failed
    verdict = classify(Answer(200, body)).verdict
    assert verdict is (Verdict.FAILED if failed else Verdict.SUCCEEDED)


@pytest.mark.parametrize("status", [300, 301, 302, 303, 307, 308])
def test_a_redirect_is_a_failed_row_that_says_where_it_pointed(status: int) -> None:
    where = "http://127.0.0.1:9/elsewhere?api_key=REDACTED"
    assert classify(Answer(status, "Moved", location=where)) == Decision(
        Verdict.FAILED, f"HTTP {status}: redirected to {where} (not followed)"
    )


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("30", 30.0),
        (" 2.5 ", 2.5),
        ("86400", 86_400.0),
        ("172800", 172_800.0),  # two days as seconds: kept, for --max-wait to judge
        ("1800000100", 100.0),  # a Unix time 100 s from now
        ("1799999000", 0.0),  # a Unix time already past
        ("soon", None),
        ("-5", None),
        (None, None),
    ],
)
def test_x_ratelimit_reset_as_seconds_or_unix_time(value: str | None, seconds: float) -> None:
    assert header_reset(value, now=1_800_000_000.0) == seconds


def test_retry_after_as_an_http_date_a_day_away() -> None:
    now = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
    later = format_datetime(now + timedelta(days=1), usegmt=True)
    assert header_retry_after(later, now) == 86_400.0


def test_a_remembered_key_is_redacted_as_written_and_as_a_url_spells_it() -> None:
    remember(KEY)
    text = f"Cannot POST /x?token={quote(KEY, safe='')} for {KEY} (api_key=abc)"
    # another value of an api_key parameter is not the key: a URL's is hidden, a value's kept
    assert redact(text) == f"Cannot POST /x?token={REDACTED} for {REDACTED} (api_key=abc)"
    assert redact_url(text) == (
        f"Cannot POST /x?token={REDACTED} for {REDACTED} (api_key={REDACTED})"
    )


@pytest.mark.parametrize(
    ("listed", "ids"),
    [
        ([{"id": 101}], {101}),
        ([{"id": "101"}], {101}),  # a number sent as a string
        ([{"id": " 102 "}], {102}),
        ([{"id": 103.0}], {103}),
        ([{"id": "abc"}, {"id": True}, {"id": None}, {"id": "1" * 60}, {"name": "x"}], set()),
        ([{"id": 2**70}], {2**70}),  # beyond 64 bits: no row can name it, but no crash
    ],
)
def test_campaign_ids_in_get_campaigns(listed: list[dict[str, object]], ids: set[int]) -> None:
    campaigns = parse_campaigns(Answer(200, json.dumps({"data": listed})))
    assert campaigns is not None
    assert set(campaigns) == ids


@pytest.mark.parametrize(
    ("field", "shown", "wanted", "differs"),
    [
        ("sending_limit", "10", 10, False),  # a number sent as a string
        ("sending_limit", " 10 ", 10, False),
        ("sending_limit", "ten", 10, True),  # a string where a number belongs
        ("sending_limit", "9" * 30, 10, True),
        ("send_as_plain_text", "true", True, False),
        ("send_as_plain_text", "false", True, True),
        ("send_as_plain_text", 1, True, False),
        ("unsubscribe_text", 5, "5", False),
    ],
)
def test_values_of_get_campaigns_are_compared_normalised(
    field: str, shown: object, wanted: object, differs: bool
) -> None:
    assert bool(SETTINGS.changes({field: wanted}, {"id": 1, field: shown})) is differs


def test_a_backup_of_values_of_the_wrong_type_keeps_what_it_can(tmp_path: Path) -> None:
    remember(KEY)  # as a run does with its key
    path = tmp_path / "b.parquet"
    record_backup(
        path,
        {
            1: {"sending_limit": Change("ten", 5), "unsubscribe_text": Change(7, "x")},
            2: {"sending_limit": Change("12", 5), "send_as_plain_text": Change("yes", True)},
            3: {"unsubscribe_text": Change(f"echo {KEY}", "x")},
        },
        keep=False,
    )
    table = pq.read_table(path)
    assert table.column("set_by_run").to_pylist() == [  # what the run set: its values
        '{"sending_limit": 5, "unsubscribe_text": "x"}',
        '{"sending_limit": 5, "send_as_plain_text": true}',
    ]
    assert table.drop_columns(["set_by_run"]).to_pylist() == [
        {
            "campaign_id": 1,
            "send_as_plain_text": None,
            "sending_limit": None,
            "unsubscribe_text": "7",
        },
        {
            "campaign_id": 2,
            "send_as_plain_text": True,
            "sending_limit": 12,
            "unsubscribe_text": None,
        },
    ]  # not 3: "echo REDACTED" is no value of its campaign, and a rollback would put it back
    assert read_unrestorable(path)[3] == (
        "unsubscribe_text: the value before the run holds the API key (read as REDACTED), "
        "which no file holds, so the backup cannot hold it"
    )


@pytest.mark.parametrize(
    ("text", "read"),
    [
        ('"x\\ud800y"', "x\ufffdy"),  # half of a character: no file holds it
        ('{"\\udc00": ["\\ud800\\ud800"]}', {"\ufffd": ["\ufffd\ufffd"]}),
        ('"a\\ud83d\\ude00b"', "a\U0001f600b"),  # a pair is one whole character
        ('"\\\\ud800"', "\\ud800"),  # an escaped backslash, then text
        ('"\\\\ud800\\udc00"', "\\ud800\ufffd"),  # and then half of a character
    ],
)
def test_json_text_is_read_whole(text: str, read: object) -> None:
    assert parse_json(text) == read


def test_a_servers_message_is_one_printable_line() -> None:
    message = error_message('{"error": "bad\\u001b]0;PWNED\\u0007\\n\\u202eyes\\u0085 \\ud800"}')
    assert message == "bad\\x1b]0;PWNED\\x07 \\u202eyes \ufffd"
