"""What an operation is: one kind of campaign write, declared once.

An operation says everything the commands need to know about its write, and nothing else does:

- its input columns (:class:`~bulkrunner.operations.fields.Field`, each with how a cell is parsed),
  and the checks a row needs across its columns (:meth:`Operation.check`); whether its input's
  other columns are sent too (``custom_fields``: a lead's), whether a campaign may be on many
  rows (``one_row_per_campaign``) and what else makes two rows the same (``identity``);
- the request(s) one valid row becomes on the wire (:meth:`Operation.requests`), for the wire
  options of the run (:class:`Wire`: vocabulary, schedule shape, ``--allow-stop``, a lead
  upload's settings and size);
- how rows go together into requests (:meth:`Operation.groups`: by default each row alone, so
  a group's requests are its row's, :meth:`Operation.group_requests`), and what the answer that
  accepted a group says of each of its rows (:meth:`Operation.attribute`: by default, that
  every row of the group was applied; or how a row ends, :class:`Said`; a row it says nothing
  of is read back to find out);
- how its current state is read (the campaign list, and/or a read per campaign, maybe a page at
  a time: ``paged``, :meth:`Operation.collect`) and put in the
  terms of its input columns (:meth:`Operation.state`), which is what skip-unchanged, the backup,
  ``--verify``, ``plan`` and ``export`` compare and write (an answer showing none of it could
  not be read: :meth:`Operation.readable`);
- what a row would change (:meth:`Operation.changes`), which rows must not be sent given the
  current state (:meth:`Operation.refuse`), how a change is undone (:meth:`Operation.undo`), and
  which changes cannot be (:meth:`Operation.irreversible`: sent only with
  ``--allow-irreversible``); what kind of backup its runs keep (``ledger``) and which
  operation a rollback of them runs (``undone_by``);
- for a write to one lead of a campaign rather than to the campaign (``key``: the column
  naming the lead), what a row sends once its lead is read (:meth:`Operation.resolve`: its
  address becomes the lead's id); which answers the retry policy must not retry
  (:meth:`Operation.final`), and which refusals say the row is already as it asks
  (:meth:`Operation.done`).

The base class holds the common case: fields compared one by one, undone by writing back the
values they had. An operation overrides only what differs.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from bulkrunner.model import Answer, Change, Row, Status
from bulkrunner.operations.fields import (
    ACCOUNT,
    CAMPAIGN_ID,
    Field,
    ScheduleShape,
    Vocabulary,
    column_key,
)

Target = int | tuple[int, str]
"""What one row changes: its campaign, or (an operation with a ``key``) the campaign and the
row's key value in it (a lead's address). A backup holds one row per target."""


def campaign_of(target: Target) -> int:
    """The campaign of ``target``."""
    return target if isinstance(target, int) else target[0]


def named(target: Target) -> str:
    """A target as a message names it: ``5``, or ``a@x.com in 5``."""
    return str(target) if isinstance(target, int) else f"{target[1]} in {target[0]}"


@dataclass(frozen=True, slots=True)
class Wire:
    """The options of a run that change what is sent, not what is valid input."""

    vocabulary: Vocabulary = Vocabulary.DOCUMENTED
    schedule_shape: ScheduleShape = ScheduleShape.NESTED
    allow_stop: bool = False  # rows that set status STOPPED (or --allow-irreversible)
    # a lead upload's ``settings`` booleans, by their API names (--ignore-global-block-list...)
    lead_settings: tuple[tuple[str, bool], ...] = ()
    leads_per_request: int = 100  # the most leads one upload carries (--leads-per-request)
    kept: frozenset[str] = frozenset()  # --keep-columns, as ``column_key`` has them: never sent
    read_first: bool = True  # each row sent was read as not applied yet (skip-unchanged)
    allow_irreversible: bool = False  # rows whose change no rollback can undo (lead-status)


@dataclass(frozen=True, slots=True)
class Request:
    """One HTTP request a row becomes: ``method`` on ``path`` (under the base URL) with ``body``
    as JSON."""

    method: str
    path: str
    body: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class Said:
    """What the answer that accepted a group says of one of its rows, when more than "applied"
    or "refused because..." (``Operation.attribute``): how the row ends (``status``, with
    ``error``), or, when the answer does not say (``status`` None), how it ends once read back:
    ``absent`` when the campaign does not show it as sent, with ``error`` (why, as far as the
    answer tells), ``present`` when it does, with ``note``."""

    status: Status | None
    error: str = ""
    present: Status = Status.SUCCEEDED
    absent: Status = Status.FAILED
    note: str = ""


class Collected(Protocol):
    """A campaign's state taken in a page at a time (``Operation.collect``)."""

    def add(self, entries: Iterable[Any]) -> int: ...

    def __len__(self) -> int: ...


@dataclass(frozen=True, slots=True)
class Undo:
    """How a campaign's change is undone: the input row that undoes it (``values``), or why it
    cannot be (``reason``), or both when only part of it can."""

    values: dict[str, Any]
    reason: str = ""


class Operation:
    """A campaign write. Subclasses set the class attributes and override what differs."""

    name: str = ""
    summary: str = ""  # one line for the help: "update campaign settings"
    fields: tuple[Field, ...] = ()
    reads_list: bool = True  # the current state comes from ``GET /campaigns/`` (and by id)
    detail: str | None = None  # a read per campaign: "/campaigns/{id}/<detail>" (its answer is
    # merged into the campaign's state under the key ``detail``)
    vocabularies: bool = False  # whether --vocabulary changes what this operation sends
    reads: tuple[str, ...] = ()  # the keys of a campaign as GET shows it that ``state`` reads
    # the ``detail`` is a list read a page of ``paged`` at a time (``?offset=&limit=``), kept
    # across a run's batches; None: one read
    paged: int | None = None
    one_row_per_campaign: bool = True  # a campaign on two rows makes both invalid
    # the column that, with the campaign, is what a row is about (compared in lower case): a
    # second row with the same is sent once (``unchanged``, naming the first); None: no such
    identity: str | None = None
    backed_up: bool = True  # its runs write a backup (a rollback's removals: none)
    custom_fields: bool = False  # its other columns are sent too (``custom``)
    # its backup: a row per campaign of its values before the run ("campaigns"), or a row per
    # lead it adds ("leads", ``records.lead_ledger``)
    ledger: str = "campaigns"
    undone_by: str = ""  # the operation a rollback of its runs runs ("": itself)
    resent: bool = True  # --no-skip-unchanged sends a row that would change nothing
    # The column that, with campaign_id, names what a row changes (a lead's ``email``): rows of
    # one campaign repeat only when it repeats too. None: a row changes its campaign.
    key: str | None = None
    # The current state is each row's lead in its campaign, found by address
    # (``sending/lead_reads``), not the campaign's settings.
    reads_leads: bool = False
    exportable: bool = True  # ``bulkrunner export`` writes the account's campaigns as its rows
    # The columns ``check`` compares with each other: a row with other cells invalid is checked
    # on these too, when they are valid, so that it is told every reason at once.
    compared: tuple[str, ...] = ()

    @property
    def reads_per_campaign(self) -> int:
        """The reads ``--verify`` makes of each campaign: the campaign and/or its detail."""
        return int(self.reads_list) + int(self.detail is not None)

    @property
    def columns(self) -> tuple[str, ...]:
        return tuple(field.name for field in self.fields)

    def field(self, name: str) -> Field | None:
        return next((field for field in self.fields if field.name == name), None)

    def path(self, campaign_id: int) -> str:
        return f"/campaigns/{campaign_id}/{self.name}"

    def requests(self, campaign_id: int, payload: Mapping[str, Any], wire: Wire) -> list[Request]:
        """The requests that apply a valid row: by default one POST of the payload as it is."""
        return [Request("POST", self.path(campaign_id), dict(payload))]

    def target(self, campaign_id: int, payload: Mapping[str, Any]) -> Target:
        """What a row of ``campaign_id`` with ``payload`` changes (see :data:`Target`)."""
        return campaign_id if self.key is None else (campaign_id, str(payload.get(self.key)))

    def resolve(
        self, payload: Mapping[str, Any], campaign: Mapping[str, Any] | None
    ) -> Mapping[str, Any]:
        """What a row to send sends, given its campaign's current state: by default its
        payload as it is (a lead action adds the id of the lead its address names)."""
        return payload

    def final(self, answer: Answer) -> str:
        """Why ``answer``, which the retry policy would try again (a 5xx...), is final for this
        operation's write, "" when it is not: a condition the answer names that no retry can
        change. By default none is."""
        return ""

    def done(self, rows: Sequence[Row], answer: Answer) -> str:
        """Why ``answer``, which refuses the write of ``rows``, says they already are as they
        ask ("" when it does not): a removal answered 404 finds the lead out of the campaign
        (a try whose answer was lost may have removed it). By default none does."""
        return ""

    def groups(self, rows: Sequence[Row], wire: Wire) -> list[Sequence[Row]]:
        """How ``rows`` (of one account, all to send) go together into requests: by default
        each row alone."""
        return [(row,) for row in rows]

    def group_requests(self, rows: Sequence[Row], wire: Wire) -> list[Request]:
        """The requests that apply a group of rows (``groups``), sent in order: by default
        its one row's (``requests``)."""
        (row,) = rows
        return self.requests(row.campaign_id, row.payload, wire)

    def attribute(
        self, rows: Sequence[Row], answer: Answer, wire: Wire
    ) -> Mapping[int, str | Said]:
        """What ``answer``, which accepted the last request of a group of ``rows``, says of
        each row, by row number: "" for a row it applied, else why it did not, or how the row
        ends (``Said``). A row it says nothing of is read back to find out (a count of rows
        added names none of them). By default every row of the group was applied."""
        return {row.number: "" for row in rows}

    def custom(self, name: str, wire: Wire) -> bool:
        """Whether column ``name``, not one of this operation's own, is sent all the same (with
        ``custom_fields``: any but the campaign, the account and the columns kept unsent)."""
        return (
            self.custom_fields
            and name not in (CAMPAIGN_ID, ACCOUNT)
            and name not in self.columns
            and column_key(name) not in wire.kept
        )

    def collect(self) -> Collected:
        """The state of a ``paged`` detail, empty, to take in each page read."""
        raise TypeError(f"the {self.name} operation reads no pages")

    def mismatch(self, changes: Mapping[str, Change]) -> str:
        """How a row read back differs from what it sent (``--verify``)."""
        return "; ".join(
            f"{name}: sent {change.after!r}, server has {change.before!r}"
            for name, change in changes.items()
        )

    def read_backs(self, rows: Sequence[Row]) -> int:
        """The reads ``--verify`` makes to read ``rows`` back (a campaign's once)."""
        return len({row.campaign_id for row in rows}) * self.reads_per_campaign

    def check(self, payload: Mapping[str, Any], wire: Wire) -> str:
        """Why a row whose cells are each valid still cannot be sent ("" when it can)."""
        return ""

    def also_invalid(self, valid: Mapping[str, Any], wire: Wire) -> str:
        """Of a row with invalid cells, what ``check`` finds of the ``compared`` cells among
        its ``valid`` ones ("" when they are not all valid)."""
        if not self.compared or any(name not in valid for name in self.compared):
            return ""
        return self.check({name: valid[name] for name in self.compared}, wire)

    def state(self, campaign: Mapping[str, Any]) -> dict[str, Any]:
        """The campaign's current values (as GET shows it, plus the per-campaign ``detail``
        read) in the terms of this operation's columns; a column GET does not show is left out."""
        return {field.name: campaign[field.name] for field in self.fields if field.name in campaign}

    def readable(self, campaign: Mapping[str, Any]) -> bool:
        """Whether a campaign as read shows its state: some value of a column, not only nulls
        or nothing (``{}``, ``{"id": N}``, ``{"data": null}``), which is an answer that could
        not be read rather than a campaign with nothing to back up."""
        return any(value is not None for value in self.state(campaign).values())

    def irreversible(self, changes: Mapping[str, Change]) -> list[str]:
        """The columns of ``changes`` (of a campaign that was read) that a rollback could not
        undo: those with no value now (null, or not shown), since no API call takes a value
        away."""
        return [name for name, change in changes.items() if change.before is None]

    def same(self, name: str, before: Any, after: Any) -> bool:
        """Whether the current value ``before`` already is the wanted ``after``."""
        return bool(before == after)

    def on_the_way(self, name: str, now: Any, since: Any, payload: Mapping[str, Any]) -> bool:
        """Whether ``now`` is where the requests of a row of ``payload`` leave ``name``, which
        was ``since``, when interrupted between them: not a change of anyone else's. A value
        written in one request is either as it was or as the row sets it."""
        return False

    def changes(
        self, payload: Mapping[str, Any], campaign: Mapping[str, Any] | None
    ) -> dict[str, Change]:
        """The columns of ``payload`` whose value differs from (or is not known in) the
        campaign's current state; ``before`` is None where it is not known."""
        current = self.state(campaign) if campaign is not None else {}
        found: dict[str, Change] = {}
        for name, wanted in payload.items():
            known = name in current
            before = current.get(name)
            if not known or not self.same(name, before, wanted):
                found[name] = Change(before, wanted)
        return found

    def refuse(self, payload: Mapping[str, Any], campaign: Mapping[str, Any] | None) -> str:
        """Why a row must not be sent given the campaign's current state ("" when it may)."""
        return ""

    def undo(self, changes: Mapping[str, Change]) -> Undo:
        """The row that puts back what ``changes`` change: by default each value it had."""
        return Undo({name: change.before for name, change in changes.items()})

    def applied_changes(
        self,
        payload: Mapping[str, Any],
        undo: Mapping[str, Any],
        campaign: Mapping[str, Any] | None,
    ) -> dict[str, Change]:
        """What the row changed, if an earlier run applied it: from the state the backup's
        ``undo`` row puts back to the campaign as it is now (``campaign``, which already is as
        the row wants it). By default each field the backup holds whose value the row changes."""
        return {
            name: Change(undo[name], wanted)
            for name, wanted in payload.items()
            if name in undo and not self.same(name, undo[name], wanted)
        }

    def merge_undo(self, recorded: Mapping[str, Any], later: Mapping[str, Any]) -> dict[str, Any]:
        """The backup's row of a campaign once a later run of the job (``--resume``) records
        the undo ``later`` beside the row earlier runs recorded (``recorded``): by default
        each field as first recorded, which is its value before the first run."""
        return {**later, **recorded}

    def export(self, campaign: Mapping[str, Any]) -> dict[str, Any]:
        """The campaign's current state as an input row of this operation (no campaign_id)."""
        return self.state(campaign)

    def describe(self, requests: Sequence[Request]) -> str:
        """The requests of one row, for a dry run's preview and ``-v``'s log: each its method,
        path and body as JSON."""
        return "; ".join(
            f"{request.method} {request.path} {json.dumps(request.body, ensure_ascii=False)}"
            for request in requests
        )
