"""How the simulated server checks the campaign writes beside settings: schedule, status and
email accounts, and the rules a campaign's state puts on them.

Error shapes follow ``validation``: a malformed or empty body, a name outside a known set (a
timezone, a status, an email account id), a day out of range for its shape and a body that mixes
the two schedule shapes are a flat 400 ``{"error": "..."}``; an unknown field, a null, a wrong type
or a badly formed value is a 422 ``VALIDATION_ERROR`` naming the field; a write the campaign's
state forbids is a 422 ``INVALID_STATE``.

Schedule bodies come in two shapes. Nested (the current reference): ``{"schedule": {"timezone",
"days", "start_hour", "end_hour", "min_time_btw_emails", "max_new_leads_per_day",
"schedule_start_time"}}`` with days 0=Sunday .. 6=Saturday. Flat (older documentation): the same
fields at the top level, but ``days_of_the_week`` numbered 1=Monday .. 7=Sunday. Any subset of the
fields is a valid write: the fields not sent keep their value.
"""

from __future__ import annotations

import functools
import re
import zoneinfo
from collections.abc import Callable, Collection, Container, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from bulkrunner.operations.fields import FIELDS_BY_NAME, ScheduleShape
from bulkrunner.simulator.validation import (
    BodyRejection,
    bad_request,
    check_range,
    invalid,
    wrong_type,
)

# A schedule write's two limits are the campaign's settings of the same meaning: they are stored
# once, so a schedule write shows up wherever the settings show them, and the reverse.
SCHEDULE_SETTINGS = {
    "min_time_btw_emails": "min_time_btwn_emails",
    "max_new_leads_per_day": "sending_limit",
}
_TEXT_FIELDS = ("timezone", "start_hour", "end_hour", "schedule_start_time")
_NESTED_DAYS, _FLAT_DAYS = "days", "days_of_the_week"
_COMMON = (*_TEXT_FIELDS, *SCHEDULE_SETTINGS)
_STORED = {"schedule_start_time": "start_time", _FLAT_DAYS: "days"}  # wire -> Schedule field
_HOUR = re.compile(r"(?:[01]\d|2[0-3]):[0-5]\d")
_TIMEZONE_LIKE = re.compile(r"UTC|[A-Z][A-Za-z_]+(?:/[A-Za-z0-9_+\-]+)+")
# Listing the zones reads the whole database (about 20 ms): once per process is enough.
_available_timezones = functools.cache(zoneinfo.available_timezones)


@dataclass(frozen=True, slots=True)
class Schedule:
    """A campaign's stored schedule; its two limits live in the campaign's settings."""

    timezone: str
    days: tuple[int, ...]  # 0=Sunday .. 6=Saturday, ascending
    start_hour: str  # "HH:MM", 24-hour
    end_hour: str
    start_time: str | None = None  # schedule_start_time, ISO 8601 as it was sent

    def cron(self) -> dict[str, Any]:
        """The schedule as SmartLead reads it back: ``scheduler_cron_value``."""
        return {
            "tz": self.timezone,
            "days": list(self.days),
            "startHour": self.start_hour,
            "endHour": self.end_hour,
        }


@dataclass(frozen=True, slots=True)
class ScheduleWrite:
    """What a valid schedule body asks for: only the fields it sent."""

    schedule: dict[str, Any] = field(default_factory=dict)  # Schedule field -> value
    settings: dict[str, int] = field(default_factory=dict)  # settings name -> value


def validate_schedule(body: object, shape: ScheduleShape | None) -> ScheduleWrite | BodyRejection:
    """The fields a schedule body sets, in either shape (or only ``shape``), or why it is
    refused."""
    if not isinstance(body, dict):
        return bad_request("Invalid JSON body")
    if "schedule" not in body:
        if shape == ScheduleShape.NESTED and body:
            return bad_request(
                "Expected the nested shape: fields inside a 'schedule' object (days 0=Sunday)"
            )
        return _schedule_fields(body, prefix="")
    for name in body:
        if name in (*_COMMON, _NESTED_DAYS, _FLAT_DAYS):
            return bad_request(
                f"Body mixes the nested 'schedule' object with the top-level field '{name}'"
            )
        if name != "schedule":
            return invalid(f"Unknown field '{name}'", field=name, allowed=["schedule"])
    if shape == ScheduleShape.FLAT:
        return bad_request(
            "Expected the flat shape: fields at the top level with days_of_the_week (1=Monday)"
        )
    inner = body["schedule"]
    if not isinstance(inner, dict):
        return wrong_type("schedule", inner, "an object")
    return _schedule_fields(inner, prefix="schedule.")


def _schedule_fields(fields: dict[str, Any], prefix: str) -> ScheduleWrite | BodyRejection:
    days_name, other = (_NESTED_DAYS, _FLAT_DAYS) if prefix else (_FLAT_DAYS, _NESTED_DAYS)
    if not fields:
        return bad_request("No schedule fields to update")
    write = ScheduleWrite()
    for name, value in fields.items():
        label = prefix + name
        if name == other:
            shape = ScheduleShape.FLAT if prefix else ScheduleShape.NESTED
            return bad_request(
                f"Field '{label}' belongs to the {shape} shape; this body uses '{days_name}'"
            )
        if name not in (*_COMMON, days_name):
            allowed = [prefix + n for n in (*_TEXT_FIELDS, days_name, *SCHEDULE_SETTINGS)]
            return invalid(f"Unknown field '{label}'", field=label, allowed=allowed)
        if value is None:
            return invalid(f"Field '{label}' must not be null", field=label)
        checked = _check_schedule_field(name, label, value, days_name == _NESTED_DAYS)
        if isinstance(checked, BodyRejection):
            return checked
        if name in SCHEDULE_SETTINGS:
            write.settings[SCHEDULE_SETTINGS[name]] = checked
        else:
            write.schedule[_STORED.get(name, name)] = checked
    return write


def _check_schedule_field(name: str, label: str, value: object, nested: bool) -> Any:
    if name in SCHEDULE_SETTINGS:
        if not isinstance(value, int) or isinstance(value, bool):
            return wrong_type(label, value, "an integer")
        checked = check_range(FIELDS_BY_NAME[SCHEDULE_SETTINGS[name]], value)
        return _relabel(checked, SCHEDULE_SETTINGS[name], label)
    if name in (_NESTED_DAYS, _FLAT_DAYS):
        return _check_days(label, value, nested)
    if not isinstance(value, str):
        return wrong_type(label, value, "a string")
    if name == "timezone":
        return value if is_timezone(value) else bad_request(f"Invalid {label} value - {value}")
    if name == "schedule_start_time":
        if not _is_iso_datetime(value):
            message = f"Field '{label}' must be an ISO 8601 date-time like 2026-12-01T09:00:00Z"
            return invalid(message, field=label, received=value)
        return value
    if not _HOUR.fullmatch(value):
        message = f"Field '{label}' must be a time HH:MM (24-hour), got '{value}'"
        return invalid(message, field=label, received=value)
    return value


def _relabel(checked: int | BodyRejection, stored: str, label: str) -> int | BodyRejection:
    """A range error of the shared setting, worded with the schedule field's name."""
    if isinstance(checked, BodyRejection):
        error = checked.body["error"]
        message = str(error["message"]).replace(f"'{stored}'", f"'{label}'")
        return invalid(message, **{**error["details"], "field": label})
    return checked


def _check_days(label: str, value: object, nested: bool) -> tuple[int, ...] | BodyRejection:
    if not isinstance(value, list) or not all(
        isinstance(day, int) and not isinstance(day, bool) for day in value
    ):
        return wrong_type(label, value, "an array of integers")
    low, high = (0, 6) if nested else (1, 7)
    meaning = "0=Sunday .. 6=Saturday" if nested else "1=Monday .. 7=Sunday"
    for day in value:
        if not low <= day <= high:
            return bad_request(f"Invalid {label} value - {day} (expected {meaning})")
    if not value:
        return invalid(f"Field '{label}' must name at least one day", field=label)
    if len(set(value)) != len(value):
        return invalid(f"Field '{label}' must not repeat a day", field=label, received=value)
    return tuple(sorted(day % 7 for day in value))  # flat 7=Sunday is 0


def _is_iso_datetime(text: str) -> bool:
    try:
        datetime.fromisoformat(text)
    except ValueError:
        return False
    return "T" in text


def is_timezone(
    name: str,
    available: Callable[[], Collection[str]] = _available_timezones,
    load: Callable[[str], object] = zoneinfo.ZoneInfo,
) -> bool:
    """Whether ``name`` is an IANA timezone. Without a timezone database on the machine (no
    tzdata), a name that looks like one (``Area/Location`` or ``UTC``) is accepted."""
    known = available()
    if known:
        return name in known
    try:
        load(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):
        try:
            load("UTC")
        except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):
            return _TIMEZONE_LIKE.fullmatch(name) is not None
        return False
    return True


def merge_schedule(current: Schedule | None, write: ScheduleWrite) -> Schedule | BodyRejection:
    """The campaign's schedule after ``write``; a campaign without one must be sent all of it."""
    fields = write.schedule
    if current is None:
        missing = [n for n in ("timezone", "days", "start_hour", "end_hour") if n not in fields]
        if missing:
            message = f"The campaign has no schedule yet: '{missing[0]}' is required"
            return invalid(message, field=missing[0], missing=missing)
        merged = Schedule(**fields)
    else:
        merged = replace(current, **fields)
    if merged.start_hour >= merged.end_hour:  # "HH:MM" strings order as times do
        message = f"start_hour {merged.start_hour} must be before end_hour {merged.end_hour}"
        return invalid(message, field="start_hour", end_hour=merged.end_hour)
    return merged


# --- status ----------------------------------------------------------------------------------

STATUS_WRITES = {"START": "ACTIVE", "PAUSED": "PAUSED", "STOPPED": "STOPPED"}  # written -> stored
FINAL_STATUSES = ("STOPPED", "COMPLETED")


def validate_status(body: object) -> str | BodyRejection:
    """The status a body asks to store (``START`` stores ``ACTIVE``), or why it is refused.
    ``ACTIVE`` is not accepted as a written value: the reference says ``START``."""
    if not isinstance(body, dict):
        return bad_request("Invalid JSON body")
    if not body:
        return bad_request("No status given")
    for name in body:
        if name != "status":
            return invalid(f"Unknown field '{name}'", field=name, allowed=["status"])
    value = body["status"]
    if value is None:
        return invalid("Field 'status' must not be null", field="status")
    if not isinstance(value, str):
        return wrong_type("status", value, "a string")
    if value not in STATUS_WRITES:
        return bad_request(f"Invalid status value - {value} (expected START, PAUSED or STOPPED)")
    return STATUS_WRITES[value]


def status_refusal(
    current: str, wanted: str, schedule: Schedule | None, accounts: Collection[int]
) -> BodyRejection | None:
    """Why a campaign in ``current`` cannot be moved to ``wanted`` (None: it can)."""
    if current in FINAL_STATUSES and wanted != current:
        return refused(f"Campaign is {current}: it cannot be changed to {wanted}", status=current)
    if wanted == "ACTIVE" and schedule is None:
        return refused("Cannot start: campaign has no schedule", status=current)
    if wanted == "ACTIVE" and not accounts:
        return refused("Cannot start: campaign has no email accounts", status=current)
    return None


def refused(message: str, **details: Any) -> BodyRejection:
    """A 422 for a write the campaign's current state forbids."""
    return BodyRejection(422, {"error": {"code": "INVALID_STATE", "message": message, **details}})


# --- email accounts --------------------------------------------------------------------------


def validate_account_ids(body: object, pool: Container[int]) -> list[int] | BodyRejection:
    """The email account ids a body names (each once, in order), or why it is refused."""
    name = "email_account_ids"
    if not isinstance(body, dict):
        return bad_request("Invalid JSON body")
    for key in body:
        if key != name:
            return invalid(f"Unknown field '{key}'", field=key, allowed=[name])
    if name not in body:
        return invalid(f"Field '{name}' is required", field=name)
    ids = body[name]
    if ids is None:
        return invalid(f"Field '{name}' must not be null", field=name)
    if not isinstance(ids, list) or not all(
        isinstance(i, int) and not isinstance(i, bool) for i in ids
    ):
        return wrong_type(name, ids, "an array of integers")
    if not ids:
        return invalid(f"Field '{name}' must name at least one email account", field=name)
    for account_id in ids:
        if account_id not in pool:
            return bad_request(f"Invalid {name} value - email account {account_id} not found")
    return list(dict.fromkeys(ids))


def removal_refusal(status: str, remaining: Collection[int]) -> BodyRejection | None:
    """Why removing accounts that would leave ``remaining`` is refused (None: it is not)."""
    if status == "ACTIVE" and not remaining:
        return refused("Cannot remove the last email account of an ACTIVE campaign", status=status)
    return None


def email_account(account_id: int) -> Mapping[str, Any]:
    """A sending account of the simulated account, as SmartLead lists it (no credentials)."""
    kind = ("SMTP", "GMAIL", "OUTLOOK")[account_id % 3]
    address = f"sender{account_id}@mail{1 + account_id % 4}.example.com"
    return {
        "id": account_id,
        "from_name": f"Sender {account_id}",
        "from_email": address,
        "username": address,
        "type": kind,
        "message_per_day": 20 + 10 * (account_id % 5),
        "daily_sent_count": 0,
        "is_smtp_success": True,
        "is_imap_success": True,
        "client_id": None,
    }
