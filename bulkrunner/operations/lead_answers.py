"""How SmartLead shows a lead in a campaign, in the two reads that find one by address.

- A page of a campaign's leads, ``GET /campaigns/{id}/leads?offset=&limit=`` (at most
  ``PAGE_SIZE`` a page): ``{"total_leads": "42", "offset", "limit", "data": [{
  "campaign_lead_map_id", "status", "lead": {"id", "email", ...}}]}`` (``total_leads`` a string
  or a number).
- A lead found by address, ``GET /leads/?email=``: the lead (its ``id``, ``email``...) with
  ``lead_campaign_data``, each campaign holding it (``campaign_id``, ``status``), or ``{}``
  when the account has no such lead (bare, or wrapped in ``data``).

Plain functions of an answer's body: the reads themselves are ``sending/lead_reads``', which
make of them a campaign's state: ``{"id", LEADS: {address: LeadState}, UNREAD: {address: why}}``.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from bulkrunner.operations.addresses import address_key
from bulkrunner.operations.answers import parse_json, whole

PAGE_SIZE = 100  # the most leads a page of a campaign's leads holds
_UNDIGESTED = itertools.count(-1, -1)
# A campaign's state, as the reads of a lead operation make it: its rows' leads, by address
# (an address it does not hold is not there), and the addresses whose lead could not be read.
LEADS, UNREAD = "leads", "unread"


@dataclass(frozen=True, slots=True)
class LeadState:
    """A lead as one campaign holds it: its id (the account's, the same in every campaign) and
    its status there (``STARTED``, ``PAUSED``, ``UNSUBSCRIBED``..., upper case; None when the
    answer shows none)."""

    id: int
    status: str | None


@dataclass(frozen=True, slots=True)
class Page:
    """A page of a campaign's leads: how many the campaign holds (None when the answer does not
    say), each lead of the page by address (``address_key``), how many entries it holds, and
    a digest of them (a page the same as the one before: a server ignoring the offset)."""

    total: int | None
    leads: dict[str, LeadState]
    size: int
    digest: int


@dataclass(frozen=True, slots=True)
class Found:
    """A lead found by address: its id (None: the account has no such lead) and its status in
    each campaign holding it (None: the answer does not say which campaigns hold it)."""

    id: int | None
    campaigns: dict[int, str | None] | None
    email: str | None = None  # the address it shows, if any


def page_path(campaign_id: int, offset: int) -> str:
    return f"/campaigns/{campaign_id}/leads?offset={offset}&limit={PAGE_SIZE}"


def lookup_path(address: str) -> str:
    """``GET /leads/?email=``, the address encoded (``+`` is a letter of many addresses)."""
    return f"/leads/?email={quote(address, safe='@')}"


def parse_page(body: str) -> Page | None:
    """The leads of a page answer; None when it is not one."""
    data = parse_json(body)
    if not isinstance(data, dict) or not isinstance(data.get("data"), list):
        return None
    leads: dict[str, LeadState] = {}
    for entry in data["data"]:
        if not isinstance(entry, dict):
            continue
        nested = entry.get("lead")
        lead: dict[str, Any] = nested if isinstance(nested, dict) else entry
        email, number = lead.get("email"), whole(lead.get("id", lead.get("lead_id")))
        if isinstance(email, str) and number is not None:
            leads[address_key(email)] = LeadState(number, status(entry.get("status")))
    return Page(whole(data.get("total_leads")), leads, len(data["data"]), _digest(data["data"]))


def _digest(entries: list[Any]) -> int:
    try:
        return hash(json.dumps(entries, sort_keys=True))
    except RecursionError:  # nested as deep as the parser goes: repeats no other page
        return next(_UNDIGESTED)


def parse_found(body: str, address: str = "") -> Found | None:
    """The lead of a find-by-address answer (``Found(None, {})``: none); None when the answer
    is not one. Of a list of leads, the one showing ``address`` (else the first)."""
    data = parse_json(body)
    if isinstance(data, dict) and isinstance(data.get("data"), dict | list):
        data = data["data"]
    if isinstance(data, list):  # a list of the leads found: one at most
        mine = [e for e in data if isinstance(e, dict) and shows(e.get("email"), address)]
        data = mine[0] if mine else data[0] if data else {}
    if not isinstance(data, dict):
        return None
    email = data.get("email") if isinstance(data.get("email"), str) else None
    number = whole(data.get("id", data.get("lead_id")))
    if number is None:
        return Found(None, {}, email) if not data or "id" not in data else None
    held = data.get("lead_campaign_data")
    if not isinstance(held, list):
        return Found(number, None, email)
    campaigns: dict[int, str | None] = {}
    for entry in held:
        campaign = whole(entry.get("campaign_id")) if isinstance(entry, Mapping) else None
        if campaign is not None:
            campaigns[campaign] = status(entry.get("status", entry.get("lead_status")))
    return Found(number, campaigns, email)


def shows(email: Any, address: str) -> bool:
    """Whether an answer's ``email`` is ``address``, as addresses compare."""
    return isinstance(email, str) and address_key(email) == address_key(address)


def status(value: Any) -> str | None:
    return value.strip().upper() if isinstance(value, str) and value.strip() else None
