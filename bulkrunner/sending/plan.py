"""The plan stage: which rows of a batch to send, given the current state the read stage found.

A row is refused when its campaign does not exist, or (with a backup) could not be read, so its
values could not be backed up; when the operation refuses it given the campaign's state; or when
it sets a field that has no value now, which no rollback could take away (unless the run allows
it: ``--allow-irreversible``). A row that would change nothing is ``unchanged`` (with
``--skip-unchanged``). Every other row is sent, with what it changes (``Changes``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from bulkrunner.model import Changes, Outcome, Row, Status
from bulkrunner.operations.base import Operation
from bulkrunner.operations.settings import SETTINGS
from bulkrunner.sending.reads import Current


@dataclass
class Plan:
    """Which rows to send, which are already as wanted or refused, and what each would change."""

    send: list[Row] = field(default_factory=list)
    unchanged: dict[int, Outcome] = field(default_factory=dict)
    changes: dict[int, Changes] = field(default_factory=dict)  # by row number
    refused: dict[int, Outcome] = field(default_factory=dict)  # failed before sending
    # of the refused, the rows whose campaign does not exist or could not be read
    missing: set[int] = field(default_factory=set)
    # of the rows to send (--allow-irreversible), those setting fields that have no value now
    irreversible: dict[int, list[str]] = field(default_factory=dict)

    @property
    def known(self) -> dict[int, Outcome]:
        """The outcomes known without sending: the unchanged and the refused rows'."""
        return {**self.unchanged, **self.refused}


def plan(
    rows: Sequence[Row],
    current: Current | None,
    skip: bool,
    require_backup: bool = False,
    operation: Operation = SETTINGS,
    allow_irreversible: bool = False,
) -> Plan:
    """Split ``rows`` into those to send, those that would change nothing and those that must
    not be sent: their campaign does not exist, or (with ``require_backup``) its current values
    could not be read, so the backup could not hold them, or the row sets a field that has no
    value now, which a rollback could not undo (unless ``allow_irreversible``: then it is sent,
    and listed in ``Plan.irreversible``)."""
    result = Plan()
    for row in rows:
        campaign_id = row.campaign_id
        campaign = current.campaigns.get(campaign_id) if current is not None else None
        if current is not None and campaign_id in current.missing:
            result.refused[row.number] = Outcome(
                Status.FAILED, http_status=404, error=f"campaign {campaign_id} not found (404)"
            )
            result.missing.add(row.number)
            continue
        if current is not None and campaign is None and require_backup:
            reason = current.unreadable.get(campaign_id, "its current settings could not be read")
            result.refused[row.number] = Outcome(
                Status.FAILED,
                error=f"campaign {campaign_id}: {reason}; not sent, as it could not be backed up "
                "(--no-backup sends it anyway)",
            )
            result.missing.add(row.number)
            continue
        refusal = operation.refuse(row.payload, campaign)
        if refusal:
            result.refused[row.number] = Outcome(
                Status.FAILED, error=f"campaign {campaign_id}: {refusal}; not sent"
            )
            continue
        found = operation.changes(row.payload, campaign)
        lost = operation.irreversible(found) if require_backup and campaign is not None else []
        if lost and not allow_irreversible:
            result.refused[row.number] = Outcome(
                Status.FAILED,
                error=f"campaign {campaign_id}: {_irreversible(lost)}; not sent "
                "(--allow-irreversible sends it)",
            )
            continue
        if lost:
            result.irreversible[row.number] = lost
        result.changes[row.number] = Changes(found)  # compact: one is held per row sent
        if (skip or not operation.resent) and campaign is not None and not found:
            result.unchanged[row.number] = Outcome(Status.UNCHANGED)
        else:
            result.send.append(operation.prepared(row, campaign))
    return result


def _irreversible(names: Sequence[str]) -> str:
    """Why setting ``names`` (fields with no value now) cannot be undone."""
    which = f"{', '.join(names)} {'has' if len(names) == 1 else 'have'}"
    return (
        f"{which} no value now (null or not shown), and no API call takes a value away: "
        f"a rollback could not undo setting {'it' if len(names) == 1 else 'them'}"
    )
