"""The preflight and the read-back: the account's current state, what each row would change.

Before sending, a real run reads the current settings (one ``GET /campaigns/`` call snapshots every
campaign; how they compare is ``bulkrunner.operations.state``), skips rows that would change
nothing, refuses rows whose campaign does not exist or could not be read (so could not be backed up:
an answer showing none of its values is not read), and rows setting a field that has no value now
(no rollback could take it away) unless the run allows it, and afterwards reads changed campaigns
back to verify them.

Every read goes through the same limiter as the POSTs, so it counts in the key's budget, and the
reads before sending are retried like the POSTs (429, 5xx, timeouts; Retry-After honoured) and
bounded like them: by --max-wait, and by --outage-timeout across all the reads of a batch.
Given the run's :class:`RunStats`, every read is counted there as a request too, so that the
summary's request count, elapsed time and ceiling figure are those of what the server saw.
"""

from __future__ import annotations

import logging
import math
import random
import time
from collections.abc import Awaitable, Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import anyio

from bulkrunner.errors import KeyRejected, Unavailable, Unreachable
from bulkrunner.limits.limiter import Clock, Sleep, SlidingWindowLimiter, WaitTooLong
from bulkrunner.model import Answer, Changes, Outcome, Row, RunStats, Status, count
from bulkrunner.operations.answers import parse_json
from bulkrunner.operations.base import Operation
from bulkrunner.operations.settings import SETTINGS
from bulkrunner.operations.state import Campaign, parse_campaigns, slim
from bulkrunner.sending.engine import DEFAULT_429_PAUSE
from bulkrunner.sending.retry import (
    BACKOFF_BASE,
    MAX_BACKOFF,
    Outage,
    Verdict,
    classify,
    outage_reason,
    retry_delay,
)

if TYPE_CHECKING:  # a type only: aiohttp is imported by the commands that send
    from bulkrunner.sending.transport import Sender

log = logging.getLogger("bulkrunner")


@dataclass
class Plan:
    """Which rows to send, which are already as wanted or refused, and what each would change."""

    send: list[Row] = field(default_factory=list)
    unchanged: dict[int, Outcome] = field(default_factory=dict)
    changes: dict[int, Changes] = field(default_factory=dict)  # by row number
    refused: dict[int, Outcome] = field(default_factory=dict)  # failed before sending
    # of the refused, the rows whose campaign does not exist or could not be read
    missing: set[int] = field(default_factory=set)
    # of the rows to send (--allow-irreversible), those setting fields that have no value now
    irreversible: dict[int, list[str]] = field(default_factory=dict)


@dataclass
class Current:
    """What reading the current settings found, by campaign id."""

    campaigns: dict[int, Mapping[str, Any]] = field(default_factory=dict)  # as GET shows them
    missing: set[int] = field(default_factory=set)  # answered 404: the campaign does not exist
    unreadable: dict[int, str] = field(default_factory=dict)  # why it could not be read


@dataclass(slots=True)
class Listing:
    """The account's list of campaigns as read for a run's first batch: the campaigns of the
    run (``wanted``; by default the first batch's) it showed, each until its batch takes it."""

    wanted: Collection[int] | None = None
    campaigns: dict[int, Mapping[str, Any]] | None = None  # None: not read yet


@dataclass(frozen=True, slots=True)
class Reading:
    """How reads are retried: like settings requests, through the same limiter."""

    limiter: SlidingWindowLimiter
    max_attempts: int = 6
    rng: random.Random = field(default_factory=random.Random)
    sleep: Sleep = anyio.sleep
    backoff_base: float = BACKOFF_BASE
    backoff_cap: float = MAX_BACKOFF
    max_wait: float = math.inf  # raise WaitTooLong rather than wait longer (--max-wait)
    stats: RunStats | None = None  # where each read is counted, with its time
    clock: Clock = time.monotonic  # the time of each answer, for ``stats`` and ``outage``
    outage: Outage | None = None  # --outage-timeout over every read that shares it


async def fetch(call: Callable[[], Awaitable[Answer]], reading: Reading, what: str) -> Answer:
    """``call()`` through the limiter, retried on 429, 5xx and timeouts with backoff (never
    sooner than Retry-After) up to ``reading.max_attempts`` tries; returns the last answer.

    Raises WaitTooLong when the server asks for a longer wait than ``reading.max_wait``, and
    Unavailable when ``reading.outage`` is reached (counting the wait before the next try)."""
    limiter = reading.limiter
    attempt = 0
    while True:
        grant = await limiter.acquire(reading.max_wait)
        answer = await call()
        attempt += 1
        if reading.stats is not None:
            reading.stats.read(grant.at, reading.clock(), answer)
        limiter.observe(
            answer.limit, answer.remaining, answer.reset, grant, max_pause=reading.max_wait
        )
        decision = classify(answer)
        if reading.outage is not None:
            reading.outage.answered(decision.verdict, reading.clock())
        if decision.verdict is not Verdict.RETRY or attempt >= reading.max_attempts:
            return answer
        if answer.refused:
            return answer  # a wrong address, not a passing fault: no use waiting to try again
        if answer.retry_after is not None and answer.retry_after > reading.max_wait:
            raise WaitTooLong(answer.retry_after, "Retry-After")
        if answer.status == 429:
            limiter.pause(answer.retry_after or DEFAULT_429_PAUSE)
            limiter.throttled()
        if reading.stats is not None:
            reading.stats.retries += 1
        delay = retry_delay(
            attempt, answer.retry_after, reading.rng, reading.backoff_base, reading.backoff_cap
        )
        silent = reading.outage.reached(reading.clock(), delay) if reading.outage else None
        if silent is not None:
            raise Unavailable(outage_reason(silent, delay, decision.message))
        log.info(
            "%s: retry in %.1fs (attempt %d of %d) after %s",
            what,
            delay,
            attempt + 1,
            reading.max_attempts,
            decision.message,
        )
        await reading.sleep(delay)


async def read_current(
    sender: Sender,
    reading: Reading,
    campaign_ids: Collection[int],
    *,
    one_by_one: bool = True,
    concurrency: int = 4,
    operation: Operation = SETTINGS,
    listing: Listing | None = None,
) -> Current:
    """The current settings of ``campaign_ids``: one ``GET /campaigns/`` for all of them, then,
    with ``one_by_one``, ``GET /campaigns/{id}`` for each the list did not show (or all, if the
    list call failed). Every read is retried like a settings request.

    The batches of a streamed run share one ``listing``: the list is read for the first batch
    only, and kept for the later ones (the campaigns of the run it shows, each given to the
    batch that needs it and let go).

    An operation whose state has a part the list does not show (its ``detail``, such as a
    campaign's email accounts) reads it for each campaign, after the list.

    Raises KeyRejected when an answer says the key is wrong, Unreachable when the first read
    is refused a connection (nothing listens there: nothing is sent either).
    """
    current = await _read_list(
        sender, reading, campaign_ids, one_by_one, concurrency, operation, listing or Listing()
    )
    if operation.detail is not None:
        await _read_details(sender, reading, operation.detail, current, campaign_ids, concurrency)
    blank = [c for c, campaign in current.campaigns.items() if not operation.readable(campaign)]
    for campaign_id in blank:
        del current.campaigns[campaign_id]
        current.unreadable[campaign_id] = (
            f"its current settings could not be read ({_empty(operation)})"
        )
    return current


def _empty(operation: Operation) -> str:
    """Why an answer that shows none of a campaign's state (``Operation.readable``) is not read."""
    return f"the answer shows no value of any field a {operation.name} row sets"


async def _read_list(
    sender: Sender,
    reading: Reading,
    campaign_ids: Collection[int],
    one_by_one: bool,
    concurrency: int,
    operation: Operation,
    listing: Listing,
) -> Current:
    wanted = set(campaign_ids)
    if listing.campaigns is None:
        answer = await fetch(sender.list_campaigns, reading, "reading the list of campaigns")
        if answer.refused:
            raise Unreachable(f"{answer.transport_error} (is the base URL right?)")
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
    if operation.detail is None:  # else its state is complete only once its detail is read
        # a list showing a campaign without its values (only its id, or nulls): read it alone
        blank = [c for c, campaign in listed.items() if not operation.readable(campaign)]
        for campaign_id in blank:
            del listed[campaign_id]
    current = Current(campaigns=listed)
    unlisted = sorted(cid for cid in wanted if cid not in listed)
    if unlisted and one_by_one:
        log.info("reading the current settings of %s one by one", count(len(unlisted), "campaign"))
        await _read_each(sender, reading, unlisted, current, concurrency, operation)
    return current


async def _read_details(
    sender: Sender,
    reading: Reading,
    detail: str,
    current: Current,
    campaign_ids: Collection[int],
    concurrency: int,
) -> None:
    """Each campaign's ``detail`` (``GET /campaigns/{id}/<detail>``), merged into its state
    under the key ``detail``; a campaign whose detail cannot be read is unreadable."""
    wanted = sorted(cid for cid in campaign_ids if cid not in current.missing)
    log.info("reading the %s of %s", detail, count(len(wanted), "campaign"))

    async def read(campaign_id: int) -> str | None:
        path = f"/campaigns/{campaign_id}/{detail}"
        answer = await fetch(lambda: sender.read(path), reading, f"reading {path}")
        decision = classify(answer)
        if decision.verdict is Verdict.ABORT:
            return decision.message
        if answer.status == 404:
            current.missing.add(campaign_id)
            current.campaigns.pop(campaign_id, None)
            return None
        value = _detail(answer) if decision.verdict is Verdict.SUCCEEDED else None
        if value is None:
            reason = decision.message or f"the answer is not a list of {detail}"
            current.unreadable[campaign_id] = f"its {detail} could not be read ({reason})"
            current.campaigns.pop(campaign_id, None)
        else:
            campaign = current.campaigns.get(campaign_id, {"id": campaign_id})
            current.campaigns[campaign_id] = Campaign({**campaign, detail: value}.items())
        return None

    await _each(wanted, read, concurrency)


read_details = _read_details  # for export, which reads the details of every listed campaign


def _detail(answer: Answer) -> list[Any] | None:
    """The list of a detail read (bare, or wrapped in ``data``)."""
    data = parse_json(answer.body)
    if isinstance(data, dict):
        data = data.get("data")
    return data if isinstance(data, list) else None


async def _each(
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
    sender: Sender,
    reading: Reading,
    campaign_ids: list[int],
    current: Current,
    concurrency: int,
    operation: Operation,
) -> None:
    async def read(campaign_id: int) -> str | None:
        answer = await fetch(
            lambda: sender.get_campaign(campaign_id),
            reading,
            f"reading campaign {campaign_id}",
        )
        decision = classify(answer)
        if decision.verdict is Verdict.ABORT:
            return decision.message
        if answer.status == 404:
            current.missing.add(campaign_id)
            return None
        campaign = _campaign(answer) if decision.verdict is Verdict.SUCCEEDED else None
        reason = decision.message or _not_the_campaign(campaign, campaign_id)
        if campaign is None or reason:
            current.unreadable[campaign_id] = f"its current settings could not be read ({reason})"
        else:
            current.campaigns[campaign_id] = slim(campaign, operation.reads)
        return None

    await _each(campaign_ids, read, concurrency)


def _campaign(answer: Answer) -> dict[str, Any] | None:
    """The campaign of a ``GET /campaigns/{id}`` answer (bare or wrapped in ``data``)."""
    campaign = parse_json(answer.body)
    if isinstance(campaign, dict) and isinstance(campaign.get("data"), dict):
        campaign = campaign["data"]
    return campaign if isinstance(campaign, dict) else None


def plan(
    rows: Sequence[Row],
    current: Current | None,
    skip: bool,
    require_backup: bool = False,
    operation: Operation = SETTINGS,
    allow_irreversible: bool = False,
) -> Plan:
    """Split ``rows`` into those to send, those that would change nothing and those that must
    not be sent: their campaign does not exist, or (with ``require_backup``) its current values
    could not be read, so the backup could not hold them, or the row sets a field that has no
    value now, which a rollback could not undo (unless ``allow_irreversible``: then it is sent,
    and listed in ``Plan.irreversible``)."""
    result = Plan()
    for row in rows:
        campaign_id = row.campaign_id
        campaign = current.campaigns.get(campaign_id) if current is not None else None
        if current is not None and campaign_id in current.missing:
            result.refused[row.number] = Outcome(
                Status.FAILED, http_status=404, error=f"campaign {campaign_id} not found (404)"
            )
            result.missing.add(row.number)
            continue
        if current is not None and campaign is None and require_backup:
            reason = current.unreadable.get(campaign_id, "its current settings could not be read")
            result.refused[row.number] = Outcome(
                Status.FAILED,
                error=f"campaign {campaign_id}: {reason}; not sent, as it could not be backed up "
                "(--no-backup sends it anyway)",
            )
            result.missing.add(row.number)
            continue
        refusal = operation.refuse(row.payload, campaign)
        if refusal:
            result.refused[row.number] = Outcome(
                Status.FAILED, error=f"campaign {campaign_id}: {refusal}; not sent"
            )
            continue
        found = operation.changes(row.payload, campaign)
        lost = operation.irreversible(found) if require_backup and campaign is not None else []
        if lost and not allow_irreversible:
            result.refused[row.number] = Outcome(
                Status.FAILED,
                error=f"campaign {campaign_id}: {_irreversible(lost)}; not sent "
                "(--allow-irreversible sends it)",
            )
            continue
        if lost:
            result.irreversible[row.number] = lost
        result.changes[row.number] = Changes(found)  # compact: one is held per row sent
        if skip and campaign is not None and not found:
            result.unchanged[row.number] = Outcome(Status.UNCHANGED)
        else:
            result.send.append(row)
    return result


def _irreversible(names: Sequence[str]) -> str:
    """Why setting ``names`` (fields with no value now) cannot be undone."""
    which = f"{', '.join(names)} {'has' if len(names) == 1 else 'have'}"
    return (
        f"{which} no value now (null or not shown), and no API call takes a value away: "
        f"a rollback could not undo setting {'it' if len(names) == 1 else 'them'}"
    )


def _not_the_campaign(campaign: dict[str, Any] | None, campaign_id: int) -> str:
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


async def verify(
    sender: Sender,
    limiter: SlidingWindowLimiter,
    rows: Sequence[Row],
    concurrency: int,
    stats: RunStats | None = None,
    clock: Clock = time.monotonic,
    operation: Operation = SETTINGS,
    max_wait: float = math.inf,
) -> dict[int, str]:
    """Read each row's campaign back; returns, per row, how it differs or why it could not be
    read ("" when it matches). Each read is counted in ``stats``, answered at ``clock()``. A
    slot the server's announced limit puts more than ``max_wait`` off leaves the rows not yet
    read unverified, with the reason."""
    found: dict[int, str] = {}
    pending = list(rows)

    async def worker() -> None:
        while pending:
            row = pending.pop()
            campaign: dict[str, Any] | None = {"id": row.campaign_id}
            parts = [None] if operation.reads_list else []
            for detail in [*parts, *([operation.detail] if operation.detail else [])]:
                path = f"/campaigns/{row.campaign_id}" + (f"/{detail}" if detail else "")
                try:
                    grant = await limiter.acquire(max_wait)
                except WaitTooLong as wait:
                    too_long = (
                        f"not verified: the server asked to wait {wait.seconds:.0f}s "
                        f"({wait.asked_by}), more than --max-wait {max_wait:g}"
                    )
                    for each in (row, *pending):
                        found[each.number] = too_long
                    pending.clear()
                    return
                answer = await (
                    sender.read(path) if detail else sender.get_campaign(row.campaign_id)
                )
                if stats is not None:
                    stats.read(grant.at, clock(), answer)
                decision = classify(answer)
                if decision.verdict is not Verdict.SUCCEEDED:
                    found[row.number] = f"not verified: {decision.message}"
                    campaign = None
                    break
                value: Any = _campaign(answer) if detail is None else _detail(answer)
                if value is None or campaign is None:
                    found[row.number] = "not verified: the campaign could not be read"
                    campaign = None
                    break
                if detail is None and (other := _not_the_campaign(value, row.campaign_id)):
                    found[row.number] = f"not verified: {other}"
                    campaign = None
                    break
                campaign = value if detail is None else {**campaign, detail: value}
            if campaign is None:
                continue
            if not operation.readable(campaign):
                found[row.number] = f"not verified: {_empty(operation)}"
                continue
            differ = operation.changes(row.payload, campaign)
            found[row.number] = "; ".join(
                f"{name}: sent {change.after!r}, server has {change.before!r}"
                for name, change in differ.items()
            )

    async with anyio.create_task_group() as group:
        for _ in range(max(1, min(concurrency, len(rows)))):
            group.start_soon(worker)
    return found
