"""What ``bulkrunner plan`` says of a run before it is made: each row's changes from -> to, how
many rows would change, and how long the run would take at the configured limits.

Plain functions of what a run's plan stage finds (``sending.plan``): no I/O, no pandas.
Values are shown as a person reads them: ``sending_limit 50 -> 25``, ``track_settings [] ->
[DONT_EMAIL_OPEN]``, text in quotes (``unsubscribe_text "" -> "Bye"``), an unknown current value
as ``?``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from bulkrunner.limits.rates import crossing, ideal_seconds
from bulkrunner.model import Change, Rate, Row, count
from bulkrunner.operations.base import Operation, Wire
from bulkrunner.operations.syntax import bool_cell

SHOWN_CHANGES = 20  # rows whose changes are printed one by one; the rest are counted
_BARE = re.compile(r"[A-Za-z0-9_.:@/+-]+")  # text shown without quotes: enum names, numbers


def shown(value: Any) -> str:
    """``value`` as a plan line shows it."""
    if value is None:
        return "?"
    if isinstance(value, bool):
        return bool_cell(value)
    if isinstance(value, str):
        return value if _BARE.fullmatch(value) else json.dumps(value, ensure_ascii=False)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(shown(item) for item in value) + "]"
    if isinstance(value, int | float):
        return str(value)
    return json.dumps(value, default=str, ensure_ascii=False, separators=(",", ":"))


def change_line(
    number: int,
    campaign_id: int,
    changes: Mapping[str, Change],
    irreversible: Collection[str] = (),
) -> str:
    """``row 3 (campaign 101): sending_limit 50 -> 25, track_settings [] -> [DONT_EMAIL_OPEN]``;
    a change of ``irreversible`` (--allow-irreversible: a field that has no value now, a lead
    unsubscribed) marked, ``client_id (no value) -> 4 [irreversible]``."""
    fields = ", ".join(
        f"{name} {_before(change.before, name in irreversible)} -> {shown(change.after)}"
        + (" [irreversible]" if name in irreversible else "")
        for name, change in changes.items()
    )
    return f"row {number} (campaign {campaign_id}): {fields or 'no change, sent anyway'}"


def _before(value: Any, irreversible: bool) -> str:
    return "(no value)" if irreversible and value is None else shown(value)


def change_lines(
    rows: Sequence[Row],
    changes: Mapping[int, Mapping[str, Change]],
    shown: int = SHOWN_CHANGES,
    irreversible: Mapping[int, Collection[str]] | None = None,
    total: int | None = None,
) -> list[str]:
    """The lines of the first ``shown`` of ``rows`` (those that would be sent), and a count of
    the others (of ``total`` rows in all, when ``rows`` are only the first ones)."""
    marked = irreversible or {}
    lines = [
        change_line(
            row.number, row.campaign_id, changes.get(row.number, {}), marked.get(row.number, ())
        )
        for row in rows[:shown]
    ]
    every = len(rows) if total is None else total
    if every > shown:
        more = every - shown
        lines[shown:] = [
            f"... and {count(more, 'more row')} to change (every row's before and after are in "
            "the report)"
        ]
    return lines


@dataclass(frozen=True, slots=True)
class Requests:
    """The requests a run would make: its reads of the current state (the plan's own, which the
    run makes again), the writes of the rows it would send, and --verify's reads back."""

    reads: int
    writes: int
    verify: int = 0

    @property
    def total(self) -> int:
        return self.reads + self.writes + self.verify

    @classmethod
    def of(
        cls,
        rows: Sequence[Row],
        reads: int,
        operation: Operation,
        wire: Wire,
        verify: bool,
    ) -> Requests:
        """The requests of sending ``rows`` after ``reads`` reads (and, with ``verify``,
        reading each back: the list's read by id and/or its per-campaign detail)."""
        groups = operation.groups(rows, wire)
        writes = sum(len(operation.group_requests(group, wire)) for group in groups)
        return cls(reads, writes, operation.read_backs(rows) if verify else 0)

    def seconds(self, rates: Sequence[Rate]) -> float:
        """The least time the run takes at ``rates``, from its first request to its last."""
        return ideal_seconds(self.total, rates)

    def crossing(self, rates: Sequence[Rate], guard: float) -> str | None:
        """What it costs when these requests exceed a window of ``rates`` by a handful (the
        reads come first: ``limits.rates.crossing``); None when they do not."""
        return crossing(self.reads, self.writes + self.verify, rates, guard)

    def describe(self) -> str:
        parts = [count(self.reads, "read"), count(self.writes, "write")]
        if self.verify:
            parts.append(f"{count(self.verify, 'read')} back (--verify)")
        return f"{count(self.total, 'request')} ({', '.join(parts)})"


def duration(seconds: float) -> str:
    """``seconds`` as a person says it: ``0.4 s``, ``12 s``, ``3 min 5 s``, ``2 h 10 min``."""
    whole = round(seconds)
    if seconds < 1:
        return f"{seconds:.1f} s"
    if whole < 60:
        return f"{whole} s"
    if whole < 3600:
        minutes, rest = divmod(whole, 60)
        return f"{minutes} min {rest} s" if rest else f"{minutes} min"
    hours, rest = divmod(whole, 3600)
    return f"{hours} h {rest // 60} min" if rest // 60 else f"{hours} h"


@dataclass(frozen=True, slots=True)
class Duration:
    """How long one account's part of a run would take at best: its requests at its limits."""

    requests: Requests
    rates: tuple[Rate, ...]
    account: str | None = None  # one account of several

    @property
    def seconds(self) -> float:
        return self.requests.seconds(self.rates)


# What a plan counts of each campaign's leads: a row's outcome (or the plan's word for it) ->
# the words a campaign's line gives it, in the order shown.
LEAD_COUNTS = {
    "add": "to add",
    "already": "already there",
    "remove": "to remove",  # (a leads run's rollback)
    "gone": "not there any more",
    "invalid": "invalid",
    "suppressed": "suppressed",
    "repeated": "repeating an earlier row",
    "added": "added by the run it continues",
    "missing": "campaign not found",
    "refused": "refused",
}


def campaign_lines(
    counts: Mapping[int | None, Mapping[str, int]], shown: int = SHOWN_CHANGES
) -> list[str]:
    """``campaign 5: 80 to add, 20 already there, 1 invalid``, for the first ``shown``
    campaigns (rows with no usable campaign id last), and a count of the others."""
    order = sorted(counts, key=lambda campaign: (campaign is None, campaign or 0))
    lines = []
    for campaign in order[:shown]:
        said = ", ".join(
            f"{counts[campaign][key]} {words}"
            for key, words in LEAD_COUNTS.items()
            if counts[campaign].get(key)
        )
        which = f"campaign {campaign}" if campaign is not None else "rows without a campaign"
        lines.append(f"{which}: {said}")
    if len(order) > shown:
        lines.append(f"... and {count(len(order) - shown, 'more campaign')}")
    return lines


@dataclass(frozen=True, slots=True)
class Forecast:
    """What a plan found: how many rows a run would send, and what the first of them would
    change; how many rows are unchanged, invalid, missing from the account or refused, and
    each account's duration."""

    shown: Sequence[Row]  # the first rows to send (at most SHOWN_CHANGES), in order
    changes: Mapping[int, Mapping[str, Change]]  # what each of them would change
    irreversible: Mapping[int, Sequence[str]]  # of them, the fields set that have no value now
    to_change: int  # rows to send
    irreversible_rows: int  # rows to send that set fields with no value now
    unchanged: int
    invalid: int
    missing: int  # the campaign does not exist (404) or could not be read
    refused: int  # the operation refuses the row given the campaign's state
    durations: Sequence[Duration]
    # a leads plan's counts by campaign (``LEAD_COUNTS``): shown instead of each row's change
    campaigns: Mapping[int | None, Mapping[str, int]] | None = None
    drifted: int = 0  # rows left as they are: their campaign changed since (a rollback's plan)
    drift_lines: Sequence[str] = ()  # why, for the first of them (or of those --force sends)

    @property
    def slowest(self) -> Duration | None:
        """The accounts run at the same time: the run takes as long as the slowest."""
        return max(self.durations, key=lambda each: each.seconds, default=None)

    def lines(self, each_row: bool = True) -> list[str]:
        """What ``bulkrunner plan`` prints: (with ``each_row``) each row's changes, then the
        counts and the run's duration."""
        if not each_row:
            lines = []
        elif self.campaigns is not None:
            lines = campaign_lines(self.campaigns)
        else:
            lines = change_lines(
                self.shown, self.changes, irreversible=self.irreversible, total=self.to_change
            )
        if each_row:
            lines += self.drift_lines
        refused = f", refused: {self.refused}" if self.refused else ""
        refused += f", drifted: {self.drifted} (left as they are)" if self.drifted else ""
        undone = (
            f" ({self.irreversible_rows} a rollback could not undo: --allow-irreversible)"
            if self.irreversible_rows
            else ""
        )
        lines.append(
            f"rows to change: {self.to_change}{undone}, unchanged: {self.unchanged}, "
            f"invalid: {self.invalid}, missing from the account: {self.missing}{refused}"
        )
        slowest = self.slowest
        if slowest is not None:
            whose = f" (account {slowest.account}, the slowest)" if len(self.durations) > 1 else ""
            lines.append(
                f"the run would make {slowest.requests.describe()}{whose}: at least "
                f"{duration(slowest.seconds)} at {', '.join(map(str, slowest.rates))}"
            )
        lines.append("nothing was written to the account")
        return lines

    def fields(self) -> dict[str, Any]:
        """The counts and the duration, for machines (``--log-format json``)."""
        slowest = self.slowest
        return {
            "to_change": self.to_change,
            "irreversible": self.irreversible_rows,
            "unchanged": self.unchanged,
            "invalid": self.invalid,
            "missing": self.missing,
            "refused": self.refused,
            "drifted": self.drifted,
            "requests": slowest.requests.total if slowest is not None else 0,
            "seconds": round(slowest.seconds, 3) if slowest is not None else 0.0,
        }
