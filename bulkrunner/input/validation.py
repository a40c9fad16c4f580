"""Turn loaded rows into request payloads, or into a reason the row cannot be sent.

Every row is judged on its own; an invalid row never stops the valid ones. The work is done a
column at a time: each distinct cell value is parsed once (whole numbers, the one column where
every value differs, in bulk), and the per-row answers are spread back with numpy. So judging
100,000 rows costs little more than reading them, and a row costs Python time only when it is
invalid (to word its error) or is turned into a payload.

The one check that needs every row at once, a campaign on two rows, is split out: a long file
is judged a chunk at a time with ``offset`` and the ``repeats`` of the whole file, found first
from its ``campaign_id`` column alone (:func:`campaign_ids`, :func:`repeated_among`). For an
operation with a ``key`` (a lead's address), what must not repeat is a campaign and key
together: each row's pair, as one number (:func:`target_ids`), takes the campaign id's place.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from bulkrunner.input.distinct import Flags, Objects, distinct, parse_distinct
from bulkrunner.model import Rejection, Row, Validation
from bulkrunner.operations import sent_columns
from bulkrunner.operations.base import Operation, Wire
from bulkrunner.operations.cells import (
    ID_FIELD,
    PROBLEMS_APART,
    field_of,
    repeated,
    row_error,
)
from bulkrunner.operations.fields import ACCOUNT, CAMPAIGN_ID, Field, Vocabulary
from bulkrunner.operations.settings import SETTINGS

# campaign id (or target id: ``target_ids``) -> the numbers of the rows it appears on
Repeats = Mapping[int, Sequence[int]]


def validate(
    frame: pd.DataFrame,
    vocabulary: Vocabulary,
    *,
    offset: int = 0,
    repeats: Repeats | None = None,
    operation: Operation | None = None,
    wire: Wire | None = None,
) -> Validation:
    """Validate every row of ``frame`` (as returned by ``load_input``) for ``vocabulary``.

    ``offset`` is the number of rows before ``frame`` in its file, and ``repeats`` the repeated
    campaign ids of the whole file (by default, those of ``frame``).
    """
    judged = _Judgement.of(frame, vocabulary, offset, repeats, operation, wire)
    errors = judged.errors()
    rows: list[Row] = []
    rejections: list[Rejection] = []
    settings = [(c.name, c.values.tolist(), c.blank.tolist()) for c in judged.settings]
    accounts = _accounts(frame)
    for index, (campaign_id, error) in enumerate(
        zip(judged.ids.values.tolist(), errors, strict=True)
    ):
        number = offset + index + 1
        if error:
            known = campaign_id if isinstance(campaign_id, int) else None  # None, BLANK: no id
            rejections.append(Rejection(number, known, error))
        else:
            payload = {name: values[index] for name, values, blank in settings if not blank[index]}
            account = None if accounts is None else accounts[index]
            rows.append(Row(number, campaign_id, payload, account))
    return Validation(tuple(rows), tuple(rejections))


@dataclass(frozen=True, slots=True)
class RowJudgement:
    """A chunk judged without building payloads: each row's errors (``""`` for a valid row),
    and how many valid rows set each setting column (a blank cell leaves it unchanged)."""

    errors: list[str]
    fields: dict[str, int]


def judge_rows(
    frame: pd.DataFrame,
    vocabulary: Vocabulary,
    *,
    offset: int = 0,
    repeats: Repeats | None = None,
    operation: Operation | None = None,
    wire: Wire | None = None,
) -> RowJudgement:
    """Why each row of ``frame`` is invalid (``""`` for a valid row): what ``validate`` finds,
    without building the payloads (all a dry run or ``bulkrunner validate`` needs), with the
    per-field counts a dry run's preview shows, taken from the blanks the judgement found (no
    second look at the cells)."""
    judgement = _Judgement.of(frame, vocabulary, offset, repeats, operation, wire)
    errors = judgement.errors()
    valid = np.fromiter((not error for error in errors), dtype=bool, count=len(errors))
    fields = {
        column.name: int(np.count_nonzero(valid & ~column.blank)) for column in judgement.settings
    }
    return RowJudgement(errors, fields)


def campaign_ids(column: pd.Series[Any]) -> npt.NDArray[Any]:
    """Each cell's campaign id, 0 where it has none (blank or invalid): int64, or Python ints
    in an object array if one is too large for int64."""
    return _ids(_judge_column(column, ID_FIELD, Vocabulary.DOCUMENTED))


def target_ids(frame: pd.DataFrame, operation: Operation) -> npt.NDArray[Any]:
    """Each row's target (``Operation.target``) as a number, to find the rows that repeat one:
    its campaign id (``campaign_ids``), or for an operation with a ``key``, a 64-bit hash of
    its campaign id and key (0 where either is blank or invalid)."""
    ids = campaign_ids(frame[CAMPAIGN_ID])
    key = operation.key
    if key is None:
        return ids
    if key not in frame.columns:
        return np.zeros(len(frame), np.int64)
    return _keyed(ids, _judge_column(frame[key], field_of(operation, key), Vocabulary.DOCUMENTED))


def _keyed(ids: npt.NDArray[Any], keys: _Column) -> npt.NDArray[np.int64]:
    """Each row's campaign id and key (a judged column) as one number, 0 where either is
    missing: two rows have the same number when they have the same pair."""
    valid = (~keys.errors.astype(bool) & ~keys.blank & (ids != 0)).tolist()
    pairs = [
        f"{campaign}\x00{key}" if ok else ""
        for campaign, key, ok in zip(ids.tolist(), keys.values.tolist(), valid, strict=True)
    ]
    hashed = pd.util.hash_array(np.array(pairs, dtype=object)).view(np.int64)
    hashed[hashed == 0] = 1  # 0 means "no target"
    hashed[~np.array(valid, dtype=bool)] = 0
    return hashed


def repeated_among(ids: Iterable[npt.NDArray[Any]]) -> dict[int, list[int]]:
    """Each campaign id that appears on more than one row, with those row numbers, from the
    ``campaign_ids`` of a whole file's chunks."""
    found = list(ids)
    return _repeats(np.concatenate(found) if found else np.zeros(0, np.int64), 0)


def _accounts(frame: pd.DataFrame) -> list[str] | None:
    """Each row's ``account`` cell as stripped text ("" when blank), None without the column;
    which names are known is the accounts file's to say (``bulkrunner.config.accounts``)."""
    if ACCOUNT not in frame.columns:
        return None
    return ["" if pd.isna(cell) else str(cell).strip() for cell in frame[ACCOUNT].tolist()]


@dataclass(frozen=True, slots=True)
class _Column:
    """One column judged: per row, the parsed value (BLANK when blank, None when invalid), the
    error ("name: reason", or None) and whether the cell is blank."""

    name: str
    values: Objects
    errors: Objects
    blank: Flags


@dataclass(frozen=True, slots=True)
class _Judgement:
    ids: _Column  # errors here are the whole campaign_id message, repeats included
    settings: tuple[_Column, ...]
    nothing_to_send: Flags
    operation: Operation
    wire: Wire

    @classmethod
    def of(
        cls,
        frame: pd.DataFrame,
        vocabulary: Vocabulary,
        offset: int,
        repeats: Repeats | None,
        operation: Operation | None = None,
        wire: Wire | None = None,
    ) -> _Judgement:
        operation = operation or SETTINGS
        wire = wire or Wire(vocabulary)
        ids = _judge_column(frame[CAMPAIGN_ID], ID_FIELD, vocabulary)

        settings = tuple(
            _judge_column(frame[name], field_of(operation, name), vocabulary)
            for name in sent_columns(list(frame.columns), operation, wire)
        )
        numbers = _ids(ids)
        key = next((column for column in settings if column.name == operation.key), None)
        if operation.key is not None:  # what repeats is a campaign's key, not the campaign
            numbers = _keyed(numbers, key) if key is not None else np.zeros(len(frame), np.int64)
        if not operation.one_row_per_campaign:
            repeats = {}  # (a lead's campaign is on many rows)
        elif repeats is None:
            repeats = _repeats(numbers, offset)
        messages = ids.errors.copy()
        messages[ids.blank] = f"{CAMPAIGN_ID}: missing"
        worded: dict[int, str] = {}  # once per campaign (or target): its rows may be many
        for index in np.flatnonzero(_among(numbers, repeats)).tolist():
            target = int(numbers[index])
            if target not in worded:
                worded[target] = repeated(target, repeats[target], operation.key)
            messages[index] = worded[target]
        nothing = np.ones(len(frame), dtype=bool)
        for column in settings:
            nothing &= column.blank
        ids_column = _Column(CAMPAIGN_ID, ids.values, messages, ids.blank)
        return cls(ids_column, settings, nothing, operation, wire)

    def errors(self) -> list[str]:
        """Each row's errors joined in column order, ``""`` for a valid row."""
        columns = [self.ids.errors, *(column.errors for column in self.settings)]
        failing = self.nothing_to_send.copy()
        for errors in columns:
            failing |= errors.astype(bool)  # None or a message
        out = [""] * len(failing)
        by_column = [errors.tolist() for errors in columns]
        nothing = self.nothing_to_send.tolist()
        for index in np.flatnonzero(failing).tolist():
            out[index] = row_error([errors[index] for errors in by_column], nothing[index])
        if type(self.operation).check is not Operation.check:  # rules across a row's columns
            values = [
                (c.name, c.values.tolist(), (c.blank | c.errors.astype(bool)).tolist())
                for c in self.settings
            ]
            for index, failed in enumerate(failing.tolist()):
                payload = {name: cells[index] for name, cells, out_ in values if not out_[index]}
                if not failed:
                    out[index] = self.operation.check(payload, self.wire)
                elif also := self.operation.also_invalid(payload, self.wire):
                    out[index] = f"{out[index]}{PROBLEMS_APART}{also}"
        return out


def _ids(column: _Column) -> npt.NDArray[Any]:
    """The parsed campaign ids of a judged ``campaign_id`` column, 0 where there is none."""
    valid = ~column.errors.astype(bool) & ~column.blank  # errors: None or a message
    ids = np.where(valid, column.values, 0)
    try:
        return ids.astype(np.int64)
    except OverflowError:
        return ids  # a few absurdly large ids: keep them as Python ints


def _repeats(ids: npt.NDArray[Any], offset: int) -> dict[int, list[int]]:
    """Each id (0 = none) on more than one row, with those row numbers (offset + position).
    Sorting keeps the memory to a few bytes a row, and only repeated ids reach Python."""
    order = np.argsort(ids, kind="stable")  # equal ids keep their row order
    ordered = ids[order]
    same = ordered[1:] == ordered[:-1]
    same &= ordered[1:] != 0
    if not same.any():
        return {}
    repeated = np.zeros(len(ordered), dtype=bool)
    repeated[1:] |= same
    repeated[:-1] |= same
    at = np.flatnonzero(repeated)
    values, numbers = ordered[at], order[at] + offset + 1
    starts = np.flatnonzero(np.concatenate(([True], values[1:] != values[:-1]))).tolist()
    return {
        int(values[start]): numbers[start:end].tolist()
        for start, end in zip(starts, [*starts[1:], len(values)], strict=True)
    }


def _among(ids: npt.NDArray[Any], repeats: Repeats) -> Flags:
    """Which ``ids`` are repeated campaigns."""
    if not repeats:
        return np.zeros(len(ids), dtype=bool)
    if ids.dtype == np.int64:
        with contextlib.suppress(OverflowError):  # an absurdly large repeated id: the slow way
            return np.isin(ids, np.fromiter(repeats, dtype=np.int64, count=len(repeats)))
    return np.fromiter((int(i) in repeats for i in ids), dtype=bool, count=len(ids))


def _judge_column(cells: pd.Series[Any], field: Field, vocabulary: Vocabulary) -> _Column:
    codes, cells_once = distinct(cells.to_numpy(dtype=object))
    values, errors, blank = parse_distinct(cells_once, field, vocabulary)
    return _Column(field.name, values[codes], errors[codes], blank[codes])
