"""``status``: ``POST /campaigns/{id}/status`` with ``START``, ``PAUSED`` or ``STOPPED``.

The one input column ``status`` takes those three names in any case, and ``ACTIVE`` as another
name of ``START`` (it is what GET shows of a started campaign, and what some clients send); the
wire always carries the reference's ``START``. The current status is read from the campaign list
(``DRAFTED``, ``ACTIVE``, ``PAUSED``, ``STOPPED`` or ``COMPLETED``), where ``ACTIVE`` is what
writing ``START`` gives: a row asking ``START`` of an ``ACTIVE`` campaign is unchanged.

``STOPPED`` is final: no API starts or pauses a stopped (or completed) campaign again. So a row
that stops campaigns is invalid unless the run says ``--allow-stop``, and a row asking anything
else of a campaign already stopped or completed is refused before sending. A rollback restores
an earlier ``ACTIVE`` (by ``START``) or ``PAUSED``; an earlier ``DRAFTED`` or ``COMPLETED``, and
any campaign the run stopped, it cannot restore, and says so (:class:`Undo`'s ``reason``).
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from typing import Any

from bulkrunner.model import Change
from bulkrunner.operations.base import Operation, Undo, Wire
from bulkrunner.operations.cells import quoted
from bulkrunner.operations.fields import Field

COLUMN = "status"
START, PAUSED, STOPPED = "START", "PAUSED", "STOPPED"
WRITTEN = (START, PAUSED, STOPPED)  # what POST takes, in the reference's order
ALIASES = {"ACTIVE": START}  # what GET shows of a started campaign, as input
READS_AS = {START: "ACTIVE"}  # a written status -> how GET shows it
FINAL = ("STOPPED", "COMPLETED")  # no API changes a campaign in these again
UNWRITABLE = ("DRAFTED", "COMPLETED")  # states GET shows that no write produces
ALLOW_STOP = (
    "STOPPED cannot be undone (a stopped campaign can never be started again): "
    "run with --allow-stop to stop campaigns"
)


def parse_status(cell: Any) -> tuple[Any, str | None]:
    """A status cell: START, PAUSED or STOPPED in any case (ACTIVE means START)."""
    if not isinstance(cell, str):
        return None, f"{quoted(cell)} is not a status (use {', '.join(WRITTEN)})"
    name = cell.strip().upper()
    name = ALIASES.get(name, name)
    if name in WRITTEN:
        return name, None
    shown = cell.strip()
    if name in UNWRITABLE:
        return None, (
            f"{quoted(shown)} cannot be written: no API puts a campaign back to {name} "
            f"(use {', '.join(WRITTEN)})"
        )
    close = difflib.get_close_matches(name, [*WRITTEN, *ALIASES], n=1, cutoff=0.6)
    hint = f"did you mean {ALIASES.get(close[0], close[0])}?" if close else ""
    return None, f"{quoted(shown)} is not a status ({hint or 'use ' + ', '.join(WRITTEN)})"


def current_status(campaign: Mapping[str, Any]) -> str | None:
    """The campaign's status as GET shows it, upper case; None when GET shows none."""
    value = campaign.get(COLUMN)
    if not isinstance(value, str) or not value.strip():
        return None
    return value.strip().upper()


def _reads_as(status: str) -> str:
    """How GET shows a status once written (``START`` reads back ``ACTIVE``)."""
    name = ALIASES.get(status.upper(), status.upper())
    return READS_AS.get(name, name)


class CampaignStatus(Operation):
    name = "status"
    summary = "start, pause or stop campaigns (POST /campaigns/{id}/status)"
    fields = (Field(COLUMN, "custom", parse=parse_status),)
    reads = (COLUMN,)

    def check(self, payload: Mapping[str, Any], wire: Wire) -> str:
        if payload.get(COLUMN) == STOPPED and not wire.allow_stop:
            return f"{COLUMN}: {ALLOW_STOP}"
        return ""

    def state(self, campaign: Mapping[str, Any]) -> dict[str, Any]:
        status = current_status(campaign)
        return {} if status is None else {COLUMN: status}

    def same(self, name: str, before: Any, after: Any) -> bool:
        if not isinstance(before, str) or not isinstance(after, str):
            return bool(before == after)
        return _reads_as(before) == _reads_as(after)

    def refuse(self, payload: Mapping[str, Any], campaign: Mapping[str, Any] | None) -> str:
        wanted = payload.get(COLUMN)
        current = current_status(campaign) if campaign is not None else None
        if not isinstance(wanted, str) or current not in FINAL or _reads_as(wanted) == current:
            return ""
        verb = {START: "started", PAUSED: "paused", STOPPED: "stopped"}.get(wanted, "changed")
        return f"it is {current}, and a {current.lower()} campaign cannot be {verb}"

    def undo(self, changes: Mapping[str, Change]) -> Undo:
        change = changes.get(COLUMN)
        if change is None:
            return Undo({})
        known = isinstance(change.before, str) and change.before.strip()
        before = _reads_as(change.before.strip()) if known else None
        if isinstance(change.after, str) and _reads_as(change.after) == STOPPED:
            earlier = f" (it was {before})" if before else ""
            return Undo(
                {}, f"the run stops it{earlier}, and a stopped campaign cannot be restarted"
            )
        if before is None:
            return Undo({}, "its status before the run could not be read")
        if before in (READS_AS[START], PAUSED):  # ACTIVE is restored by writing START
            return Undo({COLUMN: ALIASES.get(before, before)})
        if before in UNWRITABLE:
            return Undo({}, f"it was {before} before the run; no API puts a campaign back to that")
        return Undo({}, f"it was {before} before the run, which no status write restores")

    def export(self, campaign: Mapping[str, Any]) -> dict[str, Any]:
        """As an input row: ``ACTIVE`` as ``START``; a status no write produces is left out."""
        status = current_status(campaign)
        name = ALIASES.get(status, status) if status is not None else None
        return {COLUMN: name} if name in WRITTEN else {}


STATUS = CampaignStatus()
