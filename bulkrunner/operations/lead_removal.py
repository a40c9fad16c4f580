"""``lead-removal``: take out of campaigns the leads a ``leads`` run added (what its rollback
runs).

A ``leads`` run's backup is a ledger of the leads it added (``records.lead_ledger``): a row per
lead, with ``campaign_id``, ``email`` and, where the run learned it, ``lead_id``. Rolling it
back is a run of that ledger with this operation: each campaign's leads are read first (as a
``leads`` run reads them), a lead the campaign no longer holds is ``unchanged`` (a rollback
resumed after a kill removes no lead twice), one it holds is removed with ``DELETE
/campaigns/{id}/leads/{lead_id}`` (its id as the campaign shows it now), and one whose id is
not the one the run recorded is left in place (someone added it again since): ``failed``, with
why. A lead that was in the campaign before the run is not in the ledger, so it stays.

A removed lead cannot be put back by a rollback (its fields are not kept): these runs write no
backup. The operation is not one ``--operation`` offers: ``rollback`` takes it from the backup.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from bulkrunner.model import Change, Row
from bulkrunner.operations.base import Operation, Request, Undo, Wire
from bulkrunner.operations.fields import Field
from bulkrunner.operations.lead_answers import PAGE_SIZE
from bulkrunner.operations.leads import DETAIL, EMAIL, LeadIndex, leads_of, parse_email

LEAD_ID = "lead_id"
UNDONE = (
    "a removed lead cannot be put back by a rollback (its fields are not kept): add it again "
    "with a leads run"
)


class LeadRemoval(Operation):
    name = "lead-removal"
    summary = "remove the leads a leads run added (DELETE /campaigns/{id}/leads/{lead_id})"
    fields = (Field(EMAIL, "custom", parse=parse_email), Field(LEAD_ID, "int", minimum=1))
    reads_list = False
    detail = DETAIL
    paged = PAGE_SIZE
    one_row_per_campaign = False
    identity = EMAIL
    backed_up = False

    def requests(self, campaign_id: int, payload: Mapping[str, Any], wire: Wire) -> list[Request]:
        lead = payload.get(LEAD_ID, "{its lead id, read first}")
        return [Request("DELETE", f"/campaigns/{campaign_id}/{DETAIL}/{lead}", {})]

    def collect(self) -> LeadIndex:
        return LeadIndex()

    def readable(self, campaign: Mapping[str, Any]) -> bool:
        return leads_of(campaign) is not None

    def state(self, campaign: Mapping[str, Any]) -> dict[str, Any]:
        return {}

    def changes(
        self, payload: Mapping[str, Any], campaign: Mapping[str, Any] | None
    ) -> dict[str, Change]:
        """Nothing when the campaign no longer holds the lead, else the lead it loses."""
        found = leads_of(campaign)
        email, recorded = payload[EMAIL], payload.get(LEAD_ID)
        if found is None:
            return {LEAD_ID: Change(recorded, None)}
        if email not in found:
            return {}
        return {LEAD_ID: Change(found.lead_id(email) or recorded, None)}

    def refuse(self, payload: Mapping[str, Any], campaign: Mapping[str, Any] | None) -> str:
        found = leads_of(campaign)
        email, recorded = payload[EMAIL], payload.get(LEAD_ID)
        if found is None:
            if recorded is None:
                return (
                    f"the id of lead {email} is not known without reading the campaign's leads "
                    "(leave out --no-skip-unchanged or --no-backup)"
                )
            return ""
        if email not in found:
            return ""
        now = found.lead_id(email)
        if now is None and recorded is None:
            return f"the campaign's leads show no id for {email}"
        if recorded is not None and now is not None and now != recorded:
            return (
                f"{email} is lead {now} in it now, not lead {recorded}, which the run added "
                "(added again since?): left in place"
            )
        return ""

    def resolve(
        self, payload: Mapping[str, Any], campaign: Mapping[str, Any] | None
    ) -> Mapping[str, Any]:
        """The lead's id as the campaign shows it, when its ledger has none."""
        found = leads_of(campaign)
        now = found.lead_id(payload[EMAIL]) if found is not None else None
        if payload.get(LEAD_ID) is not None or now is None:
            return payload
        return {**payload, LEAD_ID: now}

    def irreversible(self, changes: Mapping[str, Change]) -> list[str]:
        return []  # the reason is the rollback's own: this operation writes no backup

    def undo(self, changes: Mapping[str, Change]) -> Undo:
        return Undo({}, UNDONE)

    def mismatch(self, changes: Mapping[str, Change]) -> str:
        return "the campaign still holds this lead"

    def read_backs(self, rows: Sequence[Row]) -> int:
        return len({row.campaign_id for row in rows})


LEAD_REMOVAL = LeadRemoval()
