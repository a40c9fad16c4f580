"""A column judged one distinct cell at a time: each distinct value is parsed once (whole numbers
in bulk), and the answers are spread back over the column's rows with numpy.

1, 1.0 and True are equal as dict keys but not as cells, so cells are told apart by type as
well as by value.
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from bulkrunner.operations.cells import BLANK, bounds, is_missing, parser
from bulkrunner.operations.fields import Field, Vocabulary
from bulkrunner.operations.syntax import lists

Objects = npt.NDArray[np.object_]
Flags = npt.NDArray[np.bool_]

_SCALARS = (str, int, float)  # and their subclasses: bool, EmptyText, numpy's float64...
_NO_VALUE = (type(None), type(pd.NA), type(pd.NaT), float)  # what pd.isna and is_missing share
_BYTES = (bytes, bytearray, memoryview)
_ODD_CELLS = (dict, set, frozenset, *_BYTES)


def distinct(cells: Objects) -> tuple[npt.NDArray[np.intp], Objects]:
    """Codes into the distinct cells: ``distinct[codes]`` is ``cells``, judged alike.

    1, 1.0 and True are equal as dict keys but not as cells: plain values are factorised in
    bulk one type at a time, blanks share one code; anything else (lists...) is keyed by type.
    """
    missing = pd.isna(cells)
    blanks = set(map(type, cells[missing]))
    present = cells[~missing] if blanks else cells
    types = set(map(type, present))
    if all(issubclass(kind, _SCALARS) for kind in types) and all(
        issubclass(kind, _NO_VALUE) for kind in blanks
    ):
        if len(types) <= 1:
            codes, distinct = pd.factorize(present)
        else:
            codes = np.empty(len(present), dtype=np.intp)
            parts: list[Objects] = []
            of_kind = np.empty(len(present), dtype=object)
            of_kind[:] = list(map(type, present))
            kind_codes, _ = pd.factorize(of_kind)
            for kind in range(len(types)):
                chosen = kind_codes == kind
                part_codes, part = pd.factorize(present[chosen])
                codes[chosen] = part_codes + sum(len(p) for p in parts)
                parts.append(part)
            distinct = np.concatenate(parts)
        if not blanks:
            return codes, distinct
        out = np.full(len(cells), len(distinct), dtype=np.intp)  # one code for every blank
        out[~missing] = codes
        with_blank = np.empty(len(distinct) + 1, dtype=object)
        with_blank[:-1] = distinct
        return out, with_blank  # its last element is None
    keys: dict[Hashable, int] = {}
    seen: list[Any] = []
    out = np.empty(len(cells), dtype=np.intp)
    for index, cell in enumerate(cells):
        key = _cache_key(cell)
        code = keys.get(key)
        if code is None:
            code = keys[key] = len(seen)
            seen.append(cell)
        out[index] = code
    distinct = np.empty(len(seen), dtype=object)
    for index, cell in enumerate(seen):
        distinct[index] = cell  # one by one: a list cell must stay one element
    return out, distinct


def _cache_key(cell: Any) -> Hashable:
    if isinstance(cell, lists()):
        return ("list", *(str(item) for item in cell))
    if isinstance(cell, _ODD_CELLS):
        return (type(cell).__name__, repr(cell))  # unhashable, or not to be mixed up with text
    # Keep 1, 1.0 and True apart: they are equal as dict keys but not as cells.
    return (type(cell).__name__, cell) if not is_missing(cell) else ("missing",)


def parse_distinct(
    distinct: Objects, field: Field, vocabulary: Vocabulary
) -> tuple[Objects, Objects, Flags]:
    """(values, errors "name: reason" or None, blank) for each distinct cell."""
    values = np.empty(len(distinct), dtype=object)
    errors = np.full(len(distinct), None, dtype=object)
    blank = np.zeros(len(distinct), dtype=bool)
    todo = np.arange(len(distinct))
    if field.kind == "int":
        whole, numbers = _plain_whole_numbers(distinct)
        if whole.any():
            values[whole] = numbers[whole].astype(object)
            for at in np.flatnonzero(whole & _out_of_range(numbers, field)).tolist():
                values[at], error = bounds(int(numbers[at]), field.minimum, field.maximum)
                errors[at] = f"{field.name}: {error}"
            todo = np.flatnonzero(~whole)
    elif field.fast is not None:
        plain = _plain_text(distinct, field.fast)
        values[plain] = distinct[plain]
        todo = np.flatnonzero(~plain)
    parse = parser(field, vocabulary)
    for index in todo.tolist():
        if isinstance(distinct[index], _ODD_CELLS):  # a JSON object, bytes... in a cell
            kind = "binary" if isinstance(distinct[index], _BYTES) else "a structured value"
            errors[index] = f"{field.name}: {kind}, not a number, text, true/false or list"
            continue
        value, error = parse(distinct[index])
        values[index] = value
        if error:
            errors[index] = f"{field.name}: {error}"
        elif value is BLANK:
            blank[index] = True
    return values, errors, blank


_ARROW_CELLS = 1_000  # fewer cells are looked at one by one: cheaper than converting them


def _plain_whole_numbers(distinct: Objects) -> tuple[Flags, npt.NDArray[np.int64]]:
    """Which cells are plainly whole numbers (ints, integral floats, ASCII digit strings), and
    their values: the bulk path of ``cells.parse_int``. The rest go through ``parse_int`` itself."""
    whole = np.zeros(len(distinct), dtype=bool)
    numbers = np.zeros(len(distinct), dtype=np.int64)
    cells = np.flatnonzero([cell is not None for cell in distinct])  # not the blank, if any
    kinds = set(map(type, distinct[cells]))
    try:
        if kinds == {int}:
            numbers[cells] = np.array(distinct[cells], dtype=np.int64)
            whole[cells] = True
        elif kinds == {float}:
            floats = np.array(distinct[cells], dtype=np.float64)
            integral = np.isfinite(floats) & (np.trunc(floats) == floats) & (abs(floats) < 2**53)
            numbers[cells[integral]] = floats[integral].astype(np.int64)
            whole[cells[integral]] = True
        elif kinds == {str} and len(cells) < _ARROW_CELLS:
            for at, text in zip(cells.tolist(), distinct[cells].tolist(), strict=True):
                if len(text) <= 18 and text.isascii() and text.isdigit():
                    numbers[at] = int(text)
                    whole[at] = True
        elif kinds == {str}:
            import pyarrow as pa
            import pyarrow.compute as pc

            texts = pa.array(distinct[cells], type=pa.string())
            digits = pc.match_substring_regex(texts, r"^[0-9]{1,18}$")
            simple = cells[digits.to_numpy(zero_copy_only=False)]
            numbers[simple] = pc.cast(texts.filter(digits), pa.int64()).to_numpy()
            whole[simple] = True
    except (OverflowError, ValueError, UnicodeError):
        whole[:] = False  # leave them all to parse_int
    return whole, numbers


def _plain_text(distinct: Objects, pattern: str) -> Flags:
    """Which cells are text (``str`` itself) matching ``pattern`` whole: a field's ``fast``
    path, checked by Arrow for the column at once."""
    plain = np.zeros(len(distinct), dtype=bool)
    cells = np.flatnonzero([type(cell) is str for cell in distinct])
    if len(cells):
        import pyarrow as pa
        import pyarrow.compute as pc

        texts = pa.array(distinct[cells], type=pa.string())
        matched = pc.match_substring_regex(texts, f"^(?:{pattern})$")
        plain[cells] = matched.to_numpy(zero_copy_only=False)
    return plain


def _out_of_range(numbers: npt.NDArray[np.int64], field: Field) -> Flags:
    out = np.zeros(len(numbers), dtype=bool)
    if field.minimum is not None:
        out |= numbers < field.minimum
    if field.maximum is not None:
        out |= numbers > field.maximum
    return out
