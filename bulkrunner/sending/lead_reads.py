"""The read stage of a lead operation: each row's lead, found by address in its campaign, with
its status there (and ``--verify``'s read-back of the same).

SmartLead's lead actions take a lead's id, and a row names its lead by address. Two reads find
one, and which costs fewer requests is chosen by count, campaign by campaign:

- ``GET /leads/?email=``: one read an address, which shows the lead in every campaign holding
  it (an address asked of several campaigns of the batch is looked up once);
- a campaign's leads, ``GET /campaigns/{id}/leads``: one read for each 100 leads the campaign
  holds, however many of them the batch names.

A campaign with one row in the batch is looked up by address. For one with more, its first page
is read (it shows how many leads the campaign holds, and may hold the rows' leads already), then
whichever is fewer reads: its other pages, or looking up the addresses the first page did not
show. So a handful of rows of a campaign of 100,000 leads costs a handful of reads, and 500 rows
of a campaign of 300 leads three. A lookup that shows the lead but not its status in a campaign
sends that campaign to paging: it is read page after page, each from where the last ended,
until the rows' leads are all found, a page is empty or the campaign's total is reached (so a
campaign claiming a billion leads costs no more reads than it holds). An address the campaign
does not hold is simply absent from its state (the operation refuses its row).

Every read goes through the account's ``Connection``: the key's budget, the retries,
``--max-wait`` and the outage timeout; they count in the run's reads (its ETA, ``plan``'s
forecast, the summary).
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

from bulkrunner.errors import KeyRejected, Unreachable
from bulkrunner.model import Answer, Row, count
from bulkrunner.operations.answers import one_line
from bulkrunner.operations.base import Operation
from bulkrunner.operations.lead_answers import (
    LEADS,
    PAGE_SIZE,
    UNREAD,
    LeadState,
    Page,
    lookup_path,
    page_path,
    parse_found,
    parse_page,
    shows,
)
from bulkrunner.sending.connection import Connection
from bulkrunner.sending.pages import MOST_PAGES, short_of, too_many
from bulkrunner.sending.reads import Current, each
from bulkrunner.sending.retry import Verdict, classify

log = logging.getLogger("bulkrunner")

PAGED_FROM = 2  # rows of a campaign in a batch from which its first page is read


async def read_leads(connection: Connection, rows: Sequence[Row], operation: Operation) -> Current:
    """The state of each row's campaign as far as its lead goes (``lead_answers``' ``LEADS``
    and ``UNREAD``): a campaign that answered 404 is ``missing``, one whose leads could not be
    read ``unreadable``.

    Raises KeyRejected when an answer says the key is wrong, Unreachable when nothing listens
    at the base URL, WaitTooLong and Unavailable as ``Connection.fetch``."""
    key = operation.key
    assert key is not None, f"{operation.name} names no lead"
    reading = _Reading(connection)
    for row in rows:
        reading.wanted.setdefault(row.campaign_id, set()).add(str(row.payload[key]))
    try:
        await reading.run()
    except KeyRejected:
        if reading.refused:
            raise Unreachable(f"{reading.refused} (is the base URL right?)") from None
        raise
    return reading.state()


@dataclass
class _Reading:
    """The reads of one batch's leads, and what they found."""

    connection: Connection
    wanted: dict[int, set[str]] = field(default_factory=dict)  # campaign -> addresses
    current: Current = field(default_factory=Current)
    found: dict[int, dict[str, LeadState]] = field(default_factory=dict)
    unread: dict[int, dict[str, str]] = field(default_factory=dict)
    totals: dict[int, int | None] = field(default_factory=dict)  # leads a paged campaign holds
    last: dict[int, Page] = field(default_factory=dict)  # the farthest page of a campaign read
    far: dict[int, int] = field(default_factory=dict)  # its offset
    paged: set[int] = field(default_factory=set)  # campaigns read whole, page by page
    shown: dict[int, set[int | None]] = field(default_factory=dict)  # their leads' ids, as read
    refused: str = ""  # the connection was refused: nothing listens at the base URL
    pages: int = 0
    lookups: int = 0

    async def run(self) -> None:
        several = sorted(c for c, addresses in self.wanted.items() if len(addresses) >= PAGED_FROM)
        await self._all([self._paging(c, 0) for c in several])
        work: list[Callable[[], Awaitable[str | None]]] = []
        lookups: dict[str, set[int]] = {}
        for campaign, addresses in sorted(self.wanted.items()):
            if self._gone(campaign):
                continue
            left = addresses - set(self.found.get(campaign, ()))
            total = self.totals.get(campaign)
            more = -(-total // PAGE_SIZE) - 1 if total is not None else None
            if campaign in self.totals and more is not None and more <= len(left):
                self.paged.add(campaign)
                work += [self._paging(campaign, at) for at in range(1, more + 1)]
            else:
                for address in left:
                    lookups.setdefault(address, set()).add(campaign)
        work += [self._looking(address, lookups[address]) for address in sorted(lookups)]
        await self._all(work)
        planned = sorted(self.paged)  # a last page full: its total may be stale, read on
        await self._all([functools.partial(self._rest, c, self.far.get(c, 0)) for c in planned])
        unsure = sorted(c for c in self.unread if c not in self.paged and _unsure(self.unread[c]))
        if unsure:  # lookups showed leads but not their status there: page those campaigns
            await self._whole(unsure)
        self._short()
        self._say()

    def _short(self) -> None:
        """A campaign read page by page whose pages showed fewer leads than it counts (pages
        skipped or overlapping): a row's lead not found there is unread, never absent."""
        for campaign in self.paged:
            total, shown = self.totals.get(campaign), len(self.shown.get(campaign, ()))
            if total is None or shown >= total or self._gone(campaign):
                continue
            unread = self.unread.setdefault(campaign, {})
            for address in self.wanted[campaign] - set(self.found.get(campaign, ())):
                unread.setdefault(address, short_of("leads", shown, total))

    def _paging(self, campaign: int, page: int) -> Callable[[], Awaitable[str | None]]:
        return lambda: self._page(campaign, page * PAGE_SIZE)

    def _looking(self, address: str, campaigns: set[int]) -> Callable[[], Awaitable[str | None]]:
        return lambda: self._lookup(address, campaigns)

    async def _whole(self, campaigns: list[int]) -> None:
        """The pages of ``campaigns`` (the first only where it was not read already) until
        their rows' leads are all found; what the lookups found with its status stays found."""
        for campaign in campaigns:
            self.unread.pop(campaign, None)
            self.paged.add(campaign)
        await self._all([self._paging(c, 0) for c in campaigns if c not in self.totals])
        await self._all([functools.partial(self._rest, campaign) for campaign in campaigns])

    async def _rest(self, campaign: int, offset: int = 0) -> str | None:
        """The pages after ``offset``'s of a campaign, one after another, each from where the
        last one ended, until the rows' leads are all found, or a page is empty, or one short of
        a full page reaches the campaign's total: however many leads a campaign holds or claims
        to, a page is read only while a row's lead may still be on it. A page the same as the
        one before, or whose leads were all shown before (a server ignoring the offset), ends
        the reading, as does the ``MOST_PAGES``-th page: the rows' leads not found are then
        unread, not absent."""
        seen: set[int] = set()
        pages = 0
        before: int | None = None
        while not self._gone(campaign) and (page := self.last.get(campaign)) is not None:
            left = self.wanted[campaign] - set(self.found.get(campaign, ()))
            new = {lead.id for lead in page.leads.values()} - seen
            # the last page: an empty one, or one short of a full page that reaches its total (a
            # full one may not be: a total counted before an upload); ``_short`` says whether
            # the pages showed every lead it counts
            total = self.totals.get(campaign)
            reached = total is not None and page.size < PAGE_SIZE and offset + page.size >= total
            if not left or page.size == 0 or reached:
                return None
            why = ""
            if offset and (page.digest == before or (page.leads and not new)):
                why = "its pages of leads repeat (the server ignores their offset)"
            elif (pages := pages + 1) >= MOST_PAGES:
                why = too_many("leads", offset + page.size)
            if why:
                for address in left:
                    self.unread.setdefault(campaign, {})[address] = why
                return None
            seen |= new
            before = page.digest
            offset += page.size
            stop = await self._page(campaign, offset)
            if stop is not None:
                return stop
        return None

    async def _all(self, work: Sequence[Callable[[], Awaitable[str | None]]]) -> None:
        await each(list(range(len(work))), lambda at: work[at](), self.connection.concurrency)

    def _gone(self, campaign: int) -> bool:
        return campaign in self.current.missing or campaign in self.current.unreadable

    async def _fetch(self, path: str) -> tuple[Answer, str | None]:
        """A read, and why the run must stop (the key), if it must."""
        connection = self.connection
        answer = await connection.fetch(lambda: connection.sender.read(path), f"reading {path}")
        if answer.refused:
            self.refused = answer.transport_error or "connection refused"
            return answer, self.refused
        decision = classify(answer)
        return answer, decision.message if decision.verdict is Verdict.ABORT else None

    async def _page(self, campaign: int, offset: int) -> str | None:
        """One page of the campaign's leads: the wanted ones kept."""
        if self._gone(campaign):
            return None
        self.pages += 1
        answer, stop = await self._fetch(page_path(campaign, offset))
        if stop is not None or self._gone(campaign):
            return stop
        if answer.status == 404:
            self.current.missing.add(campaign)
            return None
        decision = classify(answer)
        page = parse_page(answer.body) if decision.verdict is Verdict.SUCCEEDED else None
        if page is None:
            why = decision.message or "the answer is not a page of leads"
            self.current.unreadable[campaign] = f"its leads could not be read ({why})"
            return None
        if offset == 0:  # a first page short of its total gives fewer than asked: no guide
            short = page.total is not None and page.size < min(page.total, PAGE_SIZE)
            self.totals[campaign] = None if short else page.total
        if offset >= self.far.get(campaign, -1):  # the farthest: the reading goes on from it
            self.far[campaign] = offset
            self.last[campaign] = page
        self.shown.setdefault(campaign, set()).update(lead.id for lead in page.leads.values())
        wanted, found = self.wanted[campaign], self.found.setdefault(campaign, {})
        found.update((address, lead) for address, lead in page.leads.items() if address in wanted)
        return None

    async def _lookup(self, address: str, campaigns: set[int]) -> str | None:
        """One address, found (or not) in each of ``campaigns``."""
        self.lookups += 1
        answer, stop = await self._fetch(lookup_path(address))
        if stop is not None:
            return stop
        decision = classify(answer)
        lead = parse_found(answer.body, address) if decision.verdict is Verdict.SUCCEEDED else None
        why = decision.message or "the answer is not a lead"
        shown = lead.email if lead is not None else None
        if shown is not None and not shows(shown, address):  # a fuzzy match: never acted on
            lead, why = None, f"the lookup answered another lead ({one_line(shown)})"
        elif lead is not None and lead.id is not None and shown is None:  # nor a lead unnamed
            lead, why = None, "the lookup answered a lead without its address"
        for campaign in campaigns:
            if lead is None:
                self.unread.setdefault(campaign, {})[address] = why
            elif lead.id is None:
                continue  # the account has no such lead: not in this campaign
            elif lead.campaigns is None or (
                campaign in lead.campaigns and lead.campaigns[campaign] is None
            ):
                self.unread.setdefault(campaign, {})[address] = _UNSURE
            elif campaign in lead.campaigns:
                status = lead.campaigns[campaign]
                self.found.setdefault(campaign, {})[address] = LeadState(lead.id, status)
        return None

    def state(self) -> Current:
        for campaign in self.wanted:
            if not self._gone(campaign):
                self.current.campaigns[campaign] = {
                    "id": campaign,
                    LEADS: self.found.get(campaign, {}),
                    UNREAD: self.unread.get(campaign, {}),
                }
        return self.current

    def _say(self) -> None:
        rows = sum(len(addresses) for addresses in self.wanted.values())
        log.info(
            "found the leads of %s in %s: %s of leads read (%s), %s looked up (GET /leads/?email=)",
            count(rows, "row"),
            count(len(self.wanted), "campaign"),
            count(self.pages, "page"),
            count(len(self.totals), "campaign"),
            count(self.lookups, "address", "addresses"),
        )


# A lookup that shows the lead but not its status in the campaign: the campaign is paged.
_UNSURE = "the lookup by address did not show its status in this campaign"


def _unsure(unread: dict[str, str]) -> bool:
    return any(why == _UNSURE for why in unread.values())
