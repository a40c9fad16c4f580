"""What a real run does around sending: read the current settings first, skip rows that would
change nothing, and afterwards read changed campaigns back to verify them.

Every read goes through the same limiter as the POSTs, so it counts in the key's budget.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import anyio

from bulkrunner.answers import parse_json
from bulkrunner.current import Change, changes, parse_campaigns
from bulkrunner.limiter import SlidingWindowLimiter
from bulkrunner.outcomes import Outcome, Status
from bulkrunner.retry import Verdict, classify
from bulkrunner.sender import Sender
from bulkrunner.validation import Row

log = logging.getLogger("bulkrunner")

Changes = dict[str, Change]


@dataclass
class Plan:
    """Which rows to send, which are already as wanted, and what each would change."""

    send: list[Row] = field(default_factory=list)
    unchanged: dict[int, Outcome] = field(default_factory=dict)
    changes: dict[int, Changes] = field(default_factory=dict)  # by row number


class KeyRejected(Exception):
    """The list call was answered 401/403: no row can succeed."""


async def read_current(
    sender: Sender, limiter: SlidingWindowLimiter
) -> dict[int, dict[str, Any]] | None:
    """Every campaign's current settings from one ``GET /campaigns/``; None if that failed.

    Raises KeyRejected when the answer says the key is wrong.
    """
    await limiter.acquire()
    answer = await sender.list_campaigns()
    campaigns = parse_campaigns(answer)
    if campaigns is None:
        decision = classify(answer)
        if decision.verdict is Verdict.ABORT:
            raise KeyRejected(decision.message)
        reason = decision.message or "not a list of campaigns"
        log.warning(
            "cannot read the current settings (%s): sending every row, without a backup", reason
        )
    return campaigns


def plan(rows: Sequence[Row], current: Mapping[int, Mapping[str, Any]] | None, skip: bool) -> Plan:
    """Split ``rows`` into those to send and those that would change nothing."""
    result = Plan()
    for row in rows:
        campaign = current.get(row.campaign_id) if current is not None else None
        found = changes(row.payload, campaign)
        result.changes[row.number] = found
        if skip and current is not None and campaign is not None and not found:
            result.unchanged[row.number] = Outcome(Status.UNCHANGED)
        else:
            result.send.append(row)
    return result


async def verify(
    sender: Sender,
    limiter: SlidingWindowLimiter,
    rows: Sequence[Row],
    concurrency: int,
) -> dict[int, str]:
    """Read each row's campaign back; returns, per row, how it differs or why it could not be
    read ("" when it matches)."""
    found: dict[int, str] = {}
    pending = list(rows)

    async def worker() -> None:
        while pending:
            row = pending.pop()
            await limiter.acquire()
            answer = await sender.get_campaign(row.campaign_id)
            decision = classify(answer)
            if decision.verdict is not Verdict.SUCCEEDED:
                found[row.number] = f"not verified: {decision.message}"
                continue
            campaign = parse_json(answer.body)
            if isinstance(campaign, dict) and isinstance(campaign.get("data"), dict):
                campaign = campaign["data"]
            if not isinstance(campaign, dict):
                found[row.number] = "not verified: the campaign could not be read"
                continue
            differ = changes(row.payload, campaign)
            found[row.number] = "; ".join(
                f"{name}: sent {change.after!r}, server has {change.before!r}"
                for name, change in differ.items()
            )

    async with anyio.create_task_group() as group:
        for _ in range(max(1, min(concurrency, len(rows)))):
            group.start_soon(worker)
    return found
