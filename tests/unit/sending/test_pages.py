"""A campaign's detail read a page at a time (``sending/pages``): to a short page, its total,
or a page that adds nothing, and never past ``MOST_PAGES``. On a fake clock, against a sender
that answers pages of leads without end."""

from __future__ import annotations

import asyncio
import json

import pytest

from bulkrunner.model import Answer
from bulkrunner.operations.leads import LEADS
from bulkrunner.sending.pages import read_pages
from tests.fakes import FakeClock, PathReader, connection


class Pages(PathReader):
    """A campaign's leads, 100 a page: ``held`` of them, or new ones at every offset for ever
    (``held=None``), each page claiming ``total``."""

    def __init__(self, held: int | None, total: int | None = None) -> None:
        self.held = held
        self.total = total
        self.paths: list[str] = []

    async def read(self, path: str) -> Answer:
        await asyncio.sleep(0)
        self.paths.append(path)
        offset = int(path.split("offset=")[1].split("&")[0])
        end = offset + 100 if self.held is None else min(offset + 100, self.held)
        data = [
            {"status": "STARTED", "lead": {"id": n, "email": f"lead{n}@x.example.com"}}
            for n in range(offset, end)
        ]
        claimed = {} if self.total is None else {"total_leads": self.total}
        return Answer(200, json.dumps({**claimed, "data": data}))


async def test_a_campaign_is_read_to_its_short_page() -> None:
    sender = Pages(held=250)
    paged = await read_pages(connection(sender, FakeClock()), LEADS, 5)
    assert (paged.reads, len(paged.state), paged.unreadable) == (3, 250, "")


@pytest.mark.parametrize("total", [None, 10**12])
async def test_pages_that_never_end_are_read_to_the_most_pages_and_the_campaign_is_unreadable(
    total: int | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """New leads at every offset, with no total or a total of a trillion: read up to
    ``MOST_PAGES``, then the campaign is unreadable with the reason (its rows fail saying so),
    not read for ever holding every lead in memory (a trial's export grew to 1 GB in a minute)."""
    monkeypatch.setattr("bulkrunner.sending.pages.MOST_PAGES", 40)
    sender = Pages(held=None, total=total)
    paged = await read_pages(connection(sender, FakeClock()), LEADS, 5)
    assert len(sender.paths) == paged.reads == 40
    assert paged.unreadable == (
        "its leads go on past 40 pages (4,000 read), the most bulkrunner reads of one campaign"
    )


class IgnoringOffset(Pages):
    """A campaign of ``held`` leads whose every page is its first."""

    async def read(self, path: str) -> Answer:
        return await super().read(path.replace(path.split("offset=")[1].split("&")[0], "0", 1))


async def test_pages_that_repeat_make_the_campaign_unreadable_not_read_as_its_first_page() -> None:
    """A server that ignores the offset: the second page repeats the first. The campaign was
    taken as holding the first page's 100 leads, the rest silently missing from an export (and
    from what a run knew the campaign held); it is unreadable, saying why."""
    sender = IgnoringOffset(held=250)
    paged = await read_pages(connection(sender, FakeClock()), LEADS, 5)
    assert (paged.reads, paged.state) == (2, None)
    assert paged.unreadable == (
        "its leads could not all be read: a page of them repeats the one before (the server "
        "ignores their offset), or holds none this version reads"
    )
