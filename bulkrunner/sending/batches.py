"""A real run's rows a batch at a time, and their outcomes kept on disk until the report.

A run of a long file is streamed, so that its memory stays flat however many rows it has: the
input is read ``BATCH_ROWS`` rows at a time, and each batch is validated, read, planned, backed
up, sent and verified (``session.Session``) before the next is read. As a batch ends its rows'
outcomes and changes go to a temporary file (``Spill``), and the report is written from the
input and that file, a chunk at a time, once the run ends. A file of up to ``BATCH_ROWS`` rows is
one batch: such a run is what it always was.

    input ─▶ survey (counts, first invalid rows, accounts used, --resume's matches)
          ─▶ batch 1 ─▶ session ─▶ spill ─▶ batch 2 ─▶ ... ─▶ report (input + spill)

Rows a run never reached (it stopped early) are judged again as the report is written: an
invalid row is ``invalid``, one an earlier run applied (``--resume``) ``succeeded``, and the
rest ``not_attempted``, with why the run stopped.
"""

from __future__ import annotations

import bisect
import contextlib
import logging
import pickle
import tempfile
from collections import Counter
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from bulkrunner.config.accounts import Accounts, assign
from bulkrunner.input.loading import InputFile
from bulkrunner.input.validation import Repeats, validate
from bulkrunner.model import Changes, Outcome, Row, Status
from bulkrunner.operations.base import Operation, Wire
from bulkrunner.operations.fields import Vocabulary
from bulkrunner.output.problems import SHOWN_INVALID
from bulkrunner.records.journal import Success, row_key

log = logging.getLogger("bulkrunner")

# rows of a streamed run read, planned, backed up and sent at a time: a batch of rows in flight
# takes ≈2.5 KB a row (50,000: a 246 MB peak, 20,000: 188 MB), and each batch rewrites the backup
BATCH_ROWS = 20_000

Record = Callable[[str, int, "int | None", Outcome], None]  # the journal's record()


class CampaignSet(Collection[int]):
    """Campaign ids as one sorted array: 8 bytes each, where a set of ints takes ~60."""

    __slots__ = ("_ids",)

    def __init__(self, ids: npt.NDArray[Any]) -> None:
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
class Prepared:
    """One chunk of the input made ready to send: the outcomes known without sending (invalid
    rows; rows an earlier run applied, with ``--resume``, and what they changed) and the rows
    to send."""

    known: dict[int, Outcome]
    send: list[Row]
    changes: dict[int, Changes] = field(default_factory=dict)  # of the rows applied earlier


@dataclass(slots=True)
class Survey:
    """What a pass over the whole input found before anything is sent."""

    rows: int = 0  # rows to send (valid, not applied by an earlier run)
    invalid: int = 0
    shown: list[tuple[int, str]] = field(default_factory=list)  # the first invalid rows
    done: int = 0  # rows an earlier run applied (--resume)
    accounts: Counter[str] = field(default_factory=Counter)  # rows to send, by account
    whole: Prepared | None = None  # the only batch of a file of one


@dataclass
class RunRows:
    """The rows of a real run, prepared a batch at a time (iterate it for each batch's rows to
    send), with each batch's outcomes kept (``finished``) until the report asks for them
    (``results``)."""

    source: InputFile
    vocabulary: Vocabulary
    operation: Operation
    wire: Wire
    repeats: Repeats
    accounts: Accounts | None = None
    successes: Mapping[str, Success] = field(default_factory=dict)  # --resume: by row key
    record: Record | None = None  # journals each invalid row as its batch is taken
    stop: Callable[[str], None] | None = None  # stops the run (the file changed under it)
    stamp: tuple[int, int] | None = None  # the input's size and mtime when the run began
    batch_rows: int = field(default_factory=lambda: BATCH_ROWS)  # read when made (tests)
    unreached: str = "run interrupted"  # why rows of batches never taken were not sent
    survey: Survey = field(default_factory=Survey)
    _spill: Spill = field(default_factory=lambda: Spill())
    _taken: Prepared | None = None  # the batch being sent
    _first: int = 0  # the numbers of its first and last rows
    _last: int = 0

    def surveyed(self) -> Survey:
        """Prepare every batch once, keeping only counts (and the batch, for a file of one)."""
        survey = Survey()
        for _, size, prepared in self._prepared():
            survey.rows += len(prepared.send)
            survey.accounts.update(row.account for row in prepared.send if row.account)
            for number, outcome in prepared.known.items():
                if outcome.status is Status.INVALID:
                    survey.invalid += 1
                    if len(survey.shown) < SHOWN_INVALID:
                        survey.shown.append((number, outcome.error))
                else:
                    survey.done += 1
            if size == self.source.rows:
                survey.whole = prepared
        self.survey = survey
        return survey

    def prepare(self, offset: int, chunk: pd.DataFrame) -> Prepared:
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
        if self.accounts is not None:
            validation = assign(validation, self.accounts.accounts, self.accounts.path)
        known = {r.number: Outcome(Status.INVALID, error=r.error) for r in validation.rejections}
        send: list[Row] = []
        changes: dict[int, Changes] = {}
        for row in validation.rows:
            earlier = (
                self.successes.get(row_key(row.campaign_id, row.payload))
                if self.successes
                else None
            )
            if earlier is not None:
                known[row.number] = earlier.outcome
                if earlier.changes:
                    changes[row.number] = earlier.changes
            else:
                send.append(row)
        return Prepared(known, send, changes)

    def __iter__(self) -> Iterator[Sequence[Row]]:
        whole, self.survey.whole = self.survey.whole, None  # from now on the spill holds it
        batches = [(0, self.source.rows, whole)] if whole is not None else self._prepared()
        for offset, size, prepared in batches:
            if self.stamp is not None and stamp(self.source.path) != self.stamp:
                reason = (
                    f"run aborted: {self.source.path} changed during the run; "
                    f"rows {offset + 1} to {self.source.rows} were not sent"
                )
                log.error("%s", reason)
                if self.stop is not None:
                    self.stop(reason)
                return
            self._taken, self._first, self._last = prepared, offset + 1, offset + size
            if self.record is not None:
                for number, outcome in prepared.known.items():
                    if outcome.status is Status.INVALID:
                        self.record("", number, None, outcome)
            yield prepared.send

    def _prepared(self) -> Iterator[tuple[int, int, Prepared]]:
        offset = 0
        for chunk in self.source.chunks(self.batch_rows):
            yield offset, len(chunk), self.prepare(offset, chunk)
            offset += len(chunk)

    def finished(self, outcomes: Mapping[int, Outcome], changes: Mapping[int, Changes]) -> None:
        """The batch taken last has ended so: keep its rows' outcomes until the report."""
        taken = self._taken
        if taken is None:
            return
        self._taken = None
        every = {**taken.known, **outcomes}
        self._spill.add(self._first, self._last, every, {**taken.changes, **changes})

    @property
    def pending(self) -> bool:
        """Whether a batch was taken and has not been ``finished``."""
        return self._taken is not None

    def results(
        self, offset: int, chunk: pd.DataFrame
    ) -> tuple[dict[int, Outcome], dict[int, Changes]]:
        """The outcomes and changes of ``chunk``'s rows (``offset`` rows into the input), by
        the row's number in the chunk (from 1), for the report."""
        first, last = offset + 1, offset + len(chunk)
        outcomes, changes = self._spill.between(first, last)
        if len(outcomes) < len(chunk):  # rows of batches the run never reached
            prepared = self.prepare(offset, chunk)
            unsent = Outcome(Status.NOT_ATTEMPTED, error=self.unreached)
            for row in prepared.send:
                outcomes.setdefault(row.number, unsent)
            for number, outcome in prepared.known.items():
                outcomes.setdefault(number, outcome)
            for number, changed in prepared.changes.items():
                changes.setdefault(number, changed)
        return (
            {n - offset: outcome for n, outcome in outcomes.items()},
            {n - offset: change for n, change in changes.items()},
        )

    def close(self) -> None:
        self._spill.close()


def stamp(path: Path) -> tuple[int, int] | None:
    """The size and modification time of ``path``: whether it changed since."""
    try:
        found = path.stat()
    except OSError:
        return None
    return found.st_size, found.st_mtime_ns


class Spill:
    """Each batch's outcomes and changes, pickled to a temporary file (deleted when closed)
    and read back a batch at a time; kept in memory if the temporary file cannot be written,
    so that no row's outcome is lost."""

    def __init__(self) -> None:
        self._file: IO[bytes] | None = None
        self._starts: list[int] = []  # each batch's first row number
        self._ends: list[int] = []
        self._places: list[int | tuple[dict[int, Outcome], dict[int, Changes]]] = []
        self._loaded: tuple[int, tuple[dict[int, Outcome], dict[int, Changes]]] | None = None

    def add(
        self, first: int, last: int, outcomes: dict[int, Outcome], changes: dict[int, Changes]
    ) -> None:
        held: int | tuple[dict[int, Outcome], dict[int, Changes]] = (outcomes, changes)
        try:
            if self._file is None:
                self._file = tempfile.TemporaryFile(prefix="bulkrunner-")  # noqa: SIM115 (close())
            place = self._file.seek(0, 2)
            pickle.dump(held, self._file, protocol=pickle.HIGHEST_PROTOCOL)
            held = place
        except OSError as exc:  # a full disk: hold them here rather than lose them
            log.warning("cannot keep a batch's outcomes on disk (%s): holding them in memory", exc)
        self._starts.append(first)
        self._ends.append(last)
        self._places.append(held)

    def between(self, first: int, last: int) -> tuple[dict[int, Outcome], dict[int, Changes]]:
        """The outcomes and changes kept for rows ``first`` to ``last``, by row number."""
        outcomes: dict[int, Outcome] = {}
        changes: dict[int, Changes] = {}
        at = max(0, bisect.bisect_right(self._starts, first) - 1)
        while at < len(self._starts) and self._starts[at] <= last:
            if self._ends[at] >= first:
                held, changed = self._batch(at)
                for number in range(max(first, self._starts[at]), min(last, self._ends[at]) + 1):
                    if number in held:
                        outcomes[number] = held[number]
                    if number in changed:
                        changes[number] = changed[number]
            at += 1
        return outcomes, changes

    def _batch(self, at: int) -> tuple[dict[int, Outcome], dict[int, Changes]]:
        if self._loaded is not None and self._loaded[0] == at:
            return self._loaded[1]
        place = self._places[at]
        if isinstance(place, int):
            assert self._file is not None
            self._file.seek(place)
            loaded: tuple[dict[int, Outcome], dict[int, Changes]] = pickle.load(self._file)
        else:
            loaded = place
        self._loaded = (at, loaded)
        return loaded

    def close(self) -> None:
        if self._file is not None:
            with contextlib.suppress(OSError):
                self._file.close()
            self._file = None
        self._loaded = None
