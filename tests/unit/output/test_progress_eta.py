"""Progress that tells the truth while rows wait: the retry queue's waits count in the ETA, and a
resumed run that must wait out the previous run's window says so."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from pathlib import Path

import anyio
import pytest

from bulkrunner.config.run_config import RunConfig
from bulkrunner.limits.limiter import SlidingWindowLimiter
from bulkrunner.model import REAL_CLOCK, Answer, Outcome, Rate, Row, Status
from bulkrunner.operations.base import Wire
from bulkrunner.operations.settings import SETTINGS
from bulkrunner.output.events import events
from bulkrunner.output.progress import LogLines, Snapshot, estimate
from bulkrunner.records.journal import Journal
from bulkrunner.sending.engine import Engine
from bulkrunner.sending.pipeline import Pipeline
from bulkrunner.sending.session import seed
from tests.fakes import FakeClock, ScriptedSender, connection


def test_the_eta_counts_a_row_waiting_for_its_retry() -> None:
    clock = FakeClock()
    limiter = SlidingWindowLimiter([Rate(10, 1)], clock=clock, sleep=clock.sleep)
    sender = ScriptedSender({1: [Answer(503, retry_after=30.0)]})
    seen: list[tuple[list[float], float]] = []

    async def sleep(seconds: float) -> None:  # the retry's wait: look at the progress then
        now = clock()
        waits = engine.retry_waits(now)
        seen.append((waits, estimate(limiter, 1, waits, now)))
        await clock.sleep(seconds)

    engine = Engine(connection(sender, clock, sleep, limiter=limiter))
    anyio.run(engine.run, [Row(1, 1, {"sending_limit": 5})])
    # The limits alone would say the one row left can go at once (0s): it waits 30s first.
    assert limiter.eta(1, clock()) == 0
    assert seen == [([30.0], 30.0)]
    assert engine.retry_waits(clock()) == []  # once it went, nothing waits


def test_the_progress_line_says_when_the_next_retry_is_due() -> None:
    snapshot = Snapshot(10, 8, 0, 2, 0.0, "10/2", eta=45.0, next_retry=12.0)
    line = snapshot.line()
    assert "2 retrying (next in 0:00:12)" in line
    assert "about 0:00:45 left" in line


def test_a_resumed_run_says_it_waits_for_the_previous_runs_window(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    journal_file = tmp_path / "r.csv.journal"
    now = datetime.now(UTC)
    with Journal.open(journal_file, input_path=tmp_path / "in.csv", started=now) as journal:
        for number in (1, 2):
            journal.record(f"k{number}", number, number, Outcome(Status.SUCCEEDED, finished_at=now))
    config = RunConfig(input=tmp_path / "in.csv", rates=(Rate(2, 60),), concurrency=1)
    limiter = SlidingWindowLimiter(config.rates, guard=0)
    with caplog.at_level(logging.INFO, logger="bulkrunner"):
        seed(limiter, journal_file, "", config.concurrency, REAL_CLOCK)
    (message,) = [r.getMessage() for r in caplog.records if "rate window" in r.getMessage()]
    seconds = int(message.split()[1].rstrip("s"))
    assert message == f"waiting {seconds}s for the previous run's requests to leave the rate window"
    assert 55 <= seconds <= 60


class Kept(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def test_in_json_mode_progress_is_an_event_with_its_figures() -> None:
    kept = Kept()
    previous = events.level
    events.setLevel(logging.INFO)  # as --log-format json sets it
    events.addHandler(kept)
    try:
        lines = LogLines(interval=5)
        snapshot = Snapshot(10, 6, 1, 2, 1.5, "10/2", eta=45.0, next_retry=12.0)
        lines.show(snapshot, 100.0)
        lines.show(snapshot, 106.0)
    finally:
        events.removeHandler(kept)
        events.setLevel(previous)
    (record,) = kept.records
    fields = record.__dict__["fields"]
    assert record.__dict__["event"] == "progress"
    assert fields["succeeded"] == 6
    assert fields["retrying"] == 2
    assert fields["eta"] == 45
    assert fields["next_retry"] == 12


@pytest.mark.parametrize(
    ("no_backup", "listed", "reads"),
    [(False, 0, 300), (False, 120, 180), (True, 0, 0)],
)
def test_the_eta_of_a_streamed_run_counts_the_reads_of_batches_not_yet_read(
    tmp_path: Path, no_backup: bool, listed: int, reads: int
) -> None:
    """300 rows in batches still to come: each is read one by one first, unless the account's
    list showed it (or nothing is read: --no-backup)."""
    config = RunConfig(input=tmp_path / "in.csv", no_backup=no_backup)
    pipeline = Pipeline(config, connection(ScriptedSender({}), FakeClock()), SETTINGS, Wire())
    pipeline.listing.campaigns = {n: {} for n in range(listed)}
    assert pipeline.reads_later(300) == reads
    assert pipeline.reads_later(0) == 0
