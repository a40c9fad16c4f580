"""Every file bulkrunner names (``bulkrunner.config.paths``), and the one way it replaces a file:
a temporary file beside it, flushed to disk, renamed over it, the folder flushed too."""

from __future__ import annotations

import contextlib
import io
import os
import stat
import threading
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pytest

from bulkrunner.commands.export import Export, write_export
from bulkrunner.config import paths
from bulkrunner.config.paths import Staged, replace_atomically
from bulkrunner.model import Change, Outcome, RunStats, Status
from bulkrunner.operations.settings import SETTINGS
from bulkrunner.output.report import build_report
from bulkrunner.output.report_writer import ReportWriter
from bulkrunner.records.backup import record_backup

WHEN = datetime(2026, 11, 26, 2, 15, 0, tzinfo=UTC)


class Syncs:
    """``os.fsync`` recorded: what each flushed descriptor was (a file or a folder, by name)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.flushed: list[tuple[str, bool]] = []  # (name, is a folder)
        real = os.fsync

        def fsync(descriptor: int) -> None:
            found = os.fstat(descriptor)
            name = os.readlink(f"/proc/self/fd/{descriptor}")
            self.flushed.append((Path(name).name, stat.S_ISDIR(found.st_mode)))
            real(descriptor)

        monkeypatch.setattr(os, "fsync", fsync)


def test_a_replaced_file_is_flushed_then_renamed_then_its_folder_flushed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    syncs = Syncs(monkeypatch)
    target = tmp_path / "out" / "x.csv"
    renames: list[str] = []
    real_replace = os.replace

    def replace(source: str | Path, destination: str | Path) -> None:
        renames.append(f"{Path(source).name} -> {Path(destination).name}")
        real_replace(source, destination)

    monkeypatch.setattr(os, "replace", replace)
    assert replace_atomically(target, lambda tmp: tmp.write_text("new")) == target
    assert target.read_text() == "new"
    assert renames == [".x.csv.tmp -> x.csv"]
    assert syncs.flushed == [(".x.csv.tmp", False), ("out", True)]


def test_a_write_that_fails_midway_leaves_the_old_file_and_no_temporary_one(
    tmp_path: Path,
) -> None:
    target = tmp_path / "x.csv"
    target.write_text("old")

    def crash(tmp: Path) -> None:
        tmp.write_text("half of the new")
        raise KeyboardInterrupt  # a kill, as far as Python can see one

    with pytest.raises(KeyboardInterrupt):
        replace_atomically(target, crash)
    assert target.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.csv"]


def test_a_staged_file_left_uncommitted_is_removed(tmp_path: Path) -> None:
    target = tmp_path / "x.csv"
    with Staged(target, "123") as staged:
        staged.tmp.write_text("never committed")
        assert staged.tmp.name == ".x.csv.123.tmp"
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("suffix", [".csv", ".parquet", ".json", ".jsonl"])
def test_a_report_is_flushed_to_disk_before_it_replaces_the_old_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, suffix: str
) -> None:
    syncs = Syncs(monkeypatch)
    frame = pd.DataFrame({"campaign_id": ["1"], "sending_limit": ["5"]}, dtype=object)
    report = build_report(frame, {1: Outcome(Status.SUCCEEDED, 200, 1)})
    path = tmp_path / f"r{suffix}"
    with ReportWriter(path, ["campaign_id", "sending_limit"]) as writer:
        writer.write(report)
        writer.commit()
    assert syncs.flushed == [(f".r{suffix}.tmp", False), (tmp_path.name, True)]


def test_an_export_and_a_backup_are_flushed_to_disk_too(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    syncs = Syncs(monkeypatch)
    frame = pd.DataFrame({"campaign_id": [1], "sending_limit": [5]}, dtype=object)
    write_export(Export(frame, SETTINGS, {}, RunStats()), tmp_path / "e.csv")
    record_backup(tmp_path / "b.parquet", {1: {"sending_limit": Change(4, 5)}}, keep=False)
    assert syncs.flushed == [
        (".e.csv.tmp", False),
        (tmp_path.name, True),
        (".b.parquet.tmp", False),
        (tmp_path.name, True),
    ]


def test_default_names_carry_the_utc_time_the_command_started(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert paths.default_report_path(Path("in/plan.csv"), WHEN) == Path(
        "reports/plan-20261126T021500Z/report.csv"
    )
    assert paths.default_export_path("schedule", WHEN) == Path(
        "exports/schedule-20261126T021500Z.csv"
    )
    assert paths.fallback_report_path(WHEN).name == "bulkrunner-report-20261126T021500Z.csv"
    assert paths.expand_template("r/{date}/n-{timestamp}.csv", WHEN) == (
        "r/2026-11-26/n-20261126T021500Z.csv"
    )


def test_the_files_beside_a_report_are_named_after_its_whole_name(tmp_path: Path) -> None:
    report = tmp_path / "plan.csv"
    assert paths.journal_path(report).name == "plan.csv.journal"
    assert paths.report_of_journal(paths.journal_path(report)) == report
    assert paths.lock_path(report).name == "plan.csv.lock"
    assert paths.backup_path(report).name == "plan.csv.backup.parquet"
    assert paths.backup_path(tmp_path / "plan.json") != paths.backup_path(report)
    assert paths.is_backup(paths.backup_path(report))


def test_a_default_name_taken_by_a_file_or_a_run_gets_a_number(tmp_path: Path) -> None:
    first = tmp_path / "plan.csv"
    assert paths.unused(first) == first
    paths.journal_path(first).write_text("")  # an unfinished run's, with no report yet
    assert paths.unused(first) == tmp_path / "plan-2.csv"
    (tmp_path / "plan-2.csv").write_text("")
    assert paths.unused(first) == tmp_path / "plan-3.csv"


def test_a_reports_template_matches_every_name_it_gives(tmp_path: Path) -> None:
    import fnmatch

    template = str(tmp_path / "r" / "nightly-{date}-{timestamp}[1].csv")
    pattern = paths.template_glob(template)
    assert fnmatch.fnmatch(paths.expand_template(template, WHEN), pattern)
    assert not fnmatch.fnmatch(str(tmp_path / "r" / "other-2026.csv"), pattern)


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs")
@pytest.mark.parametrize(
    ("argv", "fifo"),
    [
        (["run", "--plan", "p.parquet"], "p.parquet"),
        (["rollback", "x.backup.parquet"], "x.backup.parquet"),
        (["plan", "x.backup.parquet"], "x.backup.parquet"),
    ],
)
def test_a_file_to_read_that_is_a_fifo_is_refused_not_waited_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, argv: list[str], fifo: str
) -> None:
    """Opening a FIFO waits for a writer for ever, and Ctrl-C cannot cut short pyarrow's open
    of one: a backup or a saved plan is refused if it is no regular file (a job, accounts or
    suppression file may be one, ``<(...)``: Python reads it, and Ctrl-C stops the wait).
    (The command runs in a thread of its own, so that a wait fails the test, not the suite.)"""
    from bulkrunner.cli.app import main

    monkeypatch.chdir(tmp_path)
    (tmp_path / "leads.csv").write_text("campaign_id,email\n1,a@x.com\n")
    os.mkfifo(tmp_path / fifo)
    ended: list[int] = []
    stderr = io.StringIO()
    with contextlib.redirect_stderr(stderr):
        worker = threading.Thread(target=lambda: ended.append(main([*argv, "--simulate"])))
        worker.daemon = True
        worker.start()
        worker.join(timeout=30)
    assert not worker.is_alive(), f"waited on the FIFO {fifo}"
    assert ended == [2]
    assert f"{fifo}: not a file: a " in stderr.getvalue()
