"""A campaign's detail read a page at a time: ``GET /campaigns/{id}/<detail>?offset=&limit=``.

An operation whose state is a campaign's list of leads (``Operation.paged``) reads it so: pages
of ``paged`` entries (100, the most SmartLead gives), one after the other, until a page comes
back short, or the answer's ``total_leads`` are read. A full page that adds nothing new (a
server that ignores ``offset``), or pages going on past ``MOST_PAGES`` (pages that never end),
make the campaign unreadable, with the reason: never taken for the whole of it, nor read for
ever. Each page is taken in by the operation's state as it comes
(``Operation.collect``), so that only the compact state is kept, not the pages. Every read goes
through the account's connection: counted in its budget, retried as any read.

A run reads each campaign once (``reads.Listing`` keeps the state across its batches: the later
batches' rows are other leads of it, which the state from before the run answers for); the
read-back after sending reads it again.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from functools import partial
from typing import Any

from bulkrunner.operations.answers import parse_json, whole
from bulkrunner.operations.base import Collected, Operation
from bulkrunner.sending.connection import Connection
from bulkrunner.sending.retry import Verdict, classify

log = logging.getLogger("bulkrunner")
_LARGE = 10  # pages: a campaign this long is said as its reading begins
# The most pages of one campaign a command reads: a million leads at SmartLead's 100 a page, half
# an hour of reads at the published rate. A server whose pages go on past it (new entries page
# after page, whatever total it claims) would be read without end.
MOST_PAGES = 10_000


@dataclass(slots=True)
class Paged:
    """What reading one campaign's pages found: its ``state``, or that it is ``missing`` (404),
    or why it could not be read (``unreadable``), or why the key was ``rejected``."""

    state: Any = None
    missing: bool = False
    unreadable: str = ""
    rejected: str = ""
    reads: int = 0


def _entries(answer_body: str) -> tuple[list[Any] | None, int | None]:
    """A page's entries (``data``, or a bare list) and the total the answer announces."""
    data = parse_json(answer_body)
    if isinstance(data, list):
        return data, None
    if not isinstance(data, dict) or not isinstance(data.get("data"), list):
        return None, None
    return data["data"], whole(data.get("total_leads", data.get("total")))


async def read_pages(
    connection: Connection,
    operation: Operation,
    campaign_id: int,
    collected: Collected | None = None,
) -> Paged:
    """Every page of ``campaign_id``'s detail, taken in by ``collected`` (by default, a new
    ``operation.collect()``). Raises WaitTooLong and Unavailable as ``Connection.fetch``."""
    assert operation.detail is not None
    assert operation.paged is not None
    path, size = f"/campaigns/{campaign_id}/{operation.detail}", operation.paged
    state = collected if collected is not None else operation.collect()
    offset, found = 0, Paged()
    while True:
        page = f"{path}?offset={offset}&limit={size}"
        answer = await connection.fetch(partial(connection.sender.read, page), page)
        found.reads += 1
        decision = classify(answer)
        if decision.verdict is Verdict.ABORT:
            found.rejected = decision.message
            return found
        if answer.status == 404:
            found.missing = True
            return found
        succeeded = decision.verdict is Verdict.SUCCEEDED
        entries, total = _entries(answer.body) if succeeded else (None, None)
        if entries is None:
            reason = decision.message or f"the answer is not a page of {operation.detail}"
            found.unreadable = f"its {operation.detail} could not be read ({reason})"
            return found
        if not offset and total is not None and total > _LARGE * size:
            log.info(
                "campaign %d holds %d %s: reading them takes %d reads",
                campaign_id,
                total,
                operation.detail,
                -(-total // size),
            )
        before = len(state)
        state.add(entries)
        offset += len(entries)
        # the last page is a short one: a total may be stale (counted before an upload)
        if len(entries) < size:
            if total is not None and len(state) < total:  # absent is never concluded so
                found.unreadable = short_of(operation.detail, len(state), total)
                return found
            found.state = state
            return found
        if len(state) == before:
            found.unreadable = (
                f"its {operation.detail} could not all be read: a page of them repeats the one "
                "before (the server ignores their offset), or holds none this version reads"
            )
            return found
        if found.reads >= MOST_PAGES:
            found.unreadable = too_many(operation.detail, offset)
            return found


def short_of(detail: str, shown: int, total: int) -> str:
    """Why a campaign whose pages showed fewer of its ``detail`` than it counts is not read."""
    return (
        f"its {detail} could not all be read: its pages showed {shown} of the {total} it counts "
        "(pages skipped, or overlapping)"
    )


def too_many(detail: str, read: int) -> str:
    """Why a campaign whose pages went on past ``MOST_PAGES`` is not read whole."""
    return (
        f"its {detail} go on past {MOST_PAGES:,} pages ({read:,} read), the most bulkrunner "
        "reads of one campaign"
    )
