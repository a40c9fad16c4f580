"""Each batch's outcomes and changes, kept on disk from the moment the batch ends until the report
is written: a long run holds one batch's in memory, not every row's."""

from __future__ import annotations

import bisect
import contextlib
import logging
import pickle
import tempfile
from collections.abc import Sequence
from typing import IO

from bulkrunner.model import Changes, Outcome

log = logging.getLogger("bulkrunner")

Kept = tuple[dict[int, Outcome], dict[int, Changes]]


class Spill:
    """Each batch's outcomes and changes (by row number), pickled to a temporary file (deleted
    when closed) and read back a batch at a time; kept in memory if the temporary file cannot be
    written, so that no row's outcome is lost. A batch is the rows at positions ``first`` to
    ``last`` (from 1) of the table read."""

    def __init__(self) -> None:
        self._file: IO[bytes] | None = None
        self._starts: list[int] = []  # each batch's first position
        self._ends: list[int] = []
        self._places: list[int | Kept] = []
        self._loaded: tuple[int, Kept] | None = None

    def add(
        self, first: int, last: int, outcomes: dict[int, Outcome], changes: dict[int, Changes]
    ) -> None:
        held: int | Kept = (outcomes, changes)
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

    def between(self, first: int, numbers: Sequence[int]) -> Kept:
        """The outcomes and changes kept for the rows at positions ``first`` on, whose numbers
        are ``numbers``, by row number."""
        outcomes: dict[int, Outcome] = {}
        changes: dict[int, Changes] = {}
        last = first + len(numbers) - 1
        at = max(0, bisect.bisect_right(self._starts, first) - 1)
        while at < len(self._starts) and self._starts[at] <= last:
            if self._ends[at] >= first:
                held, changed = self._batch(at)
                start, end = max(first, self._starts[at]), min(last, self._ends[at])
                for number in numbers[start - first : end - first + 1]:
                    if number in held:
                        outcomes[number] = held[number]
                    if number in changed:
                        changes[number] = changed[number]
            at += 1
        return outcomes, changes

    def _batch(self, at: int) -> Kept:
        if self._loaded is not None and self._loaded[0] == at:
            return self._loaded[1]
        place = self._places[at]
        if isinstance(place, int):
            assert self._file is not None
            self._file.seek(place)
            loaded: Kept = pickle.load(self._file)
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
