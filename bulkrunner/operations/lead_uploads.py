"""What the answer to a lead upload says of each lead it carried, and when to stop uploading.

SmartLead answers ``POST /campaigns/{id}/leads`` in one of two forms:

- **detailed**: ``upload_count``, ``total_leads``, ``already_added_to_campaign``,
  ``duplicate_count``, ``invalid_email_count``, ``invalid_emails`` (the addresses),
  ``unsubscribed_leads`` (the addresses, or a count), ``block_count``, ``bounce_count``,
  ``is_lead_limit_exhausted``, ``lead_import_stopped_count``. Public clients disagree on which
  of ``upload_count`` and ``total_leads`` counts the leads added (the other, the leads sent, or
  the campaign's leads): the leads sent less the refusals counted are taken as added only when
  that is the smaller of the two (a smaller one may be the leads added, refused without a count);
  when they disagree, when a count is not a number, or when neither is given (unless the
  refusals counted cover every lead), the counts are not trusted. Only the invalid and
  unsubscribed addresses are named: a lead refused for another reason (a block list, a bounce,
  another campaign, the lead capacity) is known only as a count.
- **counts**: ``added_count`` and ``skipped_count``, nothing more.

So a lead is ``succeeded`` only when the answer says every lead of its request went in, or when
the campaign, read back, shows it (``Said``: the pipeline reads the campaign back); one the
answer names is ``failed`` with the server's reason; one a count covers is read back and, if
absent, failed with the reasons the answer counts. A lead the campaign held already is
``unchanged``. Nothing here reports ``succeeded`` for a lead the answer does not say was added
and the campaign does not show.

The lead capacity: a detailed answer says ``is_lead_limit_exhausted``; the counts form shows
nothing, so a run that read the campaigns first (every lead it sends was not there) takes
requests in a row that added none of their leads, ``EMPTY_REQUESTS_LEADS`` leads in all, as the
capacity used up (``LeadCapacity``). Either way the run stops sending (exit 3): the leads not
added are not ``succeeded``, and ``--resume`` sends them once capacity is added.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from bulkrunner.model import Answer, Row, Status, count
from bulkrunner.operations.addresses import address_key
from bulkrunner.operations.answers import error_message, parse_json, whole
from bulkrunner.operations.base import Said

# Leads carried by requests in a row that added none of them: past this many, the counts-only
# answer is taken to say the account's lead capacity is used up (a lone refused lead is not).
EMPTY_REQUESTS_LEADS = 3

_DETAILED = (
    "upload_count",
    "total_leads",
    "already_added_to_campaign",
    "duplicate_count",
    "invalid_email_count",
    "block_count",
    "bounce_count",
    "is_lead_limit_exhausted",
    "lead_import_stopped_count",
)
# What keeps a lead out, as the answer counts it, in the words a report gives.
CAUSES = {
    "already": "already in the campaign",
    "invalid": "not a valid address to SmartLead",
    "unsubscribed": "unsubscribed (--ignore-unsubscribe-list adds it anyway)",
    "blocked": "on a block list (--ignore-global-block-list adds it anyway)",
    "bounced": "bounced before",
    "elsewhere": (
        "already in another campaign (--ignore-duplicate-leads-in-other-campaign adds it anyway)"
    ),
    "capacity": "the account's lead capacity is used up (--resume once capacity is added)",
}
_COUNTED = {
    "already": "already_added_to_campaign",
    "blocked": "block_count",
    "bounced": "bounce_count",
    "elsewhere": "duplicate_count",
    "capacity": "lead_import_stopped_count",
}
SKIPPED = (
    "not added: SmartLead skipped it, and its answer (added_count and skipped_count only) does "
    "not say why: on a block list, unsubscribed, bounced, already in another campaign, or the "
    "account's lead capacity used up"
)
UNSAID = "not added: the answer does not say which leads went in, and the campaign does not hold it"
UNCOUNTED = (
    "not added: the answer's counts do not say how many went in (upload_count and total_leads "
    "missing or not numbers, or not the leads sent less those it refused), and the campaign "
    "does not hold it"
)
_AMBIGUOUS = (
    "in the campaign after the upload, but the campaign was not read first "
    "(--no-skip-unchanged --no-backup) and the answer does not say it was added: "
    "added now or there already"
)
_ALREADY = (
    "in the campaign: the answer counts leads already there, without saying which, so it is "
    "not counted as added by this run"
)


@dataclass(frozen=True, slots=True)
class Upload:
    """What an upload's answer says: its ``form``; the leads ``added``, when it tells (None when
    its counts do not add up); the leads it refused without naming them (``counted``, by cause);
    the addresses it names (``address_key``), and whether the capacity ran out."""

    form: str  # "detailed" or "counts"
    added: int | None
    counted: Mapping[str, int] = field(default_factory=dict)
    invalid: frozenset[str] = frozenset()
    unsubscribed: frozenset[str] = frozenset()
    exhausted: bool = False


def _whole(value: Any) -> int | None:
    """A count as an answer shows it (``whole``), never below zero."""
    number = whole(value)
    return number if number is not None and number >= 0 else None


def _flag(value: Any) -> bool:
    """A yes in any of the spellings JSON APIs use: true, "true", 1, "1"."""
    if isinstance(value, str):
        return value.strip().lower() in ("true", "1")
    return value is True or (type(value) is int and value == 1)


def _keys(value: Any) -> frozenset[str]:
    items = value if isinstance(value, list) else []
    return frozenset(address_key(item) for item in items if isinstance(item, str))


def parse_upload(body: str, sent: Sequence[str]) -> Upload | None:
    """The answer ``body`` to an upload of the addresses ``sent``; None when it is neither form
    (``{"ok": true}``, ``success``: it says nothing of the leads)."""
    data = parse_json(body)
    if isinstance(data, dict) and isinstance(data.get("data"), dict):
        data = data["data"]
    if not isinstance(data, dict):
        return None
    if not any(key in data for key in _DETAILED):
        added, skipped = _whole(data.get("added_count")), _whole(data.get("skipped_count"))
        if added is None or skipped is None:
            return None
        return Upload("counts", added if added + skipped == len(sent) else None)
    keys = {address_key(email) for email in sent}
    invalid = _keys(data.get("invalid_emails")) & keys
    unsubscribed_value = data.get("unsubscribed_leads")
    unsubscribed = _keys(unsubscribed_value) & keys - invalid
    counted = {cause: _whole(data.get(key)) or 0 for cause, key in _COUNTED.items()}
    counted["invalid"] = max(0, (_whole(data.get("invalid_email_count")) or 0) - len(invalid))
    if not isinstance(unsubscribed_value, list):
        counted["unsubscribed"] = _whole(unsubscribed_value) or 0
    counted = {cause: n for cause, n in counted.items() if n}
    expected = len(sent) - len(invalid) - len(unsubscribed) - sum(counted.values())
    exhausted = _flag(data.get("is_lead_limit_exhausted")) or counted.get("capacity", 0) > 0
    added = expected if _tells(data, expected) else None
    return Upload("detailed", added, counted, invalid, unsubscribed, exhausted)


def _tells(data: Mapping[str, Any], expected: int) -> bool:
    """Whether a detailed answer's counts say that ``expected`` leads (those sent less those it
    refused) went in: each count it gives is a number, and the smaller of ``upload_count`` and
    ``total_leads`` is ``expected`` (the other may count the leads sent or the campaign's); with
    neither, only when the refusals counted cover every lead sent (none went in)."""
    given = [data[key] for key in (*_DETAILED, "unsubscribed_leads") if data.get(key) is not None]
    if expected < 0 or any(
        _whole(value) is None for value in given if not isinstance(value, bool | list)
    ):
        return False
    shown = [
        n for key in ("upload_count", "total_leads") if (n := _whole(data.get(key))) is not None
    ]
    return min(shown) == expected if shown else expected == 0


def why(counted: Mapping[str, int]) -> str:
    """Why a lead an answer counts without naming it is not in the campaign."""
    if len(counted) == 1:
        (cause,) = counted
        return f"not added: {CAUSES[cause]}"
    parts = [f"{count(n, 'lead')} {CAUSES[cause]}" for cause, n in counted.items()]
    return (
        "not added: refused by SmartLead; this request's answer counts "
        + "; ".join(parts)
        + ", without saying which"
    )


def _error_in(body: str) -> str:
    """The message of an answer that carries an error or a message instead of counts."""
    data = parse_json(body)
    if isinstance(data, dict) and any(data.get(key) for key in ("error", "message", "msg")):
        return error_message(body)
    return ""


def attribute_leads(
    numbers: Sequence[int], emails: Sequence[str], answer: Answer, read_first: bool
) -> dict[int, str | Said]:
    """What the answer to one upload says of each of its leads (row ``numbers``, addresses
    ``emails``, in the order sent); ``read_first``: the campaign was read before sending, so
    none of them was in it."""
    upload = parse_upload(answer.body, emails)
    present = Status.SUCCEEDED if read_first else Status.UNCHANGED
    note = "" if read_first else _AMBIGUOUS
    if upload is None or upload.added is None:
        unsaid = UNSAID if upload is None else UNCOUNTED
        if upload is None and (message := _error_in(answer.body)):
            unsaid = f"{unsaid} (its answer: {message})"
        return dict.fromkeys(numbers, Said(None, unsaid, present=present, note=note))
    said: dict[int, str | Said] = {}
    rest: list[int] = []
    for number, email in zip(numbers, emails, strict=True):
        key = address_key(email)
        if key in upload.invalid:
            said[number] = f"not added: {CAUSES['invalid']} (invalid_emails)"
        elif key in upload.unsubscribed:
            said[number] = f"not added: {CAUSES['unsubscribed']}"
        else:
            rest.append(number)
    if upload.form == "counts":
        said.update(_counts_only(rest, upload.added, present, note))
    else:
        said.update(_detailed(rest, upload.added, upload.counted, read_first))
    return said


def _counts_only(
    numbers: Sequence[int], added: int, present: Status, note: str
) -> dict[int, str | Said]:
    if added == len(numbers):
        return dict.fromkeys(numbers, "")
    if added == 0 and not note:  # none went in, and none was there: each is known not added
        return dict.fromkeys(numbers, SKIPPED)
    return dict.fromkeys(numbers, Said(None, SKIPPED, present=present, note=note))


def _detailed(
    numbers: Sequence[int], added: int, counted: Mapping[str, int], read_first: bool
) -> dict[int, str | Said]:
    if not counted:
        return dict.fromkeys(numbers, "")
    reason = why(counted)
    absent = Status.NOT_ATTEMPTED if set(counted) == {"capacity"} else Status.FAILED
    already = counted.get("already", 0)
    if added == 0 and not already:  # none went in: each is known not added, for these reasons
        return dict.fromkeys(numbers, Said(absent, reason))
    if added == 0 and set(counted) == {"already"}:
        return dict.fromkeys(numbers, Said(Status.UNCHANGED, f"{CAUSES['already']} (counted)"))
    if already:  # the leads it holds now are those added and those there before
        return dict.fromkeys(
            numbers, Said(None, reason, present=Status.UNCHANGED, absent=absent, note=_ALREADY)
        )
    return dict.fromkeys(numbers, Said(None, reason, absent=absent))


class LeadCapacity:
    """``Engine.judge`` of a leads run: why to stop once an answer says the account's lead
    capacity is used up (``is_lead_limit_exhausted``), or, in the counts-only form and when the
    campaigns were read first, once requests in a row added none of their
    ``EMPTY_REQUESTS_LEADS`` leads or more; None until then."""

    def __init__(self, read_first: bool, threshold: int = EMPTY_REQUESTS_LEADS) -> None:
        self.read_first = read_first
        self.threshold = threshold
        self.empty = 0  # leads of the requests in a row that added none

    def __call__(self, row: Row, answer: Answer, message: str) -> str | None:
        if answer.status is None or not 200 <= answer.status < 300:
            return None
        upload = parse_upload(answer.body, ())
        if upload is None:
            return None
        if upload.exhausted:
            return (
                "run aborted: the account's lead capacity is used up (SmartLead's answer says "
                "is_lead_limit_exhausted): the leads not added are not sent; add capacity, "
                "then --resume"
            )
        if upload.form != "counts" or not self.read_first:
            return None
        data = parse_json(answer.body)
        data = data.get("data", data) if isinstance(data, dict) else {}
        added = _whole(data.get("added_count")) if isinstance(data, dict) else None
        skipped = _whole(data.get("skipped_count")) if isinstance(data, dict) else None
        if added is None or skipped is None:
            return None
        if added:
            self.empty = 0
            return None
        self.empty += skipped
        if self.empty < self.threshold:
            return None
        return (
            f"run aborted: uploads in a row added none of their {count(self.empty, 'lead')}, "
            "none of which the campaigns held: with an answer of counts only (added_count, "
            "skipped_count), that is how a used-up lead capacity shows (else SmartLead refused "
            "every one); the leads not added are not sent: add capacity, then --resume"
        )
