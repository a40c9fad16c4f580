"""The backup as a ledger of original values, and the reads before sending that fill it.

Unit tests: the ledger file on its own, and ``read_current``/``plan`` with a scripted sender and
a recorded sleep (no real time). The command-line behaviour is in test_operator.py.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from bulkrunner.cli.app import main
from bulkrunner.config.job_file import build_config, read_job_file
from bulkrunner.config.paths import backup_path
from bulkrunner.errors import KeyRejected
from bulkrunner.model import Answer, Change, Row, Status
from bulkrunner.operations.base import Request
from bulkrunner.operations.schedule import SCHEDULE
from bulkrunner.operations.settings import SETTINGS
from bulkrunner.operations.state import slim
from bulkrunner.records.backup import BackupError, read_backup, read_unrestorable, record_backup
from bulkrunner.sending.connection import Connection
from bulkrunner.sending.plan import plan
from bulkrunner.sending.reads import Current, read_current
from tests.fakes import FakeClock, RecordingSleep, connection

UNAVAILABLE = Answer(503, "Service Unavailable")
THROTTLED = Answer(429, '{"error": {"code": "RATE_LIMIT_EXCEEDED"}}', retry_after=30.0)


# --- the ledger file ---------------------------------------------------------------------------


def test_backup_names_differ_for_reports_that_differ_only_in_extension(tmp_path: Path) -> None:
    names = {backup_path(tmp_path / "out" / f"x.{ext}") for ext in ("csv", "json", "parquet")}
    assert len(names) == 3
    assert backup_path(tmp_path / "x.csv") == tmp_path / "x.csv.backup.parquet"


def test_a_resumed_run_adds_to_the_ledger_and_never_overwrites_a_recorded_value(
    tmp_path: Path,
) -> None:
    path = tmp_path / "r.csv.backup.parquet"
    first = {
        11: {"sending_limit": Change(40, 150), "track_settings": Change([], ["DONT_EMAIL_OPEN"])},
        12: {"sending_limit": Change(55, 60)},
    }
    assert record_backup(path, first, keep=True).campaigns == 2  # no ledger yet: a new one
    # The resumed run sees 11 and 12 with the first run's new values, and 13 untouched.
    second = {
        11: {"sending_limit": Change(150, 150), "unsubscribe_text": Change("", "STOP")},
        12: {"sending_limit": Change(60, 60)},
        13: {"sending_limit": Change(33, 70)},
    }
    recorded = record_backup(path, second, keep=True)
    assert (recorded.campaigns, recorded.unknown, recorded.total) == (3, 0, 3)
    assert read_backup(path) == {
        11: {"sending_limit": 40, "track_settings": [], "unsubscribe_text": ""},
        12: {"sending_limit": 55},
        13: {"sending_limit": 33},
    }
    # Any number of resumptions later, still the values from before the first run.
    record_backup(path, {12: {"sending_limit": Change(99, 60)}}, keep=True)
    assert read_backup(path)[12] == {"sending_limit": 55}
    assert not list(tmp_path.glob(".*.tmp"))  # written through a temporary file, renamed


def test_a_new_run_starts_a_new_ledger(tmp_path: Path) -> None:
    path = tmp_path / "r.csv.backup.parquet"
    record_backup(path, {11: {"sending_limit": Change(40, 150)}}, keep=False)
    record_backup(path, {12: {"sending_limit": Change(55, 60)}}, keep=False)
    assert read_backup(path) == {12: {"sending_limit": 55}}


def test_a_field_with_no_value_before_is_not_backed_up_but_named_as_unrestorable(
    tmp_path: Path,
) -> None:
    path = tmp_path / "r.csv.backup.parquet"
    recorded = record_backup(
        path,
        {
            11: {"client_id": Change(None, 4)},
            12: {"sending_limit": Change(55, 60), "client_id": Change(None, 4)},
            13: {"sending_limit": Change("abc", 60)},
        },
        keep=False,
    )
    assert (recorded.campaigns, recorded.unknown, recorded.total) == (1, 0, 1)
    assert pd.read_parquet(path)["campaign_id"].tolist() == [12]  # no row of nulls for 11, 13
    lost = "client_id had no value before the run, and no API call takes a value away"
    assert (
        recorded.unrestorable
        == read_unrestorable(path)
        == {
            11: lost,
            12: lost,
            13: "sending_limit: the value before the run is not of the field's type, so the backup "
            "cannot hold it",
        }
    )


def test_an_unreadable_ledger_is_an_error_naming_the_file(tmp_path: Path) -> None:
    path = tmp_path / "r.csv.backup.parquet"
    path.write_text("not parquet")
    with pytest.raises(BackupError, match=r"r\.csv\.backup\.parquet: cannot read the backup"):
        record_backup(path, {11: {"sending_limit": Change(40, 150)}}, keep=True)
    assert path.read_text() == "not parquet"  # left as it was, for a human to look at


# --- reading the current settings before sending -----------------------------------------------


def campaign(cid: int, limit: int) -> dict[str, Any]:
    return {"id": cid, "name": f"Campaign {cid}", "sending_limit": limit}


class ReadSender:
    """Answers the list call and each campaign's reads from scripts; records every call."""

    def __init__(
        self,
        listing: Sequence[Answer],
        reads: Mapping[int, Sequence[Answer]] | None = None,
    ) -> None:
        self.listing = list(listing)
        self.reads = {cid: list(answers) for cid, answers in (reads or {}).items()}
        self.calls: list[str] = []

    async def send(self, request: Request) -> Answer:
        raise AssertionError("nothing is sent while reading")

    async def get_campaign(self, campaign_id: int) -> Answer:
        self.calls.append(f"GET {campaign_id}")
        await asyncio.sleep(0)
        answers = self.reads.get(campaign_id, [])
        return answers.pop(0) if len(answers) > 1 else answers[0]

    async def list_campaigns(self) -> Answer:
        self.calls.append("LIST")
        await asyncio.sleep(0)
        return self.listing.pop(0) if len(self.listing) > 1 else self.listing[0]

    async def read(self, path: str) -> Answer:
        return Answer(404, '{"error": "Not found"}')


def reading(
    sender: ReadSender, sleep: RecordingSleep, attempts: int = 4, concurrency: int = 4
) -> Connection:
    """A connection to ``sender`` whose retries wait on ``sleep``."""
    return connection(sender, FakeClock(), sleep, max_attempts=attempts, concurrency=concurrency)


def listing(*campaigns: dict[str, Any]) -> Answer:
    return Answer(200, json.dumps(list(campaigns)))


async def test_the_list_call_is_retried_and_honours_retry_after() -> None:
    sleep = RecordingSleep()
    sender = ReadSender([UNAVAILABLE, THROTTLED, listing(campaign(11, 40))])
    current = await read_current(reading(sender, sleep), {11})
    assert sender.calls == ["LIST", "LIST", "LIST"]
    assert current.campaigns == {11: slim(campaign(11, 40))}
    assert len(sleep.delays) == 2
    assert 0 <= sleep.delays[0] <= 2.0  # backoff after the first try: uniform(0, 2)
    assert sleep.delays[1] >= 30.0  # never sooner than the 429's Retry-After


async def test_campaigns_the_list_does_not_show_are_read_one_by_one_with_retries() -> None:
    sleep = RecordingSleep()
    sender = ReadSender(
        [listing(campaign(11, 40))],
        {
            12: [UNAVAILABLE, Answer(200, json.dumps({"data": campaign(12, 55)}))],
            13: [Answer(404, '{"error": "Campaign not found"}')],
        },
    )
    current = await read_current(reading(sender, sleep, concurrency=2), {11, 12, 13})
    assert sorted(sender.calls) == ["GET 12", "GET 12", "GET 13", "LIST"]
    assert current.campaigns[12] == slim(campaign(12, 55))
    assert current.missing == {13}
    assert current.unreadable == {}
    assert len(sleep.delays) == 1


async def test_a_failed_list_call_leads_to_reading_every_campaign() -> None:
    sender = ReadSender(
        [UNAVAILABLE],
        {11: [Answer(200, json.dumps(campaign(11, 40)))], 12: [UNAVAILABLE]},
    )
    current = await read_current(reading(sender, RecordingSleep(), attempts=3), {11, 12})
    assert sender.calls.count("LIST") == 3  # every try of the list call failed
    assert sender.calls.count("GET 12") == 3
    assert current.campaigns == {11: slim(campaign(11, 40))}
    assert current.unreadable == {
        12: "its current settings could not be read (HTTP 503: Service Unavailable)"
    }


async def test_with_no_backup_unlisted_campaigns_are_not_read() -> None:
    sender = ReadSender([listing(campaign(11, 40))], {12: [UNAVAILABLE]})
    current = await read_current(reading(sender, RecordingSleep()), {11, 12}, one_by_one=False)
    assert sender.calls == ["LIST"]
    assert set(current.campaigns) == {11}


async def test_a_rejected_key_on_a_campaign_read_stops_everything() -> None:
    sender = ReadSender([listing()], {11: [Answer(401, '{"message": "Invalid API Key"}')]})
    with pytest.raises(KeyRejected, match="HTTP 401"):
        await read_current(reading(sender, RecordingSleep()), {11})


async def test_rows_whose_campaign_is_missing_or_unreadable_are_not_sent() -> None:
    sender = ReadSender(
        [listing(campaign(11, 40), campaign(14, 70))],
        {12: [UNAVAILABLE], 13: [Answer(404, '{"error": "Campaign not found"}')]},
    )
    current = await read_current(reading(sender, RecordingSleep(), attempts=2), {11, 12, 13, 14})
    rows = [
        Row(1, 11, {"sending_limit": 150}),
        Row(2, 12, {"sending_limit": 60}),
        Row(3, 13, {"sending_limit": 70}),
        Row(4, 14, {"sending_limit": 70}),
    ]
    planned = plan(rows, current, skip=True, require_backup=True)
    assert [row.number for row in planned.send] == [1]
    assert list(planned.unchanged) == [4]
    assert planned.refused[2].status is Status.FAILED
    assert planned.refused[2].error == (
        "campaign 12: its current settings could not be read (HTTP 503: Service Unavailable); "
        "not sent, as it could not be backed up (--no-backup sends it anyway)"
    )
    assert (planned.refused[3].http_status, planned.refused[3].error) == (
        404,
        "campaign 13 not found (404)",
    )
    assert planned.changes[1] == {"sending_limit": Change(40, 150)}
    # --no-backup: the unreadable campaign is sent; the missing one still is not.
    planned = plan(rows, current, skip=True, require_backup=False)
    assert [row.number for row in planned.send] == [1, 2]
    assert list(planned.refused) == [3]


def test_no_backup_is_an_option_of_the_command_line_and_the_job_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    job = tmp_path / "job.toml"
    job.write_text('input = "plan.csv"\nno_backup = true\n')
    assert build_config(read_job_file(job), {}).no_backup is True
    assert build_config({"input": "plan.csv"}, {"no_backup": None}).no_backup is False
    with pytest.raises(SystemExit):
        main(["run", "--help"])
    assert "--no-backup" in capsys.readouterr().out


# --- answers that show no state, and fields that have no value ----------------------------------

NOTHING_SHOWN = [
    pytest.param({"data": None}, id="data-null"),
    pytest.param({}, id="empty"),
    pytest.param({"id": 11}, id="id-only"),
    pytest.param({"id": 11, "name": None, **dict.fromkeys(SETTINGS.columns)}, id="all-null"),
]


@pytest.mark.parametrize("answer", NOTHING_SHOWN)
async def test_a_campaign_read_as_showing_nothing_is_unreadable_and_not_sent(
    answer: dict[str, Any],
) -> None:
    sender = ReadSender([listing()], {11: [Answer(200, json.dumps(answer))]})
    current = await read_current(reading(sender, RecordingSleep()), {11})
    assert current.campaigns == {}
    assert current.unreadable == {
        11: "its current settings could not be read (the answer shows no value of any field a "
        "settings row sets)"
    }
    rows = [Row(1, 11, {"sending_limit": 150})]
    planned = plan(rows, current, skip=True, require_backup=True)
    assert planned.send == []
    assert planned.refused[1].error.endswith(
        "not sent, as it could not be backed up (--no-backup sends it anyway)"
    )
    assert [row.number for row in plan(rows, current, skip=True).send] == [1]  # --no-backup


@pytest.mark.parametrize("shown", NOTHING_SHOWN[2:])
async def test_a_listed_campaign_showing_nothing_is_read_on_its_own(shown: dict[str, Any]) -> None:
    sender = ReadSender([listing(shown)], {11: [Answer(200, json.dumps(campaign(11, 40)))]})
    current = await read_current(reading(sender, RecordingSleep()), {11})
    assert sender.calls == ["LIST", "GET 11"]
    assert current.campaigns == {11: slim(campaign(11, 40))}


def test_setting_a_field_with_no_value_is_refused_unless_allowed() -> None:
    current = Current(campaigns={11: slim({"id": 11, "sending_limit": 40, "client_id": None})})
    current.campaigns[12] = slim({"id": 12, "sending_limit": 40})  # client_id not shown
    rows = [
        Row(1, 11, {"sending_limit": 50, "client_id": 4}),
        Row(2, 12, {"client_id": 4}),
        Row(3, 11, {"sending_limit": 60}),
    ]
    planned = plan(rows, current, skip=True, require_backup=True)
    assert [row.number for row in planned.send] == [3]
    assert planned.refused[1].error == (
        "campaign 11: client_id has no value now (null or not shown), and no API call takes a "
        "value away: a rollback could not undo setting it; not sent (--allow-irreversible "
        "sends it)"
    )
    assert planned.refused[2].error.startswith("campaign 12: client_id has no value now")
    assert planned.missing == set()  # the campaigns were read: refused, not missing
    allowed = plan(rows, current, skip=True, require_backup=True, allow_irreversible=True)
    assert [row.number for row in allowed.send] == [1, 2, 3]
    assert allowed.irreversible == {1: ["client_id"], 2: ["client_id"]}
    # --no-backup: nothing is undone anyway
    assert len(plan(rows, current, skip=True).send) == 3


def test_a_first_schedule_is_irreversible_too() -> None:
    bare = slim({"id": 6, "scheduler_cron_value": None, "max_leads_per_day": 20}, SCHEDULE.reads)
    whole = {"timezone": "UTC", "days": ["mon"], "start_hour": "09:00", "end_hour": "17:00"}
    current = Current(campaigns={6: bare})
    planned = plan([Row(1, 6, whole)], current, True, require_backup=True, operation=SCHEDULE)
    assert planned.refused[1].error.startswith(
        "campaign 6: timezone, days, start_hour, end_hour have no value now"
    )
    planned = plan(
        [Row(1, 6, whole)], current, True, True, operation=SCHEDULE, allow_irreversible=True
    )
    assert planned.irreversible == {1: ["timezone", "days", "start_hour", "end_hour"]}
