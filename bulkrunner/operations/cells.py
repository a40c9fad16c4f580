"""The rules for one cell: whether it is blank, and what value (or error) it gives its field.

These are the only copy of the rules: ``bulkrunner.input.validation`` applies them to a
DataFrame's distinct cells, and ``bulkrunner.commands.validate`` to a small CSV file's cells
without pandas. So this module imports neither numpy nor pandas: a cell can hold one of their
values (``np.int64``, ``pd.NA``, a Parquet list as an array) only once they are loaded, so their
types are looked up where already imported (``syntax.loaded``), never imported here. How a list,
true or false and the empty text are spelled is ``bulkrunner.operations.syntax``'s.
"""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Callable, Sequence
from typing import Any

from bulkrunner.operations.base import Operation
from bulkrunner.operations.fields import CAMPAIGN_ID, ENUMS, Field, Vocabulary, enum_names
from bulkrunner.operations.syntax import (
    EmptyText,
    is_empty_text,
    list_items,
    lists,
    loaded,
    truth,
)


class _Blank:
    """A cell that says "leave this setting unchanged"."""


BLANK = _Blank()
Parsed = tuple[Any, str | None]  # (value or BLANK, error message)

_WHOLE = re.compile(r"[+-]?\d+(?:\.0*)?", re.ASCII)  # \d alone takes any script's digits
ID_FIELD = Field(CAMPAIGN_ID, "int", minimum=1, maximum=2**63 - 1)  # ids are 64-bit
NOTHING_TO_SEND = "nothing to send: every field is blank"
PROBLEMS_APART = "; "  # between the problems of one row's error (output.problems splits on it)


def _bools() -> tuple[type[Any], ...]:
    return (bool, *loaded("numpy", "bool_"))


def _ints() -> tuple[type[Any], ...]:
    return (int, *loaded("numpy", "integer"))


def _floats() -> tuple[type[Any], ...]:
    return (float, *loaded("numpy", "floating"))


def number_types() -> tuple[type[Any], ...]:
    """The types of a cell holding a number: int, float, and numpy's numbers."""
    return (int, float, *loaded("numpy", "number"))


def field_of(operation: Operation, name: str) -> Field:
    """The field of ``operation`` a column ``name`` sets."""
    found = operation.field(name)
    if found is None:  # loading refuses such a column; a frame made in code may have one
        raise ValueError(f"{name!r} is not a column of the {operation.name} operation")
    return found


def parser(field: Field, vocabulary: Vocabulary) -> Callable[[Any], Parsed]:
    """How a cell of ``field`` is read: ``(value, None)``, ``(BLANK, None)`` or ``(None, why)``."""
    if field.parse is not None:
        parse = field.parse
        return lambda value: (BLANK, None) if is_blank(value) else parse(value)
    match field.kind:
        case "int":
            return lambda value: parse_int(value, field.minimum, field.maximum)
        case "bool":
            return _parse_bool
        case "text":
            return _parse_text
        case "enum":
            return lambda value: _parse_enum(field.name, value, vocabulary)
        case "enum_list":
            return lambda value: _parse_enum_list(field.name, value, vocabulary)
        case _:
            raise ValueError(f"field {field.name!r} of kind {field.kind!r} has no parser")


def is_missing(value: Any) -> bool:
    """None, NaN, or pandas' missing values."""
    if value is None or any(value is missing for missing in loaded("pandas", "NA", "NaT")):
        return True
    return isinstance(value, float) and math.isnan(value)


def is_blank(value: Any) -> bool:
    """A cell that leaves its setting unchanged: missing, or text of only spaces."""
    return is_missing(value) or (isinstance(value, str) and not value.strip())


def parse_int(value: Any, minimum: int | None = None, maximum: int | None = None) -> Parsed:
    if is_blank(value):
        return BLANK, None
    number: int
    if isinstance(value, _bools()):
        return None, f"{quoted(value)} is a boolean, not a whole number"
    if isinstance(value, _ints()):
        number = int(value)
    elif isinstance(value, _floats()):
        if not float(value).is_integer():
            return None, f"{value:g} is not a whole number"
        number = int(value)
    else:
        text = str(value).strip()
        if not _WHOLE.fullmatch(text):
            return None, f"{quoted(text)} is not a whole number"
        if len(text) > _LONGEST_NUMBER:  # (Python's int() refuses 4,300 digits and more)
            return None, f"{quoted(text)} is beyond a 64-bit whole number"
        number = int(text.split(".")[0])
    return bounds(number, minimum, maximum)


INT64 = (-(2**63), 2**63 - 1)  # what a server's 64-bit integer holds: the widest whole number


def bounds(number: int, minimum: int | None, maximum: int | None) -> Parsed:
    minimum = INT64[0] if minimum is None else minimum
    maximum = INT64[1] if maximum is None else maximum
    if number < minimum:
        return None, f"{quoted(number)} is below {minimum}"
    if number > maximum:
        return None, f"{quoted(number)} is above {maximum}"
    return number, None


_LONGEST_NUMBER = 100  # characters of a whole number read as such; longer is out of bounds
QUOTED_MOST = 60  # characters of a cell an error message repeats


def quoted(value: Any) -> str:
    """``value`` as an error message shows it (text quoted), cut short when long: a
    5,000-character cell is named, not repeated."""
    whole = isinstance(value, int) and not isinstance(value, bool)
    text = str(value) if whole else repr(value)
    if len(text) <= QUOTED_MOST:
        return text
    return f"{text[: QUOTED_MOST - 20]}... ({len(text):,} characters)"


def _parse_bool(value: Any) -> Parsed:
    if is_blank(value):
        return BLANK, None
    if isinstance(value, _bools()):
        return bool(value), None
    text = str(value)
    if isinstance(value, _floats()) and float(value) in (0.0, 1.0):
        text = str(int(value))
    said = truth(text)
    if said is not None:
        return said, None
    return (
        None,
        f"{quoted(str(value).strip())} is not true or false (use true/false, yes/no or 1/0)",
    )


def _parse_text(value: Any) -> Parsed:
    if isinstance(value, EmptyText):
        return "", None  # explicitly empty (Parquet), not "unchanged"
    if isinstance(value, lists()):  # a Parquet list: not its repr as text
        return None, "a list is not a text (write one text, not a list column)"
    if is_blank(value):
        return BLANK, None
    # Free text is sent as written: a leading or trailing space or tab may be meant (ids,
    # numbers, booleans and enum names are read stripped)
    text = str(value)
    return ("" if is_empty_text(text) else text), None


def _parse_enum(field: str, value: Any, vocabulary: Vocabulary) -> Parsed:
    if is_blank(value):
        return BLANK, None
    return _translate(field, str(value), vocabulary)


def _parse_enum_list(field: str, value: Any, vocabulary: Vocabulary) -> Parsed:
    if is_missing(value):
        return BLANK, None
    items: Sequence[Any]
    if isinstance(value, lists()):
        items = list(value)
    else:
        text = str(value)
        if not text.strip():
            return BLANK, None
        items = list_items(text)
    names: list[str] = []
    errors: list[str] = []
    for item in items:
        name, error = _translate(field, str(item), vocabulary)
        if error:
            errors.append(error)
        elif name not in names:
            names.append(name)
    return (None, PROBLEMS_APART.join(errors)) if errors else (names, None)


def _translate(field: str, raw: str, vocabulary: Vocabulary) -> Parsed:
    name = raw.strip().upper()
    value = ENUMS[field].get(name)
    if value is None:
        valid = enum_names(field, vocabulary)
        close = difflib.get_close_matches(name, list(ENUMS[field]), n=1, cutoff=0.6)
        hint = f" (did you mean {close[0]}?)" if close else f" (valid: {', '.join(valid)})"
        return None, f"{quoted(raw.strip())} is not a valid value{hint}"
    spelled = value.spelled(vocabulary)
    if spelled is None:
        others = " or ".join(v.value for v in value.vocabularies())
        return None, (
            f"{name} exists only in the {others} vocabulary, not in {vocabulary.value} "
            f"(run with --vocabulary {others}, or remove it)"
        )
    return spelled, None


# --- a row's errors, from its cells' -----------------------------------------------------------


def repeated(campaign_id: int, rows: Sequence[int], key: str | None = None) -> str:
    """The error of each row of a campaign that is on several ``rows`` (with ``key``, the
    column naming what a row changes in its campaign: of a campaign's key on several rows)."""
    numbers = and_join([str(n) for n in rows])
    if key is not None:
        return f"{key}: the same {key} and {CAMPAIGN_ID} are in rows {numbers}"
    return f"{CAMPAIGN_ID}: {campaign_id} appears in rows {numbers}"


def row_error(errors: Sequence[str | None], nothing_to_send: bool) -> str:
    """A row's error: its cells' errors (``None`` for a good cell) in column order, and that
    it sets nothing; ``""`` for a row with neither."""
    found = [error for error in errors if error is not None]
    if nothing_to_send:
        found.append(NOTHING_TO_SEND)
    return PROBLEMS_APART.join(found)


def and_join(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]
