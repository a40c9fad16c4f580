"""The ``schedule`` operation: every cell form, the wire body in both shapes, the state from both
forms of ``scheduler_cron_value``, changes, refusals and undo; then every command end to end
against the simulator on 127.0.0.1."""

from __future__ import annotations

import json
import shlex
import urllib.request
from collections.abc import Iterator
from datetime import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from bulkrunner.cli.app import main
from bulkrunner.config.paths import backup_path
from bulkrunner.input.validation import validate
from bulkrunner.model import Answer, Change, Row
from bulkrunner.operations import operation
from bulkrunner.operations.base import Request, Wire
from bulkrunner.operations.fields import ScheduleShape, Vocabulary
from bulkrunner.operations.refusals import ShapeRefusals
from bulkrunner.operations.schedule import SCHEDULE, read_cron
from bulkrunner.simulator import FaultPlan, SimulatorConfig, SimulatorThread, default_schedule
from tests.fakes import run

KEY = "sk-schedule-SENTINEL-5e1d"
NESTED, FLAT = Wire(schedule_shape=ScheduleShape.NESTED), Wire(schedule_shape=ScheduleShape.FLAT)


@pytest.fixture(autouse=True)
def environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SMARTLEAD_API_KEY", KEY)
    monkeypatch.delenv("SMARTLEAD_BASE_URL", raising=False)


def judged(column: str, *cells: Any) -> list[tuple[Any, str]]:
    """Each cell of ``column`` as the schedule operation reads it: (value, "") or (None, error)."""
    frame = pd.DataFrame(
        {"campaign_id": list(range(1, len(cells) + 1)), column: list(cells)}, dtype=object
    )
    result = validate(frame, Vocabulary.DOCUMENTED, operation=SCHEDULE, wire=NESTED)
    found: dict[int, tuple[Any, str]] = {r.number: (r.payload[column], "") for r in result.rows}
    found.update({r.number: (None, r.error) for r in result.rejections})
    return [found[n] for n in range(1, len(cells) + 1)]


def value(column: str, cell: Any) -> Any:
    ((parsed, error),) = judged(column, cell)
    assert error == "", error
    return parsed


def error(column: str, cell: Any) -> str:
    ((parsed, found),) = judged(column, cell)
    assert parsed is None, f"{cell!r} was accepted as {parsed!r}"
    assert found
    assert "\n" not in found
    return found


def test_the_operation_is_registered() -> None:
    assert operation("schedule") is SCHEDULE
    assert SCHEDULE.columns == (
        "timezone",
        "days",
        "start_hour",
        "end_hour",
        "min_time_btw_emails",
        "max_new_leads_per_day",
        "schedule_start_time",
    )


# --- cells ------------------------------------------------------------------------------------

WEEKDAYS = ["mon", "tue", "wed", "thu", "fri"]


@pytest.mark.parametrize(
    ("cell", "days"),
    [
        ("mon;tue;wed", ["mon", "tue", "wed"]),
        ("Mon-Fri", WEEKDAYS),
        ("Mon - Fri", WEEKDAYS),
        ("mon\u2013fri", WEEKDAYS),
        ("Friday, Monday", ["mon", "fri"]),
        ("MONDAY TUESDAY", ["mon", "tue"]),
        ("tu; th", ["tue", "thu"]),
        ("thurs/tues", ["tue", "thu"]),
        ("weekdays", WEEKDAYS),
        ("weekend", ["sat", "sun"]),
        ("daily", ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]),
        ("Fri-Mon", ["mon", "fri", "sat", "sun"]),  # a range runs forward through the week
        ("sun;sun;Sunday", ["sun"]),
        ("[mon, 'wed']", ["mon", "wed"]),
        (["sun", "mon"], ["mon", "sun"]),  # a Parquet list
        (np.array(["sat", "mon-tue"], dtype=object), ["mon", "tue", "sat"]),
    ],
)
def test_days_are_read_from_names_in_every_form(cell: Any, days: list[str]) -> None:
    assert value("days", cell) == days


@pytest.mark.parametrize(
    ("cell", "says"),
    [
        ("1;2;3", "days: '1' is a number: write day names"),
        ("mon;5", "days: '5' is a number"),
        ("0-4", "days: '0' is a number"),
        ([1, 2], "days: '1' is a number"),
        (np.array([0, 6]), "days: '0' is a number"),
        ("funday", "days: 'funday' is not a day (use mon..sun"),
        ("m", "days: 'm' is not a day"),
        ("mon-xyz", "days: 'xyz' is not a day"),
        ("[]", "days: no day given"),
        ([], "days: no day given"),
        (["mon", None], "days: None is not a day"),
        ([True], "days: True is not a day"),
    ],
)
def test_day_numbers_and_unknown_days_are_refused_naming_the_column(cell: Any, says: str) -> None:
    assert error("days", cell).startswith(says)


def test_the_refusal_of_a_day_number_says_why_numbers_are_not_guessed() -> None:
    assert "0=Sunday or 1=Monday" in error("days", "1")


@pytest.mark.parametrize(
    ("cell", "zone"),
    [
        ("Europe/London", "Europe/London"),
        ("  america/new_york ", "America/New_York"),
        ("UTC", "UTC"),
        ("asia/kolkata", "Asia/Kolkata"),
    ],
)
def test_a_timezone_is_an_iana_name_spelled_as_the_database_does(cell: str, zone: str) -> None:
    assert value("timezone", cell) == zone


@pytest.mark.parametrize(
    ("cell", "says"),
    [
        (
            "Europe/Londn",
            "timezone: 'Europe/Londn' is not an IANA timezone (did you mean Europe/London?)",
        ),
        ("Mars/Olympus", "timezone: 'Mars/Olympus' is not an IANA timezone (use a name like"),
        ("EST5", "timezone: 'EST5' is not an IANA timezone"),
        (5, "timezone: 5 is not a timezone name"),
    ],
)
def test_an_unknown_timezone_is_refused_with_a_suggestion(cell: Any, says: str) -> None:
    assert error("timezone", cell).startswith(says)


@pytest.mark.parametrize(
    ("cell", "hour"),
    [
        ("09:00", "09:00"),
        ("9:00", "09:00"),
        ("17:30:00", "17:30"),
        ("0:00", "00:00"),
        ("23:59", "23:59"),
        (time(8, 15), "08:15"),
    ],
)
def test_an_hour_is_hh_mm_24_hour(cell: Any, hour: str) -> None:
    assert value("start_hour", cell) == hour
    assert value("end_hour", cell) == hour


@pytest.mark.parametrize(
    "cell", ["24:00", "9am", "12:60", "9", "09:00:30", "0900", time(9, 0, 30), "09:\u0966\u0966"]
)
def test_a_malformed_hour_is_refused_naming_the_column(cell: Any) -> None:
    assert error("end_hour", cell).startswith("end_hour: ")
    assert "HH:MM" in error("start_hour", cell)


@pytest.mark.parametrize(
    ("cell", "utc"),
    [
        ("2026-12-01T09:00:00Z", "2026-12-01T09:00:00Z"),
        ("2027-01-04T09:00:00+01:00", "2027-01-04T08:00:00Z"),
        ("2026-12-01 04:30-05:00", "2026-12-01T09:30:00Z"),
        ("2026-12-01T09:00:00.250Z", "2026-12-01T09:00:00.250000Z"),
        (pd.Timestamp("2026-06-01T12:00:00", tz="Europe/Berlin"), "2026-06-01T10:00:00Z"),
    ],
)
def test_the_start_time_is_normalised_to_utc(cell: Any, utc: str) -> None:
    assert value("schedule_start_time", cell) == utc


@pytest.mark.parametrize(
    ("cell", "says"),
    [
        ("2026-12-01T09:00:00", "has no UTC offset: add Z or one like +01:00"),
        (pd.Timestamp("2026-12-01T09:00:00"), "has no UTC offset"),
        ("2026-12-01", "has no time of day"),
        ("next monday", "is not an ISO 8601 date-time"),
        ("9999-12-31T23:59:59-01:00", "is beyond the years 1 to 9999 once in UTC"),
        ("0001-01-01T00:00:00+14:00", "is beyond the years 1 to 9999 once in UTC"),
    ],
)
def test_a_start_time_without_offset_or_not_iso_is_refused(cell: Any, says: str) -> None:
    found = error("schedule_start_time", cell)
    assert found.startswith("schedule_start_time: ")
    assert says in found


@pytest.mark.parametrize("column", ["min_time_btw_emails", "max_new_leads_per_day"])
def test_the_limits_are_whole_numbers_from_zero(column: str) -> None:
    assert [value(column, cell) for cell in ("0", "120", 15)] == [0, 120, 15]
    assert error(column, "-1") == f"{column}: -1 is below 0"
    assert error(column, "ten") == f"{column}: 'ten' is not a whole number"


def test_a_row_whose_start_is_not_before_its_end_is_invalid() -> None:
    frame = pd.DataFrame(
        {
            "campaign_id": ["1", "2", "3"],
            "start_hour": ["18:00", "09:00", "09:00"],
            "end_hour": ["09:00", "09:00", "17:00"],
        }
    )
    result = validate(frame, Vocabulary.DOCUMENTED, operation=SCHEDULE, wire=NESTED)
    assert [(r.number, r.error) for r in result.rejections] == [
        (1, "start_hour: 18:00 is not before end_hour 09:00"),
        (2, "start_hour: 09:00 is not before end_hour 09:00"),
    ]
    assert [dict(r.payload) for r in result.rows] == [{"start_hour": "09:00", "end_hour": "17:00"}]


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])  # the small CSV path, and pandas'
def test_a_row_invalid_otherwise_is_also_told_its_start_is_not_before_its_end(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], suffix: str
) -> None:
    """Every reason at once: fixing the timezone is not followed by a refusal of the hours."""
    frame = pd.DataFrame(
        {
            "campaign_id": ["104", "x", "106"],
            "timezone": ["Europe/London", "New York", "Europe/London"],
            "start_hour": ["09:00", "09:00", "25:00"],
            "end_hour": ["08:00", "08:00", "08:00"],
        }
    )
    path = tmp_path / f"s{suffix}"
    if suffix == ".csv":
        frame.to_csv(path, index=False)
    else:
        frame.to_parquet(path)
    code, out, _ = run(capsys, "validate", str(path), "--operation", "schedule")
    assert code == 1
    hours = "start_hour: 09:00 is not before end_hour 08:00"
    assert [line.split(": ", 1)[1] for line in out.splitlines()[:3]] == [
        hours,
        "campaign_id: 'x' is not a whole number; timezone: 'New York' is not an IANA timezone "
        f"(did you mean America/New_York?); {hours}",
        "start_hour: '25:00' is not a time HH:MM (24-hour, like 09:00 or 17:30)",
    ]


# --- the wire ---------------------------------------------------------------------------------

FULL: dict[str, Any] = {
    "timezone": "Europe/London",
    "days": ["mon", "fri", "sun"],
    "start_hour": "08:00",
    "end_hour": "16:30",
    "min_time_btw_emails": 10,
    "max_new_leads_per_day": 50,
    "schedule_start_time": "2026-12-01T09:00:00Z",
}


def test_the_nested_body_numbers_days_from_sunday() -> None:
    (request,) = SCHEDULE.requests(7, FULL, NESTED)
    assert request == Request(
        "POST",
        "/campaigns/7/schedule",
        {"schedule": {**FULL, "days": [0, 1, 5]}},
    )


def test_the_flat_body_numbers_days_of_the_week_from_monday() -> None:
    (request,) = SCHEDULE.requests(7, FULL, FLAT)
    body = {**FULL, "days_of_the_week": [1, 5, 7]}
    del body["days"]
    assert request == Request("POST", "/campaigns/7/schedule", body)


def test_only_the_given_fields_are_sent() -> None:
    payload = {"days": ["sat"], "max_new_leads_per_day": 0}
    assert SCHEDULE.requests(3, payload, NESTED)[0].body == {
        "schedule": {"days": [6], "max_new_leads_per_day": 0}
    }
    assert SCHEDULE.requests(3, payload, FLAT)[0].body == {
        "days_of_the_week": [6],
        "max_new_leads_per_day": 0,
    }


# --- the state, changes, refusals and undo ----------------------------------------------------

CRON = {
    "tz": "Europe/Bratislava",
    "days": [1, 2, 3, 4, 5],
    "startHour": "08:00",
    "endHour": "18:00",
}
STATE = {
    "timezone": "Europe/Bratislava",
    "days": WEEKDAYS,
    "start_hour": "08:00",
    "end_hour": "18:00",
    "min_time_btw_emails": 12,
    "max_new_leads_per_day": 40,
    "schedule_start_time": "2026-12-01T08:00:00Z",
}


def campaign(cron: Any = CRON, **more: Any) -> dict[str, Any]:
    return {
        "id": 5,
        "status": "ACTIVE",
        "scheduler_cron_value": cron,
        "min_time_btwn_emails": 12,
        "max_leads_per_day": 40,
        "schedule_start_time": "2026-12-01T09:00:00+01:00",
        **more,
    }


@pytest.mark.parametrize("cron", [CRON, json.dumps(CRON)], ids=["object", "string"])
def test_the_state_is_read_from_scheduler_cron_value_as_object_or_string(cron: Any) -> None:
    assert SCHEDULE.state(campaign(cron)) == STATE


@pytest.mark.parametrize("cron", ["not JSON", "[" * 100_000, '{"tz":' * 100_000])
def test_a_cron_string_that_is_not_a_schedule_reads_as_none(cron: str) -> None:
    """A server's ``scheduler_cron_value`` string nested deeper than Python's JSON parser goes
    raised RecursionError (an internal error); it is no schedule, as any other text."""
    assert read_cron(cron) is None


def test_the_state_reads_sunday_as_0_and_the_limits_under_their_other_names() -> None:
    found = SCHEDULE.state(
        {
            "scheduler_cron_value": {
                "tz": "UTC",
                "days": [0, 6],
                "startHour": "9:00",
                "endHour": "17:00",
            },
            "min_time_between_emails": "7",
            "sending_limit": 30,
        }
    )
    assert found == {
        "timezone": "UTC",
        "days": ["sat", "sun"],
        "start_hour": "09:00",
        "end_hour": "17:00",
        "min_time_btw_emails": 7,
        "max_new_leads_per_day": 30,
    }


@pytest.mark.parametrize("shown", ["\u00b2", "\u0663", "1\u00b2"])
def test_a_limit_shown_in_other_digits_is_kept_as_shown_not_a_crash(shown: str) -> None:
    """A server's ``"²"`` passed str.isdigit() and then broke int(): an internal error in
    every schedule run, plan and export of the account."""
    found = SCHEDULE.state(campaign(CRON, max_leads_per_day=shown, min_time_btwn_emails=shown))
    assert found["max_new_leads_per_day"] == shown
    assert found["min_time_btw_emails"] == shown


@pytest.mark.parametrize("cron", [None, "null", ""])
def test_a_campaign_without_a_schedule_is_known_to_have_none(cron: Any) -> None:
    found = SCHEDULE.state(campaign(cron, schedule_start_time=None))
    assert found["timezone"] is found["days"] is found["start_hour"] is found["end_hour"] is None
    assert found["schedule_start_time"] is None


def test_what_the_list_does_not_show_is_unknown() -> None:
    assert SCHEDULE.state({"id": 5, "scheduler_cron_value": "not json"}) == {}
    assert "days" not in SCHEDULE.state(campaign({**CRON, "days": "weekdays"}))


def test_changes_are_the_fields_that_differ_in_canonical_form() -> None:
    payload = {**STATE, "days": WEEKDAYS, "end_hour": "17:00"}
    assert SCHEDULE.changes(payload, campaign(json.dumps(CRON))) == {
        "end_hour": Change("18:00", "17:00")
    }
    assert SCHEDULE.changes(STATE, campaign()) == {}


def test_a_campaign_without_a_schedule_must_be_sent_all_of_it() -> None:
    bare = campaign(None)
    partial = {"timezone": "UTC", "days": ["mon"]}
    assert (
        SCHEDULE.refuse(partial, campaign("null"))
        == SCHEDULE.refuse(partial, bare)
        == (
            "it has no schedule yet, so the row must set timezone, days, start_hour and end_hour "
            "(missing: start_hour, end_hour)"
        )
    )
    whole = {**partial, "start_hour": "09:00", "end_hour": "17:00"}
    assert SCHEDULE.refuse(whole, bare) == ""
    assert SCHEDULE.refuse(partial, campaign()) == ""


def test_one_hour_is_compared_with_the_campaigns_other_hour() -> None:
    current = campaign()  # 08:00 to 18:00
    assert SCHEDULE.refuse({"start_hour": "18:30"}, current) == (
        "start_hour 18:30 would not be before end_hour 18:00 (its current end_hour; set both "
        "in the row)"
    )
    assert "start_hour 08:00 would not be before end_hour 07:00" in SCHEDULE.refuse(
        {"end_hour": "07:00"}, current
    )
    assert SCHEDULE.refuse({"start_hour": "17:59"}, current) == ""
    assert SCHEDULE.refuse({"start_hour": "19:00", "end_hour": "20:00"}, current) == ""
    assert SCHEDULE.refuse({"start_hour": "19:00"}, None) == ""  # unknown: the server judges


def test_undo_writes_back_the_values_it_had_and_says_what_it_cannot() -> None:
    undo = SCHEDULE.undo(
        {"days": Change(WEEKDAYS, ["sat"]), "max_new_leads_per_day": Change(40, 0)}
    )
    assert (undo.values, undo.reason) == ({"days": WEEKDAYS, "max_new_leads_per_day": 40}, "")
    lost = SCHEDULE.undo({"timezone": Change(None, "UTC"), "start_hour": Change("08:00", "07:00")})
    assert lost.values == {"start_hour": "08:00"}
    assert lost.reason == "no earlier value to put back for timezone"


# --- end to end against the simulator ---------------------------------------------------------


def listed(sim: SimulatorThread) -> dict[int, dict[str, Any]]:
    """Every campaign as ``GET /campaigns/`` shows it."""
    url = f"{sim.base_url}/campaigns/?api_key={KEY}"
    with urllib.request.urlopen(url, timeout=10) as answer:  # loopback only
        return {int(c["id"]): c for c in json.loads(answer.read())}


def schedules(sim: SimulatorThread) -> dict[int, dict[str, Any]]:
    return {cid: SCHEDULE.state(c) for cid, c in listed(sim).items()}


PLAN = (
    "campaign_id,timezone,days,start_hour,end_hour,min_time_btw_emails,max_new_leads_per_day,"
    "schedule_start_time\n"
    "1,europe/london,Mon-Fri,7:30,16:00,12,40,2027-01-04T09:00:00+01:00\n"
    '2,America/New_York,"sat, sun",10:00,14:00,,,\n'
    "3,,mon;wed;fri,,,,,\n"
)


def write_plan(tmp_path: Path, text: str = PLAN) -> Path:
    path = tmp_path / "schedule.csv"
    path.write_text(text)
    return path


@pytest.fixture(
    params=[(ScheduleShape.NESTED, False), (ScheduleShape.FLAT, True)],
    ids=["nested-object", "flat-string"],
)
def sim(request: pytest.FixtureRequest) -> Iterator[tuple[SimulatorThread, str]]:
    shape, as_string = request.param
    config = SimulatorConfig(
        api_key=KEY, campaigns={1, 2, 3, 4}, schedule_shape=shape, cron_as_string=as_string
    )
    with SimulatorThread(config) as running:
        yield running, shape


def test_run_verify_skip_unchanged_and_rollback_end_to_end(
    tmp_path: Path, sim: tuple[SimulatorThread, str], capsys: pytest.CaptureFixture[str]
) -> None:
    server, shape = sim
    source = write_plan(tmp_path)
    url = ["--base-url", server.base_url, "--operation", "schedule", "--schedule-shape", shape]
    before = schedules(server)

    report = tmp_path / "run.json"
    assert main(["run", "--input", str(source), "--report", str(report), "--verify", *url]) == 0
    after = schedules(server)
    assert after[1] == {
        "timezone": "Europe/London",
        "days": WEEKDAYS,
        "start_hour": "07:30",
        "end_hour": "16:00",
        "min_time_btw_emails": 12,
        "max_new_leads_per_day": 40,
        "schedule_start_time": "2027-01-04T08:00:00Z",
    }
    assert after[2] == {
        **before[2],
        "timezone": "America/New_York",
        "days": ["sat", "sun"],
        "start_hour": "10:00",
        "end_hour": "14:00",
    }
    assert after[3] == {**before[3], "days": ["mon", "wed", "fri"]}
    assert after[4] == before[4]
    rows = json.loads(report.read_text())
    assert [r["status"] for r in rows] == ["succeeded"] * 3  # --verify found each as sent
    assert json.loads(rows[2]["before"]) == {"days": before[3]["days"]}
    assert json.loads(rows[2]["after"]) == {"days": ["mon", "wed", "fri"]}

    # The same file again: everything is already as wanted, nothing is sent.
    sent = len(server.state.writes("schedule"))
    again = tmp_path / "again.json"
    assert main(["run", "--input", str(source), "--report", str(again), *url]) == 0
    assert [r["status"] for r in json.loads(again.read_text())] == ["unchanged"] * 3
    assert len(server.state.writes("schedule")) == sent

    # Rollback puts back exactly what the run changed.
    backup = backup_path(report)
    undo = tmp_path / "undo.json"
    assert (
        main(["rollback", str(report), "--report", str(undo), *url[:2], "--schedule-shape", shape])
        == 0
    )
    assert schedules(server) == before
    for path in (report, again, undo, backup):
        assert KEY not in path.read_bytes().decode("utf-8", "replace")
    assert KEY not in capsys.readouterr().out


def test_the_dry_run_previews_the_body_of_the_chosen_shape(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = write_plan(tmp_path, "campaign_id,days,start_hour,end_hour\n9,Sun-Tue,09:00,17:00\n")
    argv = ["run", "--input", str(source), "--operation", "schedule", "--dry-run"]
    assert main([*argv, "--report", str(tmp_path / "a.csv")]) == 0
    assert (
        'POST /campaigns/9/schedule {"schedule": {"days": [0, 1, 2], "start_hour": "09:00", '
        '"end_hour": "17:00"}}' in capsys.readouterr().out
    )
    assert main([*argv, "--report", str(tmp_path / "b.csv"), "--schedule-shape", "flat"]) == 0
    assert (
        'POST /campaigns/9/schedule {"days_of_the_week": [1, 2, 7], "start_hour": "09:00", '
        '"end_hour": "17:00"}' in capsys.readouterr().out
    )


def test_a_parquet_input_gives_lists_of_days_time_cells_and_timestamps(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = tmp_path / "schedule.parquet"
    starts = pd.to_datetime(pd.Series(["2026-12-01T09:00:00+01:00", None]), utc=True)
    pd.DataFrame(
        {
            "campaign_id": [1, 2],
            "days": [["fri", "mon"], ["sat"]],
            "start_hour": [time(9, 0), time(7, 30)],
            "end_hour": ["17:00", "12:00"],
            "schedule_start_time": starts.dt.tz_convert("Europe/Paris"),
            "max_new_leads_per_day": [5, None],
        }
    ).to_parquet(source)
    argv = ["run", "--input", str(source), "--operation", "schedule", "--dry-run"]
    assert main([*argv, "--report", str(tmp_path / "preview.csv")]) == 0
    out = capsys.readouterr().out
    assert (
        'POST /campaigns/1/schedule {"schedule": {"days": [1, 5], "start_hour": "09:00", '
        '"end_hour": "17:00", "max_new_leads_per_day": 5, "schedule_start_time": '
        '"2026-12-01T08:00:00Z"}}'
    ) in out
    assert (
        'POST /campaigns/2/schedule {"schedule": {"days": [6], "start_hour": "07:30", '
        '"end_hour": "12:00"}}'
    ) in out


def test_validate_names_the_file_row_and_field_of_each_bad_cell(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = write_plan(
        tmp_path,
        "campaign_id,timezone,days,start_hour,end_hour\n"
        "1,Europe/London,1-5,09:00,17:00\n"
        "2,Europe/Lodnon,mon,09:00,17:00\n"
        "3,UTC,mon,18:00,08:00\n"
        "4,UTC,mon,09:00,17:00\n",
    )
    assert main(["validate", "--input", str(source), "--operation", "schedule"]) == 1
    lines = capsys.readouterr().out.splitlines()
    assert lines[:3] == [
        f"{source} row 1: days: '1' is a number: write day names (mon;tue;wed or Mon-Fri), as "
        "SmartLead numbers days two ways (0=Sunday or 1=Monday)",
        f"{source} row 2: timezone: 'Europe/Lodnon' is not an IANA timezone (did you mean "
        "Europe/London?)",
        f"{source} row 3: start_hour: 18:00 is not before end_hour 08:00",
    ]


def test_a_settings_column_in_a_schedule_file_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = write_plan(tmp_path, "campaign_id,days,sending_limit\n1,mon,5\n")
    with SimulatorThread(SimulatorConfig(api_key=KEY, campaigns={1})) as server:
        argv = ["run", "--input", str(source), "--operation", "schedule"]
        assert main([*argv, "--base-url", server.base_url]) == 2
        assert server.state.requests == []
    assert "'sending_limit' belongs to the settings operation" in capsys.readouterr().err


def test_a_campaign_without_a_schedule_gets_a_whole_one_and_a_partial_row_is_refused(
    tmp_path: Path,
) -> None:
    source = write_plan(
        tmp_path,
        "campaign_id,timezone,days,start_hour,end_hour\n"
        "6,UTC,mon-fri,09:00,17:00\n"
        "7,,mon-fri,,\n"
        "8,UTC,mon,17:30,\n",  # campaign 8 is seeded 10:00 to 17:00
    )
    assert (default_schedule(8).start_hour, default_schedule(8).end_hour) == ("10:00", "17:00")
    config = SimulatorConfig(api_key=KEY, campaigns={6, 7, 8}, bare_campaigns={6, 7})
    report = tmp_path / "r.json"
    with SimulatorThread(config) as server:
        argv = ["run", "--input", str(source), "--report", str(report), "--operation", "schedule"]
        # a first schedule cannot be taken away by a rollback: the run must say it may be set
        argv.append("--allow-irreversible")
        assert main([*argv, "--base-url", server.base_url]) == 1
        assert sorted(server.state.applied) == [6]
        state = schedules(server)
    rows = json.loads(report.read_text())
    assert state[6]["days"] == WEEKDAYS
    assert rows[1]["status"] == "failed"
    assert rows[1]["error"] == (
        "campaign 7: it has no schedule yet, so the row must set timezone, days, start_hour and "
        "end_hour (missing: timezone, start_hour, end_hour); not sent"
    )
    assert rows[2]["error"] == (
        "campaign 8: start_hour 17:30 would not be before end_hour 17:00 (its current end_hour; "
        "set both in the row); not sent"
    )


def test_a_schedule_write_is_seen_by_the_settings_operation_and_the_reverse(
    tmp_path: Path,
) -> None:
    with SimulatorThread(SimulatorConfig(api_key=KEY, campaigns={5})) as server:
        url = ["--base-url", server.base_url]
        schedule = write_plan(
            tmp_path, "campaign_id,min_time_btw_emails,max_new_leads_per_day\n5,9,77\n"
        )
        assert (
            main(
                [
                    "run",
                    "--input",
                    str(schedule),
                    "--operation",
                    "schedule",
                    "--report",
                    str(tmp_path / "1.csv"),
                    *url,
                ]
            )
            == 0
        )
        settings = tmp_path / "settings.csv"
        settings.write_text("campaign_id,min_time_btwn_emails,sending_limit\n5,9,77\n")
        report = tmp_path / "2.json"
        assert main(["run", "--input", str(settings), "--report", str(report), *url]) == 0
        assert [r["status"] for r in json.loads(report.read_text())] == ["unchanged"]
        settings.write_text("campaign_id,sending_limit\n5,60\n")
        assert (
            main(["run", "--input", str(settings), "--report", str(tmp_path / "3.csv"), *url]) == 0
        )
        report = tmp_path / "4.json"
        assert (
            main(
                [
                    "run",
                    "--input",
                    str(schedule),
                    "--operation",
                    "schedule",
                    "--report",
                    str(report),
                    *url,
                ]
            )
            == 0
        )
        (row,) = json.loads(report.read_text())
    assert json.loads(row["before"]) == {"max_new_leads_per_day": 60}


def test_resume_retry_and_rollback_of_a_schedule_run(tmp_path: Path) -> None:
    source = write_plan(tmp_path, "campaign_id,days\n1,sat;sun\n2,sat;sun\n3,sat;sun\n")
    # campaign 2 first asks for a 900 s wait (the run stops, resumable); 3 then fails once
    faults = FaultPlan(scripted={2: ["429"], 3: ["500"]}, retry_after=900)
    config = SimulatorConfig(api_key=KEY, campaigns={1, 2, 3}, faults=faults)
    report = tmp_path / "run.json"
    with SimulatorThread(config) as server:
        url = ["--base-url", server.base_url, "--operation", "schedule"]
        before = schedules(server)
        argv = ["run", "--input", str(source), "--report", str(report), "--concurrency", "1"]
        assert main([*argv, "--max-wait", "5", *url]) == 3
        statuses = [r["status"] for r in json.loads(report.read_text())]
        assert statuses == ["succeeded", "failed", "not_attempted"]

        assert main([*argv, "--max-attempts", "1", "--resume", *url]) == 1
        assert [r["status"] for r in json.loads(report.read_text())] == [
            "succeeded",
            "succeeded",
            "failed",
        ]
        writes = [r.campaign_id for r in server.state.writes("schedule") if r.status == 200]
        assert writes == [1, 2]  # the resumed run did not send campaign 1 again
        assert [s["days"] for s in schedules(server).values()] == [
            ["sat", "sun"],
            ["sat", "sun"],
            before[3]["days"],
        ]

        retried = tmp_path / "retry.json"
        assert main(["retry", str(report), "--report", str(retried), *url]) == 0
        assert schedules(server)[3]["days"] == ["sat", "sun"]

        # The backup of the interrupted run still holds every campaign as it was at the start.
        undo = ["--report", str(tmp_path / "undo.json"), "--base-url", server.base_url]
        assert main(["rollback", str(report), *undo]) == 0
        assert schedules(server) == before


def test_a_job_file_runs_the_schedule_operation(tmp_path: Path) -> None:
    write_plan(tmp_path, "campaign_id,timezone,days,start_hour,end_hour\n4,UTC,mon,06:00,07:00\n")
    with SimulatorThread(
        SimulatorConfig(api_key=KEY, campaigns={4}, schedule_shape=ScheduleShape.FLAT)
    ) as s:
        job = tmp_path / "job.toml"
        job.write_text(
            'input = "schedule.csv"\nreport = "r.csv"\noperation = "schedule"\n'
            f'schedule_shape = "flat"\nbase_url = "{s.base_url}"\n'
        )
        assert main(["run", str(job)]) == 0
        found = schedules(s)[4]
    assert [found[n] for n in ("timezone", "days", "start_hour", "end_hour")] == [
        "UTC",
        ["mon"],
        "06:00",
        "07:00",
    ]


def test_every_row_refused_from_the_first_stops_the_run_with_the_other_shape_to_paste(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    rows = "".join(f"{n},UTC,mon,06:00,07:00\n" for n in range(1, 9))
    write_plan(tmp_path, "campaign_id,timezone,days,start_hour,end_hour\n" + rows)
    monkeypatch.chdir(tmp_path)
    config = SimulatorConfig(
        api_key=KEY, campaigns=set(range(1, 9)), schedule_shape=ScheduleShape.FLAT
    )
    with SimulatorThread(config) as server:
        args = ["--operation", "schedule", "--base-url", server.base_url, "--concurrency", "1"]
        code = main(["run", "schedule.csv", "--report", "r.csv", *args])
        out = capsys.readouterr()
        posts = server.state.writes("schedule")
        assert code == 3
        assert len(posts) == 3  # one at a time: the third refusal stops it
        said = out.out + out.err
        assert "the first 3 schedule rows were all refused and none accepted" in said
        command = said.split("run again with --schedule-shape flat: ", 1)[1].split("\n")[0]
        assert command.startswith("bulkrunner run ")
        assert main(shlex.split(command)[1:]) == 0  # pasted as printed
        applied = schedules(server)
    assert all(applied[n]["days"] == ["mon"] for n in range(1, 9))


def test_a_refusal_after_a_row_was_accepted_is_that_rows_own() -> None:
    judge = ShapeRefusals("nested", lambda other: f"cmd {other}", threshold=2)
    row = Row(1, 1, {})
    refused, accepted = Answer(400, "bad"), Answer(200, "{}")
    assert judge(row, accepted, "") is None
    assert [judge(row, refused, "bad") for _ in range(5)] == [None] * 5
    fresh = ShapeRefusals("flat", lambda other: f"cmd {other}", threshold=2)
    assert fresh(row, refused, "bad") is None
    stop = fresh(row, Answer(422, "worse"), "worse")
    assert stop is not None
    assert stop.endswith("--schedule-shape nested: cmd nested")


def test_a_long_cell_is_named_in_its_error_not_repeated() -> None:
    frame = pd.DataFrame({"campaign_id": ["1"], "timezone": ["X" * 5000], "days": ["mon"]})
    result = validate(frame, Vocabulary.DOCUMENTED, operation=SCHEDULE, wire=NESTED)
    (rejection,) = result.rejections
    assert rejection.error.startswith(f"timezone: '{'X' * 39}... (5,002 characters) is not an")
    assert len(rejection.error) < 200


def test_the_settings_columns_of_a_schedule_file_are_named_in_one_clause(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The sample settings file validated as a schedule: its eight settings columns were each
    a clause of their own, "(run with --operation settings, or remove the column)" eight
    times on one line."""
    source = write_plan(tmp_path, "campaign_id,sending_limit,track_settings\n1,5,\n")
    assert main(["validate", str(source), "--operation", "schedule"]) == 2
    error = capsys.readouterr().err
    assert error.count("--operation settings") == 1
    assert (
        "columns 'sending_limit', 'track_settings' belong to the settings operation, not schedule "
        "(run with --operation settings, or remove them)" in error
    )
