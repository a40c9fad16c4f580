"""Damaged journals: a torn last line, a damaged line."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bulkrunner.errors import UsageError
from bulkrunner.model import Outcome, Status
from bulkrunner.records.journal import Journal, read_successes

WHEN = datetime(2026, 11, 26, 9, 0, tzinfo=UTC)


def journal_with_one_success(path: Path) -> None:
    with Journal.open(path, input_path=Path("plan.csv"), started=WHEN) as journal:
        journal.record("k1", 1, 101, Outcome(Status.SUCCEEDED, 200, 1, "", 12, WHEN))


def test_a_torn_last_journal_line_is_ignored_with_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "r.csv.journal"
    journal_with_one_success(path)
    with path.open("a") as handle:
        handle.write('{"key": "k2", "status": "succ')
    with caplog.at_level(logging.WARNING, logger="bulkrunner"):
        assert set(read_successes(path)) == {"k1"}
    assert "(line 3): it was cut short" in caplog.text


def test_a_journal_resumed_after_a_torn_line_stays_readable(tmp_path: Path) -> None:
    path = tmp_path / "r.csv.journal"
    journal_with_one_success(path)
    with path.open("a") as handle:
        handle.write('{"key": "k2", "status": "succ')  # kill -9 in the middle of a write
    read_successes(path)  # what --resume reads first
    with Journal.open(path, input_path=Path("plan.csv"), started=WHEN) as journal:
        journal.record("k3", 3, 103, Outcome(Status.SUCCEEDED, 200, 1, "", 9, WHEN))
    assert set(read_successes(path)) == {"k1", "k3"}  # and again, at the next resume


@pytest.mark.parametrize("torn", [200_000, 65_536, 1])
def test_a_torn_line_is_found_from_the_end_whatever_its_length(tmp_path: Path, torn: int) -> None:
    """The journal is mended reading back from its end (not the whole of a long journal): a
    torn line longer than what is read at a time is still dropped whole."""
    path = tmp_path / "r.csv.journal"
    journal_with_one_success(path)
    with path.open("a") as handle:
        handle.write('{"key": "k2", "error": "' + "x" * torn)
    with Journal.open(path, input_path=Path("plan.csv"), started=WHEN) as journal:
        journal.record("k3", 3, 103, Outcome(Status.SUCCEEDED, 200, 1, "", 9, WHEN))
    assert set(read_successes(path)) == {"k1", "k3"}
    assert "x" not in path.read_text().splitlines()[-1]


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        ("not json", "line 2 is not a journal entry"),
        ("[1, 2]", "line 2 is not a journal entry"),
        ('{"key": 5, "status": "succeeded"}', "line 2 is not a journal entry"),
        ('{"key": "k", "status": "succeeded", "attempts": "two"}', "line 2 has a bad value"),
        ('{"key": "k", "status": "succeeded", "finished_at": "noon"}', "line 2 has a bad value"),
        ('{"key": "k", "status": "succeeded", "finished_at": 5}', "line 2 has a bad value"),
        ('{"key": "k", "status": "succeeded", "http_status": "200"}', "line 2 has a bad value"),
    ],
)
def test_a_damaged_journal_line_is_a_clear_usage_error(
    tmp_path: Path, line: str, problem: str
) -> None:
    path = tmp_path / "r.csv.journal"
    path.write_text('{"journal": 1, "input": "plan.csv"}\n' + line + "\n" + '{"key": "z"}\n')
    with pytest.raises(UsageError) as caught:
        read_successes(path)
    assert str(caught.value).startswith(f"{path}: {problem}")
    assert "--fresh" in str(caught.value)
