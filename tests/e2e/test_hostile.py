"""Hostile and odd servers, and odd input: redirects, echoed keys, huge waits, failure bodies,
bogus charsets, odd GET /campaigns/ shapes, oversize ids, struct cells, damaged journals.

Pure rules are tables; the engine runs on a fake clock; what a user sees is checked through
the real CLI against small servers on 127.0.0.1."""

from __future__ import annotations

import base64
import json
import logging
import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from urllib.parse import quote

import aiohttp
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from aiohttp import web

from bulkrunner.config import redaction
from bulkrunner.config.job_file import build_config, read_job_file
from bulkrunner.config.redaction import REDACTED, redact, redact_url, remember
from bulkrunner.errors import InputFileError, UsageError
from bulkrunner.input.loading import load_input, open_input
from bulkrunner.input.validation import validate
from bulkrunner.model import Answer, Change, Outcome, Rate, Status
from bulkrunner.operations.answers import header_reset, header_retry_after, reports_failure
from bulkrunner.operations.fields import Vocabulary
from bulkrunner.operations.settings import SETTINGS
from bulkrunner.operations.state import parse_campaigns
from bulkrunner.records.backup import record_backup
from bulkrunner.records.journal import Journal, read_successes
from bulkrunner.sending.retry import Decision, Verdict, classify
from bulkrunner.sending.transport import HttpSender
from bulkrunner.simulator import SimulatorConfig, SimulatorThread
from tests.fakes import FakeClock, ScriptedSender, one_line_error, run, settings_request
from tests.hostile import ServerThread, every_file_text, run_cli
from tests.unit.sending.test_engine import engine, rows

KEY = "sk-hostile-SENTINEL+/=9f3a"  # characters a URL must encode, so both spellings are checked
WHEN = datetime(2026, 11, 26, 9, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def no_remembered_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test starts with no key remembered, so the sender's own redaction is what it sees."""
    monkeypatch.setattr(redaction, "_remembered", set())


def leaks(text: str) -> bool:
    return KEY in text or quote(KEY, safe="") in text or "SENTINEL" in text


# --- pure rules -----------------------------------------------------------------------------------


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
        '{"unsubscribe_text": "x"}',
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
        {
            "campaign_id": 3,
            "send_as_plain_text": None,
            "sending_limit": None,
            "unsubscribe_text": f"echo {REDACTED}",
        },
    ]


# --- input: oversize ids, struct / map / binary cells ---------------------------------------------


@pytest.mark.parametrize("big", [2**63, 2**64 + 5, 10**22])
def test_an_id_beyond_64_bits_is_an_invalid_row(big: int) -> None:
    frame = pd.DataFrame({"campaign_id": [str(big), "7"], "sending_limit": ["5", "6"]})
    checked = validate(frame, Vocabulary.DOCUMENTED)
    assert [row.campaign_id for row in checked.rows] == [7]
    (rejected,) = checked.rejections
    assert rejected.number == 1
    assert rejected.error == f"campaign_id: {big} is above {2**63 - 1}"


def test_the_largest_64_bit_id_is_valid() -> None:
    frame = pd.DataFrame({"campaign_id": [str(2**63 - 1)], "sending_limit": ["5"]})
    assert [row.campaign_id for row in validate(frame, Vocabulary.DOCUMENTED).rows] == [2**63 - 1]


def test_structured_and_binary_cells_are_invalid_rows_not_a_crash() -> None:
    frame = pd.DataFrame(
        {
            "campaign_id": [1, {"id": 2}, 3],
            "sending_limit": [{"a": 1}, 5, 6],
            "unsubscribe_text": ["ok", "ok", b"bytes"],
        },
        dtype=object,
    )
    checked = validate(frame, Vocabulary.DOCUMENTED)
    assert checked.rows == ()
    assert [(r.number, r.error) for r in checked.rejections] == [
        (1, "sending_limit: a structured value, not a number, text, true/false or list"),
        (2, "campaign_id: a structured value, not a number, text, true/false or list"),
        (3, "unsubscribe_text: binary, not a number, text, true/false or list"),
    ]


@pytest.mark.parametrize(
    ("column", "cells", "kind"),
    [
        ("sending_limit", pa.array([{"a": 1}, {"a": 2}]), "struct"),
        ("campaign_id", pa.array([{"a": 1}, {"a": 2}]), "struct"),
        (
            "sending_limit",
            pa.array([[("a", 1)], [("b", 2)]], type=pa.map_(pa.string(), pa.int64())),
            "map",
        ),
        ("unsubscribe_text", pa.array([b"x", b"y"]), "binary"),
        ("track_settings", pa.array([[b"x"], [b"y"]]), "binary"),
    ],
)
def test_parquet_struct_map_and_binary_columns_are_named_in_one_line(
    tmp_path: Path, column: str, cells: pa.Array, kind: str
) -> None:
    columns = {"campaign_id": pa.array([1, 2]), column: cells}
    path = tmp_path / "odd.parquet"
    pq.write_table(pa.table(columns), path)
    for read in (load_input, open_input):
        with pytest.raises(InputFileError) as caught:
            read(path)
        message = str(caught.value)
        assert message.startswith(f"{path}: column {column!r} holds {kind} values")
        assert "\n" not in message


# --- damaged journals -----------------------------------------------------------------------------


def journal_with_one_success(path: Path) -> None:
    with Journal.open(path, input_path=Path("plan.csv"), started=WHEN) as journal:
        journal.record("k1", 1, 101, Outcome(Status.SUCCEEDED, 200, 1, "", 12, WHEN))


def test_a_torn_last_journal_line_is_ignored_with_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "r.csv.journal"
    journal_with_one_success(path)
    with path.open("a") as handle:
        handle.write('{"key": "k2", "status": "succ')
    with caplog.at_level(logging.WARNING, logger="bulkrunner"):
        assert set(read_successes(path)) == {"k1"}
    assert "(line 3): it was cut short" in caplog.text


def test_a_journal_resumed_after_a_torn_line_stays_readable(tmp_path: Path) -> None:
    path = tmp_path / "r.csv.journal"
    journal_with_one_success(path)
    with path.open("a") as handle:
        handle.write('{"key": "k2", "status": "succ')  # kill -9 in the middle of a write
    read_successes(path)  # what --resume reads first
    with Journal.open(path, input_path=Path("plan.csv"), started=WHEN) as journal:
        journal.record("k3", 3, 103, Outcome(Status.SUCCEEDED, 200, 1, "", 9, WHEN))
    assert set(read_successes(path)) == {"k1", "k3"}  # and again, at the next resume


@pytest.mark.parametrize("torn", [200_000, 65_536, 1])
def test_a_torn_line_is_found_from_the_end_whatever_its_length(tmp_path: Path, torn: int) -> None:
    """The journal is mended reading back from its end (not the whole of a long journal): a
    torn line longer than what is read at a time is still dropped whole."""
    path = tmp_path / "r.csv.journal"
    journal_with_one_success(path)
    with path.open("a") as handle:
        handle.write('{"key": "k2", "error": "' + "x" * torn)
    with Journal.open(path, input_path=Path("plan.csv"), started=WHEN) as journal:
        journal.record("k3", 3, 103, Outcome(Status.SUCCEEDED, 200, 1, "", 9, WHEN))
    assert set(read_successes(path)) == {"k1", "k3"}
    assert "x" not in path.read_text().splitlines()[-1]


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        ("not json", "line 2 is not a journal entry"),
        ("[1, 2]", "line 2 is not a journal entry"),
        ('{"key": 5, "status": "succeeded"}', "line 2 is not a journal entry"),
        ('{"key": "k", "status": "succeeded", "attempts": "two"}', "line 2 has a bad value"),
        ('{"key": "k", "status": "succeeded", "finished_at": "noon"}', "line 2 has a bad value"),
        ('{"key": "k", "status": "succeeded", "finished_at": 5}', "line 2 has a bad value"),
        ('{"key": "k", "status": "succeeded", "http_status": "200"}', "line 2 has a bad value"),
    ],
)
def test_a_damaged_journal_line_is_a_clear_usage_error(
    tmp_path: Path, line: str, problem: str
) -> None:
    path = tmp_path / "r.csv.journal"
    path.write_text('{"journal": 1, "input": "plan.csv"}\n' + line + "\n" + '{"key": "z"}\n')
    with pytest.raises(UsageError) as caught:
        read_successes(path)
    assert str(caught.value).startswith(f"{path}: {problem}")
    assert "--fresh" in str(caught.value)


# --- the engine: bounded waits, outage counts waiting ---------------------------------------------


async def test_a_retry_after_beyond_max_wait_stops_the_run_without_waiting() -> None:
    clock = FakeClock()
    day = Answer(429, "slow down", retry_after=86_400.0)
    sender = ScriptedSender({101: [day]})
    run = engine(sender, clock, concurrency=1, max_wait=300.0)
    outcomes = await run.run(rows(3))
    assert run.stats.aborted == (
        "run aborted: the server asked to wait 86400s (Retry-After), more than --max-wait 300"
    )
    assert max(clock.sleeps, default=0.0) < 300  # nobody waited for the day
    assert outcomes[1].status is Status.FAILED
    assert "slow down" in outcomes[1].error
    assert {outcomes[2].status, outcomes[3].status} == {Status.NOT_ATTEMPTED}


async def test_a_retry_after_within_max_wait_is_waited_for() -> None:
    clock = FakeClock()
    sender = ScriptedSender({101: [Answer(503, "busy", retry_after=250.0)]})
    run = engine(sender, clock, concurrency=1, max_wait=300.0)
    outcomes = await run.run(rows(1))
    assert run.stats.aborted is None
    assert outcomes[1].status is Status.SUCCEEDED


async def test_an_x_ratelimit_reset_beyond_max_wait_stops_the_run_after_the_row() -> None:
    clock = FakeClock()
    spent = Answer(200, '{"ok": true}', remaining=0, reset=86_400.0)
    sender = ScriptedSender({101: [spent]})
    run = engine(sender, clock, concurrency=1, max_wait=300.0)
    outcomes = await run.run(rows(3))
    assert run.stats.aborted == (
        "run aborted: the server asked to wait 86400s (X-RateLimit-Reset), more than --max-wait 300"
    )
    assert outcomes[1].status is Status.SUCCEEDED
    assert [o.status for o in (outcomes[2], outcomes[3])] == [Status.NOT_ATTEMPTED] * 2
    assert max(clock.sleeps, default=0.0) < 300


async def test_the_outage_timeout_counts_the_wait_before_the_next_try() -> None:
    clock = FakeClock()
    busy = Answer(503, "busy", retry_after=250.0)
    sender = ScriptedSender({101: [busy] * 5})
    run = engine(sender, clock, clock.sleep, concurrency=1, outage_timeout=100)
    outcomes = await run.run(rows(1))
    assert run.stats.aborted is not None
    assert run.stats.aborted.startswith(
        "run aborted: only retryable errors came back for 250s, counting the 250s wait"
    )
    assert 250.0 not in clock.sleeps  # it did not sleep past the timeout to find out
    assert len(sender.calls) == 1
    assert outcomes[1].status is Status.FAILED


def announcing(limit: int) -> Answer:
    """A success whose headers announce the server's limit (and its budget spent)."""
    return Answer(200, '{"ok": true}', limit=limit, remaining=0, reset=3600.0)


async def test_an_announced_limit_that_would_wait_past_max_wait_stops_the_run() -> None:
    """X-RateLimit-Limit: 1, held over the only window, an hour: ten rows would take nine
    hours, each waiting out the hour. The run stops instead of making the first such wait."""
    clock = FakeClock()
    sender = ScriptedSender({101: [announcing(1)]})
    run = engine(sender, clock, concurrency=1, rates=[Rate(1000, 3600)], max_wait=300.0)
    outcomes = await run.run(rows(10))
    assert run.stats.aborted is not None
    assert run.stats.aborted.startswith("run aborted: the server asked to wait 3600s")
    assert run.stats.aborted.endswith(
        "(X-RateLimit-Limit 1, held over 3600s), more than --max-wait 300"
    )
    assert max(clock.sleeps, default=0.0) < 300  # nobody waited for the hour
    assert len(sender.calls) == 1
    assert outcomes[1].status is Status.SUCCEEDED
    assert {outcomes[n].status for n in range(2, 11)} == {Status.NOT_ATTEMPTED}


async def test_an_announced_limit_whose_waits_are_short_only_slows_the_run() -> None:
    """The same header over SmartLead's 2-second window: a request every 2 s, every row sent."""
    clock = FakeClock()
    sender = ScriptedSender({101: [announcing(1)]})
    run = engine(
        sender, clock, concurrency=1, rates=[Rate(10, 2), Rate(1000, 3600)], max_wait=300.0
    )
    outcomes = await run.run(rows(10))
    assert run.stats.aborted is None
    assert {outcome.status for outcome in outcomes.values()} == {Status.SUCCEEDED}
    assert run.connection.limiter.learned == Rate(1, 2)
    assert clock.now - 1000.0 == pytest.approx(9 * 2.0, abs=0.1)


def test_an_announced_limit_too_slow_for_max_wait_stops_a_cli_run_with_nothing_sent(
    tmp_path: Path,
) -> None:
    """The simulator allows 1 request an hour and says so; the client holds SmartLead's
    published limits, so the 1 is taken over their shortest window (2 s), further off than
    --max-wait 1. The read before sending learns the limit; no change is sent; exit 3,
    resumable."""
    source = tmp_path / "plan.csv"
    source.write_text("campaign_id,sending_limit\n" + "".join(f"{n},7\n" for n in range(1, 11)))
    simulated = SimulatorConfig(api_key=KEY, rates=(Rate(1, 3600),), campaigns=set(range(1, 11)))
    with SimulatorThread(simulated) as sim:
        done = run_cli(
            tmp_path,
            KEY,
            *("run", str(source), "--report", "r.csv", "--base-url", sim.base_url),
            *("--max-wait", "1"),
        )
        posts = sim.state.posts()
    assert done.returncode == 3, done.stderr
    assert "(X-RateLimit-Limit 1, held over 2s), more than --max-wait 1" in done.stderr
    assert "--resume" in done.stdout
    assert posts == []
    assert set(pd.read_csv(tmp_path / "r.csv")["status"]) == {"not_attempted"}


# --- the sender against a live loopback server ----------------------------------------------------


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as client:
        yield client


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
async def test_the_sender_never_follows_a_redirect(
    session: aiohttp.ClientSession, status: int
) -> None:
    async def elsewhere(request: web.Request) -> web.Response:
        return web.json_response({"success": True})

    with ServerThread(elsewhere) as other:

        async def redirect(request: web.Request) -> web.Response:
            return web.Response(
                status=status, headers={"Location": other.url + request.path_qs}, text="Moved"
            )

        with ServerThread(redirect) as server:
            sender = HttpSender(session, server.url + "/api/v1", KEY, timeout=5)
            answer = await sender.send(settings_request(7, {"sending_limit": 5}))
            listed = await sender.list_campaigns()
    assert other.requests == []  # the key never went to the other host
    assert (answer.status, listed.status) == (status, status)
    assert answer.location == f"{other.url}/api/v1/campaigns/7/settings?api_key={REDACTED}"
    assert (
        classify(answer).message == f"HTTP {status}: redirected to {answer.location} (not followed)"
    )


@pytest.mark.parametrize("charset", ["bogus", "base64", "utf-8", "latin-1"])
async def test_a_bogus_charset_is_read_as_utf8(
    session: aiohttp.ClientSession, charset: str
) -> None:
    async def answer(request: web.Request) -> web.Response:
        return web.Response(
            body=b'{"success": true, "note": "ok"}',
            headers={"Content-Type": f"application/json; charset={charset}"},
        )

    with ServerThread(answer) as server:
        sender = HttpSender(session, server.url, KEY, timeout=5)
        got = await sender.send(settings_request(7, {"sending_limit": 5}))
    assert got.status == 200
    assert json.loads(got.body) == {"success": True, "note": "ok"}
    assert classify(got).verdict is Verdict.SUCCEEDED


async def test_a_server_echoing_the_key_has_it_redacted_from_the_answer(
    session: aiohttp.ClientSession,
) -> None:
    async def echo(request: web.Request) -> web.Response:
        text = f"Cannot POST {request.path_qs} (key {KEY})"
        return web.Response(status=404, text=text)

    with ServerThread(echo) as server:
        sender = HttpSender(session, server.url + "/api/v1", KEY, timeout=5)
        answer = await sender.send(settings_request(7, {"sending_limit": 5}))
    assert answer.body == (
        f"Cannot POST /api/v1/campaigns/7/settings?api_key={REDACTED} (key {REDACTED})"
    )


async def flood(request: web.Request) -> web.StreamResponse:
    """An answer of 1 MB, streamed with no length announced (``/long``: announced as a
    gigabyte); ``/short``: a body of exactly 1,000 bytes."""
    if request.path.endswith("/short"):
        return web.Response(body=b"[" + b" " * 998 + b"]", content_type="application/json")
    announced = {"Content-Length": str(10**9)} if request.path.endswith("/long") else {}
    response = web.StreamResponse(headers=announced)
    await response.prepare(request)
    try:
        for _ in range(1024):
            await response.write(b"x" * 1024)
    except (ConnectionError, RuntimeError):  # the client hung up: what it should do
        pass
    return response


@pytest.mark.parametrize("path", ["/campaigns/", "/long", "/campaigns/7/settings"])
async def test_an_answer_longer_than_the_cap_is_left_unread_and_fails_without_retry(
    session: aiohttp.ClientSession, path: str
) -> None:
    with ServerThread(flood) as server:
        sender = HttpSender(session, server.url, KEY, timeout=5, max_body=1000)
        if path.endswith("/settings"):
            answer = await sender.send(settings_request(7, {"sending_limit": 5}))
        else:
            answer = await sender.read(path)
        short = await sender.read("/short")  # the same sender goes on reading
    assert (answer.status, answer.body, answer.too_large) == (200, "", 1000)
    decision = classify(answer)
    assert decision == Decision(
        Verdict.FAILED,
        "HTTP 200: the answer is larger than 1,000 bytes, the most bulkrunner reads: left unread",
    )
    assert not leaks(decision.message)
    assert (short.status, len(short.body), short.too_large) == (200, 1000, None)
    assert classify(short).verdict is Verdict.SUCCEEDED


def test_the_cap_is_stated_in_megabytes() -> None:
    from bulkrunner.sending.transport import MAX_BODY

    answer = Answer(200, too_large=MAX_BODY)
    assert classify(answer).message == (
        "HTTP 200: the answer is larger than 64 MB, the most bulkrunner reads: left unread"
    )
    assert classify(Answer(503, too_large=MAX_BODY)).verdict is Verdict.RETRY  # as any 503
    assert classify(Answer(401, too_large=MAX_BODY)).verdict is Verdict.ABORT


# --- through the CLI, against small loopback servers ----------------------------------------------


def write_plan(folder: Path, ids: list[int | str]) -> Path:
    lines = ["campaign_id,sending_limit,unsubscribe_text"]
    lines += [f"{cid},10,bye" for cid in ids]
    path = folder / "plan.csv"
    path.write_text("\n".join(lines) + "\n")
    return path


def assert_no_leak(folder: Path, *outputs: str) -> None:
    texts = {**every_file_text(folder), **{f"output {n}": t for n, t in enumerate(outputs)}}
    assert len(texts) > len(outputs)  # some files were written
    for name, text in texts.items():
        assert not leaks(text), name


async def friendly(request: web.Request) -> web.Response:
    if request.method == "GET":
        return campaign_or_empty_list(request)
    return web.json_response({"success": True})


def campaign_or_empty_list(request: web.Request) -> web.Response:
    """An account whose list shows nothing, but whose campaigns read one by one (showing the
    settings a row of ``write_plan`` changes): enough for a run to back them up and send."""
    found = re.fullmatch(r"/api/v1/campaigns/(\d+)", request.path)
    shown = {"sending_limit": 1, "unsubscribe_text": ""}
    return web.json_response({"id": int(found[1]), **shown} if found else [])


def test_a_run_against_a_redirecting_server_sends_nothing_to_the_other_host(
    tmp_path: Path,
) -> None:
    write_plan(tmp_path, [101, 102, 103])
    codes = {"/api/v1/campaigns/": 302, "/api/v1/campaigns/101/settings": 301}

    with ServerThread(friendly) as other:

        async def redirect(request: web.Request) -> web.Response:
            status = codes.get(request.path, 307)
            return web.Response(status=status, headers={"Location": other.url + request.path_qs})

        with ServerThread(redirect) as server:
            done = run_cli(
                tmp_path, KEY, "run", "--input", "plan.csv", "--report", "r.csv",
                "--base-url", server.url + "/api/v1", "--max-attempts", "1", "--no-backup",
            )  # fmt: skip
    assert done.returncode == 1, done.stderr
    assert other.requests == []
    # The list, and (--no-backup: sent although unread) one POST a row: no retries of a redirect
    assert len(server.requests) == 4
    report = pd.read_csv(tmp_path / "r.csv")
    assert report["status"].tolist() == ["failed"] * 3
    for cid, status, error in zip(
        *(report[c] for c in ("campaign_id", "http_status", "error")), strict=True
    ):
        where = f"{other.url}/api/v1/campaigns/{cid}/settings?api_key={REDACTED}"
        assert error == f"HTTP {status}: redirected to {where} (not followed)"
    assert report["http_status"].tolist() == [301, 307, 307]
    assert "HTTP 302: redirected to" in done.stderr  # the list call, in the warning
    assert_no_leak(tmp_path, done.stdout, done.stderr)


async def echoing(request: web.Request) -> web.Response:
    """A server that quotes the request line, key included, wherever it can."""
    line = f"{request.method} {request.path_qs}"
    if request.method == "GET":
        return web.json_response(
            [
                {"id": 101, "sending_limit": "abc", "unsubscribe_text": f"Cannot {line}"},
                {"id": "102", "sending_limit": 1, "unsubscribe_text": 7},
                {"id": 103, "sending_limit": "10", "unsubscribe_text": KEY},
                {"id": 104, "sending_limit": 3, "unsubscribe_text": ""},
                {"id": 105, "sending_limit": 4, "unsubscribe_text": ""},
            ]
        )
    campaign = int(request.path.split("/")[-2])
    if campaign == 101:
        return web.Response(status=404, text=f"Cannot {line}")
    if campaign == 102:
        return web.Response(status=500, text=f"<pre>crash in {line} key={KEY}</pre>")
    if campaign == 103:
        return web.json_response({"success": "false", "message": f"denied {line}"})
    if campaign == 104:
        return web.json_response({"status": "error", "error": f"{KEY} expired"})
    return web.Response(
        body=b'{"success": true}', headers={"Content-Type": "application/json; charset=bogus"}
    )


@pytest.mark.parametrize(
    "logging_options", [(), ("-v",), ("--log-format", "json", "-v")], ids=["text", "v", "json"]
)
def test_a_server_echoing_the_key_puts_it_in_no_output_and_no_file(
    tmp_path: Path, logging_options: tuple[str, ...]
) -> None:
    write_plan(tmp_path, [101, 102, 103, 104, 105])
    with ServerThread(echoing) as server:
        done = run_cli(
            tmp_path, KEY, "run", "--input", "plan.csv", "--report", "r.csv",
            "--base-url", server.url + "/api/v1", "--max-attempts", "1", *logging_options,
        )  # fmt: skip
    assert done.returncode == 1, done.stderr
    assert "internal error" not in done.stderr
    report = pd.read_csv(tmp_path / "r.csv", keep_default_na=False)
    assert report["status"].tolist() == ["failed"] * 4 + ["succeeded"]
    line = f"/api/v1/campaigns/101/settings?api_key={REDACTED}"
    assert report["error"].tolist()[:2] == [
        f"HTTP 404: Cannot POST {line}",
        "gave up after 1 attempt; last error: HTTP 500: <pre>crash in POST "
        f"{line.replace('101', '102')} key={REDACTED}</pre>",
    ]
    assert report["error"].tolist()[2:4] == [
        f"HTTP 200: denied POST {line.replace('101', '103')}",
        f"HTTP 200: {REDACTED} expired",
    ]
    backup = pq.read_table(tmp_path / "r.csv.backup.parquet").to_pylist()
    assert {row["campaign_id"]: row["sending_limit"] for row in backup} == {
        101: None,  # "abc" cannot be restored into a number: left as it is
        102: 1,
        103: None,  # "10" is the 10 the row wants: not a change, so not backed up
        104: 3,
        105: 4,
    }
    texts = {row["campaign_id"]: row["unsubscribe_text"] for row in backup}
    assert (texts[102], texts[103]) == ("7", REDACTED)
    if "json" in logging_options:
        events = [json.loads(text) for text in done.stderr.splitlines()]
        assert any(event["event"] == "row_finished" for event in events)
    assert_no_leak(tmp_path, done.stdout, done.stderr)


PROXY_USER, PROXY_PASSWORD = "proxyuser", "s3cret-PW+9"  # "+": a URL spells it %2B
BASIC = base64.b64encode(f"{PROXY_USER}:{PROXY_PASSWORD}".encode()).decode()


@pytest.mark.parametrize(
    "logging_options", [(), ("-v",), ("--log-format", "json", "-v")], ids=["text", "v", "json"]
)
def test_credentials_in_the_base_url_reach_the_server_and_no_output(
    tmp_path: Path, logging_options: tuple[str, ...]
) -> None:
    """A proxy that takes basic auth from the base URL, and echoes it (a debugging page): the
    credentials are in no hint, report, journal, backup, log line or notification."""
    write_plan(tmp_path, [101, 102, 103])
    authorizations: set[str] = set()
    bodies: list[str] = []

    async def proxy(request: web.Request) -> web.Response:
        authorization = request.headers.get("Authorization", "")
        authorizations.add(authorization)
        if request.method == "GET":
            return campaign_or_empty_list(request)
        if request.path.endswith("/101/settings"):
            return web.Response(status=500, text=f"crash: Authorization: {authorization}")
        return web.json_response({}, status=429, headers={"Retry-After": "86400"})

    async def webhook(request: web.Request) -> web.Response:
        bodies.append(await request.text())
        return web.Response(text="ok")

    with ServerThread(proxy) as server, ServerThread(webhook) as hook:
        host = server.url.removeprefix("http://")
        secret = f"{PROXY_USER}:{quote(PROXY_PASSWORD, safe='')}"
        done = run_cli(
            tmp_path, KEY, "run", "--input", "plan.csv", "--report", "r.csv",
            "--base-url", f"http://{secret}@{host}/api/v1", "--max-attempts", "1",
            "--concurrency", "1", "--notify", f"{hook.url}/hook", *logging_options,
        )  # fmt: skip
    assert done.returncode == 3, done.stderr
    assert authorizations == {f"Basic {BASIC}"}  # every request carried them
    report = pd.read_csv(tmp_path / "r.csv", keep_default_na=False)
    assert report["status"].tolist() == ["failed", "failed", "not_attempted"]
    assert report["error"][0].endswith(f"HTTP 500: crash: Authorization: Basic {REDACTED}")
    shown = f"--base-url http://{REDACTED}@{host}/api/v1"
    assert f"{shown} --concurrency 1" in done.stdout  # the resume hint
    assert len(bodies) == 1
    texts = {
        **every_file_text(tmp_path),
        "stdout": done.stdout,
        "stderr": done.stderr,
        "notification": bodies[0],
    }
    for name, text in texts.items():
        for secret_form in (PROXY_USER, PROXY_PASSWORD, quote(PROXY_PASSWORD, safe=""), BASIC):
            assert secret_form not in text, (name, secret_form)
        assert not leaks(text), name


def http_date_a_day_away() -> str:
    return format_datetime(datetime.now(UTC) + timedelta(days=1), usegmt=True)


@pytest.mark.parametrize(
    ("headers", "status", "asked"),
    [
        ({"Retry-After": "86400"}, 429, r"86400s \(Retry-After\)"),
        # a day away, give or take the second the answer took
        ({"Retry-After": "HTTP-DATE"}, 503, r"86(39\d|40\d)s \(Retry-After\)"),
        (
            {"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "EPOCH"},
            200,
            r"86(39\d|40\d)s \(X-RateLimit-Reset\)",
        ),
    ],
    ids=["retry-after-seconds", "retry-after-date", "ratelimit-reset-epoch"],
)
def test_a_server_asking_to_wait_a_day_stops_the_run_resumably(
    tmp_path: Path, headers: dict[str, str], status: int, asked: str
) -> None:
    write_plan(tmp_path, [101, 102, 103])
    answered: list[int] = []

    async def stalling(request: web.Request) -> web.Response:
        if request.method == "GET":
            return campaign_or_empty_list(request)
        sent = {
            name: value.replace("HTTP-DATE", http_date_a_day_away()).replace(
                "EPOCH", str(int(datetime.now(UTC).timestamp()) + 86_400)
            )
            for name, value in headers.items()
        }
        answered.append(status)
        return web.json_response({"success": status == 200}, status=status, headers=sent)

    with ServerThread(stalling) as server:
        base = server.url + "/api/v1"
        args = ("run", "--input", "plan.csv", "--report", "r.csv", "--base-url", base)
        done = run_cli(tmp_path, KEY, *args, "--concurrency", "1", timeout=60)
    assert done.returncode == 3, done.stderr
    assert re.search(f"the server asked to wait {asked}, more than --max-wait 300", done.stdout)
    assert "--resume" in done.stdout
    assert answered == [status]  # one answer, then no more requests
    statuses = pd.read_csv(tmp_path / "r.csv")["status"].tolist()
    assert statuses == [
        "succeeded" if status == 200 else "failed",
        "not_attempted",
        "not_attempted",
    ]
    with ServerThread(friendly) as server:
        resume = ("run", "--input", "plan.csv", "--report", "r.csv", "--resume")
        again = run_cli(tmp_path, KEY, *resume, "--base-url", server.url + "/api/v1")
        posts = [path for method, path in server.requests if method == "POST"]
    assert again.returncode == 0, again.stderr
    assert len(posts) == (2 if status == 200 else 3)  # what succeeded is not sent again


def test_max_wait_from_a_job_file_and_a_flag(tmp_path: Path) -> None:
    job = tmp_path / "job.toml"
    job.write_text('input = "plan.csv"\nmax_wait = 45\n')
    options = read_job_file(job)
    assert build_config(options, {}).max_wait == 45.0
    assert build_config(options, {"max_wait": 900.0}).max_wait == 900.0
    assert build_config({"input": "p.csv"}, {}).max_wait == 300.0
    with pytest.raises(UsageError, match="max wait must be a positive number of seconds"):
        build_config(options, {"max_wait": 0.0})


def test_a_damaged_journal_stops_resume_before_anything_is_sent(tmp_path: Path) -> None:
    write_plan(tmp_path, [101, 102])
    journal = tmp_path / "r.csv.journal"
    journal.write_text(
        '{"journal": 1, "input": "plan.csv", "started_at": "2026-11-26T09:00:00+00:00"}\n'
        '{"key": "abc", "row": 1, "status": "succeeded", "attempts": "two"}\n'
        '{"key": "def", "row": 2, "status": "failed", "attempts": 1}\n'
    )
    with ServerThread(friendly) as server:
        args = ("run", "--input", "plan.csv", "--report", "r.csv", "--resume")
        done = run_cli(tmp_path, KEY, *args, "--base-url", server.url + "/api/v1")
    assert done.returncode == 2
    assert server.requests == []
    assert done.stderr.startswith(f"bulkrunner: error: {journal.name}: line 2 has a bad value")
    assert len(done.stderr.strip().splitlines()) == 1


def test_an_oversize_id_is_an_invalid_row_and_the_others_are_sent(tmp_path: Path) -> None:
    write_plan(tmp_path, [101, 10**22, 102])
    with ServerThread(friendly) as server:
        args = ("run", "--input", "plan.csv", "--report", "r.csv")
        done = run_cli(tmp_path, KEY, *args, "--base-url", server.url + "/api/v1")
        posts = sorted(path for method, path in server.requests if method == "POST")
    assert done.returncode == 1, done.stderr
    assert [path.split("?")[0] for path in posts] == [
        "/api/v1/campaigns/101/settings",
        "/api/v1/campaigns/102/settings",
    ]
    report = pd.read_csv(tmp_path / "r.csv", dtype=str)
    assert report["status"].tolist() == ["succeeded", "invalid", "succeeded"]
    assert report["error"][1] == f"campaign_id: {10**22} is above {2**63 - 1}"


def test_a_parquet_struct_column_is_a_one_line_error_and_nothing_is_sent(tmp_path: Path) -> None:
    cells = pa.array([{"value": 5}, {"value": 6}])
    pq.write_table(
        pa.table({"campaign_id": [1, 2], "sending_limit": cells}), tmp_path / "p.parquet"
    )
    with ServerThread(friendly) as server:
        args = ("run", "--input", "p.parquet", "--report", "r.csv")
        done = run_cli(tmp_path, KEY, *args, "--base-url", server.url + "/api/v1")
    assert done.returncode == 2
    assert server.requests == []
    assert done.stderr == (
        "bulkrunner: error: p.parquet: column 'sending_limit' holds struct values (Parquet "
        "type struct<value: int64>); settings are numbers, text, true/false or lists of text\n"
    )


def test_a_list_of_campaigns_longer_than_the_cap_is_read_once_never_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The cap made small (it is 64 MB): a run reads each campaign on its own instead, an
    export stops (exit 3) saying why; neither asks for the list again."""
    from bulkrunner.sending import transport

    monkeypatch.setattr(transport, "MAX_BODY", 4000, raising=False)
    monkeypatch.setenv("SMARTLEAD_API_KEY", KEY)
    monkeypatch.chdir(tmp_path)
    write_plan(tmp_path, [101, 102])

    async def long_list(request: web.Request) -> web.Response:
        if request.method == "GET" and request.path == "/api/v1/campaigns/":
            return web.json_response([{"id": n, "name": f"campaign {n}"} for n in range(300)])
        return await friendly(request)

    unread = (
        "HTTP 200: the answer is larger than 4,000 bytes, the most bulkrunner reads: left unread"
    )
    with ServerThread(long_list) as server:
        url = ("--base-url", server.url + "/api/v1")
        code, out, err = run(capsys, "run", "plan.csv", "--report", "r.csv", *url)
        assert code == 0, out + err
        assert f"cannot read the list of campaigns ({unread}): reading each campaign" in err
        lists = [path for _, path in server.requests if path.startswith("/api/v1/campaigns/?")]
        assert len(lists) == 1
        code, out, err = run(capsys, "export", "--output", "e.csv", *url)
        lists = [path for _, path in server.requests if path.startswith("/api/v1/campaigns/?")]
    assert pd.read_csv("r.csv")["status"].tolist() == ["succeeded", "succeeded"]
    assert code == 3
    assert one_line_error(err) == (
        f"bulkrunner: error: export aborted: cannot read the list of campaigns ({unread}); "
        "nothing was exported"
    )
    assert len(lists) == 2
    assert not Path("e.csv").exists()
    assert not leaks(out + err)


def test_a_day_long_wait_asked_by_the_list_call_stops_the_run_before_sending(
    tmp_path: Path,
) -> None:
    write_plan(tmp_path, [101, 102])

    async def stalling(request: web.Request) -> web.Response:
        if request.method == "GET":
            return web.json_response(
                {"error": "slow down"}, status=429, headers={"Retry-After": "86400"}
            )
        return web.json_response({"success": True})

    with ServerThread(stalling) as server:
        base = server.url + "/api/v1"
        args = ("run", "--input", "plan.csv", "--report", "r.csv", "--base-url", base)
        done = run_cli(tmp_path, KEY, *args, timeout=60)
        posts = [path for method, path in server.requests if method == "POST"]
    assert done.returncode == 3, done.stderr
    assert "asked to wait 86400s (Retry-After), more than --max-wait 300" in done.stdout
    assert posts == []
    statuses = pd.read_csv(tmp_path / "r.csv")["status"].tolist()
    assert statuses == ["not_attempted", "not_attempted"]


@pytest.mark.parametrize(
    ("shown", "sent"),
    [("other", False), ("same as text", True), ("none", True)],
)
def test_a_campaign_read_one_by_one_must_be_the_campaign_asked_for(
    shown: str, sent: bool, tmp_path: Path
) -> None:
    """A ``GET /campaigns/{id}`` answering another campaign's settings is no backup of this
    one: the row is failed before sending (the list shows no campaign, so each is read)."""
    write_plan(tmp_path, [101, 102])

    async def confused(request: web.Request) -> web.Response:
        if request.method == "POST":
            return web.json_response({"success": True})
        if request.path.endswith("/campaigns") or request.path.endswith("/campaigns/"):
            return web.json_response([])
        asked = int(request.path.rstrip("/").rsplit("/", 1)[1])
        campaign: dict[str, object] = {"name": "x", "max_leads_per_day": 5, "unsubscribe_text": ""}
        if shown == "other":
            campaign["id"] = asked + 1000
        elif shown == "same as text":
            campaign["id"] = f" {asked} "
        return web.json_response(campaign)

    with ServerThread(confused) as server:
        base = server.url + "/api/v1"
        args = ("run", "--input", "plan.csv", "--report", "r.csv", "--base-url", base)
        done = run_cli(tmp_path, KEY, *args, timeout=60)
        posts = [path for method, path in server.requests if method == "POST"]
    report = pd.read_csv(tmp_path / "r.csv", dtype=str, keep_default_na=False)
    if sent:
        assert done.returncode == 0, done.stdout + done.stderr
        assert len(posts) == 2
        assert report["status"].tolist() == ["succeeded", "succeeded"]
    else:
        assert done.returncode == 1, done.stdout + done.stderr
        assert posts == []
        assert report["status"].tolist() == ["failed", "failed"]
        assert report["error"].tolist() == [
            f"campaign {n}: its current settings could not be read (the answer is campaign "
            f"'{n + 1000}', not {n}); not sent, as it could not be backed up (--no-backup sends "
            "it anyway)"
            for n in (101, 102)
        ]


def test_verify_reading_another_campaign_verifies_nothing(tmp_path: Path) -> None:
    write_plan(tmp_path, [101])

    async def confused(request: web.Request) -> web.Response:
        if request.method == "POST":
            return web.json_response({"success": True})
        if request.path.rstrip("/").endswith("/campaigns"):
            return web.json_response([{"id": 101, "sending_limit": 1, "unsubscribe_text": ""}])
        return web.json_response({"id": 202, "max_leads_per_day": 10, "unsubscribe_text": "bye"})

    with ServerThread(confused) as server:
        base = server.url + "/api/v1"
        args = ("run", "--input", "plan.csv", "--report", "r.csv", "--base-url", base, "--verify")
        done = run_cli(tmp_path, KEY, *args, timeout=60)
    report = pd.read_csv(tmp_path / "r.csv", dtype=str, keep_default_na=False)
    # applied, but not known to hold: not succeeded, a failure
    assert done.returncode == 1, done.stdout + done.stderr
    assert report["status"].tolist() == ["unverified"]
    assert report["error"].tolist() == ["not verified: the answer is campaign '202', not 101"]


UNREADABLE = {
    "data-null": '{"data": null}',
    "empty": "{}",
    "id-only": '{"id": ID}',
    "all-null": '{"id": ID, "name": null, "sending_limit": null, "unsubscribe_text": null}',
}


@pytest.mark.parametrize(
    ("shape", "listed"),
    [
        *((shape, False) for shape in UNREADABLE),
        # the list shows the campaigns with their ids only: each is read on its own
        ("id-only", True),
        ("all-null", True),
    ],
)
def test_a_campaign_read_as_nothing_is_failed_unsent_unless_no_backup(
    tmp_path: Path, shape: str, listed: bool
) -> None:
    """Not "nothing to back up": an answer without the values a row changes could not be
    read, so the row is not sent (with --no-backup it is)."""
    write_plan(tmp_path, [101, 102])

    async def blank(request: web.Request) -> web.Response:
        if request.method == "POST":
            return web.json_response({"success": True})
        found = re.fullmatch(r"/api/v1/campaigns/(\d+)", request.path)
        if found is None:  # the list: the campaigns as nothing too, or none of them
            items = [json.loads(UNREADABLE[shape].replace("ID", str(n))) for n in (101, 102)]
            return web.json_response(items if listed else [])
        body = UNREADABLE[shape].replace("ID", found[1])
        return web.Response(text=body, content_type="application/json")

    with ServerThread(blank) as server:
        base = ("--base-url", server.url + "/api/v1")
        done = run_cli(tmp_path, KEY, "run", "plan.csv", "--report", "r.csv", *base)
        posts = [path for method, path in server.requests if method == "POST"]
        assert done.returncode == 1, done.stderr
        assert posts == []
        report = pd.read_csv(tmp_path / "r.csv", keep_default_na=False)
        assert report["status"].tolist() == ["failed", "failed"]
        assert report["error"][0] == (
            "campaign 101: its current settings could not be read (the answer shows no value of "
            "any field a settings row sets); not sent, as it could not be backed up (--no-backup "
            "sends it anyway)"
        )
        assert not (tmp_path / "r.csv.backup.parquet").exists()  # so no rollback "restores" it
        done = run_cli(
            tmp_path, KEY, "run", "plan.csv", "--report", "sent.csv", "--no-backup", *base
        )
        assert done.returncode == 0, done.stderr
        assert len([path for method, path in server.requests if method == "POST"]) == 2


def test_verify_reading_back_nothing_says_not_verified_not_mismatch(tmp_path: Path) -> None:
    write_plan(tmp_path, [101])

    async def forgetful(request: web.Request) -> web.Response:
        if request.method == "POST":
            return web.json_response({"success": True})
        if request.path.rstrip("/").endswith("/campaigns"):
            return web.json_response([{"id": 101, "sending_limit": 1, "unsubscribe_text": ""}])
        return web.json_response({"data": None})  # the read back

    with ServerThread(forgetful) as server:
        base = server.url + "/api/v1"
        args = ("run", "plan.csv", "--report", "r.csv", "--base-url", base, "--verify")
        done = run_cli(tmp_path, KEY, *args)
    report = pd.read_csv(tmp_path / "r.csv", dtype=str, keep_default_na=False)
    assert done.returncode == 1, done.stdout + done.stderr  # not known to hold: a failure
    assert report["status"].tolist() == ["unverified"]
    assert report["error"].tolist() == [
        "not verified: the answer shows no value of any field a settings row sets"
    ]
