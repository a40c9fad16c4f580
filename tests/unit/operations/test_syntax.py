"""How a value is spelled in a cell (``bulkrunner.operations.syntax``): written alike by reports
and exports, and read alike by every column that takes a list or true/false."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from bulkrunner.model import Change, Outcome, Status
from bulkrunner.operations.cells import parser
from bulkrunner.operations.email_accounts import parse_ids
from bulkrunner.operations.fields import FIELDS_BY_NAME, Vocabulary
from bulkrunner.operations.schedule import parse_days
from bulkrunner.operations.settings import SETTINGS
from bulkrunner.operations.state import canonical
from bulkrunner.operations.syntax import (
    EmptyText,
    csv_cell,
    list_cell,
    list_items,
    truth,
    unescape_cell,
)
from bulkrunner.output.export_file import as_csv_cells
from bulkrunner.output.report import build_report
from bulkrunner.records.backup import read_backup, record_backup
from tests.fakes import write_report

SETTINGS_ROW: dict[str, Any] = {
    "campaign_id": 1,
    "track_settings": ["DONT_EMAIL_OPEN", "DONT_LINK_CLICK"],
    "send_as_plain_text": True,
    "enable_ai_esp_matching": False,
    "unsubscribe_text": EmptyText(),
    "sending_limit": 40,
}
WRITTEN = {
    "campaign_id": "1",
    "track_settings": "DONT_EMAIL_OPEN;DONT_LINK_CLICK",
    "send_as_plain_text": "true",
    "enable_ai_esp_matching": "false",
    "unsubscribe_text": '""',
    "sending_limit": "40",
}


def _cells(path: Path) -> dict[str, str]:
    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    return {name: frame[name].iloc[0] for name in WRITTEN}


def test_a_report_spells_a_parquet_rows_values_as_an_export_does(tmp_path: Path) -> None:
    """A row read from Parquet (real booleans, a list, an explicitly empty text) is echoed in a
    CSV report in the spelling an export writes, which reads back as the same values."""
    frame = pd.DataFrame({name: [value] for name, value in SETTINGS_ROW.items()}, dtype=object)
    path = tmp_path / "report.csv"
    write_report(build_report(frame, {1: Outcome(Status.SUCCEEDED, 200, 1)}), path, [*frame])
    exported = as_csv_cells(frame.assign(unsubscribe_text=[""]), SETTINGS)
    assert _cells(path) == WRITTEN
    assert {name: str(exported[name].iloc[0]) for name in WRITTEN} == WRITTEN


@pytest.mark.parametrize(
    ("value", "cell"),
    [
        (["a", "b"], "a;b"),
        ([], "[]"),
        ((3, 4), "3;4"),
        (True, "true"),
        (False, "false"),
        (EmptyText(), '""'),
        ("", ""),  # a blank: leave unchanged
        ("=1+1", "'=1+1"),
        ("-5", "-5"),  # a number, not a formula
        (7, 7),
        (None, None),
    ],
)
def test_each_value_has_one_csv_spelling(value: Any, cell: Any) -> None:
    assert csv_cell(value) == cell
    if isinstance(cell, str) and cell.startswith("'"):
        assert unescape_cell(cell) == value


@pytest.mark.parametrize(
    ("text", "items"),
    [
        ("a;b", ["a", "b"]),
        ("a, b", ["a", "b"]),
        ("[a, 'b']", ["a", "b"]),
        ('["a";"b"]', ["a", "b"]),
        ("[]", []),
        ("none", []),
        (" NONE ", []),
        ("a;;b;", ["a", "b"]),
    ],
)
def test_a_list_cell_reads_back_as_its_items(text: str, items: list[str]) -> None:
    assert list_items(text) == items
    assert list_items(list_cell(items)) == items


@pytest.mark.parametrize(
    ("text", "said"),
    [
        *[("true", True), ("Yes", True), (" y ", True), ("T", True), ("1", True)],
        *[("false", False), ("NO", False), ("n", False), ("f", False), ("0", False)],
        *[("maybe", None), ("", None), ("2", None)],
        # as European spreadsheets write them
        *[("WAHR", True), ("FALSCH", False), ("Vrai", True), ("FAUX", False)],
        *[("VERO", True), ("FALSO", False), ("WAAR", True), ("ONWAAR", False)],
        *[("VERDADERO", True), ("verdadeiro", True), ("falso", False), ("WAHRE", None)],
    ],
)
def test_true_and_false_are_read_in_every_spelling(text: str, said: bool | None) -> None:
    assert truth(text) is said


def test_every_list_column_takes_the_same_empty_list() -> None:
    enum_list = parser(FIELDS_BY_NAME["track_settings"], Vocabulary.DOCUMENTED)
    for empty in ("[]", "none", "None"):
        assert enum_list(empty) == ([], None)
        assert canonical("track_settings", empty) == frozenset()
        # an empty list is no email account to attach, and no day to send on
        assert parse_ids(empty) == (
            None,
            "names no email account id (leave the cell blank to change nothing)",
        )
        assert (
            parse_days(empty)[1] == "no day given (name at least one, like mon;tue;wed or Mon-Fri)"
        )
    assert parse_ids("[3, 4]") == ([3, 4], None)
    assert parse_days("[mon; tue]") == (["mon", "tue"], None)


def test_a_list_the_server_shows_as_text_is_backed_up_item_by_item(tmp_path: Path) -> None:
    """GET may show a list as one text; each item is backed up as the item it names, without
    the space after its comma (which the rollback would send)."""
    path = tmp_path / "b.parquet"
    change = Change("DONT_EMAIL_OPEN, DONT_LINK_CLICK", ["DONT_EMAIL_OPEN"])
    record_backup(path, {1: {"track_settings": change}}, keep=False)
    assert read_backup(path) == {1: {"track_settings": ["DONT_EMAIL_OPEN", "DONT_LINK_CLICK"]}}
