"""The plan stage: which rows of a batch to send, given the current state the read stage found.

A row is refused when its campaign does not exist, or (with a backup) could not be read, so its
values could not be backed up; when the operation refuses it given the campaign's state; or when
it sets a field that has no value now, which no rollback could take away (unless the run allows
it: ``--allow-irreversible``). A row that would change nothing is ``unchanged`` (with
``--skip-unchanged``). Every other row is sent, with what it changes (``Changes``), unless the
run writes only over what it expects to find (a rollback, a saved plan: ``Drift``) and its
campaign has changed since: then it is left as it is, ``drifted``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from bulkrunner.model import Change, Changes, Outcome, Row, Status, count
from bulkrunner.operations.base import Operation, Target, named
from bulkrunner.operations.settings import SETTINGS
from bulkrunner.output.planning import shown
from bulkrunner.sending.reads import Current

log = logging.getLogger("bulkrunner")

SHOWN_DRIFTED = 10  # rows changed since what a run expects, named one by one in the log
Expected = Mapping[Target, Mapping[str, Any]]  # target -> the values it should have now, by key


@dataclass(frozen=True, slots=True)
class Drift:
    """A run that writes only over what it expects to find: each campaign must have the values
    ``expected`` reads for it (by the keys of its changes), else it is left as it is,
    ``drifted`` (unless ``force``).

    A rollback expects what its run set: the fields it would restore must still hold it (one
    already as before the run needs nothing). A saved plan (``whole``) expects its ``before``:
    the row must still change exactly the fields the plan changes, from exactly those values
    (a campaign already wholly as the plan sets it needs nothing: its run was interrupted after
    sending it, or someone made the same change)."""

    expected: Callable[[Collection[Target]], Expected]  # reads a file, in a worker thread
    since: str  # what the values are: "the run" (what it set), "the plan" (its before)
    whole: bool = False
    force: bool = False
    hint: str = ""  # what becomes of a drifted campaign, in its row's error
    advice: str = ""  # what to do about them, said once in the log

    def say(self, drifted: Mapping[int, str], whose: str) -> None:
        """Log the rows (by number, with why) changed since what the run expects: left as they
        are, or (--force) written over; the first ``SHOWN_DRIFTED`` named one by one."""
        done = "written over all the same (--force)" if self.force else "left as found"
        advice = f"; {self.advice}" if self.advice and not self.force else ""
        log.warning(
            "%s%s changed since %s: %s (see the report)%s",
            whose,
            count(len(drifted), "campaign"),
            self.since,
            done,
            advice,
        )
        for why in list(drifted.values())[:SHOWN_DRIFTED]:
            log.warning("%s%s", whose, why)


def drifted(
    operation: Operation,
    found: Mapping[str, Change],
    expected: Mapping[str, Any] | None,
    drift: Drift,
    payload: Mapping[str, Any],
) -> str:
    """Why a row of ``payload`` whose changes are ``found`` (from the campaign as it is now) is
    not as ``drift`` expects (``expected``: the values read for its campaign, None when none
    are recorded); "" when it is."""
    if expected is None:
        return f"what {drift.since} {'found' if drift.whole else 'set'} in it is not recorded"
    problems = []
    for name, change in found.items():
        now = f"{name} is {shown(change.before)} now"
        if name in expected and (
            operation.same(name, change.before, expected[name])
            or operation.on_the_way(name, change.before, expected[name], payload)
        ):  # as expected, or as an interrupted write of this row (a rollback resumed) left it
            continue
        if name in expected:
            verb = "found" if drift.whole else "set"
            problems.append(f"{now}, {drift.since} {verb} {shown(expected[name])}")
        elif drift.whole:
            problems.append(f"{now}, {drift.since} found it as the row sets it")
        else:
            problems.append(f"{now}, and what {drift.since} set in it is not recorded")
    if drift.whole and found:  # (a campaign already wholly as the plan sets it is unchanged)
        problems += [
            f"{name} is already as {drift.since} sets it ({drift.since} found {shown(value)})"
            for name, value in expected.items()
            if name not in found
        ]
    return "; ".join(problems)


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
    # of the rows to send, those the operation resolved (``Operation.resolve``: a lead's id),
    # as the input gives them: what the journal keys them by
    given: dict[int, Row] = field(default_factory=dict)
    # the rows whose campaign is not as a Drift expects, with why (refused, unless forced)
    drifted: dict[int, str] = field(default_factory=dict)

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
    drift: Drift | None = None,
    expected: Expected | None = None,
) -> Plan:
    """Split ``rows`` into those to send, those that would change nothing and those that must
    not be sent: their campaign does not exist, or (with ``require_backup``) its current values
    could not be read, so the backup could not hold them, or the row sets a field that has no
    value now, which a rollback could not undo (unless ``allow_irreversible``: then it is sent,
    and listed in ``Plan.irreversible``), or its campaign is not as ``drift`` expects
    (``expected``, read for the rows' campaigns: ``drifted``)."""
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
        if current is not None and campaign is None and (require_backup or operation.reads_leads):
            reason = current.unreadable.get(campaign_id, "its current settings could not be read")
            why = (
                "its lead could not be found"  # a lead is written by its id: whatever the options
                if operation.reads_leads
                else "it could not be backed up (--no-backup sends it anyway)"
            )
            result.refused[row.number] = Outcome(
                Status.FAILED, error=f"campaign {campaign_id}: {reason}; not sent, as {why}"
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
        if drift is not None:
            changed = _changed(drift, operation, row, found, campaign, expected)
            if changed:
                result.drifted[row.number] = changed
                if not drift.force:
                    result.refused[row.number] = Outcome(Status.DRIFTED, error=changed)
                    continue
        if lost:
            result.irreversible[row.number] = lost
        result.changes[row.number] = Changes(found)  # compact: one is held per row sent
        if (skip or not operation.resent) and campaign is not None and not found:
            result.unchanged[row.number] = Outcome(Status.UNCHANGED)
            continue
        payload = operation.resolve(row.payload, campaign)
        if payload is not row.payload:
            result.given[row.number] = row
            row = replace(row, payload=payload)
        result.send.append(row)
    return result


def _irreversible(names: Sequence[str]) -> str:
    """Why setting ``names`` (fields with no value now) cannot be undone."""
    which = f"{', '.join(names)} {'has' if len(names) == 1 else 'have'}"
    return (
        f"{which} no value now (null or not shown), and no API call takes a value away: "
        f"a rollback could not undo setting {'it' if len(names) == 1 else 'them'}"
    )


def _changed(
    drift: Drift,
    operation: Operation,
    row: Row,
    found: Mapping[str, Change],
    campaign: Mapping[str, Any] | None,
    expected: Expected | None,
) -> str:
    """Why the campaign of ``row`` is not as ``drift`` expects, in a line ("" when it is)."""
    target = operation.target(row.campaign_id, row.payload)
    if campaign is None:
        why = "its current values could not be read, so whether it changed is not known"
    else:
        why = drifted(operation, found, (expected or {}).get(target), drift, row.payload)
    if not why:
        return ""
    what = f"campaign {target}" if isinstance(target, int) else f"lead {named(target)}"
    return f"{what} changed since {drift.since}: {why}; {drift.hint}"
