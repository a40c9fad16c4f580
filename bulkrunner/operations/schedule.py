"""``schedule``: ``POST /campaigns/{id}/schedule``, when a campaign sends.

Input columns (any subset per row; a blank cell leaves that part of the schedule as it is):
``timezone`` (an IANA name; an abbreviation such as ``EST`` with a warning: see ``timezones``),
``days`` (day *names*: ``mon;tue;wed``, ``Mon-Fri``, ``monday``, ``weekdays``), ``start_hour``
and ``end_hour`` (``HH:MM``, 24-hour, start before end), ``min_time_btw_emails`` and
``max_new_leads_per_day`` (whole numbers >= 0) and ``schedule_start_time`` (ISO 8601 date-time
with an offset).

Day numbers are refused in the input: SmartLead numbers days two ways (0=Sunday in the nested
body, 1=Monday in the flat one), so a bare number would be a guess. A row becomes a canonical
payload: days as three-letter names in week order from Monday, hours as ``HH:MM``, the start time
in UTC (``...Z``), the timezone as the database spells it. That is what skip-unchanged, the
backup and ``--verify`` compare with the campaign's state, read from ``GET /campaigns/``:
``scheduler_cron_value`` (an object or a string of JSON: ``tz``, ``days`` 0=Sunday, ``startHour``,
``endHour``), ``schedule_start_time``, and the two limits, which are the campaign's settings
``min_time_btwn_emails`` and ``max_leads_per_day`` (``sending_limit``) under other names.

Only the given fields are sent: the API keeps the others. A campaign that has no schedule yet
must be sent the whole of it (timezone, days, start_hour, end_hour), and a row that sets one
hour must keep it before the campaign's current other hour: such rows are refused before
sending, as the server would refuse them.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime, time
from typing import Any

from bulkrunner.model import Change
from bulkrunner.operations.answers import parse_json
from bulkrunner.operations.base import Operation, Request, Undo, Wire
from bulkrunner.operations.cells import number_types, quoted
from bulkrunner.operations.fields import Field, ScheduleShape
from bulkrunner.operations.syntax import list_items, lists
from bulkrunner.operations.timezones import parse_timezone, zone_name

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")  # ISO order: 1=Monday .. 7=Sunday
_FULL = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_GROUPS = {
    "weekdays": DAYS[:5],
    "weekends": DAYS[5:],
    "weekend": DAYS[5:],
    "daily": DAYS,
    "all": DAYS,
}
_DAY_SEPARATORS = re.compile(r"[/|\s]+")  # within an item of the list: mon tue, mon/tue
_RANGE = re.compile(r"\s*[-\u2013\u2014]\s*")  # Mon-Fri, Mon - Fri, and with a dash
_HOUR = re.compile(r"([0-9]{1,2}):([0-9]{2})(?::00)?")  # ASCII digits: \d takes any script's
_EXAMPLE_TIME = "2026-12-01T09:00:00Z"
WHOLE_SCHEDULE = ("timezone", "days", "start_hour", "end_hour")  # what a new schedule needs
CRON = "scheduler_cron_value"
_CRON_KEYS = {"timezone": "tz", "days": "days", "start_hour": "startHour", "end_hour": "endHour"}
_GET_NAMES = {  # column -> the keys GET shows it under, the first found wins
    "min_time_btw_emails": ("min_time_btwn_emails", "min_time_between_emails"),
    "max_new_leads_per_day": ("max_leads_per_day", "sending_limit"),
    "schedule_start_time": ("schedule_start_time",),
}

Parsed = tuple[Any, str | None]


# --- cells -------------------------------------------------------------------------------------


def parse_days(value: Any) -> Parsed:
    """Day names, each once, as three-letter names in week order from Monday.

    A cell is text (``mon;tue;wed``, ``Mon-Fri``, ``Monday, Friday``, ``weekdays``) or a list of
    such (Parquet). A name may be any start of a day's full name of two letters or more
    (``mo``, ``tues``, ``thursday``); a range runs forward through the week (``Fri-Mon`` is
    Friday to Monday). Numbers are refused: the API numbers days two ways."""
    items = list(value) if isinstance(value, lists()) else [value]
    chosen: set[str] = set()
    for item in items:
        if isinstance(item, number_types()) and not isinstance(item, bool):
            return None, _number_refused(item)
        if not isinstance(item, str):
            return (
                None,
                f"{quoted(item)} is not a day (use mon..sun, full names or a range like Mon-Fri)",
            )
        for part in list_items(item):
            for token in _DAY_SEPARATORS.split(_RANGE.sub("-", part)):
                token = token.strip("\"'")
                if not token:
                    continue
                days, error = _token_days(token)
                if error:
                    return None, error
                chosen.update(days)
    if not chosen:
        return None, "no day given (name at least one, like mon;tue;wed or Mon-Fri)"
    return [day for day in DAYS if day in chosen], None


def _token_days(token: str) -> tuple[tuple[str, ...], str | None]:
    group = _GROUPS.get(token.lower())
    if group is not None:
        return group, None
    if "-" in token:
        first, _, last = token.partition("-")
        start, error = _day(first)
        end, error_end = _day(last)
        if start is None or end is None:
            return (), error or error_end
        at, stop = DAYS.index(start), DAYS.index(end)
        return tuple(DAYS[(at + step) % 7] for step in range((stop - at) % 7 + 1)), None
    day, error = _day(token)
    return ((day,), None) if day is not None else ((), error)


def _day(token: str) -> tuple[str | None, str | None]:
    word = token.strip().lower()
    if word.lstrip("+-").isdigit():
        return None, _number_refused(token)
    if len(word) >= 2:
        for short, full in zip(DAYS, _FULL, strict=True):
            if full.startswith(word):
                return short, None
    return (
        None,
        f"{quoted(token.strip())} is not a day (use mon..sun, full names or a range like Mon-Fri)",
    )


def _number_refused(item: Any) -> str:
    return (
        f"{quoted(str(item).strip())} is a number: write day names (mon;tue;wed or Mon-Fri), as "
        "SmartLead numbers days two ways (0=Sunday or 1=Monday)"
    )


def parse_hour(value: Any) -> Parsed:
    """A time of day as ``HH:MM`` (24-hour): ``9:00``, ``09:00`` and ``09:00:00`` are all
    ``09:00``; a time cell (Parquet) counts if it has no seconds."""
    if isinstance(value, time):
        if value.second or value.microsecond:
            return None, f"{value.isoformat()} has seconds (use HH:MM)"
        return f"{value.hour:02d}:{value.minute:02d}", None
    text = str(value).strip()
    match = _HOUR.fullmatch(text)
    if match is None or int(match[1]) > 23 or int(match[2]) > 59:
        return None, f"{quoted(text)} is not a time HH:MM (24-hour, like 09:00 or 17:30)"
    return f"{int(match[1]):02d}:{match[2]}", None


def parse_start_time(value: Any) -> Parsed:
    """An ISO 8601 date-time with its offset (``Z`` or ``+01:00``), as UTC ``...Z``. A time
    without an offset is refused: which zone it means would be a guess."""
    moment: datetime
    if isinstance(value, datetime):  # pandas' Timestamp is one too
        moment = value
        shown = value.isoformat()
    else:
        shown = str(value).strip()
        try:
            moment = datetime.fromisoformat(shown)
        except ValueError:
            return None, f"{quoted(shown)} is not an ISO 8601 date-time (like {_EXAMPLE_TIME})"
        if "T" not in shown.upper() and " " not in shown:
            return None, f"{quoted(shown)} has no time of day (like {_EXAMPLE_TIME})"
    if moment.tzinfo is None or moment.utcoffset() is None:
        return None, (
            f"{quoted(shown)} has no UTC offset: add Z or one like +01:00 (like {_EXAMPLE_TIME})"
        )
    try:
        return utc_text(moment), None
    except OverflowError:  # 9999-12-31T23:59:59-01:00 is in the year 10000 in UTC
        return None, f"{quoted(shown)} is beyond the years 1 to 9999 once in UTC"


def utc_text(moment: datetime) -> str:
    """``moment`` in UTC as ISO 8601 with ``Z``: seconds always, fractions only if any."""
    utc = moment.astimezone(UTC)
    spec = "microseconds" if utc.microsecond else "seconds"
    return utc.replace(tzinfo=None).isoformat(timespec=spec) + "Z"


FIELDS: tuple[Field, ...] = (
    Field("timezone", "custom", parse=parse_timezone),
    Field("days", "custom", parse=parse_days, arrow="list<string>"),
    Field("start_hour", "custom", parse=parse_hour),
    Field("end_hour", "custom", parse=parse_hour),
    # the same bounds as the settings they are (min_time_btwn_emails, sending_limit), so that
    # any value the server shows can be written back by a rollback
    Field("min_time_btw_emails", "int", minimum=0),
    Field("max_new_leads_per_day", "int", minimum=0),
    Field("schedule_start_time", "custom", parse=parse_start_time),
)


# --- state -------------------------------------------------------------------------------------


def read_cron(value: Any) -> dict[str, Any] | None:
    """``scheduler_cron_value`` as an object, whether GET gave one or a string holding its JSON;
    None when it is neither (null: the campaign has no schedule)."""
    if isinstance(value, str):
        value = parse_json(value)
    return value if isinstance(value, dict) else None


def no_schedule(campaign: Mapping[str, Any]) -> bool:
    """Whether GET shows the campaign without a schedule: ``scheduler_cron_value`` null (or a
    string holding null, or empty)."""
    if CRON not in campaign:
        return False  # not shown: unknown
    value = campaign[CRON]
    if isinstance(value, str):
        return value.strip() in ("", "null")
    return value is None


def _cron_days(value: Any) -> list[str] | None:
    """The days of ``scheduler_cron_value`` (0=Sunday; 7 is read as Sunday too) as names."""
    if not isinstance(value, list) or not all(
        isinstance(day, int) and not isinstance(day, bool) and 0 <= day <= 7 for day in value
    ):
        return None
    chosen = {DAYS[(day - 1) % 7] for day in value}
    return [day for day in DAYS if day in chosen]


def _same_form(parse: Any, value: Any) -> Any:
    """``value`` as its column's parser writes it, or as it is if it does not parse."""
    parsed, error = parse(value)
    return value if error else parsed


def _whole(value: Any) -> Any:
    if isinstance(value, str) and value.strip().isascii() and value.strip().isdigit():
        return int(value.strip())
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


# --- the operation -----------------------------------------------------------------------------


class Schedule(Operation):
    name = "schedule"
    summary = "set campaign schedules (POST /campaigns/{id}/schedule)"
    fields = FIELDS
    reads = (CRON, *(key for names in _GET_NAMES.values() for key in names))
    compared = ("start_hour", "end_hour")

    def requests(self, campaign_id: int, payload: Mapping[str, Any], wire: Wire) -> list[Request]:
        """One POST of the given fields, in the run's schedule shape: nested (``{"schedule":
        {...}}``, ``days`` 0=Sunday) or flat (top level, ``days_of_the_week`` 1=Monday)."""
        nested = ScheduleShape(wire.schedule_shape) is ScheduleShape.NESTED
        body: dict[str, Any] = {}
        for field in self.fields:
            if field.name not in payload:
                continue
            value = payload[field.name]
            if field.name == "days":
                iso = [DAYS.index(day) + 1 for day in value]
                if nested:
                    body["days"] = sorted(number % 7 for number in iso)
                else:
                    body["days_of_the_week"] = sorted(iso)
            else:
                body[field.name] = value
        return [Request("POST", self.path(campaign_id), {"schedule": body} if nested else body)]

    def check(self, payload: Mapping[str, Any], wire: Wire) -> str:
        start, end = payload.get("start_hour"), payload.get("end_hour")
        if start is not None and end is not None and start >= end:  # "HH:MM" orders as times
            return f"start_hour: {start} is not before end_hour {end}"
        return ""

    def state(self, campaign: Mapping[str, Any]) -> dict[str, Any]:
        """The schedule as the columns write it. A campaign whose ``scheduler_cron_value`` is
        null has no schedule: its timezone, days and hours are known to be None."""
        found: dict[str, Any] = {}
        if CRON in campaign:
            cron = read_cron(campaign[CRON])
            if no_schedule(campaign):
                found.update(dict.fromkeys(WHOLE_SCHEDULE))
            elif cron is not None:
                for name, key in _CRON_KEYS.items():
                    if key not in cron:
                        continue
                    raw = cron[key]
                    if name == "days":
                        days = _cron_days(raw)
                        if days is not None:  # else unknown: not a list of day numbers
                            found[name] = days
                    elif name == "timezone":  # as the server has it: no warning, no mapping
                        found[name] = zone_name(raw)
                    elif raw is not None:
                        found[name] = _same_form(parse_hour, raw)
                    else:
                        found[name] = None
        for name, keys in _GET_NAMES.items():
            shown = next((key for key in keys if key in campaign), None)
            if shown is None:
                continue
            value = campaign[shown]
            if name == "schedule_start_time":
                found[name] = None if value is None else _same_form(parse_start_time, value)
            else:
                found[name] = _whole(value)
        return found

    def refuse(self, payload: Mapping[str, Any], campaign: Mapping[str, Any] | None) -> str:
        if campaign is None:
            return ""
        current = self.state(campaign)
        if no_schedule(campaign):
            missing = [name for name in WHOLE_SCHEDULE if name not in payload]
            if missing:
                return (
                    "it has no schedule yet, so the row must set timezone, days, start_hour "
                    f"and end_hour (missing: {', '.join(missing)})"
                )
        for given, other in (("start_hour", "end_hour"), ("end_hour", "start_hour")):
            if given in payload and other not in payload:
                kept = current.get(other)
                if not isinstance(kept, str) or not _HOUR.fullmatch(kept):
                    continue
                start, end = (
                    (payload[given], kept) if given == "start_hour" else (kept, payload[given])
                )
                if start >= end:
                    return (
                        f"start_hour {start} would not be before end_hour {end} "
                        f"(its current {other}; set both in the row)"
                    )
        return ""

    def undo(self, changes: Mapping[str, Change]) -> Undo:
        """The values the schedule had; a part it did not have (no schedule at all, no start
        time) cannot be taken away through the API, and is said so in ``reason``."""
        values = {name: change.before for name, change in changes.items()}
        lost = sorted(name for name, value in values.items() if value is None)
        reason = f"no earlier value to put back for {', '.join(lost)}" if lost else ""
        return Undo({name: value for name, value in values.items() if value is not None}, reason)


SCHEDULE = Schedule()
