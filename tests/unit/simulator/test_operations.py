"""The simulator's campaign writes beside settings: schedule, status and email accounts, driven
over loopback HTTP with aiohttp, with the same key check, rate limit and faults as settings."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
import zoneinfo
from contextlib import AbstractAsyncContextManager
from typing import Any

import pytest

from bulkrunner.model import Rate
from bulkrunner.operations.fields import ScheduleShape
from bulkrunner.simulator import (
    FaultPlan,
    Simulator,
    SimulatorConfig,
    default_email_accounts,
    default_schedule,
    default_settings,
    default_status,
    email_account,
)
from bulkrunner.simulator.operations import is_timezone
from tests.unit.simulator import api as simulator_api
from tests.unit.simulator.api import Api, Reply

KEY = "s3cret-operations-key"


def serving(**options: Any) -> AbstractAsyncContextManager[tuple[Simulator, Api]]:
    return simulator_api.serving(Api, KEY, options)


def message(reply: Reply) -> str:
    """The readable message of an error answer, flat or nested."""
    error = reply[1]["error"]
    return str(error["message"] if isinstance(error, dict) else error)


OK: Reply = (200, {"success": True, "data": {}})
NESTED = {
    "schedule": {
        "timezone": "America/New_York",
        "days": [0, 1, 2, 3, 4],
        "start_hour": "09:00",
        "end_hour": "17:30",
        "min_time_btw_emails": 120,
        "max_new_leads_per_day": 20,
        "schedule_start_time": "2026-12-01T09:00:00Z",
    }
}
FLAT = {
    "timezone": "Europe/Bratislava",
    "days_of_the_week": [1, 2, 3, 4, 5, 7],
    "start_hour": "08:00",
    "end_hour": "18:00",
    "min_time_btw_emails": 15,
    "max_new_leads_per_day": 75,
    "schedule_start_time": "2027-01-04T08:00:00+01:00",
}


# --- schedule: both shapes, reading back ------------------------------------------------------


async def test_a_nested_schedule_reads_back_as_scheduler_cron_value_in_list_and_get() -> None:
    async with serving(campaigns={4, 8}) as (simulator, api):
        reply = await api("POST", "/campaigns/8/schedule", NESTED)
        one = await api("GET", "/campaigns/8")
        listed = await api("GET", "/campaigns/")

    assert reply == OK
    campaign = one[1]
    assert campaign["scheduler_cron_value"] == {
        "tz": "America/New_York",
        "days": [0, 1, 2, 3, 4],
        "startHour": "09:00",
        "endHour": "17:30",
    }
    assert campaign["schedule_start_time"] == "2026-12-01T09:00:00Z"
    # The schedule's limits are the settings of the same meaning, under their GET names too.
    assert campaign["min_time_btwn_emails"] == 120
    assert campaign["max_leads_per_day"] == campaign["sending_limit"] == 20
    assert [c["id"] for c in listed[1]] == [4, 8]
    assert listed[1][1] == campaign
    assert listed[1][0]["scheduler_cron_value"] == default_schedule(4).cron()
    assert simulator.state.applied == {8: 1}


async def test_a_flat_schedule_numbers_days_from_monday_and_reads_back_from_sunday() -> None:
    async with serving() as (_, api):
        reply = await api("POST", "/campaigns/3/schedule", FLAT)
        campaign = (await api("GET", "/campaigns/3"))[1]

    assert reply == OK
    assert campaign["scheduler_cron_value"] == {
        "tz": "Europe/Bratislava",
        "days": [0, 1, 2, 3, 4, 5],  # 7=Sunday is 0; Monday..Friday are 1..5 in both
        "startHour": "08:00",
        "endHour": "18:00",
    }
    assert campaign["schedule_start_time"] == "2027-01-04T08:00:00+01:00"
    assert (campaign["min_time_btwn_emails"], campaign["max_leads_per_day"]) == (15, 75)


async def test_a_partial_schedule_keeps_the_fields_it_does_not_send() -> None:
    seeded = default_schedule(9)
    async with serving() as (simulator, api):
        reply = await api("POST", "/campaigns/9/schedule", {"schedule": {"end_hour": "20:00"}})
        campaign = (await api("GET", "/campaigns/9"))[1]

    assert reply == OK
    assert campaign["scheduler_cron_value"] == {**seeded.cron(), "endHour": "20:00"}
    assert campaign["schedule_start_time"] == seeded.start_time
    assert campaign["sending_limit"] == default_settings(9)["sending_limit"]
    assert simulator.state.settings == {}  # the write set no limit


async def test_schedule_and_settings_writes_show_up_in_each_other() -> None:
    async with serving() as (_, api):
        await api("POST", "/campaigns/2/settings", {"sending_limit": 33, "min_time_btwn_emails": 7})
        after_settings = (await api("GET", "/campaigns/2"))[1]
        await api("POST", "/campaigns/2/schedule", {"max_new_leads_per_day": 44})
        after_schedule = (await api("GET", "/campaigns/2"))[1]

    assert (after_settings["max_leads_per_day"], after_settings["min_time_btwn_emails"]) == (33, 7)
    assert (after_schedule["sending_limit"], after_schedule["max_leads_per_day"]) == (44, 44)
    assert after_schedule["min_time_btwn_emails"] == 7


async def test_the_cron_value_can_be_served_as_a_json_string() -> None:
    async with serving(cron_as_string=True) as (_, api):
        await api("POST", "/campaigns/6/schedule", NESTED)
        one = (await api("GET", "/campaigns/6"))[1]
        listed = (await api("GET", "/campaigns/"))[1]

    assert isinstance(one["scheduler_cron_value"], str)
    assert json.loads(one["scheduler_cron_value"]) == {
        "tz": "America/New_York",
        "days": [0, 1, 2, 3, 4],
        "startHour": "09:00",
        "endHour": "17:30",
    }
    assert listed[0]["scheduler_cron_value"] == one["scheduler_cron_value"]


@pytest.mark.parametrize(
    ("shape", "accepted", "refused"),
    [(ScheduleShape.NESTED, NESTED, FLAT), (ScheduleShape.FLAT, FLAT, NESTED)],
)
async def test_the_server_can_accept_only_one_schedule_shape(
    shape: ScheduleShape, accepted: dict[str, Any], refused: dict[str, Any]
) -> None:
    async with serving(schedule_shape=shape) as (simulator, api):
        wrong = await api("POST", "/campaigns/5/schedule", refused)
        right = await api("POST", "/campaigns/5/schedule", accepted)

    assert wrong[0] == 400
    assert f"Expected the {shape} shape" in message(wrong)
    assert right == OK
    assert [r.applied for r in simulator.state.writes("schedule")] == [False, True]


def test_an_unknown_schedule_shape_is_refused() -> None:
    with pytest.raises(ValueError, match=r"schedule_shape must be nested or flat \(None: both\)"):
        SimulatorConfig(schedule_shape="sideways")  # type: ignore[arg-type]


# --- schedule: validation ---------------------------------------------------------------------


def nested(**fields: Any) -> dict[str, Any]:
    return {"schedule": fields}


@pytest.mark.parametrize(
    ("body", "status", "text"),
    [
        ({}, 400, "No schedule fields to update"),
        (nested(), 400, "No schedule fields to update"),
        ({**NESTED, "timezone": "UTC"}, 400, "mixes the nested 'schedule' object"),
        (nested(days_of_the_week=[1]), 400, "'schedule.days_of_the_week' belongs to the flat"),
        ({"days": [1]}, 400, "'days' belongs to the nested shape"),
        (nested(days=[7]), 400, "Invalid schedule.days value - 7 (expected 0=Sunday"),
        ({"days_of_the_week": [0]}, 400, "Invalid days_of_the_week value - 0 (expected 1=Monday"),
        (nested(days=[-1]), 400, "Invalid schedule.days value - -1"),
        (nested(timezone="Mars/Olympus"), 400, "Invalid schedule.timezone value - Mars/Olympus"),
        ({"timezone": "EST5"}, 400, "Invalid timezone value - EST5"),
        (nested(timezone=5), 422, "Field 'schedule.timezone' must be a string"),
        (nested(days="1,2"), 422, "Field 'schedule.days' must be an array of integers"),
        (nested(days=[True]), 422, "Field 'schedule.days' must be an array of integers"),
        (nested(days=[]), 422, "Field 'schedule.days' must name at least one day"),
        (nested(days=[1, 1]), 422, "Field 'schedule.days' must not repeat a day"),
        (nested(start_hour="9:00"), 422, "Field 'schedule.start_hour' must be a time HH:MM"),
        ({"end_hour": "24:00"}, 422, "Field 'end_hour' must be a time HH:MM (24-hour)"),
        ({"start_hour": "07:60"}, 422, "Field 'start_hour' must be a time HH:MM"),
        (nested(start_hour="18:00", end_hour="09:00"), 422, "start_hour 18:00 must be before"),
        ({"start_hour": "12:00", "end_hour": "12:00"}, 422, "must be before end_hour 12:00"),
        ({"min_time_btw_emails": -1}, 422, "Field 'min_time_btw_emails' must be at least 0"),
        (nested(max_new_leads_per_day=-5), 422, "'schedule.max_new_leads_per_day' must be at le"),
        ({"max_new_leads_per_day": "20"}, 422, "Field 'max_new_leads_per_day' must be an integer"),
        ({"min_time_btw_emails": 1.5}, 422, "Field 'min_time_btw_emails' must be an integer"),
        ({"schedule_start_time": "tomorrow"}, 422, "must be an ISO 8601 date-time"),
        ({"schedule_start_time": "2026-12-01"}, 422, "must be an ISO 8601 date-time"),
        (nested(timezone=None), 422, "Field 'schedule.timezone' must not be null"),
        ({"schedule": "weekdays"}, 422, "Field 'schedule' must be an object"),
        ({"schedule": None}, 422, "Field 'schedule' must be an object"),
        ({"timezon": "UTC"}, 422, "Unknown field 'timezon'"),
        (nested(tz="UTC"), 422, "Unknown field 'schedule.tz'"),
        ({"schedule": {}, "extra": 1}, 422, "Unknown field 'extra'"),
        ([NESTED], 400, "Invalid JSON body"),
    ],
)
async def test_invalid_schedule_bodies_are_refused_naming_the_field(
    body: object, status: int, text: str
) -> None:
    async with serving() as (simulator, api):
        reply = await api("POST", "/campaigns/7/schedule", body)
        campaign = (await api("GET", "/campaigns/7"))[1]

    assert reply[0] == status
    assert text in message(reply)
    if status == 422:
        assert reply[1]["error"]["code"] == "VALIDATION_ERROR"
    assert simulator.state.schedules == {}
    assert simulator.state.applied == {}
    assert campaign["scheduler_cron_value"] == default_schedule(7).cron()


async def test_a_body_that_is_not_json_is_a_flat_400() -> None:
    async with serving() as (_, api):
        reply = await api("POST", "/campaigns/7/schedule", raw=b"{not json")

    assert reply == (400, {"error": "Invalid JSON body"})


async def test_a_campaign_without_a_schedule_must_be_sent_a_whole_one() -> None:
    async with serving(bare_campaigns={12}) as (_, api):
        before = (await api("GET", "/campaigns/12"))[1]
        partial = await api("POST", "/campaigns/12/schedule", {"max_new_leads_per_day": 10})
        whole = await api("POST", "/campaigns/12/schedule", nested(**NESTED["schedule"]))
        after = (await api("GET", "/campaigns/12"))[1]

    assert (before["scheduler_cron_value"], before["schedule_start_time"]) == (None, None)
    assert partial[0] == 422
    assert message(partial) == "The campaign has no schedule yet: 'timezone' is required"
    assert whole == OK
    assert after["scheduler_cron_value"]["tz"] == "America/New_York"


@pytest.mark.parametrize(
    ("available", "loads", "name", "valid"),
    [
        ({"Europe/Paris"}, True, "Europe/Paris", True),
        ({"Europe/Paris"}, True, "Europe/Pariss", False),
        (set(), True, "Asia/Tokyo", True),  # no list of zones, but the database answers
        (set(), "UTC only", "Mars/Olympus", False),  # the database knows UTC but not this name
        (set(), False, "America/Argentina/Buenos_Aires", True),  # no database at all: looks right
        (set(), False, "UTC", True),
        (set(), False, "not a zone", False),
        (set(), False, "../../etc/passwd", False),
    ],
)
def test_a_timezone_is_checked_against_the_database_or_its_look_without_one(
    available: set[str], loads: bool | str, name: str, valid: bool
) -> None:
    def load(zone: str) -> object:
        if loads is True or (loads == "UTC only" and zone == "UTC"):
            return object()
        raise zoneinfo.ZoneInfoNotFoundError(zone)

    assert is_timezone(name, lambda: available, load) is valid


# --- status -----------------------------------------------------------------------------------


async def test_status_writes_read_back_and_a_stopped_campaign_stays_stopped() -> None:
    async with serving() as (simulator, api):
        seen = []
        for written in ("PAUSED", "START", "STOPPED"):
            assert await api("POST", "/campaigns/8/status", {"status": written}) == OK
            seen.append((await api("GET", "/campaigns/8"))[1]["status"])
        start = await api("POST", "/campaigns/8/status", {"status": "START"})
        pause = await api("POST", "/campaigns/8/status", {"status": "PAUSED"})
        again = await api("POST", "/campaigns/8/status", {"status": "STOPPED"})
        listed = (await api("GET", "/campaigns/"))[1]

    assert seen == ["PAUSED", "ACTIVE", "STOPPED"]
    for refused, wanted in ((start, "ACTIVE"), (pause, "PAUSED")):
        assert refused[0] == 422
        assert refused[1]["error"]["code"] == "INVALID_STATE"
        assert message(refused) == f"Campaign is STOPPED: it cannot be changed to {wanted}"
    assert again == OK  # stopping a stopped campaign changes nothing and is not an error
    assert [c["status"] for c in listed] == ["STOPPED"]
    assert [r.status for r in simulator.state.writes("status")] == [200, 200, 200, 422, 422, 200]


@pytest.mark.parametrize(
    ("body", "status", "text"),
    [
        ({"status": "ACTIVE"}, 400, "Invalid status value - ACTIVE (expected START, PAUSED or"),
        ({"status": "start"}, 400, "Invalid status value - start"),
        ({"status": "COMPLETED"}, 400, "Invalid status value - COMPLETED"),
        ({"status": 1}, 422, "Field 'status' must be a string"),
        ({"status": None}, 422, "Field 'status' must not be null"),
        ({"status": "START", "when": "now"}, 422, "Unknown field 'when'"),
        ({}, 400, "No status given"),
        ("START", 400, "Invalid JSON body"),
    ],
)
async def test_invalid_status_bodies_are_refused(body: object, status: int, text: str) -> None:
    async with serving() as (simulator, api):
        reply = await api("POST", "/campaigns/3/status", body)
        campaign = (await api("GET", "/campaigns/3"))[1]

    assert (reply[0], text in message(reply)) == (status, True)
    assert simulator.state.statuses == {}
    assert campaign["status"] == default_status(3) == "PAUSED"


async def test_starting_needs_a_schedule_and_an_email_account() -> None:
    async with serving(bare_campaigns={40}) as (_, api):
        before = (await api("GET", "/campaigns/40"))[1]["status"]
        unscheduled = await api("POST", "/campaigns/40/status", {"status": "START"})
        await api("POST", "/campaigns/40/schedule", FLAT)
        unstaffed = await api("POST", "/campaigns/40/status", {"status": "START"})
        await api("POST", "/campaigns/40/email-accounts", {"email_account_ids": [3]})
        started = await api("POST", "/campaigns/40/status", {"status": "START"})
        after = (await api("GET", "/campaigns/40"))[1]["status"]

    assert before == "DRAFTED"
    assert (unscheduled[0], message(unscheduled)) == (422, "Cannot start: campaign has no schedule")
    assert (unstaffed[0], message(unstaffed)) == (
        422,
        "Cannot start: campaign has no email accounts",
    )
    assert (started, after) == (OK, "ACTIVE")


async def test_seeded_campaigns_mix_statuses_and_every_one_can_be_started() -> None:
    ids = range(1, 15)
    async with serving(campaigns=set(ids)) as (_, api):
        listed = (await api("GET", "/campaigns/"))[1]
        starts = [await api("POST", f"/campaigns/{i}/status", {"status": "START"}) for i in ids]

    statuses = [c["status"] for c in listed]
    assert statuses == [default_status(i) for i in ids]
    assert {"ACTIVE", "PAUSED", "DRAFTED"} == set(statuses)
    assert all(c["scheduler_cron_value"] is not None for c in listed)
    assert starts == [OK] * len(ids)


# --- email accounts ---------------------------------------------------------------------------


async def test_email_accounts_are_listed_added_and_removed() -> None:
    seeded = default_email_accounts(9, 50)
    async with serving() as (simulator, api):
        before = await api("GET", "/campaigns/9/email-accounts")
        added = await api("POST", "/campaigns/9/email-accounts", {"email_account_ids": [31, 2, 31]})
        again = await api("POST", "/campaigns/9/email-accounts", {"email_account_ids": [31]})
        middle = await api("GET", "/campaigns/9/email-accounts")
        removed = await api(
            "DELETE", "/campaigns/9/email-accounts", {"email_account_ids": [*seeded, 48]}
        )
        after = await api("GET", "/campaigns/9/email-accounts")

    assert before == (200, [email_account(i) for i in seeded])
    assert all(isinstance(a["id"], int) and "@" in a["from_email"] for a in before[1])
    assert added == again == removed == OK  # adding one attached, removing one not: no error
    assert [a["id"] for a in middle[1]] == sorted({*seeded, 2, 31})
    assert [a["id"] for a in after[1]] == [2, 31]
    assert simulator.state.email_accounts == {9: [2, 31]}


@pytest.mark.parametrize(
    ("body", "status", "text"),
    [
        ({"email_account_ids": [51]}, 400, "email account 51 not found"),
        ({"email_account_ids": [3, 0]}, 400, "email account 0 not found"),
        ({"email_account_ids": []}, 422, "must name at least one email account"),
        ({"email_account_ids": ["3"]}, 422, "Field 'email_account_ids' must be an array of int"),
        ({"email_account_ids": [True]}, 422, "must be an array of integers"),
        ({"email_account_ids": 3}, 422, "must be an array of integers"),
        ({"email_account_ids": None}, 422, "Field 'email_account_ids' must not be null"),
        ({"email_account_id": [3]}, 422, "Unknown field 'email_account_id'"),
        ({}, 422, "Field 'email_account_ids' is required"),
        ([3], 400, "Invalid JSON body"),
    ],
)
@pytest.mark.parametrize("method", ["POST", "DELETE"])
async def test_invalid_email_account_bodies_are_refused_naming_the_field(
    method: str, body: object, status: int, text: str
) -> None:
    async with serving() as (simulator, api):
        reply = await api(method, "/campaigns/4/email-accounts", body)
        listed = await api("GET", "/campaigns/4/email-accounts")

    assert (reply[0], text in message(reply)) == (status, True)
    assert simulator.state.email_accounts == {}
    assert [a["id"] for a in listed[1]] == default_email_accounts(4, 50)


async def test_the_last_account_of_an_active_campaign_cannot_be_removed() -> None:
    active, paused = 1, 3
    assert (default_status(active), default_status(paused)) == ("ACTIVE", "PAUSED")
    async with serving() as (_, api):
        replies: dict[int, Reply] = {}
        for campaign in (active, paused):
            ids = default_email_accounts(campaign, 50)
            path = f"/campaigns/{campaign}/email-accounts"
            replies[campaign] = await api("DELETE", path, {"email_account_ids": ids})
        kept = (await api("GET", f"/campaigns/{active}/email-accounts"))[1]
        emptied = (await api("GET", f"/campaigns/{paused}/email-accounts"))[1]
        start = await api("POST", f"/campaigns/{paused}/status", {"status": "START"})

    refused = replies[active]
    assert (refused[0], refused[1]["error"]["code"]) == (422, "INVALID_STATE")
    assert message(refused) == "Cannot remove the last email account of an ACTIVE campaign"
    assert [a["id"] for a in kept] == default_email_accounts(active, 50)
    assert (replies[paused], emptied) == (OK, [])
    assert message(start) == "Cannot start: campaign has no email accounts"


async def test_the_pool_of_sending_accounts_is_configurable() -> None:
    async with serving(sending_accounts=3) as (_, api):
        known = await api("POST", "/campaigns/2/email-accounts", {"email_account_ids": [3]})
        unknown = await api("POST", "/campaigns/2/email-accounts", {"email_account_ids": [4]})

    assert known == OK
    assert unknown == (
        400,
        {"error": "Invalid email_account_ids value - email account 4 not found"},
    )


# --- shared behaviour: 404, key, rate limit, faults, recording --------------------------------

ROUTES: list[tuple[str, str, object]] = [
    ("POST", "schedule", NESTED),
    ("POST", "status", {"status": "PAUSED"}),
    ("POST", "email-accounts", {"email_account_ids": [1]}),
    ("DELETE", "email-accounts", {"email_account_ids": [1]}),
    ("GET", "email-accounts", None),
]


@pytest.mark.parametrize(("method", "operation", "body"), ROUTES)
async def test_every_new_route_answers_404_and_401_like_settings(
    method: str, operation: str, body: object
) -> None:
    async with serving(campaigns={1}) as (simulator, api):
        missing = await api(method, f"/campaigns/2/{operation}", body)
        not_a_number = await api(method, f"/campaigns/x/{operation}", body)
        wrong_key = await api(method, f"/campaigns/1/{operation}", body, key="nope")
        fine = await api(method, f"/campaigns/1/{operation}", body)

    assert missing == not_a_number == (404, {"error": "Campaign not found"})
    assert wrong_key == (401, {"message": "Invalid API Key"})
    assert fine[0] == 200
    assert [r.campaign_id for r in simulator.state.requests] == [2, None, 1, 1]
    assert all(KEY not in r.path for r in simulator.state.requests)


async def test_the_new_routes_share_the_rate_budget_of_the_key() -> None:
    async with serving(rates=(Rate(3, 60),)) as (simulator, api):
        replies = [await api(method, f"/campaigns/1/{op}", body) for method, op, body in ROUTES]
        settings = await api("POST", "/campaigns/1/settings", {"sending_limit": 5})

    assert [status for status, _ in replies] == [200, 200, 200, 429, 429]
    assert settings[0] == 429
    assert replies[3][1]["error"]["code"] == "RATE_LIMIT_EXCEEDED"
    assert simulator.state.max_in_window(60) == 6  # every arrival is recorded, 3 admitted
    assert sum(r.applied for r in simulator.state.requests) == 3


async def test_a_campaigns_fault_script_runs_across_all_its_writes_but_not_its_reads() -> None:
    faults = FaultPlan(scripted={5: ["503", "429", "500", "ok", "429"]})
    async with serving(faults=faults) as (simulator, api):
        replies = [await api(method, f"/campaigns/5/{op}", body) for method, op, body in ROUTES]
        listed = await api("GET", "/campaigns/5")
        settings = await api("POST", "/campaigns/5/settings", {"sending_limit": 9})

    assert [status for status, _ in replies] == [503, 429, 500, 200, 200]
    assert listed[0] == 200
    assert settings[0] == 429  # the fifth write of campaign 5, whatever its operation
    writes = simulator.state.writes()
    assert [(r.operation, r.method, r.fault, r.applied) for r in writes] == [
        ("schedule", "POST", "503", False),
        ("status", "POST", "429", False),
        ("email-accounts", "POST", "500", False),
        ("email-accounts", "DELETE", None, True),
        ("settings", "POST", "429", False),
    ]
    assert simulator.state.statuses == {}
    assert simulator.state.schedules == {}


@pytest.mark.parametrize("applies", [False, True])
async def test_a_slow_schedule_write_may_still_apply(applies: bool) -> None:
    faults = FaultPlan(scripted={5: ["slow"]}, slow_seconds=0.01, slow_applies=applies)
    async with serving(faults=faults) as (simulator, api):
        reply = await api("POST", "/campaigns/5/schedule", {"start_hour": "07:00"})

    assert reply[0] == (200 if applies else 504)
    assert (5 in simulator.state.schedules) is applies


async def test_writes_are_counted_per_operation_and_posts_still_means_settings() -> None:
    async with serving() as (simulator, api):
        await api("POST", "/campaigns/1/settings", {"sending_limit": 5})
        await api("POST", "/campaigns/1/schedule", {"end_hour": "19:00"})
        await api("POST", "/campaigns/2/schedule", {"end_hour": "19:00"})
        await api("POST", "/campaigns/1/status", {"status": "PAUSED"})
        await api("POST", "/campaigns/1/email-accounts", {"email_account_ids": [7]})
        await api("DELETE", "/campaigns/1/email-accounts", {"email_account_ids": [7]})
        await api("GET", "/campaigns/1/email-accounts")
        await api("GET", "/campaigns/1")
        state = simulator.state

    def count(operation: str | None = None, method: str | None = None) -> int:
        return len(state.writes(operation, method))

    assert [r.campaign_id for r in state.posts()] == [1]
    assert (count("schedule"), count("status"), count("email-accounts")) == (2, 1, 2)
    assert (count("email-accounts", "POST"), count("email-accounts", "DELETE")) == (1, 1)
    assert count() == 6 == len(state.requests) - 2
    assert state.applied == {1: 5, 2: 1}


_DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback: never a proxy


def _call(base: str, method: str, path: str, body: object = None) -> Reply:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(f"{base}{path}?api_key={KEY}", data=data, method=method)
    request.add_header("Content-Type", "application/json")
    try:
        with _DIRECT.open(request, timeout=10) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as error:
        return error.code, json.load(error)
