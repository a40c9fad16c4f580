"""The verify stage: read back the campaigns of rows that were applied, and compare.

``--verify`` reads back every row the send stage applied; a row the answer that accepted it said
nothing of (``Operation.attribute``) is read back whatever the options, to find out whether it
was applied. A campaign is read once for all its rows (a leads run's: its pages of leads). Each
read goes through the account's ``Connection``, retried like any request; a campaign that still
cannot be read is not known to hold what was sent.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, replace
from functools import partial
from typing import Any

import anyio

from bulkrunner.errors import KeyRejected, Unavailable, Unreachable, WaitTooLong
from bulkrunner.model import Outcome, Row, Status, count
from bulkrunner.operations.base import Operation
from bulkrunner.operations.lead_answers import UNREAD
from bulkrunner.operations.settings import SETTINGS
from bulkrunner.sending.connection import Connection
from bulkrunner.sending.lead_reads import read_leads
from bulkrunner.sending.pages import read_pages
from bulkrunner.sending.reads import detail_list, empty, not_the_campaign, one_campaign
from bulkrunner.sending.retry import Verdict, classify, too_long


@dataclass(frozen=True, slots=True)
class ReadBack:
    """What reading a row's campaign back found: ``matches`` what the row set, or not (how it
    differs in ``reason``), or None: it could not be read (why in ``reason``)."""

    matches: bool | None
    reason: str = ""


MATCHES = ReadBack(True)


def not_verified(outcome: Outcome, why: str) -> Outcome:
    """``outcome`` of a row applied but not read back (``why``): ``unverified``."""
    note = f"not verified: {why}"
    error = f"{outcome.error}; {note}" if outcome.error else note
    return replace(outcome, status=Status.UNVERIFIED, error=error)


def unverified(
    outcomes: Mapping[int, Outcome], read: Collection[int], stopped: str
) -> dict[int, Outcome]:
    """The rows of ``outcomes`` applied but not ``read`` back, the run ``stopped`` first:
    ``unverified``, never ``succeeded`` unread."""
    why = f"the run stopped before it was read back ({stopped})"
    return {
        number: not_verified(outcome, why)
        for number, outcome in outcomes.items()
        if outcome.status is Status.SUCCEEDED and number not in read
    }


async def verify(
    connection: Connection,
    rows: Sequence[Row],
    operation: Operation = SETTINGS,
    seen: dict[int, Mapping[str, Any]] | None = None,
) -> dict[int, ReadBack]:
    """Read each row's campaign back, once for all its rows (and its detail, if the operation
    has one; every page of it, if paged), by row number; the campaigns as read go to ``seen``.
    A wait longer than --max-wait, or an outage, leaves the rows not yet read back unread."""
    if operation.reads_leads:
        return await _read_leads_back(connection, rows, operation)
    found: dict[int, ReadBack] = {}
    by_campaign: dict[int, list[Row]] = {}
    for row in rows:
        by_campaign.setdefault(row.campaign_id, []).append(row)
    pending = list(reversed(by_campaign))

    async def worker() -> None:
        while pending:
            campaign_id = pending.pop()
            try:
                campaign, reason = await _read_campaign(connection, campaign_id, operation)
            except (WaitTooLong, Unavailable) as stop:
                reason = (
                    too_long(stop, connection.policy.max_wait)
                    if isinstance(stop, WaitTooLong)
                    else str(stop)
                )
                for each in (campaign_id, *pending):
                    for row in by_campaign[each]:
                        found[row.number] = ReadBack(None, reason)
                pending.clear()  # the other workers finish the reads they are making
                return
            if campaign is not None and seen is not None:
                seen[campaign_id] = campaign
            for row in by_campaign[campaign_id]:
                found[row.number] = (
                    _compared(row, campaign, operation)
                    if campaign is not None
                    else ReadBack(None, reason)
                )

    connection.phase()
    async with anyio.create_task_group() as group:
        for _ in range(max(1, min(connection.concurrency, len(by_campaign)))):
            group.start_soon(worker)
    return found


async def _read_campaign(
    connection: Connection, campaign_id: int, operation: Operation
) -> tuple[Mapping[str, Any] | None, str]:
    """The campaign as ``operation`` reads it back, or why it could not be read."""
    if operation.paged is not None:
        paged = await read_pages(connection, operation, campaign_id)
        if paged.state is None:
            missing = "not found (404)" if paged.missing else ""
            return None, paged.rejected or paged.unreadable or missing
        return {"id": campaign_id, str(operation.detail): paged.state}, ""
    campaign: dict[str, Any] = {"id": campaign_id}
    parts = [None] if operation.reads_list else []
    for detail in [*parts, *([operation.detail] if operation.detail else [])]:
        path = f"/campaigns/{campaign_id}" + (f"/{detail}" if detail else "")
        sender = connection.sender
        call = partial(sender.read, path) if detail else partial(sender.get_campaign, campaign_id)
        answer = await connection.fetch(call, f"reading {path} back")
        decision = classify(answer)
        if decision.verdict is Verdict.RETRY and not answer.refused:
            tries = count(connection.policy.max_attempts, "attempt")
            return None, f"gave up after {tries}; last error: {decision.message}"
        if decision.verdict is not Verdict.SUCCEEDED:
            return None, decision.message
        value: Any = one_campaign(answer) if detail is None else detail_list(answer)
        if value is None:
            return None, "the campaign could not be read"
        if detail is None and (other := not_the_campaign(value, campaign_id)):
            return None, other
        campaign = value if detail is None else {**campaign, detail: value}
    if not operation.readable(campaign):
        return None, empty(operation)
    return campaign, ""


async def _read_leads_back(
    connection: Connection, rows: Sequence[Row], operation: Operation
) -> dict[int, ReadBack]:
    """The rows' leads read back together, as the read stage reads them (``lead_reads``)."""
    connection.phase()
    try:
        current = await read_leads(connection, rows, operation)
    except (WaitTooLong, Unavailable, KeyRejected, Unreachable) as stop:
        reason = (
            too_long(stop, connection.policy.max_wait)
            if isinstance(stop, WaitTooLong)
            else str(stop)
        )
        return {row.number: ReadBack(None, reason) for row in rows}
    found: dict[int, ReadBack] = {}
    for row in rows:
        campaign = current.campaigns.get(row.campaign_id)
        if campaign is None:
            why = current.unreadable.get(row.campaign_id, "the campaign was not found (404)")
            found[row.number] = ReadBack(None, why)
        else:
            found[row.number] = _compared(row, campaign, operation)
    return found


def _compared(row: Row, campaign: Mapping[str, Any], operation: Operation) -> ReadBack:
    """Whether ``campaign`` as read back holds what ``row`` sent."""
    if not operation.readable(campaign):
        return ReadBack(None, empty(operation))
    unread = campaign.get(UNREAD)
    address = row.payload.get(operation.key) if operation.key is not None else None
    if isinstance(unread, Mapping) and address in unread:
        return ReadBack(None, f"its lead could not be read ({unread[address]})")
    differ = operation.changes(row.payload, campaign)
    return MATCHES if not differ else ReadBack(False, operation.mismatch(differ))
