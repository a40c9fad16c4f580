"""How a value is written in a cell of the files bulkrunner reads and writes (input files, CSV
reports, exports), and how such a cell is read back. A blank cell means "leave unchanged", so
the empty values have spellings of their own:

- a list: its items joined by ``;`` (``DONT_EMAIL_OPEN;DONT_LINK_CLICK``); read, ``,``
  separates them as well, the list may stand in ``[...]`` and an item in quotes. The empty list
  is ``[]`` (read: ``[]`` or ``none``, any case);
- true and false: written ``true`` and ``false``; read in any case as true, yes, y, t or 1, and
  false, no, n, f or 0, and as spreadsheets in other languages write them (``WAHR``/``FALSCH``,
  ``VRAI``/``FAUX``, ``VERO``/``FALSO``, ``WAAR``/``ONWAAR``, ``VERDADERO``/``FALSO``,
  ``VERDADEIRO``/``FALSO``);
- the empty text: ``""`` in a text column (Parquet holds it as an empty string, where a null
  leaves the setting unchanged: read as :class:`EmptyText`);
- the spreadsheet escape: text a spreadsheet would run as a formula (``=1+1``, ``@SUM(...)``)
  is written with a leading ``'`` in a CSV file, and reading a CSV file takes it off again.

This module imports neither numpy nor pandas (``bulkrunner validate`` of a small file loads
neither): a cell can hold one of their values (a Parquet list as an array) only once they are
loaded, so their types are looked up where already imported (:func:`loaded`).
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterable
from typing import Any

LIST_SEPARATOR = ";"
EMPTY_LIST = "[]"
_EMPTY_LISTS = frozenset({EMPTY_LIST, "none"})
_SEPARATORS = re.compile(r"[;,]")
TRUE = "true"
FALSE = "false"
# and as spreadsheets in other languages write TRUE() and FALSE(): German, French, Italian,
# Dutch, Spanish, Portuguese (a CSV file saved there holds WAHR, FAUX...)
_SPREADSHEETS = {
    "wahr": "falsch",
    "vrai": "faux",
    "vero": "falso",
    "waar": "onwaar",
    "verdadero": "falso",
    "verdadeiro": "falso",
}
_TRUE = frozenset({TRUE, "yes", "y", "t", "1", *_SPREADSHEETS})
_FALSE = frozenset({FALSE, "no", "n", "f", "0", *_SPREADSHEETS.values()})
EMPTY_TEXT_CELL = '""'  # the empty text as it is written in code
# A CSV cell starting with one of these is written with a leading "'", so that a spreadsheet
# opening the file cannot run it as a formula.
FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "\n")
FORMULA_PATTERN = "^'*[" + re.escape("".join(FORMULA_START)) + "]"  # the cells to look at
_NUMBER = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?", re.ASCII)


class EmptyText(str):
    """A text setting explicitly set to empty: Parquet's empty string, where a null (like a
    blank CSV cell) means "leave unchanged". Backups need it to restore an empty text."""

    __slots__ = ()


def loaded(module: str, *names: str) -> tuple[Any, ...]:
    """The attributes ``names`` of ``module`` if something imported it, else nothing: a cell
    holds a numpy or pandas value only once that module is loaded."""
    found = sys.modules.get(module)
    return () if found is None else tuple(getattr(found, name) for name in names)


def lists() -> tuple[type[Any], ...]:
    """The types of a cell holding a list (a Parquet list arrives as a numpy array)."""
    return (list, tuple, *loaded("numpy", "ndarray"))


# --- reading ------------------------------------------------------------------------------------


def list_items(text: str) -> list[str]:
    """The items a list cell's ``text`` names, in order, each stripped (of quotes too); none
    for ``[]`` or ``none``."""
    text = text.strip()
    if text.lower() in _EMPTY_LISTS:
        return []
    if text.startswith("[") and text.endswith("]"):
        text = text[1:-1]
    items = (part.strip().strip("\"'").strip() for part in _SEPARATORS.split(text))
    return [item for item in items if item]


def truth(text: str) -> bool | None:
    """Whether ``text`` says true or false; None when it says neither."""
    word = text.strip().lower()
    if word in _TRUE:
        return True
    if word in _FALSE:
        return False
    return None


def is_empty_text(text: str) -> bool:
    """Whether a text cell says "the empty text" (``""``)."""
    return text.strip() == EMPTY_TEXT_CELL


def unescape_cell(value: Any) -> Any:
    """Undo the spreadsheet escape of a CSV cell (``'=1+1`` was written for ``=1+1``)."""
    if isinstance(value, str) and value.startswith("'") and formula_like(value[1:]):
        return value[1:]
    return value


# --- writing ------------------------------------------------------------------------------------


def list_cell(items: Iterable[Any]) -> str:
    """A list as a cell: its items joined by ``;``, ``[]`` for none."""
    return LIST_SEPARATOR.join(str(item) for item in items) or EMPTY_LIST


def bool_cell(value: bool) -> str:
    return TRUE if value else FALSE


def formula_like(value: str) -> bool:
    """Whether a CSV file writes ``value`` with a leading quote: text a spreadsheet could run,
    and text that already looks guarded (``'=1``), so that ``unescape_cell`` gives back exactly
    what was written (a negative number stays a number, ``'-5`` stays ``'-5``)."""
    if value.startswith("'"):
        return formula_like(value[1:])
    return value.startswith(FORMULA_START) and not _NUMBER.fullmatch(value)


def escaped(value: Any) -> Any:
    """``value`` with the spreadsheet escape, if it is text that needs one."""
    return "'" + value if isinstance(value, str) and formula_like(value) else value


def csv_cell(value: Any) -> Any:
    """``value`` (a cell of a report or an export) as its CSV cell reads back: a list spelled
    out, true or false, ``""`` for the empty text, text escaped; numbers and blanks as they are."""
    if isinstance(value, (bool, *loaded("numpy", "bool_"))):
        return bool_cell(bool(value))
    if isinstance(value, lists()):
        return list_cell(value)
    if isinstance(value, EmptyText):
        return EMPTY_TEXT_CELL
    return escaped(value)
