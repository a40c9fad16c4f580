"""Cells parsed once per distinct value (``input.distinct``): the whole numbers found in bulk,
on a few cells one by one and on many by pyarrow, read as ``parse_int`` reads each cell."""

from __future__ import annotations

import numpy as np
import pytest

from bulkrunner.input import distinct
from bulkrunner.operations.cells import parser
from bulkrunner.operations.fields import FIELDS_BY_NAME, Vocabulary

LIMIT = FIELDS_BY_NAME["sending_limit"]
ODD = [
    "0", "7", "0100", "123456789012345678", "1234567890123456789", " 12", "12 ", "12.0", "1e3",
    "0x10", "-5", "+5", "\u0663", "\uff11\uff12", "", "twelve", "1_000", "5\n", "\ud800",
]  # fmt: skip


@pytest.mark.parametrize("arrow_cells", [0, 1_000], ids=["by pyarrow", "one by one"])
def test_whole_numbers_are_read_in_bulk_as_each_cell_is_read_alone(
    monkeypatch: pytest.MonkeyPatch, arrow_cells: int
) -> None:
    monkeypatch.setattr(distinct, "_ARROW_CELLS", arrow_cells)
    cells = np.array(ODD, dtype=object)
    values, errors, _ = distinct.parse_distinct(cells, LIMIT, Vocabulary.LONG)
    alone = [parser(LIMIT, Vocabulary.LONG)(cell) for cell in ODD]
    read = [(v, e.split(": ", 1)[1] if e else "") for v, e in zip(values, errors, strict=True)]
    assert read == [(value, error or "") for value, error in alone]
