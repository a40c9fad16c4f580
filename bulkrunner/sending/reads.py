"""The read stage: an account's current state, as the rows of a batch need it (and export).

One ``GET /campaigns/`` call snapshots every campaign of the account; a campaign it does not show
is read on its own (``GET /campaigns/{id}``), and an operation whose state has a part the list
does not show (its ``detail``, such as a campaign's email accounts) reads that for each campaign.
How a campaign as read compares with a row is ``bulkrunner.operations.state``'s.

Every read goes through the account's ``Connection``: it counts in the key's budget and is
retried, paused and bounded as the writes are (``retry.Policy``).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import anyio

from bulkrunner.errors import KeyRejected, Unavailable, Unreachable, WaitTooLong
from bulkrunner.model import Answer, count
from bulkrunner.operations.answers import parse_json
from bulkrunner.operations.base import Operation
from bulkrunner.operations.settings import SETTINGS
from bulkrunner.operations.state import Campaign, parse_campaigns, shows_only_its_id, slim
from bulkrunner.sending.connection import Connection
from bulkrunner.sending.pages import read_pages
from bulkrunner.sending.retry import Verdict, classify

log = logging.getLogger("bulkrunner")

LIST = "/campaigns/"


@dataclass
class Current:
    """What reading the current state found, by campaign id."""

    campaigns: dict[int, Mapping[str, Any]] = field(default_factory=dict)  # as GET shows them
    missing: set[int] = field(default_factory=set)  # answered 404: the campaign does not exist
    unreadable: dict[int, str] = field(default_factory=dict)  # why it could not be read


@dataclass(slots=True)
class Listing:
    """The account's list of campaigns as read for a run's first batch: the campaigns of the
    run (``wanted``; by default the first batch's) it showed, each until its batch takes it;
    and the campaigns whose pages were read (``Operation.paged``), kept for every batch."""

    wanted: Collection[int] | None = None
    campaigns: dict[int, Mapping[str, Any]] | None = None  # None: not read yet
    pages: dict[int, Mapping[str, Any]] = field(default_factory=dict)
    gone: set[int] = field(default_factory=set)  # campaigns whose pages answered 404

    def later(self, rows: int, operation: Operation, read_first: bool, no_backup: bool) -> int:
        """The reads of ``rows`` rows of batches not yet read: one for each campaign the
        account's list did not show (none when it reads no current state); of an operation
        read a page at a time, a page at least for each campaign of the run not read yet; for
        an operation that reads leads by address, one a row at most (``lead_reads``: fewer
        where pages are cheaper)."""
        if operation.reads_leads:
            return rows
        if rows and operation.paged is not None and self.wanted is not None:
            read = len(self.pages) + len(self.gone)
            return max(0, len(self.wanted) - read) if read_first else 0
        if not rows or no_backup or self.campaigns is None:
            return 0
        return max(0, rows - len(self.campaigns))


async def read_current(
    connection: Connection,
    campaign_ids: Collection[int],
    *,
    one_by_one: bool = True,
    operation: Operation = SETTINGS,
    listing: Listing | None = None,
) -> Current:
    """The current state of ``campaign_ids``: the list for all of them, then, with
    ``one_by_one``, each the list did not show (or all, if the list could not be read) on its
    own; then each one's detail, if the operation has one.

    The batches of a streamed run share one ``listing``: the list is read for the first batch
    only, and kept for the later ones (each campaign given to the batch that needs it).

    Raises KeyRejected when an answer says the key is wrong, Unreachable when the first read is
    refused a connection (nothing listens there), WaitTooLong and Unavailable as ``fetch``."""
    listing = listing or Listing()
    if operation.reads_list:
        current = await _read_list(connection, campaign_ids, one_by_one, operation, listing)
    else:
        current = Current()
    if operation.paged is not None:
        await read_paged(connection, operation, current, campaign_ids, listing)
    elif operation.detail is not None:
        await read_details(connection, operation.detail, current, campaign_ids)
    blank = [c for c, campaign in current.campaigns.items() if not operation.readable(campaign)]
    for campaign_id in blank:
        del current.campaigns[campaign_id]
        current.unreadable[campaign_id] = (
            f"its current settings could not be read ({empty(operation)})"
        )
    return current


def empty(operation: Operation) -> str:
    """Why an answer that shows none of a campaign's state (``Operation.readable``) is not read."""
    return f"the answer shows no value of any field a {operation.name} row sets"


async def read_list(connection: Connection, path: str = LIST) -> Answer:
    """The account's list of campaigns (``path``: with a filter); Unreachable when nothing
    listens at the base URL."""
    answer = await connection.fetch(
        lambda: (
            connection.sender.read(path) if path != LIST else connection.sender.list_campaigns()
        ),
        "reading the list of campaigns",
    )
    if answer.refused:
        raise Unreachable(f"{answer.transport_error} (is the base URL right?)")
    return answer


async def _read_list(
    connection: Connection,
    campaign_ids: Collection[int],
    one_by_one: bool,
    operation: Operation,
    listing: Listing,
) -> Current:
    wanted = set(campaign_ids)
    if listing.campaigns is None:
        answer = await read_list(connection)
        found = parse_campaigns(answer, listing.wanted or wanted, operation.reads)
        if found is None:
            decision = classify(answer)
            if decision.verdict is Verdict.ABORT:
                raise KeyRejected(decision.message)
            reason = decision.message or "not a list of campaigns"
            then = (
                "reading each campaign on its own"
                if one_by_one
                else "sending every row without a backup (--no-backup)"
            )
            log.warning("cannot read the list of campaigns (%s): %s", reason, then)
            found = {}
        del answer  # the whole account's list: gone before the rows are planned
        listing.campaigns = found
    shown = listing.campaigns
    listed = {cid: shown.pop(cid) for cid in wanted if cid in shown}
    # a list showing a campaign without its values (only its id, or nulls): read it alone (an
    # operation reading a detail of each campaign needs at least the list's status)
    blank = [
        campaign_id
        for campaign_id, campaign in listed.items()
        if shows_only_its_id(campaign)
        or (operation.detail is None and not operation.readable(campaign))
    ]
    for campaign_id in blank:
        del listed[campaign_id]
    current = Current(campaigns=listed)
    unlisted = sorted(cid for cid in wanted if cid not in listed)
    if unlisted and one_by_one:
        log.info("reading the current settings of %s one by one", count(len(unlisted), "campaign"))
        await _read_each(connection, unlisted, current, operation)
    return current


async def read_details(
    connection: Connection, detail: str, current: Current, campaign_ids: Collection[int]
) -> None:
    """Each campaign's ``detail`` (``GET /campaigns/{id}/<detail>``), merged into its state
    under the key ``detail``; a campaign whose detail cannot be read is unreadable."""
    wanted = sorted(cid for cid in campaign_ids if cid not in current.missing)
    log.info("reading the %s of %s", detail, count(len(wanted), "campaign"))

    async def read(campaign_id: int) -> str | None:
        path = f"/campaigns/{campaign_id}/{detail}"
        answer = await connection.fetch(lambda: connection.sender.read(path), f"reading {path}")
        decision = classify(answer)
        if decision.verdict is Verdict.ABORT:
            return decision.message
        if answer.status == 404:
            current.missing.add(campaign_id)
            current.campaigns.pop(campaign_id, None)
            return None
        value = detail_list(answer) if decision.verdict is Verdict.SUCCEEDED else None
        if value is None:
            reason = decision.message or f"the answer is not a list of {detail}"
            current.unreadable[campaign_id] = f"its {detail} could not be read ({reason})"
            current.campaigns.pop(campaign_id, None)
        else:
            campaign = current.campaigns.get(campaign_id, {"id": campaign_id})
            current.campaigns[campaign_id] = Campaign({**campaign, detail: value}.items())
        return None

    await each(wanted, read, connection.concurrency)


async def read_paged(
    connection: Connection,
    operation: Operation,
    current: Current,
    campaign_ids: Collection[int],
    listing: Listing,
) -> None:
    """Each campaign's pages (``pages.read_pages``) into ``current``, read once a run: those
    ``listing`` kept from an earlier batch are not read again."""
    wanted = [
        c for c in sorted(set(campaign_ids)) if c not in listing.pages and c not in listing.gone
    ]
    if wanted:
        log.info(
            "reading the %s of %s, %d a page",
            operation.detail,
            count(len(wanted), "campaign"),
            operation.paged,
        )

    async def read(campaign_id: int) -> str | None:
        found = await read_pages(connection, operation, campaign_id)
        if found.rejected:
            return found.rejected
        if found.missing:
            listing.gone.add(campaign_id)
        elif found.unreadable:
            current.unreadable[campaign_id] = found.unreadable
        else:
            listing.pages[campaign_id] = Campaign(
                [("id", campaign_id), (str(operation.detail), found.state)]
            )
        return None

    await each(wanted, read, connection.concurrency)
    for campaign_id in campaign_ids:
        if campaign_id in listing.gone:
            current.missing.add(campaign_id)
        elif campaign_id in listing.pages:
            current.campaigns[campaign_id] = listing.pages[campaign_id]


def detail_list(answer: Answer) -> list[Any] | None:
    """The list of a detail read (bare, or wrapped in ``data``)."""
    data = parse_json(answer.body)
    if isinstance(data, dict):
        data = data.get("data")
    return data if isinstance(data, list) else None


async def each(
    campaign_ids: Sequence[int],
    read: Callable[[int], Awaitable[str | None]],
    concurrency: int,
) -> None:
    """``read`` each campaign, ``concurrency`` at a time; the first that returns a reason (the
    key was rejected) stops the others, and is raised as KeyRejected. A wait longer than
    --max-wait or an outage cancels the reads still going (or waiting), and is raised as
    itself (not inside an exception group)."""
    pending = list(reversed(campaign_ids))
    rejected: list[str] = []
    stopped: list[WaitTooLong | Unavailable] = []

    async def worker(group: anyio.abc.TaskGroup) -> None:
        while pending:
            try:
                reason = await read(pending.pop())
            except (WaitTooLong, Unavailable) as stop:
                stopped.append(stop)
                pending.clear()
                group.cancel_scope.cancel()
                return
            if reason is not None:
                rejected.append(reason)
                pending.clear()

    async with anyio.create_task_group() as group:
        for _ in range(max(1, min(concurrency, len(campaign_ids)))):
            group.start_soon(worker, group)
    if stopped:
        raise stopped[0]
    if rejected:
        raise KeyRejected(rejected[0])


async def _read_each(
    connection: Connection, campaign_ids: list[int], current: Current, operation: Operation
) -> None:
    async def read(campaign_id: int) -> str | None:
        answer = await connection.fetch(
            lambda: connection.sender.get_campaign(campaign_id), f"reading campaign {campaign_id}"
        )
        decision = classify(answer)
        if decision.verdict is Verdict.ABORT:
            return decision.message
        if answer.status == 404:
            current.missing.add(campaign_id)
            return None
        campaign = one_campaign(answer) if decision.verdict is Verdict.SUCCEEDED else None
        reason = decision.message or not_the_campaign(campaign, campaign_id)
        if campaign is None or reason:
            current.unreadable[campaign_id] = f"its current settings could not be read ({reason})"
        else:
            current.campaigns[campaign_id] = slim(campaign, operation.reads)
        return None

    await each(campaign_ids, read, connection.concurrency)


def one_campaign(answer: Answer) -> dict[str, Any] | None:
    """The campaign of a ``GET /campaigns/{id}`` answer (bare or wrapped in ``data``)."""
    campaign = parse_json(answer.body)
    if isinstance(campaign, dict) and isinstance(campaign.get("data"), dict):
        campaign = campaign["data"]
    return campaign if isinstance(campaign, dict) else None


def not_the_campaign(campaign: dict[str, Any] | None, campaign_id: int) -> str:
    """Why ``campaign`` is not what ``GET /campaigns/{campaign_id}`` should answer ("" if it
    is): not a campaign, or another campaign (its id, when it shows one, must be this one)."""
    if campaign is None:
        return "the answer is not a campaign"
    shown = campaign.get("id")
    if isinstance(shown, float) and shown.is_integer():
        shown = int(shown)
    if shown is None or str(shown).strip() == str(campaign_id):
        return ""
    return f"the answer is campaign {str(shown)[:40]!r}, not {campaign_id}"
