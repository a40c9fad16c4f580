"""A CSV report written by pyarrow (the fast path) is, byte for byte, what pandas' ``to_csv``
writes (the reference path), and pyarrow is used only where that holds."""

from __future__ import annotations

import io
import random
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
import pytest

from bulkrunner.output import formats
from bulkrunner.output.formats import _plain_csv, write_csv

Column = Callable[[random.Random, int], Any]

_WORDS = ["", " ", "x", "OPENED_EMAIL", "café", "a b", "'=1", "  padded  ", "€", "tab\there"]
_AWKWARD = ["a,b", 'say "hi"', "line\nbreak", "cr\rhere", "crlf\r\nhere", '""']


def _plain_columns() -> dict[str, Column]:
    return {
        "ints": lambda r, n: np.array(
            [r.randint(-(10**12), 10**12) for _ in range(n)], dtype=np.int64
        ),
        "object ints": lambda r, n: pd.Series([r.randint(0, 500) for _ in range(n)], dtype=object),
        "ints and None": lambda r, n: pd.Series(
            [r.choice([None, r.randint(0, 9)]) for _ in range(n)], dtype=object
        ),
        "Int64": lambda r, n: pd.array(
            [r.choice([None, r.randint(0, 99)]) for _ in range(n)], dtype="Int64"
        ),
        "bools": lambda r, n: np.array([r.random() < 0.5 for _ in range(n)], dtype=bool),
        "bools and None": lambda r, n: pd.Series(
            [r.choice([None, True, False]) for _ in range(n)], dtype=object
        ),
        "text": lambda r, n: pd.Series([r.choice(_WORDS) for _ in range(n)], dtype=object),
        "text and blanks": lambda r, n: pd.Series(
            [r.choice([None, np.nan, "", *_WORDS]) for _ in range(n)], dtype=object
        ),
        "pandas str": lambda r, n: pd.array([r.choice(_WORDS) for _ in range(n)], dtype="str"),
        "nothing": lambda r, n: pd.Series([None] * n, dtype=object),
    }


def _other_columns() -> dict[str, Column]:
    return {
        "awkward text": lambda r, n: pd.Series(
            [r.choice([*_WORDS, *_AWKWARD]) for _ in range(n)], dtype=object
        ),
        "floats": lambda r, n: np.array(
            [r.choice([0.1, 1.0, 1e20, float("nan")]) for _ in range(n)]
        ),
        "ints and text": lambda r, n: pd.Series(
            [r.choice([1, "one"]) for _ in range(n)], dtype=object
        ),
        "lists": lambda r, n: pd.Series([["a", "b"] for _ in range(n)], dtype=object),
        "huge ints": lambda r, n: pd.Series(
            [2**70 + r.randint(0, 9) for _ in range(n)], dtype=object
        ),
    }


def _frame(rng: random.Random, kinds: dict[str, Column], width: int) -> pd.DataFrame:
    rows = rng.choice([0, 1, 2, 7, 40])
    chosen = [rng.choice(list(kinds)) for _ in range(width)]
    return pd.DataFrame({f"{kind} {i}": kinds[kind](rng, rows) for i, kind in enumerate(chosen)})


def _written(frame: pd.DataFrame, header: bool) -> str:
    out = io.StringIO()
    write_csv(frame, out, header=header)
    return out.getvalue()


def _by_pandas(frame: pd.DataFrame, header: bool, monkeypatch: pytest.MonkeyPatch) -> str:
    with monkeypatch.context() as patch:
        patch.setattr(formats, "_plain_csv", lambda *_: None)
        return _written(frame, header)


@pytest.mark.parametrize("seed", range(60))
def test_plain_frames_are_written_by_pyarrow_as_pandas_writes_them(
    seed: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    rng = random.Random(seed)
    frame = _frame(rng, _plain_columns(), width=rng.randint(2, 6))
    header = rng.random() < 0.7
    assert _plain_csv(frame, header) is not None  # the fast path is the one compared
    monkeypatch.setattr(formats, "_ARROW_ROWS", 0)  # however few the rows
    assert _written(frame, header) == _by_pandas(frame, header, monkeypatch)


@pytest.mark.parametrize(("rows", "by_arrow"), [(4, False), (299, False), (300, True)])
def test_pyarrow_writes_only_frames_of_many_rows(
    rows: int, by_arrow: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On a few rows, making the table pyarrow writes costs more than ``to_csv``'s writing."""
    asked: list[int] = []
    plain = formats._plain_csv

    def spied(frame: pd.DataFrame, header: bool) -> str | None:
        asked.append(len(frame))
        return plain(frame, header)

    monkeypatch.setattr(formats, "_plain_csv", spied)
    frame = pd.DataFrame({"a": [f"x{n}" for n in range(rows)], "b": range(rows)})
    assert _written(frame, True) == "a,b\n" + "".join(f"x{n},{n}\n" for n in range(rows))
    assert asked == ([rows] if by_arrow else [])


@pytest.mark.parametrize("seed", range(40))
def test_other_frames_are_written_as_pandas_writes_them(
    seed: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    rng = random.Random(1000 + seed)
    kinds = {**_plain_columns(), **_other_columns()}
    frame = _frame(rng, kinds, width=rng.randint(1, 5))
    assert _written(frame, True) == _by_pandas(frame, True, monkeypatch)


@pytest.mark.parametrize(
    "frame",
    [
        pd.DataFrame({"a": ["x,y", "z"], "b": [1, 2]}),
        pd.DataFrame({"a": ['"quoted"', "z"], "b": [1, 2]}),
        pd.DataFrame({"a": ["two\nlines", "z"], "b": [1, 2]}),
        pd.DataFrame({"a": [0.5, 1.5], "b": [1, 2]}),
        pd.DataFrame({"a": [""], "b": [None]}).iloc[:, :1],  # one column: "" is written as such
        pd.DataFrame({"a,b": ["x"], "c": ["y"]}),
    ],
    ids=["comma", "quote", "newline", "float", "one column", "comma in a name"],
)
def test_cells_that_need_quoting_or_formatting_are_left_to_pandas(frame: pd.DataFrame) -> None:
    assert _plain_csv(frame, True) is None


def test_a_text_cell_with_a_comma_is_quoted_in_the_report() -> None:
    frame = pd.DataFrame({"a": ["x,y", "z"], "b": [True, None]})
    assert _written(frame, True) == 'a,b\n"x,y",True\nz,\n'
