"""Invalid rows grouped by kind of problem, for ``bulkrunner validate`` on a file with many.

A file with 5,000 bad rows usually has two or three mistakes made 5,000 times; printing every
row hides that. Each row's error ("field: reason; field: reason") is split into its problems,
and each problem is known by its kind: the text with the values taken out (quoted cells,
numbers, enum names), so ``sending_limit: 'ten' is not a whole number`` and
``sending_limit: 'x' is not a whole number`` are one kind.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from bulkrunner.model import count
from bulkrunner.operations.cells import PROBLEMS_APART

SHOWN_INVALID = 20  # invalid rows printed one by one; more are summed up by kind of problem

_QUOTED = re.compile(r"'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\"")
_NUMBER = r"(?<![\w/.])-?\d+(?:\.\d+)?(?![\w/.])"  # not the 1 of "1/0"
_NUMBERS = re.compile(rf"{_NUMBER}(?:(?:, | and ){_NUMBER})*")
_ENUM_NAMES = re.compile(r"\b[A-Z][A-Z0-9_]{2,}\b")
_PLACEHOLDER = "\x00"  # stands for a quoted value while an error is split into its problems


def kinds(error: str) -> list[tuple[str, str]]:
    """Each problem in ``error`` as (kind, the problem as written)."""
    quoted: list[str] = []

    def hide(match: re.Match[str]) -> str:
        quoted.append(match.group())
        return _PLACEHOLDER

    masked = _QUOTED.sub(hide, error)
    found = []
    for part in masked.split(PROBLEMS_APART):
        kind = _ENUM_NAMES.sub("…", _NUMBERS.sub("N", part)).replace(_PLACEHOLDER, "'…'")
        written = re.sub(_PLACEHOLDER, lambda _: quoted.pop(0) if quoted else "", part)
        found.append((kind, written))
    return found


@dataclass(slots=True)
class _Group:
    rows: int = 0
    first: list[int] = field(default_factory=list)
    example: str = ""


@dataclass(slots=True)
class Problems:
    """Counts of each kind of problem, and the first few rows that have it; memory stays
    small however many rows are invalid."""

    shown_rows: int = 5  # row numbers listed per kind
    shown_kinds: int = 12
    groups: dict[str, _Group] = field(default_factory=dict)

    def add(self, number: int, error: str) -> None:
        for kind, written in kinds(error):
            group = self.groups.setdefault(kind, _Group(example=f"row {number}: {written}"))
            group.rows += 1
            if len(group.first) < self.shown_rows:
                group.first.append(number)

    def lines(self) -> list[str]:
        """The kinds, most rows first: count, the first rows, and one example as written."""
        ordered = sorted(self.groups.items(), key=lambda item: -item[1].rows)
        lines = []
        for kind, group in ordered[: self.shown_kinds]:
            more = group.rows - len(group.first)
            rows = ", ".join(map(str, group.first)) + (f" and {more} more" if more else "")
            lines.append(f"  {kind}: {count(group.rows, 'row')} ({rows}); e.g. {group.example}")
        hidden = len(ordered) - self.shown_kinds
        if hidden > 0:
            lines.append(f"  ... and {count(hidden, 'other kind')} of problem")
        return lines
