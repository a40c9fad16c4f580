"""How the simulated server checks the bodies and queries of the lead endpoints.

Error shapes follow ``validation``: a body that is not a JSON object, and a bad paging or search
query, are a flat 400 ``{"error": "..."}``; a missing field, a wrong type, an empty or too long
``lead_list`` and an unknown top-level field are a 422 ``VALIDATION_ERROR`` naming the field
(``lead_list[3].email``, ``settings.ignore_global_block_list``).

An upload body is ``{"lead_list": [...], "settings": {...}}``. Each lead needs ``email`` (a
string; whether it is a valid address is not a body error: such a lead is counted as invalid in
the answer). ``LEAD_FIELDS`` are text, numbers or null, ``custom_fields`` an object of text or
numbers. Fields a lead has beyond these are ignored, as SmartLead ignores them, and so are
``settings`` keys beside the three booleans (the current reference documents more, such as
``return_lead_ids``). ``settings`` may be left out: its booleans are false by default.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from bulkrunner.simulator.leads import LEAD_FIELDS, LeadValue
from bulkrunner.simulator.validation import BodyRejection, bad_request, invalid, wrong_type

UPLOAD_SETTINGS = (
    "ignore_global_block_list",
    "ignore_unsubscribe_list",
    "ignore_duplicate_leads_in_other_campaign",
)
RESUME_DELAY = "resume_lead_with_delay_days"
MOST_PER_PAGE = 100  # the most leads one page of a campaign's leads may ask for


@dataclass(frozen=True, slots=True)
class LeadInput:
    """One lead of an upload body, as sent."""

    email: str
    values: tuple[LeadValue | None, ...] | None  # LEAD_FIELDS in order; None: none was sent
    custom_fields: dict[str, LeadValue] | None


@dataclass(frozen=True, slots=True)
class Upload:
    """What a valid upload body asks for."""

    leads: list[LeadInput]
    ignore_global_block_list: bool = False
    ignore_unsubscribe_list: bool = False
    ignore_duplicate_leads_in_other_campaign: bool = False


def validate_upload(body: object, most: int) -> Upload | BodyRejection:
    """The leads and settings of an upload body carrying at most ``most`` leads, or why it is
    refused."""
    if not isinstance(body, dict):
        return bad_request("Invalid JSON body")
    for name in body:
        if name not in ("lead_list", "settings"):
            return invalid(f"Unknown field '{name}'", field=name, allowed=["lead_list", "settings"])
    if "lead_list" not in body:
        return invalid("Field 'lead_list' is required", field="lead_list")
    entries = body["lead_list"]
    if not isinstance(entries, list):
        return wrong_type("lead_list", entries, "an array of leads")
    if not entries:
        return invalid("Field 'lead_list' must hold at least one lead", field="lead_list")
    if len(entries) > most:
        message = f"Field 'lead_list' must hold at most {most} leads, got {len(entries)}"
        return invalid(message, field="lead_list", maximum=most, received=len(entries))
    leads: list[LeadInput] = []
    for index, entry in enumerate(entries):
        lead = _lead(entry, f"lead_list[{index}]")
        if isinstance(lead, BodyRejection):
            return lead
        leads.append(lead)
    flags = _settings(body.get("settings"))
    if isinstance(flags, BodyRejection):
        return flags
    return Upload(
        leads,
        ignore_global_block_list=flags.get(UPLOAD_SETTINGS[0], False),
        ignore_unsubscribe_list=flags.get(UPLOAD_SETTINGS[1], False),
        ignore_duplicate_leads_in_other_campaign=flags.get(UPLOAD_SETTINGS[2], False),
    )


def _lead(entry: object, label: str) -> LeadInput | BodyRejection:
    if not isinstance(entry, dict):
        return wrong_type(label, entry, "an object")
    email = entry.get("email")
    if email is None:
        return invalid(f"Field '{label}.email' is required", field=f"{label}.email")
    if not isinstance(email, str):
        return wrong_type(f"{label}.email", email, "a string")
    values: list[LeadValue | None] = []
    for name in LEAD_FIELDS:
        value = entry.get(name)
        if value is not None and not _is_value(value):
            return wrong_type(f"{label}.{name}", value, "a string or a number")
        values.append(value)
    custom = entry.get("custom_fields")
    if custom is not None:
        if not isinstance(custom, dict):
            return wrong_type(f"{label}.custom_fields", custom, "an object")
        for name, value in custom.items():
            if not _is_value(value):
                field = f"{label}.custom_fields.{name}"
                return wrong_type(field, value, "a string or a number")
    sent = tuple(values) if any(v is not None for v in values) else None
    return LeadInput(email, sent, custom or None)


def _is_value(value: object) -> bool:
    return isinstance(value, str | int | float) and not isinstance(value, bool)


def _settings(settings: object) -> dict[str, bool] | BodyRejection:
    if settings is None:
        return {}
    if not isinstance(settings, dict):
        return wrong_type("settings", settings, "an object")
    flags: dict[str, bool] = {}
    for name in UPLOAD_SETTINGS:
        value = settings.get(name)
        if value is None:
            continue
        if not isinstance(value, bool):
            return wrong_type(f"settings.{name}", value, "a boolean")
        flags[name] = value
    return flags


def validate_resume(body: object) -> int | BodyRejection:
    """The days a resume body asks to wait (0 when it sends none), or why it is refused."""
    if body is None:
        return 0
    if not isinstance(body, dict):
        return bad_request("Invalid JSON body")
    for name in body:
        if name != RESUME_DELAY:
            return invalid(f"Unknown field '{name}'", field=name, allowed=[RESUME_DELAY])
    days = body.get(RESUME_DELAY, 0)
    if not isinstance(days, int) or isinstance(days, bool):
        return wrong_type(RESUME_DELAY, days, "an integer")
    if days < 0:
        message = f"Field '{RESUME_DELAY}' must be at least 0"
        return invalid(message, field=RESUME_DELAY, minimum=0, received=days)
    return days


def validate_no_fields(body: object) -> BodyRejection | None:
    """Why the body of a write that takes none (pause, unsubscribe, remove) is refused; no body,
    ``null`` and ``{}`` are accepted."""
    if body is None:
        return None
    if not isinstance(body, dict):
        return bad_request("Invalid JSON body")
    for name in body:
        return invalid(f"Unknown field '{name}'", field=name, allowed=[])
    return None


def validate_page(query: Mapping[str, str]) -> tuple[int, int] | BodyRejection:
    """The ``offset`` (default 0) and ``limit`` (default and at most ``MOST_PER_PAGE``) of a
    page of a campaign's leads, or why they are refused."""
    offset = _whole(query, "offset", 0)
    limit = _whole(query, "limit", MOST_PER_PAGE)
    if isinstance(offset, BodyRejection):
        return offset
    if isinstance(limit, BodyRejection):
        return limit
    if not 1 <= limit <= MOST_PER_PAGE:
        return bad_request(f"limit must be between 1 and {MOST_PER_PAGE}, got {limit}")
    return offset, limit


def _whole(query: Mapping[str, str], name: str, default: int) -> int | BodyRejection:
    text = query.get(name)
    if text is None:
        return default
    if not (text.isascii() and text.isdigit()):
        return bad_request(f"{name} must be a whole number >= 0, got '{text}'")
    return int(text)
