"""``lead-status``: pause, resume, unsubscribe or remove leads of campaigns, named by address.

A row is ``campaign_id``, ``email`` and ``action`` (``pause``, ``resume``, ``unsubscribe`` or
``remove``, in any case); ``resume`` takes an optional ``delay_days`` (whole days from 0, sent as
``resume_lead_with_delay_days``, 0 when blank). The same lead (address, in any case) on two rows
of one campaign makes both invalid: which action is meant cannot be told.

SmartLead's lead actions take the lead's id, so the run reads first (``sending/lead_reads``):
each row's lead is found by address in its campaign, with its status there, which becomes the
campaign's state here (under ``leads``: address -> :class:`LeadState`). Then:

- ``pause``  ``POST /campaigns/{id}/leads/{lead_id}/pause``: ``PAUSED``;
- ``resume`` ``POST .../resume`` ``{"resume_lead_with_delay_days": N}``: ``STARTED``;
- ``unsubscribe`` ``POST .../unsubscribe`` (this campaign's, not the account-wide one):
  ``UNSUBSCRIBED``;
- ``remove`` ``DELETE /campaigns/{id}/leads/{lead_id}``: no longer in the campaign (shown as
  ``REMOVED``).

A row whose lead already is as it asks (paused, ``STARTED`` or ``INPROGRESS`` for a resume,
unsubscribed) is ``unchanged``. An address the campaign does not hold is ``failed`` unsent, and
so is a pause or resume of an unsubscribed lead (which SmartLead refuses).

A rollback pauses what the run resumed and resumes (without delay) what it paused; a lead that
was in any other status before is left as it is, and said so. Unsubscribing and removing cannot
be undone (SmartLead has no call to subscribe a lead again, and adding a removed lead starts its
sequence over), so rows asking for them are invalid unless the run says
``--allow-irreversible``, and the plan marks them.

Resuming a lead on its last sequence step answers 500 with a message saying so: that answer is
final (:meth:`LeadStatus.final`), the row fails with it and is not retried. A removal answered
404 finds the lead out of the campaign, as the row asks (:meth:`LeadStatus.done`): the answer to
an earlier try, lost in flight, may have been the removal's, and SmartLead does not remove a lead
twice. Pausing, resuming and unsubscribing twice leave a lead as once.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping, Sequence
from typing import Any

from bulkrunner.model import Answer, Change, Row
from bulkrunner.operations.addresses import parse_address
from bulkrunner.operations.answers import error_message
from bulkrunner.operations.base import Operation, Request, Undo, Wire
from bulkrunner.operations.cells import quoted
from bulkrunner.operations.fields import Field
from bulkrunner.operations.lead_answers import LEADS, UNREAD, LeadState

EMAIL, ACTION, DELAY = "email", "action", "delay_days"
PAUSE, RESUME, UNSUBSCRIBE, REMOVE = "pause", "resume", "unsubscribe", "remove"
ACTIONS = (PAUSE, RESUME, UNSUBSCRIBE, REMOVE)
IRREVERSIBLE = (UNSUBSCRIBE, REMOVE)
LEAD_ID = "lead_id"  # what ``resolve`` adds to a row's payload: the id its address names
STATUS = "status"  # the name of a row's change: the lead's status before and after

STARTED, PAUSED, UNSUBSCRIBED = "STARTED", "PAUSED", "UNSUBSCRIBED"
REMOVED = "REMOVED"  # the status of a lead the campaign does not hold
RUNNING = (STARTED, "INPROGRESS")  # a lead resuming leaves as it is
BECOMES = {PAUSE: PAUSED, RESUME: STARTED, UNSUBSCRIBE: UNSUBSCRIBED, REMOVE: REMOVED}
LAST_STEP = "last sequence step"  # what SmartLead's 500 says of a lead it cannot resume
WHY_FINAL = {  # why an action cannot be undone
    UNSUBSCRIBE: "SmartLead has no call to subscribe a lead again",
    REMOVE: "a lead added again starts its sequence over",
}


def parse_action(cell: Any) -> tuple[str | None, str | None]:
    """An action cell: pause, resume, unsubscribe or remove, in any case."""
    if not isinstance(cell, str):
        return None, f"{quoted(cell)} is not an action (use {', '.join(ACTIONS)})"
    name = cell.strip().lower()
    if name in ACTIONS:
        return name, None
    close = difflib.get_close_matches(name, ACTIONS, n=1, cutoff=0.6)
    hint = f"did you mean {close[0]}?" if close else f"use {', '.join(ACTIONS)}"
    return None, f"{quoted(cell.strip())} is not an action ({hint})"


def lead_in(campaign: Mapping[str, Any] | None, address: str) -> LeadState | None:
    """The lead with ``address`` as its campaign's state holds it (None: not there)."""
    leads = campaign.get(LEADS) if campaign is not None else None
    return leads.get(address) if isinstance(leads, Mapping) else None


def current(campaign: Mapping[str, Any] | None, address: str) -> str | None:
    """The lead's status in the campaign (``REMOVED`` when the campaign does not hold it);
    None when it is not known (not read, or the answer showed none)."""
    if campaign is None or not isinstance(campaign.get(LEADS), Mapping):
        return None
    lead = lead_in(campaign, address)
    return REMOVED if lead is None else lead.status


class LeadStatus(Operation):
    name = "lead-status"
    summary = "pause, resume, unsubscribe or remove leads, named by address (/campaigns/{id}/leads)"
    fields = (
        Field(EMAIL, "custom", parse=parse_address),
        Field(ACTION, "custom", parse=parse_action),
        Field(DELAY, "int", minimum=0),
    )
    reads_list = False
    key = EMAIL
    reads_leads = True
    exportable = False

    @property
    def reads_per_campaign(self) -> int:
        """A row's lead is read back once at most (by address, or on a page of its campaign)."""
        return 1

    def requests(self, campaign_id: int, payload: Mapping[str, Any], wire: Wire) -> list[Request]:
        action = payload.get(ACTION)
        lead = payload.get(LEAD_ID, f"<id of {payload.get(EMAIL)}>")  # a dry run reads nothing
        path = f"/campaigns/{campaign_id}/leads/{lead}"
        if action == REMOVE:
            return [Request("DELETE", path, {})]
        body = {"resume_lead_with_delay_days": payload.get(DELAY, 0)} if action == RESUME else {}
        return [Request("POST", f"{path}/{action}", body)]

    def check(self, payload: Mapping[str, Any], wire: Wire) -> str:
        action = payload.get(ACTION)
        missing = [name for name in (EMAIL, ACTION) if name not in payload]
        if missing:
            return "; ".join(f"{name}: missing" for name in missing)
        if DELAY in payload and action != RESUME:
            return f"{DELAY}: only a resume takes a delay (this row's action is {action})"
        if action in IRREVERSIBLE and not wire.allow_irreversible:
            return (
                f"{ACTION}: {action} cannot be undone ({WHY_FINAL[action]}): "
                f"run with --allow-irreversible to {action} leads"
            )
        return ""

    def state(self, campaign: Mapping[str, Any]) -> dict[str, Any]:
        return {}  # a campaign's state is its leads: each row's is ``current``

    def readable(self, campaign: Mapping[str, Any]) -> bool:
        return isinstance(campaign.get(LEADS), Mapping)

    def same(self, name: str, before: Any, after: Any) -> bool:
        return before == after or (after == STARTED and before in RUNNING)

    def changes(
        self, payload: Mapping[str, Any], campaign: Mapping[str, Any] | None
    ) -> dict[str, Change]:
        wanted = BECOMES.get(str(payload.get(ACTION)))
        before = current(campaign, str(payload.get(EMAIL)))
        if before is not None and self.same(STATUS, before, wanted):
            return {}
        return {STATUS: Change(before, wanted)}

    def refuse(self, payload: Mapping[str, Any], campaign: Mapping[str, Any] | None) -> str:
        address = str(payload.get(EMAIL))
        if campaign is None or not isinstance(campaign.get(LEADS), Mapping):
            return "its leads could not be read, so the address could not be resolved to a lead"
        unread = campaign.get(UNREAD)
        if isinstance(unread, Mapping) and address in unread:
            return f"the lead with this address could not be read ({unread[address]})"
        before = current(campaign, address)
        if before == REMOVED:
            return "no lead with this address in the campaign"
        action = payload.get(ACTION)
        if before == UNSUBSCRIBED and action in (PAUSE, RESUME):
            return f"the lead is {UNSUBSCRIBED} in it, and an unsubscribed lead cannot be {action}d"
        return ""

    def resolve(
        self, payload: Mapping[str, Any], campaign: Mapping[str, Any] | None
    ) -> Mapping[str, Any]:
        lead = lead_in(campaign, str(payload.get(EMAIL)))
        return {**payload, LEAD_ID: lead.id} if lead is not None else payload

    def irreversible(self, changes: Mapping[str, Change]) -> list[str]:
        change = changes.get(STATUS)
        return [STATUS] if change is not None and change.after in (UNSUBSCRIBED, REMOVED) else []

    def undo(self, changes: Mapping[str, Change]) -> Undo:
        change = changes.get(STATUS)
        if change is None:
            return Undo({})
        action = next((a for a, status in BECOMES.items() if status == change.after), None)
        if action in IRREVERSIBLE:
            done = "unsubscribes" if action == UNSUBSCRIBE else "removes"
            return Undo({}, f"the run {done} it, which cannot be undone ({WHY_FINAL[action]})")
        if change.before is None:
            return Undo({}, "its status before the run could not be read")
        if change.after == PAUSED and change.before in RUNNING:
            return Undo({ACTION: RESUME})
        if change.after == STARTED and change.before == PAUSED:
            return Undo({ACTION: PAUSE})
        return Undo({}, f"it was {change.before} before the run, which no lead action restores")

    def applied_changes(
        self,
        payload: Mapping[str, Any],
        undo: Mapping[str, Any],
        campaign: Mapping[str, Any] | None,
    ) -> dict[str, Change]:
        """The lead is as the row wants it, and the backup would undo the row's action: the
        row changed it from the status that action restores."""
        restores = {RESUME: STARTED, PAUSE: PAUSED}.get(str(undo.get(ACTION)))
        wanted = BECOMES.get(str(payload.get(ACTION)))
        if restores is None or self.same(STATUS, restores, wanted):
            return {}
        return {STATUS: Change(restores, wanted)}

    def done(self, rows: Sequence[Row], answer: Answer) -> str:
        """A removal answered 404: the lead is not in the campaign, as the row asks (the
        answer to an earlier try, lost in flight, may have been the removal's)."""
        if answer.status != 404 or any(row.payload.get(ACTION) != REMOVE for row in rows):
            return ""
        return f"HTTP 404: {error_message(answer.body)}: not in the campaign, as the row asks"

    def final(self, answer: Answer) -> str:
        """A 500 saying the lead is on its last sequence step: no retry resumes it."""
        message = error_message(answer.body)
        if answer.status != 500 or LAST_STEP not in message.lower():
            return ""
        return f"HTTP 500: {message} (final: not retried)"


LEAD_STATUS = LeadStatus()
