"""A run's rows a batch at a time, and their outcomes kept on disk until the report.

A run (real or ``plan``) is streamed, so that its memory stays flat however many rows it has. The
input is read three times at most: once to survey it, once to send it a batch at a time (not
again for a file of one batch, which the survey keeps), and once to write the report::

    input ─▶ survey (counts, the first invalid rows, the accounts used, --resume's matches, the
             campaigns and which repeat)
          ─▶ batch 1 ─▶ session ─▶ spill ─▶ batch 2 ─▶ ... ─▶ report (input + spill)

Each batch is judged, read, planned, backed up, sent and verified (``pipeline``) before the next
is read; as it ends its rows' outcomes and changes go to a temporary file (``Spill``). Rows a run
never reached (it stopped early) are judged again as the report is written: an invalid row is
``invalid``, one an earlier run applied (``--resume``) ``succeeded``, and the rest
``not_attempted``, with why the run stopped.
"""

from __future__ import annotations

import heapq
import logging
from collections import Counter
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from bulkrunner.config.accounts import Accounts, assign
from bulkrunner.input.duplicates import repeated_leads, same_lead
from bulkrunner.input.loading import InputFile
from bulkrunner.input.suppression import Suppression, say_unsent
from bulkrunner.input.validation import (
    Repeats,
    campaign_ids,
    repeated_among,
    target_ids,
    validate,
)
from bulkrunner.model import Changes, Numbering, Outcome, Row, Status, Validation
from bulkrunner.operations.base import Operation, Wire
from bulkrunner.operations.cells import repeated
from bulkrunner.operations.fields import CAMPAIGN_ID, Vocabulary
from bulkrunner.output.problems import SHOWN_INVALID
from bulkrunner.output.report import cell_types
from bulkrunner.records.journal import Success, row_key
from bulkrunner.sending.engine import row_finished
from bulkrunner.sending.spill import Spill

log = logging.getLogger("bulkrunner")

# rows of a run read, planned, backed up and sent at a time: a batch of rows in flight takes
# ≈2.5 KB a row (50,000: a 246 MB peak, 20,000: 188 MB), and each batch rewrites the backup
BATCH_ROWS = 20_000

Ids = npt.NDArray[Any]  # each row's campaign id, 0 where it has none (``campaign_ids``)
_SEND, _INVALID, _DONE = 0, 1, 2  # what the survey found of a row


class CampaignSet(Collection[int]):
    """Campaign ids as one sorted array: 8 bytes each, where a set of ints takes ~60."""

    __slots__ = ("_ids",)

    def __init__(self, ids: Ids) -> None:
        found = ids[ids != 0]  # 0: a row without a usable id
        if found.dtype != np.int64:  # Python ints, some too large for int64: not campaigns
            found = np.array([i for i in found.tolist() if i < 2**63], dtype=np.int64)
        found.sort()  # a copy already: sorted in place (np.unique hashes: 40 MB a million ids)
        first = np.ones(len(found), dtype=bool)
        np.not_equal(found[1:], found[:-1], out=first[1:])
        self._ids = found[first]

    def __contains__(self, item: object) -> bool:
        if not isinstance(item, int) or isinstance(item, bool) or not -(2**63) <= item < 2**63:
            return False
        at = int(np.searchsorted(self._ids, item))
        return at < len(self._ids) and int(self._ids[at]) == item

    def __iter__(self) -> Iterator[int]:
        return iter(self._ids.tolist())

    def __len__(self) -> int:
        return len(self._ids)


@dataclass(slots=True)
class Survey:
    """What the pass over the whole input found before anything is sent."""

    rows: int = 0  # rows to send (valid, not applied by an earlier run)
    invalid: int = 0
    shown: list[tuple[int, str]] = field(default_factory=list)  # the first invalid rows
    done: int = 0  # rows an earlier run applied (--resume)
    skipped: Counter[Status] = field(default_factory=Counter)  # suppressed, the same lead again
    accounts: Counter[str] = field(default_factory=Counter)  # rows to send, by account
    campaigns: Collection[int] = ()  # every campaign of the input
    types: pd.DataFrame | None = None  # a cell of each type of each column (``cell_types``)


@dataclass(slots=True)
class _Batch:
    """A batch of the input made ready to send: its rows to send, and the outcomes known
    without sending (invalid rows; rows an earlier run applied, and what they changed)."""

    first: int  # the position of its first row in the input (from 1)
    size: int
    send: list[Row]
    known: dict[int, Outcome]
    changes: dict[int, Changes]
    campaigns: dict[int, int | None] = field(default_factory=dict)  # of known rows, by number


@dataclass
class RunRows:
    """The rows of a run, surveyed (``surveyed``), then prepared a batch at a time (iterate
    it for each batch's rows to send), with each batch's outcomes kept (``finished``) until
    the report asks for them (``results``)."""

    source: InputFile
    vocabulary: Vocabulary
    operation: Operation
    wire: Wire
    accounts: Accounts | None = None  # an accounts file: each row must name one of its accounts
    numbering: Numbering = field(default_factory=Numbering)
    ids: Ids | None = None  # every row's campaign id, when read already (the file's check)
    successes: Mapping[str, Success] = field(default_factory=dict)  # --resume: by row key
    record: Callable[[int, Outcome], None] | None = None  # journals each invalid row
    # told of each row that ends unsent (by number), with its campaign (None: it has none)
    on_known: Callable[[int, int | None, Outcome], None] | None = None
    suppression: Suppression | None = None  # --suppress: leads never sent
    same_lead: Mapping[int, int] = field(default_factory=dict)  # a row -> the row it repeats
    stop: Callable[[str], None] | None = None  # stops the run (the file changed under it)
    stamp: tuple[int, int] | None = None  # the input's size and mtime when the run began
    types: bool = False  # the survey keeps the cell types (for a Parquet report)
    verify: bool = False  # --verify: rows an earlier run applied are read back (``Row.applied``)
    batch_rows: int = field(default_factory=lambda: BATCH_ROWS)  # read when made (tests)
    unreached: str = "run interrupted"  # why rows of batches never taken were not sent
    repeats: Repeats = field(default_factory=dict)
    _spill: Spill = field(default_factory=Spill)
    _taken: _Batch | None = None  # the batch being sent
    _whole: tuple[pd.DataFrame, _Batch] | None = None  # the only batch of a file of one

    def __post_init__(self) -> None:
        campaigns = self.operation.key is None and self.operation.one_row_per_campaign
        if self.ids is not None and campaigns:
            self.repeats = self._numbered(repeated_among([self.ids]))

    def surveyed(self) -> Survey:
        """One pass over the input, keeping only counts (and the chunk of a file of one
        batch). Without ``ids`` (or when what must not repeat is a campaign's key, which they
        do not show), the campaigns on several rows are found on the way, and the counts
        mended once they are known."""
        identity = self.operation.identity
        if identity is not None:  # the same lead twice: found from two columns, first
            self.same_lead, every = repeated_leads(self.source, identity, self.numbering)
            self.ids = self.ids if self.ids is not None else every
        survey = Survey()
        late = _Late(self.operation) if self.ids is None or self.operation.key else None
        for offset, chunk in self._chunks():
            batch = self.prepare(offset, chunk)
            if late is not None:
                late.add(chunk, batch, self.numbering)
            survey.rows += sum(row.applied is None for row in batch.send)
            survey.accounts.update(row.account or "" for row in batch.send)
            for number, outcome in batch.known.items():
                if outcome.status is Status.INVALID:
                    survey.invalid += 1
                    if len(survey.shown) < SHOWN_INVALID:
                        survey.shown.append((number, outcome.error))
                elif outcome.status is Status.SUCCEEDED:
                    survey.done += 1
                else:  # suppressed, or the same lead as an earlier row
                    survey.skipped[outcome.status] += 1
            if self.types:
                found = [survey.types] if survey.types is not None else []
                survey.types = cell_types([*found, chunk], list(self.source.columns))
            if len(chunk) == self.source.rows:
                self._whole = (chunk, batch)
        ids = late.ids() if late is not None else self.ids
        assert ids is not None
        if late is not None:
            self.repeats = self._numbered(repeated_among([late.targets()]))
            late.mend(survey, self.repeats, self.numbering)
            if self.repeats and self._whole is not None:  # judged without them: judge again
                chunk, _ = self._whole
                self._whole = (chunk, self.prepare(0, chunk))
        survey.campaigns = CampaignSet(ids)
        say_unsent(survey.skipped, self.suppression)
        return survey

    def prepare(self, offset: int, chunk: pd.DataFrame) -> _Batch:
        """The rows of ``chunk`` (``offset`` rows into the input) judged, and matched against
        the rows an earlier run applied."""
        validation = validate(
            chunk,
            self.vocabulary,
            offset=offset,
            repeats=self.repeats,
            operation=self.operation,
            wire=self.wire,
        )
        if self.numbering.numbers is not None:
            validation = _renumbered(validation, self.numbering)
        if self.accounts is not None:
            validation = assign(validation, self.accounts.accounts, self.accounts.path)
        known = {r.number: Outcome(Status.INVALID, error=r.error) for r in validation.rejections}
        campaigns = {r.number: r.campaign_id for r in validation.rejections}
        send: list[Row] = []
        changes: dict[int, Changes] = {}
        for row in validation.rows:
            unsent = self._unsent(row)
            if unsent is not None:
                known[row.number] = unsent
                campaigns[row.number] = row.campaign_id
                continue
            earlier = (
                self.successes.get(row_key(row.campaign_id, row.payload))
                if self.successes
                else None
            )
            if earlier is not None:
                known[row.number] = earlier.outcome
                if earlier.changes:
                    changes[row.number] = earlier.changes
                if self.verify and earlier.outcome.status is Status.SUCCEEDED:
                    send.append(replace(row, applied=earlier.outcome))  # not sent: read back
            else:
                send.append(row)
        return _Batch(offset + 1, len(chunk), send, known, changes, campaigns)

    def _unsent(self, row: Row) -> Outcome | None:
        """How a valid row ends without being sent: its lead suppressed, or the same as an
        earlier row's (sent once); None for a row to send."""
        identity = self.operation.identity
        if identity is None:
            return None
        if self.suppression is not None:
            why = self.suppression.match(str(row.payload.get(identity, "")))
            if why is not None:
                return Outcome(Status.SUPPRESSED, error=why)
        first = self.same_lead.get(row.number)
        return Outcome(Status.UNCHANGED, error=same_lead(first)) if first is not None else None

    def __iter__(self) -> Iterator[Sequence[Row]]:
        whole, self._whole = self._whole, None  # from now on the spill holds it
        chunks = [(0, whole[0])] if whole is not None else self._chunks()
        for offset, chunk in chunks:
            if self.stamp is not None and stamp(self.source.path) != self.stamp:
                reason = (
                    f"run aborted: {self.source.path} changed during the run; "
                    f"rows {offset + 1} to {self.source.rows} were not sent"
                )
                log.error("%s", reason)
                if self.stop is not None:
                    self.stop(reason)
                return
            self._taken = batch = whole[1] if whole is not None else self.prepare(offset, chunk)
            for number, outcome in batch.known.items():
                if self.record is not None:  # a run's rows (a plan's are not finished)
                    row_finished(number, batch.campaigns.get(number), None, outcome)
                    if outcome.status is Status.INVALID:
                        self.record(number, outcome)
                if self.on_known is not None:
                    self.on_known(number, batch.campaigns.get(number), outcome)
            yield batch.send

    def _chunks(self) -> Iterator[tuple[int, pd.DataFrame]]:
        offset = 0
        for chunk in self.source.chunks(self.batch_rows):
            yield offset, chunk
            offset += len(chunk)

    def finished(self, outcomes: Mapping[int, Outcome], changes: Mapping[int, Changes]) -> None:
        """The batch taken last has ended so: keep its rows' outcomes until the report."""
        taken = self._taken
        if taken is None:
            return
        self._taken = None
        last = taken.first + taken.size - 1
        every = {**taken.known, **outcomes}
        self._spill.add(taken.first, last, every, {**taken.changes, **changes})

    @property
    def pending(self) -> bool:
        """Whether a batch was taken and has not been ``finished``."""
        return self._taken is not None

    def results(
        self, offset: int, chunk: pd.DataFrame
    ) -> tuple[dict[int, Outcome], dict[int, Changes]]:
        """The outcomes and changes of ``chunk``'s rows (``offset`` rows into the input), by
        row number, for the report."""
        numbers = self.numbering.span(offset, len(chunk))
        outcomes, changes = self._spill.between(offset + 1, numbers)
        if len(outcomes) < len(chunk):  # rows of batches the run never reached
            batch = self.prepare(offset, chunk)
            unsent = Outcome(Status.NOT_ATTEMPTED, error=self.unreached)
            for row in batch.send:
                outcomes.setdefault(row.number, unsent)
            for number, outcome in batch.known.items():
                outcomes.setdefault(number, outcome)
            for number, changed in batch.changes.items():
                changes.setdefault(number, changed)
        return outcomes, changes

    def close(self) -> None:
        self._spill.close()

    def _numbered(self, repeats: Mapping[int, Sequence[int]]) -> Repeats:
        """``repeats`` (by position) by row number."""
        if self.numbering.numbers is None:
            return repeats
        return {cid: [self.numbering(p) for p in rows] for cid, rows in repeats.items()}


def _renumbered(validation: Validation, numbering: Numbering) -> Validation:
    return Validation(
        tuple(replace(row, number=numbering(row.number)) for row in validation.rows),
        tuple(replace(r, number=numbering(r.number)) for r in validation.rejections),
    )


class _Late:
    """What a survey that does not know the repeated campaigns yet keeps of each row, a few
    bytes a row, to mend its counts once it does: its campaign, and what it found of it."""

    def __init__(self, operation: Operation) -> None:
        self._operation = operation
        self._ids: list[Ids] = []
        self._targets: list[Ids] = []  # of an operation with a key: each row's campaign and key
        self._found: list[npt.NDArray[np.int8]] = []
        self._accounts: list[npt.NDArray[np.int32]] = []
        self._names: dict[str, int] = {}
        self._errors: dict[int, str] = {}  # the first invalid rows' errors, by number

    def add(self, chunk: pd.DataFrame, batch: _Batch, numbering: Numbering) -> None:
        self._ids.append(campaign_ids(chunk[CAMPAIGN_ID]))
        if self._operation.key is not None:
            self._targets.append(target_ids(chunk, self._operation))
        found = np.full(batch.size, _SEND, dtype=np.int8)
        accounts = np.full(batch.size, -1, dtype=np.int32)
        at = {number: i for i, number in enumerate(numbering.span(batch.first - 1, batch.size))}
        for number, outcome in batch.known.items():
            invalid = outcome.status is Status.INVALID
            found[at[number]] = _INVALID if invalid else _DONE
            if invalid and len(self._errors) < SHOWN_INVALID:
                self._errors[number] = outcome.error
        for row in batch.send:
            accounts[at[row.number]] = self._names.setdefault(row.account or "", len(self._names))
        self._found.append(found)
        self._accounts.append(accounts)

    def ids(self) -> Ids:
        return np.concatenate(self._ids) if self._ids else np.zeros(0, np.int64)

    def targets(self) -> Ids:
        """What must not be on two rows: each row's campaign (``ids``), or its target."""
        if self._operation.key is None:
            return self.ids()
        return np.concatenate(self._targets) if self._targets else np.zeros(0, np.int64)

    def mend(self, survey: Survey, repeats: Repeats, numbering: Numbering) -> None:
        """The rows of ``repeats`` are invalid: ``survey``'s counts and first invalid rows as
        they would have been had they been known from the start."""
        if not repeats:
            return
        found, accounts = np.concatenate(self._found), np.concatenate(self._accounts)
        names = {index: name for name, index in self._names.items()}
        position = {numbering(p): p for p in range(1, len(found) + 1)} if numbering.numbers else {}
        every = (number for numbers in repeats.values() for number in numbers)
        shown = sorted({*self._errors, *heapq.nsmallest(SHOWN_INVALID, every)})[:SHOWN_INVALID]
        errors = {number: self._errors.get(number, "") for number in shown}
        for campaign, numbers in repeats.items():
            why = repeated(campaign, numbers, self._operation.key)
            for number in numbers:
                at = position.get(number, number) - 1
                if found[at] == _SEND:
                    survey.rows -= 1
                    survey.accounts[names[int(accounts[at])]] -= 1
                elif found[at] == _DONE:
                    survey.done -= 1
                survey.invalid += int(found[at] != _INVALID)
                found[at] = _INVALID
                if number in errors:  # one of the rows shown: the repeat first, as validation says
                    errors[number] = f"{why}; {errors[number]}" if errors[number] else why
        survey.accounts += Counter()  # drops the accounts left with no row
        survey.shown = list(errors.items())


def stamp(path: Path) -> tuple[int, int] | None:
    """The size and modification time of ``path``: whether it changed since."""
    try:
        found = path.stat()
    except OSError:
        return None
    return found.st_size, found.st_mtime_ns
