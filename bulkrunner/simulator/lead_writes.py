"""The lead endpoints of the simulated account: uploading by SmartLead's rules, the two forms of
the upload's answer, a campaign's leads page by page, finding a lead by address, and the lead
actions (pause, resume, unsubscribe, remove).

An upload judges each lead in its order, and the first rule that applies decides it:

1. an address that is not valid (``leads.is_address``) is counted in ``invalid_email_count`` and
   listed in ``invalid_emails`` as sent;
2. an address already seen in this request (in any case) is counted in ``duplicate_count``: it is
   added once at most;
3. a lead the campaign already holds is counted in ``already_added_to_campaign``;
4. unless ``ignore_global_block_list``: an address, or its domain, on the global block list or
   on the list of the campaign's client (``client_id``) is counted in ``block_count``;
5. unless ``ignore_unsubscribe_list``: an address unsubscribed account-wide (configured, or a lead
   unsubscribed from every campaign) is listed in ``unsubscribed_leads``;
6. an address that bounced before is counted in ``bounce_count`` (no setting overrides it);
7. unless ``ignore_duplicate_leads_in_other_campaign``: a lead another campaign holds is counted
   in ``duplicate_count`` and not added;
8. once the account holds ``lead_capacity`` leads (a lead counted once per campaign holding it,
   seeded ones included), a lead that passed every rule above is not added: it is counted in
   ``lead_import_stopped_count`` and ``is_lead_limit_exhausted`` is true;
9. the lead is added, with status ``STARTED``: a new lead gets a new ``id``, a lead the account
   already knows keeps its own; either way the campaign gives it a new ``campaign_lead_map_id``.

The detailed answer (``SimulatorConfig.lead_answer = "detailed"``) is ``ok`` (always true),
``upload_count`` (the leads added), ``total_leads`` (the leads the request carried),
``already_added_to_campaign``, ``duplicate_count``, ``invalid_email_count``, ``invalid_emails``,
``unsubscribed_leads`` (the addresses), ``block_count``, ``bounce_count``,
``is_lead_limit_exhausted`` and ``lead_import_stopped_count``. Public clients disagree on which of
``upload_count`` and ``total_leads`` counts the leads added; ``lead_added_field = "total_leads"``
swaps the two. The other form (``"counts"``) is only ``added_count`` and ``skipped_count`` (the
leads carried but not added, whatever the reason), so a client must read the campaign back to
learn which leads went in, or whether the capacity ran out.

The lead actions answer ``{"success": true, "data": {}}``; a lead the campaign does not hold is a
404, and so is a lead id the account does not know. ``pause`` makes a lead ``PAUSED``, ``resume``
``STARTED`` again (``{"resume_lead_with_delay_days": N}``, N >= 0, may be left out) and
``unsubscribe`` ``UNSUBSCRIBED``; an unsubscribed lead cannot be paused or resumed (422
``INVALID_STATE``), and resuming a lead on its last sequence step answers 500 with a message
saying so. ``POST /leads/{lead_id}/unsubscribe`` unsubscribes the lead from every campaign (its
``is_unsubscribed`` becomes true, its status in each campaign ``UNSUBSCRIBED``).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Any

from bulkrunner.simulator.campaigns import Campaigns
from bulkrunner.simulator.lead_bodies import (
    LeadInput,
    Upload,
    validate_no_fields,
    validate_page,
    validate_resume,
    validate_upload,
)
from bulkrunner.simulator.leads import (
    PAUSED,
    STARTED,
    UNSUBSCRIBED,
    CampaignLead,
    CampaignLeads,
    address_key,
    is_address,
    seed_lead,
    seed_status,
)
from bulkrunner.simulator.operations import refused
from bulkrunner.simulator.state import SimulatorConfig, SimulatorState
from bulkrunner.simulator.validation import Accepted, Applied, BodyRejection, bad_request

NONE: frozenset[str] = frozenset()
LEAD_NOT_FOUND = BodyRejection(404, {"error": "Lead not found"})
NOT_IN_CAMPAIGN = BodyRejection(404, {"error": "Lead not found in this campaign"})


def _entries(addresses: Collection[str]) -> frozenset[str]:
    """Addresses and domains as they compare: lower case, a domain without a leading "@"."""
    return frozenset(address_key(entry).removeprefix("@") for entry in addresses)


@dataclass(slots=True)
class _Tally:
    """What an upload did with its leads, by the rules of the module docstring."""

    sent: int
    added: int = 0
    refused: Counter[str] = field(default_factory=Counter)  # rule -> leads it refused
    invalid: list[str] = field(default_factory=list)
    unsubscribed: list[str] = field(default_factory=list)


class Leads:
    """The leads of one simulated account over its ``SimulatorState.leads``, seeded on creation.
    Each write method applies a valid request and returns None or its answer, or returns why it
    is refused."""

    def __init__(
        self, config: SimulatorConfig, state: SimulatorState, campaigns: Campaigns
    ) -> None:
        self.config = config
        self.store = state.leads
        self.campaigns = campaigns
        self.blocked = _entries(config.block_list)
        self.client_blocked = {c: _entries(e) for c, e in config.client_block_lists.items()}
        self.bounced = _entries(config.bounced)
        self.unsubscribed = _entries(config.unsubscribed)
        self.last_step = _entries(config.last_step_leads)
        self._seed()

    def _seed(self) -> None:
        """The leads the config seeds that this account was not seeded with before (a kept
        account meets other commands' configs): each campaign's numbered leads once, and each
        named lead once in its campaign (not again once removed)."""
        store = self.store
        for campaign_id, number in self.config.lead_seeds().items():
            if campaign_id in store.seeded:
                continue
            for position in range(number):
                email, values, custom = seed_lead(campaign_id, position)
                key = address_key(email)
                lead = store.lead(email, values, custom, unsubscribed=key in self.unsubscribed)
                status = seed_status(campaign_id, position)
                store.join(campaign_id, lead, status, last_step=key in self.last_step)
            store.seeded.add(campaign_id)
        for campaign_id, emails in sorted(self.config.named_leads.items()):
            for position, email in enumerate(emails):
                key = address_key(email)
                if (campaign_id, key) in store.named:
                    continue
                store.named.add((campaign_id, key))
                if store.member(campaign_id, email) is not None:
                    continue
                lead = store.lead(email, unsubscribed=key in self.unsubscribed)
                status = seed_status(campaign_id, position)
                store.join(campaign_id, lead, status, last_step=key in self.last_step)

    # --- uploading ---------------------------------------------------------------------------

    def upload(self, campaign_id: int, body: object) -> Applied:
        upload = validate_upload(body, self.config.leads_per_request)
        if isinstance(upload, BodyRejection):
            return upload
        tally = _Tally(len(upload.leads))
        campaign = self.store.holding(campaign_id)
        client = self.campaigns.client_id(campaign_id)
        blocked = self.client_blocked.get(client, NONE) if client is not None else NONE
        seen: set[str] = set()
        for lead in upload.leads:
            key = address_key(lead.email)
            rule = self._refusal(lead, key, upload, campaign, blocked, seen)
            seen.add(key)
            if rule is None:
                self._add(campaign_id, lead, key)
                tally.added += 1
                continue
            tally.refused[rule] += 1
            if rule == "invalid":
                tally.invalid.append(lead.email)
            elif rule == "unsubscribed":
                tally.unsubscribed.append(lead.email)
        return Accepted(self._answer(tally), leads=tally.sent, added=tally.added)

    def _refusal(
        self,
        lead: LeadInput,
        key: str,
        upload: Upload,
        campaign: CampaignLeads,
        client_blocked: frozenset[str],
        seen: set[str],
    ) -> str | None:
        """The rule that keeps ``lead`` out of the campaign, or None to add it."""
        if not is_address(lead.email):
            return "invalid"
        if key in seen:
            return "repeated"
        if campaign.get(key) is not None:
            return "already"
        if not upload.ignore_global_block_list and self._blocked(key, client_blocked):
            return "blocked"
        known = self.store.by_address.get(key)
        if not upload.ignore_unsubscribe_list and (
            key in self.unsubscribed or (known is not None and known.is_unsubscribed)
        ):
            return "unsubscribed"
        if key in self.bounced:
            return "bounced"
        in_another = known is not None and known.campaigns > 0
        if not upload.ignore_duplicate_leads_in_other_campaign and in_another:
            return "elsewhere"
        capacity = self.config.lead_capacity
        if capacity is not None and self.store.held >= capacity:
            return "capacity"
        return None

    def _blocked(self, key: str, client_blocked: frozenset[str]) -> bool:
        """Whether the address or its domain is on the global list or the client's."""
        domain = key.rpartition("@")[2]
        return any(
            key in entries or domain in entries for entries in (self.blocked, client_blocked)
        )

    def _add(self, campaign_id: int, sent: LeadInput, key: str) -> None:
        lead = self.store.lead(
            sent.email, sent.values, sent.custom_fields, unsubscribed=key in self.unsubscribed
        )
        self.store.join(campaign_id, lead, STARTED, last_step=key in self.last_step)

    def _answer(self, tally: _Tally) -> dict[str, Any]:
        if self.config.lead_answer == "counts":
            return {"added_count": tally.added, "skipped_count": tally.sent - tally.added}
        refused = tally.refused
        added_in = self.config.lead_added_field
        return {
            "ok": True,
            "upload_count": tally.added if added_in == "upload_count" else tally.sent,
            "total_leads": tally.added if added_in == "total_leads" else tally.sent,
            "already_added_to_campaign": refused["already"],
            "duplicate_count": refused["repeated"] + refused["elsewhere"],
            "invalid_email_count": len(tally.invalid),
            "invalid_emails": tally.invalid,
            "unsubscribed_leads": tally.unsubscribed,
            "block_count": refused["blocked"],
            "bounce_count": refused["bounced"],
            "is_lead_limit_exhausted": refused["capacity"] > 0,
            "lead_import_stopped_count": refused["capacity"],
        }

    # --- reading -----------------------------------------------------------------------------

    def page(self, campaign_id: int, query: Mapping[str, str]) -> dict[str, Any] | BodyRejection:
        """A page of the campaign's leads, oldest first; ``status`` filters them."""
        paging = validate_page(query)
        if isinstance(paging, BodyRejection):
            return paging
        offset, limit = paging
        members = self.store.campaign(campaign_id).ordered()
        status = query.get("status")
        if status is not None:
            members = [member for member in members if member.status == status]
        return {
            "total_leads": str(len(members)),
            "offset": offset,
            "limit": limit,
            "data": [member.view() for member in members[offset : offset + limit]],
        }

    def find(self, query: Mapping[str, str]) -> dict[str, Any] | BodyRejection:
        """The lead with the address ``email``, with its campaigns, or ``{}``."""
        email = query.get("email", "")
        if not email.strip():
            return bad_request("email is required")
        lead = self.store.find(email)
        if lead is None:
            return {}
        campaigns = [
            {
                "campaign_id": campaign_id,
                "campaign_lead_map_id": member.map_id,
                "status": member.status,
                "lead_category_id": None,
            }
            for campaign_id, member in self.store.memberships(lead)
        ]
        return {**lead.view(), "lead_campaign_data": campaigns}

    # --- lead actions ------------------------------------------------------------------------

    def _member(self, campaign_id: int | None, lead_id: int) -> CampaignLead | BodyRejection:
        lead = self.store.by_id(lead_id)
        if lead is None:
            return LEAD_NOT_FOUND
        member = None if campaign_id is None else self.store.member(campaign_id, lead.email)
        return NOT_IN_CAMPAIGN if member is None else member

    def pause(self, campaign_id: int | None, lead_id: int, body: object) -> Applied:
        member = self._member(campaign_id, lead_id)
        if isinstance(member, BodyRejection):
            return member
        refusal = validate_no_fields(body) or _unsubscribed(member, "paused")
        if refusal is None:
            member.status = PAUSED
        return refusal

    def resume(self, campaign_id: int | None, lead_id: int, body: object) -> Applied:
        member = self._member(campaign_id, lead_id)
        if isinstance(member, BodyRejection):
            return member
        days = validate_resume(body)
        if isinstance(days, BodyRejection):
            return days
        if member.last_step:
            message = (
                f"Lead {lead_id} is on the last sequence step of campaign {campaign_id}: "
                "it cannot be resumed"
            )
            return BodyRejection(500, {"error": {"code": "INTERNAL_ERROR", "message": message}})
        refusal = _unsubscribed(member, "resumed")
        if refusal is None:
            member.status = STARTED
        return refusal

    def unsubscribe(self, campaign_id: int | None, lead_id: int, body: object) -> Applied:
        member = self._member(campaign_id, lead_id)
        if isinstance(member, BodyRejection):
            return member
        refusal = validate_no_fields(body)
        if refusal is None:
            member.status = UNSUBSCRIBED
        return refusal

    def remove(self, campaign_id: int | None, lead_id: int, body: object) -> Applied:
        member = self._member(campaign_id, lead_id)
        if isinstance(member, BodyRejection):
            return member
        refusal = validate_no_fields(body)
        if refusal is None and campaign_id is not None:
            self.store.leave(campaign_id, member.lead)
        return refusal

    def unsubscribe_everywhere(
        self, campaign_id: int | None, lead_id: int, body: object
    ) -> Applied:
        """``POST /leads/{lead_id}/unsubscribe``: from every campaign, for good."""
        lead = self.store.by_id(lead_id)
        if lead is None:
            return LEAD_NOT_FOUND
        refusal = validate_no_fields(body)
        if refusal is None:
            lead.is_unsubscribed = True
            for _, member in self.store.memberships(lead):
                member.status = UNSUBSCRIBED
        return refusal


def _unsubscribed(member: CampaignLead, verb: str) -> BodyRejection | None:
    if member.status == UNSUBSCRIBED:
        return refused(f"Lead is {UNSUBSCRIBED}: it cannot be {verb}", status=member.status)
    return None
