"""Odd input validated: ids beyond 64 bits, struct / map / binary cells."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from bulkrunner.errors import InputFileError
from bulkrunner.input.loading import load_input, open_input
from bulkrunner.input.validation import validate
from bulkrunner.operations.fields import Vocabulary


@pytest.mark.parametrize("big", [2**63, 2**64 + 5, 10**22])
def test_an_id_beyond_64_bits_is_an_invalid_row(big: int) -> None:
    frame = pd.DataFrame({"campaign_id": [str(big), "7"], "sending_limit": ["5", "6"]})
    checked = validate(frame, Vocabulary.DOCUMENTED)
    assert [row.campaign_id for row in checked.rows] == [7]
    (rejected,) = checked.rejections
    assert rejected.number == 1
    assert rejected.error == f"campaign_id: {big} is above {2**63 - 1}"


def test_the_largest_64_bit_id_is_valid() -> None:
    frame = pd.DataFrame({"campaign_id": [str(2**63 - 1)], "sending_limit": ["5"]})
    assert [row.campaign_id for row in validate(frame, Vocabulary.DOCUMENTED).rows] == [2**63 - 1]


def test_structured_and_binary_cells_are_invalid_rows_not_a_crash() -> None:
    frame = pd.DataFrame(
        {
            "campaign_id": [1, {"id": 2}, 3],
            "sending_limit": [{"a": 1}, 5, 6],
            "unsubscribe_text": ["ok", "ok", b"bytes"],
        },
        dtype=object,
    )
    checked = validate(frame, Vocabulary.DOCUMENTED)
    assert checked.rows == ()
    assert [(r.number, r.error) for r in checked.rejections] == [
        (1, "sending_limit: a structured value, not a number, text, true/false or list"),
        (2, "campaign_id: a structured value, not a number, text, true/false or list"),
        (3, "unsubscribe_text: binary, not a number, text, true/false or list"),
    ]


@pytest.mark.parametrize(
    ("column", "cells", "kind"),
    [
        ("sending_limit", pa.array([{"a": 1}, {"a": 2}]), "struct"),
        ("campaign_id", pa.array([{"a": 1}, {"a": 2}]), "struct"),
        (
            "sending_limit",
            pa.array([[("a", 1)], [("b", 2)]], type=pa.map_(pa.string(), pa.int64())),
            "map",
        ),
        ("unsubscribe_text", pa.array([b"x", b"y"]), "binary"),
        ("track_settings", pa.array([[b"x"], [b"y"]]), "binary"),
    ],
)
def test_parquet_struct_map_and_binary_columns_are_named_in_one_line(
    tmp_path: Path, column: str, cells: pa.Array, kind: str
) -> None:
    columns = {"campaign_id": pa.array([1, 2]), column: cells}
    path = tmp_path / "odd.parquet"
    pq.write_table(pa.table(columns), path)
    for read in (load_input, open_input):
        with pytest.raises(InputFileError) as caught:
            read(path)
        message = str(caught.value)
        assert message.startswith(f"{path}: column {column!r} holds {kind} values")
        assert "\n" not in message
