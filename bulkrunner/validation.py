"""Turn loaded rows into request payloads, or into a reason the row cannot be sent.

Every row is judged on its own; an invalid row never stops the valid ones. Cells are parsed a
column at a time, and each distinct cell value only once, so a file of 100,000 rows that repeats
a handful of settings costs little more than reading it.
"""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from bulkrunner.fields import (
    CAMPAIGN_ID,
    ENUMS,
    FIELDS_BY_NAME,
    Field,
    Vocabulary,
    enum_names,
)


@dataclass(frozen=True, slots=True)
class Row:
    """A valid row: the campaign to update and the exact JSON body to send."""

    number: int  # 1-based data-row number in the input file
    campaign_id: int
    payload: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class Rejection:
    """An invalid row and every reason it cannot be sent."""

    number: int
    campaign_id: int | None
    error: str


@dataclass(frozen=True, slots=True)
class Validation:
    rows: tuple[Row, ...]
    rejections: tuple[Rejection, ...]

    @property
    def total(self) -> int:
        return len(self.rows) + len(self.rejections)


class _Blank:
    """A cell that says "leave this setting unchanged"."""


BLANK = _Blank()
_Parsed = tuple[Any, str | None]  # (value or BLANK, error message)

_WHOLE = re.compile(r"[+-]?\d+(?:\.0*)?")
_TRUE = frozenset({"true", "yes", "1", "y", "t"})
_FALSE = frozenset({"false", "no", "0", "n", "f"})
_EMPTY_LIST = frozenset({"[]", "none"})


def validate(frame: pd.DataFrame, vocabulary: Vocabulary) -> Validation:
    """Validate every row of ``frame`` (as returned by ``load_input``) for ``vocabulary``."""
    ids = _parse_column(frame[CAMPAIGN_ID], lambda value: _parse_int(value, minimum=1))
    columns = {
        name: _parse_column(frame[name], _parser(FIELDS_BY_NAME[name], vocabulary))
        for name in frame.columns
        if name != CAMPAIGN_ID
    }
    repeats = _repeated_ids([value for value, _ in ids])

    rows: list[Row] = []
    rejections: list[Rejection] = []
    for index, (campaign_id, id_error) in enumerate(ids):
        number = index + 1
        errors: list[str] = []
        if campaign_id is BLANK:
            errors.append(f"{CAMPAIGN_ID}: missing")
        elif id_error:
            errors.append(f"{CAMPAIGN_ID}: {id_error}")
        elif campaign_id in repeats:
            others = _and_join([str(n) for n in repeats[campaign_id]])
            errors.append(f"{CAMPAIGN_ID}: {campaign_id} appears in rows {others}")
        payload: dict[str, Any] = {}
        for name, parsed in columns.items():
            value, error = parsed[index]
            if error:
                errors.append(f"{name}: {error}")
            elif value is not BLANK:
                payload[name] = value
        if not payload and not any(not e.startswith(CAMPAIGN_ID) for e in errors):
            errors.append("nothing to send: every setting is blank")
        known_id = campaign_id if isinstance(campaign_id, int) and not id_error else None
        if errors:
            rejections.append(Rejection(number, known_id, "; ".join(errors)))
        else:
            assert known_id is not None
            rows.append(Row(number, known_id, payload))
    return Validation(tuple(rows), tuple(rejections))


def _parse_column(column: pd.Series[Any], parse: Callable[[Any], _Parsed]) -> list[_Parsed]:
    """Parse every cell of ``column``, each distinct value once."""
    cache: dict[Hashable, _Parsed] = {}
    out: list[_Parsed] = []
    for cell in column.tolist():
        key = _cache_key(cell)
        parsed = cache.get(key)
        if parsed is None:
            parsed = cache[key] = parse(cell)
        out.append(parsed)
    return out


def _cache_key(cell: Any) -> Hashable:
    if isinstance(cell, list | tuple | np.ndarray):
        return ("list", *(str(item) for item in cell))
    # Keep 1, 1.0 and True apart: they are equal as dict keys but not as cells.
    return (type(cell).__name__, cell) if not _is_missing(cell) else ("missing",)


def _parser(field: Field, vocabulary: Vocabulary) -> Callable[[Any], _Parsed]:
    match field.kind:
        case "int":
            return lambda value: _parse_int(value, field.minimum, field.maximum)
        case "bool":
            return _parse_bool
        case "text":
            return _parse_text
        case "enum":
            return lambda value: _parse_enum(field.name, value, vocabulary)
        case "enum_list":
            return lambda value: _parse_enum_list(field.name, value, vocabulary)


def _is_missing(value: Any) -> bool:
    if value is None or value is pd.NA or value is pd.NaT:
        return True
    return isinstance(value, float) and math.isnan(value)


def _is_blank(value: Any) -> bool:
    return _is_missing(value) or (isinstance(value, str) and not value.strip())


def _parse_int(value: Any, minimum: int | None = None, maximum: int | None = None) -> _Parsed:
    if _is_blank(value):
        return BLANK, None
    number: int
    if isinstance(value, bool | np.bool_):
        return None, f"{value!r} is a boolean, not a whole number"
    if isinstance(value, int | np.integer):
        number = int(value)
    elif isinstance(value, float | np.floating):
        if not float(value).is_integer():
            return None, f"{value:g} is not a whole number"
        number = int(value)
    else:
        text = str(value).strip()
        if not _WHOLE.fullmatch(text):
            return None, f"{text!r} is not a whole number"
        number = int(text.split(".")[0])
    if minimum is not None and number < minimum:
        return None, f"{number} is below {minimum}"
    if maximum is not None and number > maximum:
        return None, f"{number} is above {maximum}"
    return number, None


def _parse_bool(value: Any) -> _Parsed:
    if _is_blank(value):
        return BLANK, None
    if isinstance(value, bool | np.bool_):
        return bool(value), None
    text = str(value).strip().lower()
    if isinstance(value, float | np.floating) and float(value) in (0.0, 1.0):
        text = str(int(value))
    if text in _TRUE:
        return True, None
    if text in _FALSE:
        return False, None
    return None, f"{str(value).strip()!r} is not true or false (use true/false, yes/no or 1/0)"


def _parse_text(value: Any) -> _Parsed:
    if _is_blank(value):
        return BLANK, None
    return str(value).strip(), None


def _parse_enum(field: str, value: Any, vocabulary: Vocabulary) -> _Parsed:
    if _is_blank(value):
        return BLANK, None
    return _translate(field, str(value), vocabulary)


def _parse_enum_list(field: str, value: Any, vocabulary: Vocabulary) -> _Parsed:
    if _is_missing(value):
        return BLANK, None
    items: Sequence[Any]
    if isinstance(value, list | tuple | np.ndarray):
        items = list(value)
    else:
        text = str(value).strip()
        if not text:
            return BLANK, None
        if text.lower() in _EMPTY_LIST:
            return [], None
        if text.startswith("[") and text.endswith("]"):
            text = text[1:-1]
        items = [part.strip().strip("\"'") for part in re.split(r"[;,]", text)]
        items = [item for item in items if item]
    names: list[str] = []
    errors: list[str] = []
    for item in items:
        name, error = _translate(field, str(item), vocabulary)
        if error:
            errors.append(error)
        elif name not in names:
            names.append(name)
    return (None, "; ".join(errors)) if errors else (names, None)


def _translate(field: str, raw: str, vocabulary: Vocabulary) -> _Parsed:
    name = raw.strip().upper()
    value = ENUMS[field].get(name)
    if value is None:
        valid = enum_names(field, vocabulary)
        close = difflib.get_close_matches(name, list(ENUMS[field]), n=1, cutoff=0.6)
        hint = f" (did you mean {close[0]}?)" if close else f" (valid: {', '.join(valid)})"
        return None, f"{raw.strip()!r} is not a valid value{hint}"
    spelled = value.spelled(vocabulary)
    if spelled is None:
        others = " or ".join(v.value for v in value.vocabularies())
        return None, (
            f"{name} exists only in the {others} vocabulary, not in {vocabulary.value} "
            f"(run with --vocabulary {others}, or remove it)"
        )
    return spelled, None


def _repeated_ids(ids: list[Any]) -> dict[int, list[int]]:
    """Each campaign id that appears on more than one row, with those row numbers."""
    seen: dict[int, list[int]] = {}
    for index, campaign_id in enumerate(ids):
        if isinstance(campaign_id, int):
            seen.setdefault(campaign_id, []).append(index + 1)
    return {cid: numbers for cid, numbers in seen.items() if len(numbers) > 1}


def _and_join(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]
