"""``bulkrunner export --operation leads``: campaigns' leads as an input file of ``leads``.

Which campaigns: those of ``--campaign-id`` (no list read), else the account's list (of
``--client-id``, of ``--status``), as every export chooses them. Each one's leads are read a
page of 100 at a time (``sending.pages``), through the account's connection, and written a row
per lead: ``campaign_id``, ``email``, the lead fields any lead has a value for, and each custom
field a lead has, a column under its name. Run again unedited, every row is ``unchanged``; a
file of one campaign's leads run against another campaign copies them there.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import pandas as pd

from bulkrunner.config.redaction import holds_secret, redact
from bulkrunner.model import count
from bulkrunner.operations.base import Operation
from bulkrunner.operations.fields import ACCOUNT, CAMPAIGN_ID
from bulkrunner.operations.leads import CUSTOM_FIELDS, DETAIL, EMAIL, LEAD_FIELDS, LeadIndex
from bulkrunner.sending.connection import Connection
from bulkrunner.sending.pages import read_pages
from bulkrunner.sending.reads import Current, each

log = logging.getLogger("bulkrunner")


class LeadRows:
    """A campaign's leads as input rows, taken in a page at a time (``Collected``)."""

    def __init__(self) -> None:
        self.index = LeadIndex()
        self.rows: list[dict[str, Any]] = []

    def __len__(self) -> int:
        return len(self.index)

    def add(self, entries: Iterable[Any]) -> int:
        taken = 0
        for entry in entries:
            if not self.index.add([entry]):
                continue  # not a lead with an address
            lead = entry["lead"]
            row = {EMAIL: str(lead[EMAIL]).strip()}
            row.update((name, lead[name]) for name in LEAD_FIELDS if lead.get(name) is not None)
            custom = lead.get(CUSTOM_FIELDS)
            if isinstance(custom, Mapping):
                row.update((str(k), v) for k, v in custom.items() if v is not None)
            held = next((name for name, value in row.items() if holds_secret(value)), None)
            if held is not None:  # written REDACTED, a run of the file would put that in its place
                log.warning(
                    "lead %s is not exported: its %s holds the API key (read as REDACTED), "
                    "which no file holds",
                    redact(row[EMAIL]),
                    held,
                )
                continue
            self.rows.append(row)
            taken += 1
        return taken


async def read_leads(
    connection: Connection, operation: Operation, campaign_ids: Sequence[int]
) -> tuple[dict[int, LeadRows], Current]:
    """Every lead of ``campaign_ids``, by campaign; and the campaigns as ``Current`` has them
    (their leads as a run reads them, to check the file against; the missing, the unreadable).
    Raises KeyRejected, WaitTooLong and Unavailable as ``reads.each``."""
    found: dict[int, LeadRows] = {}
    current = Current()
    log.info("reading the leads of %s, 100 a page", count(len(campaign_ids), "campaign"))

    async def read(campaign_id: int) -> str | None:
        rows = LeadRows()
        paged = await read_pages(connection, operation, campaign_id, rows)
        if paged.rejected:
            return paged.rejected
        if paged.missing:
            current.missing.add(campaign_id)
        elif paged.unreadable:
            current.unreadable[campaign_id] = paged.unreadable
        else:
            found[campaign_id] = rows
            current.campaigns[campaign_id] = {"id": campaign_id, DETAIL: rows.index}
        return None

    await each(sorted(campaign_ids), read, connection.concurrency)
    return found, current


def lead_frame(found: Mapping[int, LeadRows]) -> pd.DataFrame:
    """A row per lead, by campaign: ``campaign_id``, ``email``, the lead fields used, then each
    custom field used (a custom field named as a column a run reads is left out, and said)."""
    rows = [
        {CAMPAIGN_ID: campaign_id, **row}
        for campaign_id in sorted(found)
        for row in found[campaign_id].rows
    ]
    own = [name for name in LEAD_FIELDS if any(name in row for row in rows)]
    custom = list(dict.fromkeys(name for row in rows for name in row))
    clash = [name for name in custom if name in (ACCOUNT,)]
    if clash:
        log.warning("custom fields not exported (a run reads such a column as its own): %s", clash)
    custom = [name for name in custom if name not in (CAMPAIGN_ID, EMAIL, *LEAD_FIELDS, *clash)]
    columns = [CAMPAIGN_ID, EMAIL, *own, *custom]
    frame = pd.DataFrame({name: _cells([row.get(name) for row in rows]) for name in columns})
    frame[CAMPAIGN_ID] = pd.Series([row[CAMPAIGN_ID] for row in rows], dtype=object)
    return frame


def _cells(values: list[Any]) -> pd.Series[Any]:
    return pd.Series(values, dtype=object)
