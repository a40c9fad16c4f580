"""Finding each row's lead by address (``sending/lead_reads``): a lookup an address, or a
campaign's leads page by page, whichever costs fewer reads, chosen by count; and the answers'
forms (``operations/lead_answers``). On a fake clock, against a sender that answers from an
account held in memory and records every path it is asked."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from bulkrunner.errors import KeyRejected, Unreachable
from bulkrunner.model import Answer, Row
from bulkrunner.operations.lead_answers import (
    LEADS,
    UNREAD,
    Found,
    LeadState,
    lookup_path,
    parse_found,
    parse_page,
)
from bulkrunner.operations.lead_status import LEAD_STATUS
from bulkrunner.sending.lead_reads import read_leads
from tests.fakes import FakeClock, PathReader, connection


class Account(PathReader):
    """Leads by campaign, in order: ``{campaign: [(address, status), ...]}``; it answers a
    page of a campaign's leads and a lookup by address as SmartLead does (``with_campaigns``:
    whether a lookup shows the campaigns holding the lead), and records every path read."""

    def __init__(
        self,
        campaigns: Mapping[int, list[tuple[str, str]]],
        *,
        with_campaigns: bool = True,
        failing: Mapping[str, Answer] | None = None,
        with_total: bool = True,
        page_cap: int = 100,
        ignores_offset: bool = False,
    ) -> None:
        self.campaigns = campaigns
        self.with_campaigns = with_campaigns
        self.with_total = with_total  # whether a page says how many leads its campaign holds
        self.page_cap = page_cap  # the most leads a page holds, whatever the limit asked
        self.ignores_offset = ignores_offset  # every page is the first
        self.failing = dict(failing or {})
        self.ids = {
            email: 100 + n
            for n, email in enumerate(
                dict.fromkeys(e for leads in campaigns.values() for e, _ in leads)
            )
        }
        self.paths: list[str] = []

    async def read(self, path: str) -> Answer:
        await asyncio.sleep(0)
        self.paths.append(path)
        for part, answer in self.failing.items():
            if part in path:
                return answer
        parts = urlsplit(path)
        query = {name: values[0] for name, values in parse_qs(parts.query).items()}
        if parts.path.startswith("/campaigns/"):
            return self._page(int(parts.path.split("/")[2]), query)
        return self._lookup(query["email"])

    def _page(self, campaign: int, query: Mapping[str, str]) -> Answer:
        if campaign not in self.campaigns:
            return Answer(404, '{"error": "Campaign not found"}')
        leads = self.campaigns[campaign]
        offset = 0 if self.ignores_offset else int(query["offset"])
        limit = min(int(query["limit"]), self.page_cap)
        data = [
            {"campaign_lead_map_id": 9, "status": status, "lead": {"id": self.ids[e], "email": e}}
            for e, status in leads[offset : offset + limit]
        ]
        total = {"total_leads": str(len(leads))} if self.with_total else {}
        return Answer(200, json.dumps({**total, "data": data}))

    def _lookup(self, email: str) -> Answer:
        if email not in self.ids:
            return Answer(200, "{}")
        found: dict[str, Any] = {"id": self.ids[email], "email": email}
        if self.with_campaigns:
            found["lead_campaign_data"] = [
                {"campaign_id": c, "status": s}
                for c, leads in self.campaigns.items()
                for e, s in leads
                if e == email
            ]
        return Answer(200, json.dumps(found))

    @property
    def pages(self) -> list[str]:
        return [path for path in self.paths if path.startswith("/campaigns/")]

    @property
    def lookups(self) -> list[str]:
        return [path for path in self.paths if path.startswith("/leads/")]


def many(campaign: int, count: int, status: str = "STARTED") -> list[tuple[str, str]]:
    return [(f"lead{n}.{campaign}@x.example.com", status) for n in range(count)]


def rows(campaign: int, *emails: str, first: int = 1) -> list[Row]:
    return [
        Row(first + n, campaign, {"email": email, "action": "pause"})
        for n, email in enumerate(emails)
    ]


async def found(account: Account, wanted: list[Row], **policy: Any) -> Any:
    reading = connection(account, FakeClock(), **policy)
    current = await read_leads(reading, wanted, LEAD_STATUS)
    return current, reading.stats.reads


async def test_a_campaign_with_one_row_is_looked_up_by_address() -> None:
    account = Account({5: many(5, 1000)})
    current, reads = await found(account, rows(5, "lead700.5@x.example.com"))
    assert (account.pages, reads) == ([], 1)
    assert account.lookups == [lookup_path("lead700.5@x.example.com")]
    assert current.campaigns[5][LEADS] == {"lead700.5@x.example.com": LeadState(800, "STARTED")}


async def test_a_small_campaign_with_many_rows_is_read_in_its_pages() -> None:
    account = Account({5: many(5, 250)})
    wanted = rows(5, *(f"lead{n}.5@x.example.com" for n in range(0, 250, 5)))  # 50 rows
    current, reads = await found(account, wanted)
    assert (len(account.pages), account.lookups, reads) == (3, [], 3)  # not 50 lookups
    assert len(current.campaigns[5][LEADS]) == 50


async def test_a_few_rows_of_a_large_campaign_are_looked_up_after_its_first_page() -> None:
    """Three rows of a campaign of 10,000 leads: its first page says how many it holds, and
    three lookups cost less than 99 more pages."""
    account = Account({5: many(5, 10_000)})
    wanted = rows(
        5, "lead0.5@x.example.com", "lead5000.5@x.example.com", "lead9999.5@x.example.com"
    )
    current, reads = await found(account, wanted)
    assert len(account.pages) == 1  # the first, which holds lead0
    assert sorted(account.lookups) == sorted(
        lookup_path(e) for e in ("lead5000.5@x.example.com", "lead9999.5@x.example.com")
    )
    assert reads == 3
    assert set(current.campaigns[5][LEADS]) == {row.payload["email"] for row in wanted}


async def test_an_address_asked_of_several_campaigns_is_looked_up_once() -> None:
    shared = "both@x.example.com"
    account = Account({5: [(shared, "PAUSED")], 6: [(shared, "STARTED")], 7: []})
    wanted = [*rows(5, shared), *rows(6, shared, first=2), *rows(7, shared, first=3)]
    current, reads = await found(account, wanted)
    assert (account.lookups, reads) == ([lookup_path(shared)], 1)
    assert current.campaigns[5][LEADS] == {shared: LeadState(100, "PAUSED")}
    assert current.campaigns[6][LEADS] == {shared: LeadState(100, "STARTED")}
    assert current.campaigns[7][LEADS] == {}  # not in it: its row is refused


async def test_a_lookup_that_does_not_show_the_campaigns_sends_the_campaign_to_paging() -> None:
    account = Account({5: many(5, 150)}, with_campaigns=False)
    current, _ = await found(account, rows(5, "lead120.5@x.example.com"))
    assert len(account.lookups) == 1
    assert len(account.pages) == 2  # then the campaign, whole
    assert current.campaigns[5][LEADS] == {"lead120.5@x.example.com": LeadState(220, "STARTED")}
    assert current.campaigns[5][UNREAD] == {}


async def test_a_campaign_sent_to_paging_after_its_first_page_reads_each_page_once() -> None:
    """Three rows of a campaign of 1,000 leads whose lookups do not show their campaigns: its
    first page (which holds one of them), two lookups, then its nine other pages; not the
    first page again."""
    account = Account({5: many(5, 1000)}, with_campaigns=False)
    addresses = ("lead0.5@x.example.com", "lead500.5@x.example.com", "lead900.5@x.example.com")
    current, reads = await found(account, rows(5, *addresses))
    assert len(account.lookups) == 2
    assert sorted(account.pages) == sorted(set(account.pages))
    assert (len(account.pages), reads) == (10, 12)
    assert set(current.campaigns[5][LEADS]) == set(addresses)
    assert current.campaigns[5][UNREAD] == {}


@pytest.mark.parametrize(
    ("total", "cap", "leads", "offsets"),
    [
        (False, 100, 250, [0, 100, 200, 250]),
        (False, 40, 80, [0, 40, 80]),
        (True, 40, 100, [0, 40, 80, 100]),  # its total, and pages of fewer than asked
    ],
)
async def test_a_campaign_whose_pages_say_not_how_many_leads_it_holds_is_read_to_an_empty_page(
    total: bool, cap: int, leads: int, offsets: list[int]
) -> None:
    """Lookups that do not show the campaigns, and pages without ``total_leads`` (or a first
    page short of it): page after page, each from where the last ended (a server may give fewer
    than asked), to an empty one while a row's lead is still not found (here, one the campaign
    does not hold)."""
    account = Account(
        {5: many(5, leads), 6: []}, with_campaigns=False, with_total=total, page_cap=cap
    )
    addresses = ("lead3.5@x.example.com", f"lead{leads - 1}.5@x.example.com")
    absent = "nobody@x.example.com"
    current, reads = await found(
        account, [*rows(5, *addresses, absent), *rows(6, "a@x.example.com", first=4)]
    )
    fives = [urlsplit(path) for path in account.pages if path.startswith("/campaigns/5/")]
    assert [int(parse_qs(page.query)["offset"][0]) for page in fives] == offsets
    assert set(current.campaigns[5][LEADS]) == set(addresses)
    assert current.campaigns[5][UNREAD] == {}
    assert current.campaigns[6][LEADS] == current.campaigns[6][UNREAD] == {}
    assert reads == len(account.paths)


class Claiming(Account):
    """Pages that claim ``total`` leads in every campaign, whatever it holds."""

    def __init__(self, campaigns: Mapping[int, list[tuple[str, str]]], total: int) -> None:
        super().__init__(campaigns, with_campaigns=False)
        self.total = total

    def _page(self, campaign: int, query: Mapping[str, str]) -> Answer:
        answer = super()._page(campaign, query)
        return Answer(200, json.dumps({**json.loads(answer.body), "total_leads": self.total}))


@pytest.mark.parametrize(
    ("wanted", "offsets"),
    [
        (["lead7.5@x.example.com"], [0]),  # found on the first page: nothing more is read
        (["lead7.5@x.example.com", "lead120.5@x.example.com"], [0, 100]),
        # the second is another campaign's lead: read to the first empty page
        (["lead7.5@x.example.com", "elsewhere@x.example.com"], [0, 100, 200, 250]),
    ],
)
async def test_a_campaign_sent_to_paging_is_read_only_while_a_rows_lead_may_be_on_its_pages(
    wanted: list[str], offsets: list[int]
) -> None:
    """A campaign of 250 leads that claims a trillion, whose lookups do not show its leads'
    status: its pages are read until the rows' leads are found or a page is empty. Before, every
    page its total called for was planned at once: a trillion leads held ten billion reads in
    memory, and a campaign of a million leads was read whole for a lead on its first page. A
    lead not found is not concluded absent from pages that showed 250 of the trillion counted:
    it is unread."""
    account = Claiming({5: many(5, 250), 6: [("elsewhere@x.example.com", "STARTED")]}, 10**12)
    current, reads = await found(account, rows(5, *wanted))
    fives = [urlsplit(path) for path in account.pages if path.startswith("/campaigns/5/")]
    assert [int(parse_qs(page.query)["offset"][0]) for page in fives] == offsets
    held = [address for address in wanted if address.startswith("lead")]
    assert set(current.campaigns[5][LEADS]) == set(held)
    short = "its leads could not all be read: its pages showed 250 of the 1000000000000 it counts"
    assert {
        address: why.split(" (pages")[0] for address, why in current.campaigns[5][UNREAD].items()
    } == {address: short for address in wanted if not address.startswith("lead")}
    assert reads == len(account.paths)


async def test_pages_that_repeat_without_a_total_end_the_reading_and_leave_the_rest_unread() -> (
    None
):
    """A server that ignores the offset and gives no total: the second page shows no lead the
    first did not, so the reading stops there, and a lead not seen is unread (its row fails with
    the reason), not refused as absent."""
    account = Account(
        {5: many(5, 300)}, with_campaigns=False, with_total=False, ignores_offset=True
    )
    addresses = ("lead3.5@x.example.com", "lead250.5@x.example.com")
    current, _ = await found(account, rows(5, *addresses))
    assert len(account.pages) == 2
    assert current.campaigns[5][LEADS] == {"lead3.5@x.example.com": LeadState(103, "STARTED")}
    assert current.campaigns[5][UNREAD] == {
        "lead250.5@x.example.com": "its pages of leads repeat (the server ignores their offset)"
    }


async def test_a_missing_campaign_and_one_that_cannot_be_read() -> None:
    failing = {"/campaigns/6/": Answer(400, '{"error": "bad page"}')}
    account = Account({5: many(5, 3), 6: many(6, 3)}, failing=failing)
    wanted = [
        *rows(4, "a@x.example.com", "b@x.example.com"),
        *rows(6, "c@x.example.com", "d@x.example.com", first=3),
    ]
    current, _ = await found(account, wanted)
    assert current.missing == {4}
    assert current.unreadable == {6: "its leads could not be read (HTTP 400: bad page)"}
    assert current.campaigns == {}


async def test_a_lookup_that_keeps_failing_leaves_only_its_lead_unread() -> None:
    failing = {"/leads/": Answer(503, "down")}
    account = Account({5: many(5, 3)}, failing=failing)
    current, reads = await found(account, rows(5, "lead1.5@x.example.com"), max_attempts=2)
    assert reads == 2  # retried as every read is
    assert current.campaigns[5][UNREAD] == {"lead1.5@x.example.com": "HTTP 503: down"}
    refusal = LEAD_STATUS.refuse(
        {"email": "lead1.5@x.example.com", "action": "pause"}, current.campaigns[5]
    )
    assert refusal == "the lead with this address could not be read (HTTP 503: down)"


async def test_a_rejected_key_and_a_refused_connection_stop_the_reads() -> None:
    with pytest.raises(KeyRejected):
        await found(
            Account({}, failing={"/": Answer(401, "Invalid API Key")}), rows(5, "a@x.example.com")
        )
    refused = Answer(None, transport_error="cannot connect: connection refused", refused=True)
    with pytest.raises(Unreachable, match="is the base URL right"):
        await found(Account({}, failing={"/": refused}), rows(5, "a@x.example.com"))


# --- the answers' forms ---------------------------------------------------------------------


def test_a_page_is_read_in_the_forms_it_comes_in() -> None:
    body = {
        "total_leads": "2",
        "data": [
            {"status": "paused", "lead": {"id": "7", "email": "A@X.com"}},
            {"status": "STARTED", "id": 8, "email": "b@x.com"},  # flat
            {"status": "STARTED", "lead": {"email": "no-id@x.com"}},  # no id: left out
            "junk",
        ],
    }
    page = parse_page(json.dumps(body))
    assert page is not None
    assert page.total == 2
    assert page.leads == {"a@x.com": LeadState(7, "PAUSED"), "b@x.com": LeadState(8, "STARTED")}
    assert parse_page('{"data": []}') is not None
    assert parse_page("[]") is None
    assert parse_page("not json") is None


@pytest.mark.parametrize(
    ("body", "lead"),
    [
        ("{}", Found(None, {})),
        ("[]", Found(None, {})),
        ('{"data": {}}', Found(None, {})),
        ('{"id": 5, "email": "a@x.com"}', Found(5, None, "a@x.com")),
        (  # a list: the lead of the address asked for
            '[{"id": 4, "email": "b@x.com"}, {"id": 5, "email": " A@X.com "}]',
            Found(5, None, " A@X.com "),
        ),
        ('{"data": {"id": "5", "lead_campaign_data": []}}', Found(5, {})),
        (
            '{"id": 5, "lead_campaign_data": [{"campaign_id": 9, "status": "paused"}, {"x": 1}]}',
            Found(5, {9: "PAUSED"}),
        ),
        ('{"id": 5, "lead_campaign_data": [{"campaign_id": "9"}]}', Found(5, {9: None})),
        ('[{"id": 5, "lead_campaign_data": []}]', Found(5, {})),
        ('{"id": "abc"}', None),
        ("nonsense", None),
    ],
)
def test_a_lead_found_by_address_is_read_in_the_forms_it_comes_in(
    body: str, lead: Found | None
) -> None:
    assert parse_found(body, "a@x.com") == lead


def test_an_address_is_encoded_in_the_lookup() -> None:
    assert lookup_path("a+tag@x.com") == "/leads/?email=a%2Btag@x.com"


class IdlessPage(Account):
    """Pages without ``total_leads``, the one at offset 100 of entries without a lead id."""

    def _page(self, campaign: int, query: Mapping[str, str]) -> Answer:
        answer = super()._page(campaign, query)
        if query["offset"] != "100":
            return answer
        page = json.loads(answer.body)
        for entry in page["data"]:
            del entry["lead"]["id"]
        return Answer(200, json.dumps(page))


async def test_a_page_of_entries_without_ids_is_passed_over_not_taken_for_a_repeat() -> None:
    """Without ids a page shows no lead, and no sign that the server ignores the offset: the
    reading goes on past it and finds the row's lead on the next page."""
    account = IdlessPage({5: many(5, 250)}, with_campaigns=False, with_total=False)
    current, _ = await found(account, rows(5, "lead230.5@x.example.com"))
    assert [p for p in account.pages if "offset=200" in p]
    assert current.campaigns[5][LEADS] == {"lead230.5@x.example.com": LeadState(330, "STARTED")}
    assert current.campaigns[5][UNREAD] == {}


class Endless(Account):
    """Pages that never end: a full page of leads never shown before at every offset, with no
    total (``idless``: entries without a lead id, and every page the first)."""

    def __init__(self, *, idless: bool = False) -> None:
        elsewhere = [("elsewhere@x.example.com", "STARTED")]
        super().__init__({5: [], 6: elsewhere}, with_campaigns=False, with_total=False)
        self.idless = idless

    def _page(self, campaign: int, query: Mapping[str, str]) -> Answer:
        offset = 0 if self.idless else int(query["offset"])
        leads: list[dict[str, object]] = [
            {"email": f"new{n}@x.example.com"} for n in range(offset, offset + 100)
        ]
        if not self.idless:
            for n, lead in enumerate(leads, offset):
                lead["id"] = 10_000 + n
        data = [{"status": "STARTED", "lead": lead} for lead in leads]
        return Answer(200, json.dumps({"data": data}))


@pytest.mark.parametrize(
    ("idless", "pages", "why"),
    [
        (True, 2, "its pages of leads repeat (the server ignores their offset)"),
        (
            False,
            30,
            "its leads go on past 30 pages (3,000 read), the most bulkrunner reads of one campaign",
        ),
    ],
)
async def test_pages_that_never_end_are_read_to_a_repeat_or_to_the_most_pages_and_no_further(
    idless: bool, pages: int, why: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A lead another campaign holds, looked for in one whose pages never end: the same page of
    entries without ids again and again (a server ignoring the offset), or new leads at every
    offset. The reading stops at the repeat, or at ``MOST_PAGES``, and the row's lead is unread
    with the reason. Before, both were read for ever: 20,000 reads of the same page in a trial."""
    monkeypatch.setattr("bulkrunner.sending.pages.MOST_PAGES", 30)
    monkeypatch.setattr("bulkrunner.sending.lead_reads.MOST_PAGES", 30)
    account = Endless(idless=idless)
    current, _ = await found(account, rows(5, "elsewhere@x.example.com"))
    assert len([path for path in account.pages if path.startswith("/campaigns/5/")]) == pages
    assert current.campaigns[5][UNREAD] == {"elsewhere@x.example.com": why}
    assert current.campaigns[5][LEADS] == {}


async def test_a_total_too_large_for_a_float_is_read_as_any_other() -> None:
    """``total_leads`` of 400 digits: it was divided as a float (OverflowError, the run ended
    with an internal error); it is a whole number like any other."""
    account = Claiming({5: many(5, 250)}, total=10**400)
    current, _ = await found(account, rows(5, "lead7.5@x.example.com", "lead120.5@x.example.com"))
    assert set(current.campaigns[5][LEADS]) == {"lead7.5@x.example.com", "lead120.5@x.example.com"}


class Skipping(Account):
    """Pages past the first that are each the one after the page asked for (an order that
    changes between reads): the second hundred leads are never shown, though the total is."""

    def _page(self, campaign: int, query: Mapping[str, str]) -> Answer:
        offset = int(query["offset"])
        return super()._page(campaign, {**query, "offset": str(offset + 100 if offset else 0)})


async def test_pages_that_skip_never_tell_a_lead_is_absent() -> None:
    """300 leads, 200 of them shown: a row's lead among the 100 never shown is unread (its row
    fails with the reason), never taken as absent (lead-status: "no such lead"; a resumed
    run: "applied by the interrupted run")."""
    account = Skipping({5: many(5, 300)}, with_campaigns=False)
    hidden = "lead150.5@x.example.com"  # on no page: the one asked for at 100 shows 200-299
    wanted = rows(5, "lead7.5@x.example.com", "lead250.5@x.example.com", hidden)
    current, _ = await found(account, wanted)
    assert set(current.campaigns[5][LEADS]) == {"lead7.5@x.example.com", "lead250.5@x.example.com"}
    assert current.campaigns[5][UNREAD] == {
        hidden: "its leads could not all be read: its pages showed 200 of the 300 it counts "
        "(pages skipped, or overlapping)"
    }


@pytest.mark.parametrize("held", [150, 200])  # a stale total: round, or not
async def test_a_stale_total_does_not_end_the_reading_while_pages_are_full(held: int) -> None:
    """Pages counting the leads held before an upload added 100: the reading goes on while the
    pages are full, and a lead added is found, not absent (its row failed, and the rollback
    left it: a total of 200 read its two pages and stopped)."""
    account = Claiming({5: many(5, held + 100)}, held)
    added = f"lead{held + 50}.5@x.example.com"
    wanted = rows(5, *(f"lead{n}.5@x.example.com" for n in range(0, held, 10)), added)
    current, _ = await found(account, wanted)
    assert added in current.campaigns[5][LEADS]
    assert current.campaigns[5][UNREAD] == {}


async def test_a_campaigns_pages_skipping_or_with_a_stale_total_are_not_read_whole() -> None:
    """The same of every page of a campaign (a leads run's read back, a rollback's read): a
    read showing fewer leads than the campaign counts is no read of it; a total below what the
    pages show (counted before an upload) does not end the reading while pages are full."""
    from bulkrunner.operations.leads import LEADS as UPLOADS
    from bulkrunner.sending.pages import read_pages

    skipping = connection(Skipping({5: many(5, 300)}), FakeClock())
    paged = await read_pages(skipping, UPLOADS, 5)
    assert (paged.state, paged.unreadable) == (
        None,
        "its leads could not all be read: its pages showed 200 of the 300 it counts (pages "
        "skipped, or overlapping)",
    )
    for held in (150, 200):
        stale = connection(Claiming({5: many(5, 300)}, held), FakeClock())
        paged = await read_pages(stale, UPLOADS, 5)
        assert not paged.unreadable
        assert paged.state is not None
        assert len(paged.state) == 300  # read on past the total it counted, to a short page
