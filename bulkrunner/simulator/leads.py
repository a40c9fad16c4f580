"""The simulated account's leads and how they are stored.

A lead is one record for the whole account (one ``id``), found by its address; each campaign
holds some of them, each under its own ``campaign_lead_map_id`` and status (``STARTED``,
``PAUSED``, ``UNSUBSCRIBED``), in the order they were added. Addresses compare in lower case,
and every lookup is a dict lookup by the lower-case address (or by id), so uploading, finding or
removing a lead costs the same in a campaign of ten leads as in one of a hundred thousand; a
page of a campaign's leads costs its own length (a removal makes the next read rebuild the
campaign's order once).

A lead removed from its last campaign stays known to the account (``GET /leads/?email=`` still
finds it, and adding it again gives back the same id). The fields a lead is first added with
stay: adding it to another campaign later does not change them.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

# The optional fields of a lead besides ``email`` and ``custom_fields``, in the order stored.
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
LeadValue = str | int | float  # what a lead field or a custom field may hold

STARTED, PAUSED, UNSUBSCRIBED = "STARTED", "PAUSED", "UNSUBSCRIBED"

# Ids as SmartLead's look: large numbers, the lead's and its campaign membership's apart.
FIRST_LEAD_ID = 2_000_000_001
FIRST_MAP_ID = 9_000_000_001

_LOCAL = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]+")
_DOMAIN = re.compile(r"(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,63}")


def address_key(email: str) -> str:
    """How addresses compare: without surrounding spaces, in lower case."""
    return email.strip().lower()


def _key(lead: Lead) -> str:
    """``address_key`` of a stored lead: its address itself when that is in lower case, so that
    one string serves as the lead's address and as its key in every campaign."""
    lowered = lead.email.lower()
    return lead.email if lowered == lead.email else lowered


def is_address(email: str) -> bool:
    """Whether ``email`` (surrounding spaces aside) is an address the server accepts: one ``@``,
    an ASCII local part without leading, trailing or doubled dots, and a dotted domain whose
    last label is letters."""
    local, at, domain = email.strip().rpartition("@")
    return (
        bool(at)
        and len(local) <= 64
        and len(local) + len(domain) < 254
        and _LOCAL.fullmatch(local) is not None
        and not local.startswith(".")
        and not local.endswith(".")
        and ".." not in local
        and _DOMAIN.fullmatch(domain) is not None
    )


@dataclass(slots=True, eq=False)
class Lead:
    """A lead of the account, whichever campaigns hold it."""

    id: int
    email: str  # as first sent, without surrounding spaces
    values: tuple[LeadValue | None, ...] | None  # LEAD_FIELDS in order; None: none was sent
    custom_fields: dict[str, LeadValue] | None  # None: none was sent
    is_unsubscribed: bool = False  # unsubscribed from every campaign of the account
    campaigns: int = 0  # how many campaigns hold it

    def view(self) -> dict[str, Any]:
        """The lead as the API shows it (``lead`` of a campaign's leads, or found by address)."""
        values = self.values or (None,) * len(LEAD_FIELDS)
        return {
            "id": self.id,
            "email": self.email,
            **dict(zip(LEAD_FIELDS, values, strict=True)),
            "custom_fields": dict(self.custom_fields or {}),
            "is_unsubscribed": self.is_unsubscribed,
        }


@dataclass(slots=True, eq=False)
class CampaignLead:
    """A lead in one campaign: its membership's id, status and sequence position."""

    map_id: int
    lead: Lead
    status: str = STARTED
    last_step: bool = False  # on its last sequence step: it cannot be resumed (500)

    def view(self) -> dict[str, Any]:
        """One entry of ``GET /campaigns/{id}/leads``."""
        return {
            "campaign_lead_map_id": self.map_id,
            "status": self.status,
            "lead_category_id": None,
            "lead": self.lead.view(),
        }


class CampaignLeads:
    """One campaign's leads: by lower-case address, and in the order they were added."""

    __slots__ = ("_by_address", "_order")

    def __init__(self) -> None:
        self._by_address: dict[str, CampaignLead] = {}
        self._order: list[CampaignLead] | None = []  # None: to rebuild after a removal

    def __len__(self) -> int:
        return len(self._by_address)

    def get(self, key: str) -> CampaignLead | None:
        return self._by_address.get(key)

    def add(self, key: str, member: CampaignLead) -> None:
        self._by_address[key] = member
        if self._order is not None:
            self._order.append(member)

    def remove(self, key: str) -> CampaignLead | None:
        member = self._by_address.pop(key, None)
        if member is not None:
            self._order = None
        return member

    def ordered(self) -> list[CampaignLead]:
        """Every lead of the campaign, oldest first (a dict keeps the order of insertion)."""
        if self._order is None:
            self._order = list(self._by_address.values())
        return self._order


class LeadStore:
    """Every lead of the simulated account and which campaigns hold them, readable by tests:
    ``state.leads.addresses(5)``, ``state.leads.member(5, "a@x.com").last_step = True``."""

    def __init__(self) -> None:
        self.by_address: dict[str, Lead] = {}
        self.campaigns: dict[int, CampaignLeads] = {}
        self.held = 0  # leads in campaigns, a lead counted once per campaign holding it
        # what was seeded, so that an account kept between commands is seeded once each: the
        # campaigns given their numbered leads, and each (campaign, address) given its lead
        self.seeded: set[int] = set()
        self.named: set[tuple[int, str]] = set()
        self._leads: list[Lead] = []  # by id: ids are given in order from FIRST_LEAD_ID
        self._next_map = FIRST_MAP_ID

    def by_id(self, lead_id: int) -> Lead | None:
        index = lead_id - FIRST_LEAD_ID
        return self._leads[index] if 0 <= index < len(self._leads) else None

    def campaign(self, campaign_id: int) -> CampaignLeads:
        """The campaign's leads to read (empty if it has none)."""
        leads = self.campaigns.get(campaign_id)
        return leads if leads is not None else CampaignLeads()

    def holding(self, campaign_id: int) -> CampaignLeads:
        """The campaign's leads, kept in the store from now on (to be written to)."""
        leads = self.campaigns.get(campaign_id)
        if leads is None:
            leads = self.campaigns[campaign_id] = CampaignLeads()
        return leads

    def find(self, email: str) -> Lead | None:
        return self.by_address.get(address_key(email))

    def member(self, campaign_id: int, email: str) -> CampaignLead | None:
        """The lead with this address in this campaign, or None."""
        return self.campaign(campaign_id).get(address_key(email))

    def addresses(self, campaign_id: int) -> list[str]:
        """The campaign's leads' addresses, oldest first."""
        return [member.lead.email for member in self.campaign(campaign_id).ordered()]

    def memberships(self, lead: Lead) -> Iterator[tuple[int, CampaignLead]]:
        """Each campaign holding ``lead``, with its membership, by campaign id."""
        if lead.campaigns == 0:
            return
        key = _key(lead)
        for campaign_id in sorted(self.campaigns):
            member = self.campaigns[campaign_id].get(key)
            if member is not None:
                yield campaign_id, member

    def lead(
        self,
        email: str,
        values: tuple[LeadValue | None, ...] | None = None,
        custom_fields: dict[str, LeadValue] | None = None,
        *,
        unsubscribed: bool = False,
    ) -> Lead:
        """The account's lead with this address, made with these fields if it is new."""
        key = address_key(email)
        lead = self.by_address.get(key)
        if lead is None:
            stripped = email.strip()
            # One string for both when the address is sent in lower case, as most are.
            email = key if stripped == key else stripped
            lead = Lead(
                FIRST_LEAD_ID + len(self._leads), email, values, custom_fields, unsubscribed
            )
            self._leads.append(lead)
            self.by_address[key] = lead
        return lead

    def join(
        self, campaign_id: int, lead: Lead, status: str = STARTED, *, last_step: bool = False
    ) -> CampaignLead:
        """Put ``lead`` in the campaign (which must not hold it yet)."""
        member = CampaignLead(self._next_map, lead, status, last_step)
        self._next_map += 1
        self.holding(campaign_id).add(_key(lead), member)
        lead.campaigns += 1
        self.held += 1
        return member

    def leave(self, campaign_id: int, lead: Lead) -> bool:
        """Take ``lead`` out of the campaign; False if the campaign did not hold it."""
        leads = self.campaigns.get(campaign_id)
        if leads is None or leads.remove(_key(lead)) is None:
            return False
        lead.campaigns -= 1
        self.held -= 1
        return True


_FIRST = ("Ada", "Grace", "Alan", "Edsger", "Barbara", "Donald", "Frances", "Ken", "Radia")
_LAST = ("Lovelace", "Hopper", "Turing", "Dijkstra", "Liskov", "Knuth", "Allen", "Thompson")
_COMPANIES = ("Acme", "Globex", "Initech", "Umbrella", "Hooli", "Vandelay")
_INDUSTRIES = ("SaaS", "Retail", "Logistics", "Fintech", "Health")


def seed_lead(
    campaign_id: int, number: int
) -> tuple[str, tuple[LeadValue | None, ...], dict[str, LeadValue]]:
    """The ``number``-th (from 0) lead a campaign is seeded with: its address (unique to the
    campaign), fields and custom fields, computed from the two numbers alone."""
    mix = campaign_id * 31 + number
    first, last = _FIRST[mix % len(_FIRST)], _LAST[(mix // 3) % len(_LAST)]
    company = _COMPANIES[(campaign_id + number) % len(_COMPANIES)]
    domain = f"{company.lower()}.example.com"
    email = f"{first.lower()}.{last.lower()}.{campaign_id}.{number}@{domain}"
    values = (first, last, company, None, f"https://{domain}", None, None, None)
    return email, values, {"Industry": _INDUSTRIES[mix % len(_INDUSTRIES)]}


def seed_status(campaign_id: int, number: int) -> str:
    """A seeded lead's status in its campaign: mostly ``STARTED``, one in seven ``PAUSED``."""
    return PAUSED if (campaign_id + number) % 7 == 3 else STARTED
