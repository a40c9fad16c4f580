"""``leads``: add leads to campaigns, a hundred (``--leads-per-request``) to a request.

``POST /campaigns/{id}/leads`` with ``{"lead_list": [...], "settings": {...}}``. A row is one
lead: ``campaign_id``, ``email`` and any of the lead fields SmartLead takes (``first_name``,
``last_name``, ``company_name``, ``phone_number``, ``website``, ``location``,
``linkedin_profile``, ``company_url``); every other column (but ``account`` and the columns
``--keep-columns`` carries) is a custom field, sent under its header as written. The
``settings`` booleans come from the run's options (``Wire.lead_settings``).

A campaign's rows go out together, in requests of at most ``Wire.leads_per_request`` leads
(``groups``); what an answer says of each lead is ``lead_uploads``'. The current state of a
campaign is the addresses of its leads (and their ids), read a page of 100 at a time
(``GET /campaigns/{id}/leads?offset=&limit=100``): a lead already in the campaign is
``unchanged`` and not sent. Addresses compare as SmartLead compares them: without surrounding
spaces, in any case. Adding a lead is undone by removing it: the backup is a ledger of the leads
a run adds (``records.lead_ledger``), which the ``lead-removal`` operation rolls back.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from bulkrunner.model import Answer, Change, Row
from bulkrunner.operations.addresses import address_key, is_address
from bulkrunner.operations.answers import whole
from bulkrunner.operations.base import Operation, Request, Said, Undo, Wire
from bulkrunner.operations.cells import quoted
from bulkrunner.operations.fields import UPLOAD_SETTINGS, Field
from bulkrunner.operations.lead_answers import PAGE_SIZE
from bulkrunner.operations.lead_uploads import attribute_leads
from bulkrunner.operations.syntax import EmptyText, lists

EMAIL = "email"
CUSTOM_FIELDS = "custom_fields"
# The optional fields of a lead besides ``email`` and ``custom_fields``, as the API names them.
LEAD_FIELDS = (
    "first_name",
    "last_name",
    "company_name",
    "phone_number",
    "website",
    "location",
    "linkedin_profile",
    "company_url",
)
DETAIL = "leads"  # the per-campaign read, and the key its state is kept under

# The addresses most lists hold, which ``is_address`` takes as they are: checked for a column
# at once (``Field.fast``); any other goes through ``parse_email``.
_PLAIN_ADDRESS = (
    r"[A-Za-z0-9_%+-]{1,20}(?:\.[A-Za-z0-9_%+-]{1,20}){0,2}@"
    r"(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,40}[A-Za-z0-9])?\.){1,4}[A-Za-z]{2,20}"
)
_TEXT = r"(?s)\S.*"  # text that starts with no space: as written (``parse_text``)


def parse_email(cell: Any) -> tuple[str | None, str | None]:
    """An address cell: the address without surrounding spaces, or why it is not one."""
    if isinstance(cell, lists()):
        return None, "a list is not an email address"
    text = str(cell).strip()
    if not is_address(text):
        return None, f"{quoted(text)} is not an email address"
    return text, None


def _number(cell: Any) -> int | float | None:
    """A cell holding a number (not a boolean): as an int when it is whole (a whole number as
    it is: through a float, 2**53 + 1 would be sent as 2**53), else None."""
    if isinstance(cell, bool) or not isinstance(cell, numbers.Real):
        return None
    if isinstance(cell, numbers.Integral):
        return int(cell)
    value = float(cell)
    if not math.isfinite(value):
        return None
    return int(value) if value.is_integer() and abs(value) < 2**63 else value


def parse_text(cell: Any) -> tuple[str | None, str | None]:
    """A lead field: text as written; a number (from Parquet) as its digits."""
    if isinstance(cell, lists()):
        return None, "a list is not a text (write one text, not a list column)"
    if isinstance(cell, EmptyText):
        return "", None
    if isinstance(cell, bool):
        return ("true" if cell else "false"), None
    number = _number(cell)
    return (str(number) if number is not None else str(cell)), None


def parse_custom(cell: Any) -> tuple[str | int | float | None, str | None]:
    """A custom field: text as written, or a number (from Parquet) as a number."""
    number = _number(cell)
    if number is not None:
        return number, None
    return parse_text(cell)


class LeadIndex:
    """A campaign's leads as a run needs them: each address (``address_key``) with its lead's
    id (None when the answer showed none). Compact: a run keeps one per campaign it adds to."""

    __slots__ = ("ids",)

    def __init__(self, ids: dict[str, int | None] | None = None) -> None:
        self.ids = ids if ids is not None else {}

    def __contains__(self, email: object) -> bool:
        return isinstance(email, str) and address_key(email) in self.ids

    def __len__(self) -> int:
        return len(self.ids)

    def lead_id(self, email: str) -> int | None:
        return self.ids.get(address_key(email))

    def add(self, entries: Iterable[Any]) -> int:
        """Take in a page of ``GET /campaigns/{id}/leads`` (its ``data``); how many of its
        entries were leads with an address."""
        taken = 0
        for entry in entries:
            lead = entry.get("lead") if isinstance(entry, Mapping) else None
            if not isinstance(lead, Mapping):
                continue
            email = lead.get(EMAIL)
            if not isinstance(email, str) or not email.strip():
                continue
            self.ids[address_key(email)] = whole(lead.get("id"))
            taken += 1
        return taken


def leads_of(campaign: Mapping[str, Any] | None) -> LeadIndex | None:
    """The campaign's leads as read, None when they were not."""
    found = campaign.get(DETAIL) if campaign is not None else None
    return found if isinstance(found, LeadIndex) else None


def lead_body(payload: Mapping[str, Any]) -> dict[str, Any]:
    """One lead of ``lead_list``: its address and fields, its other columns as custom fields."""
    lead: dict[str, Any] = {EMAIL: payload[EMAIL]}
    custom: dict[str, Any] = {}
    for name, value in payload.items():
        if name in LEAD_FIELDS:
            lead[name] = value
        elif name != EMAIL:
            custom[name] = value
    if custom:
        lead[CUSTOM_FIELDS] = custom
    return lead


_OWN = (
    Field(EMAIL, "custom", parse=parse_email, fast=_PLAIN_ADDRESS),
    *(Field(name, "custom", parse=parse_text, fast=_TEXT) for name in LEAD_FIELDS),
)


class Leads(Operation):
    name = "leads"
    summary = "add leads to campaigns, batched (POST /campaigns/{id}/leads)"
    fields = _OWN
    reads_list = False  # a campaign's leads are its own read, and a missing campaign a 404
    detail = DETAIL
    paged = PAGE_SIZE
    one_row_per_campaign = False
    identity = EMAIL
    custom_fields = True
    ledger = "leads"
    undone_by = "lead-removal"
    resent = False  # a lead the campaign holds, sent again, is only counted as there already

    def field(self, name: str) -> Field | None:
        own = super().field(name)
        return own if own is not None else Field(name, "custom", parse=parse_custom, fast=_TEXT)

    def check(self, payload: Mapping[str, Any], wire: Wire) -> str:
        return "" if EMAIL in payload else f"{EMAIL}: missing (a lead is its address)"

    def requests(self, campaign_id: int, payload: Mapping[str, Any], wire: Wire) -> list[Request]:
        return [_upload(campaign_id, [payload], wire)]

    def groups(self, rows: Sequence[Row], wire: Wire) -> list[Sequence[Row]]:
        """Each campaign's rows, in their order, ``wire.leads_per_request`` at a time."""
        by_campaign: dict[int, list[Row]] = {}
        for row in rows:
            by_campaign.setdefault(row.campaign_id, []).append(row)
        size = max(1, wire.leads_per_request)
        return [
            mine[at : at + size]
            for mine in by_campaign.values()
            for at in range(0, len(mine), size)
        ]

    def group_requests(self, rows: Sequence[Row], wire: Wire) -> list[Request]:
        return [_upload(rows[0].campaign_id, [row.payload for row in rows], wire)]

    def attribute(
        self, rows: Sequence[Row], answer: Answer, wire: Wire
    ) -> Mapping[int, str | Said]:
        numbers = [row.number for row in rows]
        emails = [row.payload[EMAIL] for row in rows]
        return attribute_leads(numbers, emails, answer, wire.read_first)

    def collect(self) -> LeadIndex:
        return LeadIndex()

    def readable(self, campaign: Mapping[str, Any]) -> bool:
        return leads_of(campaign) is not None

    def state(self, campaign: Mapping[str, Any]) -> dict[str, Any]:
        return {}  # a campaign's leads are no value of a column: ``changes`` looks them up

    def changes(
        self, payload: Mapping[str, Any], campaign: Mapping[str, Any] | None
    ) -> dict[str, Change]:
        """Nothing when the campaign holds the lead already, else the lead it gains."""
        found = leads_of(campaign)
        email = payload[EMAIL]
        return {} if found is not None and email in found else {EMAIL: Change(None, email)}

    def irreversible(self, changes: Mapping[str, Change]) -> list[str]:
        return []  # a lead added is removed by a rollback

    def undo(self, changes: Mapping[str, Change]) -> Undo:
        change = changes.get(EMAIL)
        return Undo({EMAIL: change.after} if change is not None else {})

    def mismatch(self, changes: Mapping[str, Change]) -> str:
        return "the campaign does not hold this lead"

    def read_backs(self, rows: Sequence[Row]) -> int:
        """A campaign's pages of leads: at least those the rows fill."""
        by_campaign: dict[int, int] = {}
        for row in rows:
            by_campaign[row.campaign_id] = by_campaign.get(row.campaign_id, 0) + 1
        return sum(-(-n // PAGE_SIZE) for n in by_campaign.values())


def _upload(campaign_id: int, payloads: Sequence[Mapping[str, Any]], wire: Wire) -> Request:
    settings = dict.fromkeys(UPLOAD_SETTINGS, False)
    settings.update((name, value) for name, value in wire.lead_settings if name in settings)
    body = {"lead_list": [lead_body(payload) for payload in payloads], "settings": settings}
    return Request("POST", f"/campaigns/{campaign_id}/{DETAIL}", body)


LEADS = Leads()
