"""A long real run is streamed a batch at a time (``bulkrunner.sending.batches``): the command
line in the test's process against the simulator on 127.0.0.1, with batches of a few rows, so that
a file of dozens of rows is several batches. Every row is still accounted for, exactly as a run of
one batch accounts for it; the backup holds every campaign; an interrupted run resumes; and the run
holds no more than a couple of batches' rows and outcomes at a time."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

import bulkrunner.sending.batches as batches
from bulkrunner.cli.app import main
from bulkrunner.config.paths import backup_path
from bulkrunner.model import Changes, Outcome, Row, Status
from bulkrunner.records.backup import read_backup
from bulkrunner.records.journal import Journal
from bulkrunner.sending.batches import CampaignSet
from bulkrunner.sending.spill import Spill
from bulkrunner.simulator import FaultPlan, SimulatorConfig, SimulatorThread
from bulkrunner.simulator.state import default_settings
from tests.fakes import rate_alone
from tests.heap import own_heap

KEY = "sk-stream-SENTINEL-77aa"
ROWS = 40
BATCH = 7  # rows a batch: 40 rows are six batches (the last of five)
FAST = [*rate_alone("1000/1"), "--concurrency", "4", "--max-attempts", "4"]


@pytest.fixture(autouse=True)
def environment(monkeypatch: pytest.MonkeyPatch, no_ambient_settings: None) -> None:
    monkeypatch.setenv("SMARTLEAD_API_KEY", KEY)


def batches_of(monkeypatch: pytest.MonkeyPatch, rows: int) -> None:
    monkeypatch.setattr(batches, "BATCH_ROWS", rows)


def plan(path: Path) -> Path:
    """40 rows: campaigns 101..140 to a sending limit of 500 + i; row 9 has no campaign id and
    row 33 a sending limit that is not a number (invalid, in the second and fifth batch)."""
    ids = [str(100 + i) for i in range(1, ROWS + 1)]
    limits = [str(500 + i) for i in range(1, ROWS + 1)]
    ids[8] = ""
    limits[32] = "many"
    pd.DataFrame({"campaign_id": ids, "sending_limit": limits}).to_csv(path, index=False)
    return path


def simulator(**changes: Any) -> SimulatorThread:
    config = SimulatorConfig(api_key=KEY, campaigns=set(range(101, 141)), **changes)
    return SimulatorThread(config)


def report_rows(path: Path) -> list[dict[str, str]]:
    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    keep = ["row", "campaign_id", "status", "error", "before", "after"]
    return [{k: row[k] for k in keep if k in row} for row in frame.to_dict("records")]


def test_a_streamed_run_reports_every_row_as_a_run_of_one_batch_does(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = plan(tmp_path / "plan.csv")
    reports = {}
    for size in (BATCH, 1000):
        batches_of(monkeypatch, size)
        faults = FaultPlan(scripted={103: ["503"], 111: ["429"], 130: ["drop"]}, retry_after=0.01)
        with simulator(faults=faults) as sim:
            sim.state.settings[120] = {**default_settings(120), "sending_limit": 520}
            report = tmp_path / f"report-{size}.csv"
            code = main(["run", "--input", str(source), "--report", str(report), *FAST,
                         "--base-url", sim.base_url])  # fmt: skip
            assert code == 1  # two invalid rows
            applied = sorted(sim.state.applied)
        reports[size] = report_rows(report)
        # every valid row but the one already as wanted is applied, once
        assert applied == [c for c in range(101, 141) if c not in (109, 120, 133)]
    assert reports[BATCH] == reports[1000]
    statuses = [row["status"] for row in reports[BATCH]]
    assert len(statuses) == ROWS
    assert statuses.count("invalid") == 2
    assert statuses.count("unchanged") == 1
    assert statuses.count("succeeded") == ROWS - 3
    assert reports[BATCH][35]["before"]
    assert reports[BATCH][35]["after"]


def test_every_batch_is_backed_up_and_one_rollback_restores_them_all(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    batches_of(monkeypatch, BATCH)
    source = plan(tmp_path / "plan.csv")
    report = tmp_path / "report.csv"
    with simulator() as sim:
        before = {c: default_settings(c)["sending_limit"] for c in range(101, 141)}
        url = ["--base-url", sim.base_url]
        assert main(["run", "--input", str(source), "--report", str(report), *FAST, *url]) == 1
        ledger = read_backup(backup_path(report))
        changed = [c for c in range(101, 141) if c not in (109, 133)]
        assert sorted(ledger) == changed
        assert all(ledger[c]["sending_limit"] == before[c] for c in changed)
        assert main(["rollback", str(report), *FAST, *url]) == 0
        assert all(sim.state.settings[c]["sending_limit"] == before[c] for c in changed)


def test_the_list_of_campaigns_is_read_once_for_every_batch(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    batches_of(monkeypatch, BATCH)
    source = plan(tmp_path / "plan.csv")
    with simulator() as sim:
        url = ["--base-url", sim.base_url]
        main(["run", "--input", str(source), "--report", str(tmp_path / "r.csv"), *FAST, *url])
        gets = [r for r in sim.state.requests if r.method == "GET"]
    # the list shows every campaign: one read in all, none one by one
    assert [r.campaign_id for r in gets] == [None]


def test_a_run_stopped_in_its_third_batch_reports_the_rest_and_resumes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    batches_of(monkeypatch, BATCH)
    source = plan(tmp_path / "plan.csv")
    report = tmp_path / "report.csv"
    # campaign 117 (row 17, the third batch) answers 429, retry after 100 s: more than
    # --max-wait, so the run stops there
    faults = FaultPlan(scripted={117: ["429"]}, retry_after=100)
    with simulator(faults=faults) as sim:
        url = ["--base-url", sim.base_url]
        stopping = ["--max-wait", "5"]
        argv = ["run", "--input", str(source), "--report", str(report), *FAST, *stopping, *url]
        assert main(argv) == 3
        first = set(sim.state.applied)
        rows = report_rows(report)
        assert len(rows) == ROWS
        assert rows[32]["status"] == "invalid"  # a batch never reached: still judged
        assert rows[39]["status"] == "not_attempted"
        assert "--max-wait" in rows[39]["error"]
        assert {int(r["campaign_id"]) for r in rows if r["status"] == "succeeded"} == first
        assert max(first) < 122  # nothing of the batches after the third was sent
        capsys.readouterr()
        resumed = ["run", "--input", str(source), "--report", str(report), "--resume"]
        assert main([*resumed, *FAST, *url]) == 1  # the two invalid rows
        assert "resuming: " in capsys.readouterr().err
        applied = sim.state.applied
    assert sorted(applied) == [c for c in range(101, 141) if c not in (109, 133)]
    assert all(n == 1 for n in applied.values())  # nothing applied twice
    final = report_rows(report)
    assert [r["status"] for r in final].count("succeeded") == ROWS - 2
    ledger = read_backup(backup_path(report))
    assert ledger[101]["sending_limit"] == default_settings(101)["sending_limit"]
    assert len(ledger) == ROWS - 2


def test_a_streamed_run_holds_a_couple_of_batches_of_rows_at_a_time(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Rows and outcomes alive while the run journals each finished row: those of the batch
    at hand (and of the one before, until let go), never the file's."""
    batches_of(monkeypatch, 10)
    rows = 60
    ids = [str(1000 + i) for i in range(rows)]
    source = tmp_path / "plan.csv"
    pd.DataFrame({"campaign_id": ids, "sending_limit": ["500"] * rows}).to_csv(source, index=False)
    alive: list[tuple[int, int]] = []
    record = Journal.record
    recorded = [0]

    def counting(journal: Journal, *args: Any) -> None:
        record(journal, *args)
        recorded[0] += 1
        if recorded[0] % 4:  # a look at every fourth
            return
        objects = gc.get_objects()
        alive.append(
            (
                sum(isinstance(o, Row) for o in objects),
                sum(isinstance(o, Outcome) for o in objects),
            )
        )

    monkeypatch.setattr(Journal, "record", counting)
    with own_heap(), SimulatorThread(SimulatorConfig(api_key=KEY)) as sim:
        url = ["--base-url", sim.base_url]
        assert main(["run", "--input", str(source), "--report", str(tmp_path / "r.csv"),
                     *FAST, *url]) == 0  # fmt: skip
        assert len(sim.state.applied) == rows
    assert len(alive) == rows // 4
    assert max(r for r, _ in alive) <= 30  # all 60 throughout, were the run not streamed
    assert max(o for _, o in alive) <= 30


def test_an_account_file_run_is_streamed_too(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    batches_of(monkeypatch, 4)
    with simulator() as one, simulator() as two:
        accounts = tmp_path / "accounts.toml"
        accounts.write_text(
            f'[accounts.one]\nkey_env = "KEY_ONE"\nbase_url = "{one.base_url}"\n'
            f'rate = ["1000/1"]\n'
            f'[accounts.two]\nkey_env = "KEY_TWO"\nbase_url = "{two.base_url}"\n'
            f'rate = ["1000/1"]\n'
        )
        monkeypatch.setenv("KEY_ONE", KEY)
        monkeypatch.setenv("KEY_TWO", KEY)
        ids = [str(101 + i) for i in range(15)]
        names = ["one" if i % 3 else "two" for i in range(15)]
        source = tmp_path / "plan.csv"
        frame = {"campaign_id": ids, "sending_limit": ["77"] * 15, "account": names}
        pd.DataFrame(frame).to_csv(source, index=False)
        report = tmp_path / "report.csv"
        argv = ["run", "--input", str(source), "--report", str(report), "--accounts", str(accounts)]
        assert main(argv) == 0
        assert sorted(one.state.applied) == [101 + i for i in range(15) if i % 3]
        assert sorted(two.state.applied) == [101 + i for i in range(15) if not i % 3]
    out = capsys.readouterr().out
    assert "account one: 10 rows (10 succeeded)" in out
    assert "account two: 5 rows (5 succeeded)" in out
    assert sorted(read_backup(backup_path(report))) == [101 + i for i in range(15)]


# --- the pieces ---------------------------------------------------------------------------------


def _outcomes(first: int, last: int) -> dict[int, Outcome]:
    return {n: Outcome(Status.SUCCEEDED, 200, 1, f"row {n}") for n in range(first, last + 1)}


def test_the_spill_gives_back_any_rows_across_its_batches() -> None:
    spill = Spill()
    changes = {5: Changes()}
    spill.add(1, 4, _outcomes(1, 4), {})
    spill.add(5, 9, _outcomes(5, 9), changes)
    spill.add(10, 12, _outcomes(10, 12), {})
    outcomes, changed = spill.between(3, range(3, 12))
    assert sorted(outcomes) == list(range(3, 12))
    assert outcomes[7].error == "row 7"
    assert list(changed) == [5]
    assert spill.between(13, range(13, 21)) == ({}, {})
    spill.close()


def test_the_spill_gives_back_a_retrys_rows_by_their_numbers_in_the_original_file() -> None:
    """A retry's rows are at positions 1, 2, 3... of its table, numbered as in the file they
    came from: the spill keeps batches by position and outcomes by number."""
    spill = Spill()
    numbers = [4, 9, 2, 30]  # a report sorted by hand: the numbers need not increase
    spill.add(1, 2, {4: _outcomes(4, 4)[4], 9: _outcomes(9, 9)[9]}, {})
    spill.add(3, 4, {2: _outcomes(2, 2)[2], 30: _outcomes(30, 30)[30]}, {9: Changes()})
    outcomes, changed = spill.between(2, numbers[1:3])
    assert sorted(outcomes) == [2, 9]
    assert changed == {}  # the second batch's changes are of row 9's number, not its position
    spill.close()


def test_the_spill_holds_a_batch_in_memory_when_the_disk_refuses_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def full(*args: Any, **kwargs: Any) -> Iterator[None]:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("bulkrunner.sending.spill.tempfile.TemporaryFile", full)
    spill = Spill()
    spill.add(1, 3, _outcomes(1, 3), {})
    assert sorted(spill.between(1, range(1, 4))[0]) == [1, 2, 3]


def test_a_campaign_set_answers_membership_from_a_sorted_array() -> None:
    import numpy as np

    ids = CampaignSet(np.array([5, 0, 3, 5, 2**40], dtype=np.int64))
    assert 5 in ids
    assert 3 in ids
    assert 2**40 in ids
    assert 0 not in ids
    assert 4 not in ids
    text: object = "5"
    assert text not in ids
    assert 2**70 not in ids
    assert sorted(ids) == [3, 5, 2**40]
    assert len(ids) == 3
    huge = CampaignSet(np.array([7, 2**70, 0], dtype=object))
    assert list(huge) == [7]


def test_a_campaign_set_holds_each_id_once_in_order_and_leaves_its_input_as_it_was() -> None:
    import numpy as np

    rng = np.random.default_rng(10)
    for size in (0, 1, 2, 3, 50, 5_000):
        ids = rng.integers(0, max(size // 3, 2), size, dtype=np.int64)  # repeats and zeros
        given = ids.copy()
        found = CampaignSet(ids)
        assert list(found) == sorted(set(ids.tolist()) - {0})
        assert len(found) == len(set(ids.tolist()) - {0})
        assert np.array_equal(ids, given)
    assert list(CampaignSet(np.zeros(4, dtype=np.int64))) == []


def test_a_file_changed_during_a_run_stops_it_before_the_next_batch(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A long run reads its file a batch at a time: rows edited meanwhile are never sent as
    part of the run that began with the file as it was."""
    batches_of(monkeypatch, BATCH)
    source = plan(tmp_path / "plan.csv")
    report = tmp_path / "report.csv"
    record = Journal.record

    def editing(journal: Journal, *args: Any) -> None:
        record(journal, *args)
        if source.read_text().count("\n") == ROWS + 1:  # once: a row added at the end
            with source.open("a") as handle:
                handle.write("999,501\n")

    monkeypatch.setattr(Journal, "record", editing)
    with simulator() as sim:
        url = ["--base-url", sim.base_url]
        assert main(["run", "--input", str(source), "--report", str(report), *FAST, *url]) == 3
        assert sorted(sim.state.applied) == list(range(101, 108))  # the first batch only
    err = capsys.readouterr().err
    assert "plan.csv changed during the run; rows 8 to 40 were not sent" in err
    rows = report_rows(report)
    assert [r["status"] for r in rows[:7]] == ["succeeded"] * 7
    assert rows[20]["status"] == "not_attempted"
    assert "changed during the run" in rows[20]["error"]


@pytest.fixture
def arrow_pool() -> Iterator[None]:
    """pyarrow's own default allocator (mimalloc, in its wheels) for the test, and then back."""
    import pyarrow as pa

    before = pa.default_memory_pool()
    try:
        pa.set_memory_pool(pa.mimalloc_memory_pool())
    except NotImplementedError:  # a pyarrow built without it
        pytest.skip("pyarrow has no mimalloc allocator here")
    yield
    pa.set_memory_pool(before)


@pytest.mark.usefixtures("arrow_pool")
def test_a_real_run_has_arrow_give_freed_memory_back_to_the_system(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """mimalloc keeps the pages each batch's rewrite of the backup frees: a long run grew."""
    import pyarrow as pa

    batches_of(monkeypatch, BATCH)
    source, report = plan(tmp_path / "plan.csv"), tmp_path / "report.csv"
    with simulator() as sim:
        code = main(["run", "--input", str(source), "--report", str(report), *FAST,
                     "--base-url", sim.base_url])  # fmt: skip
    assert code == 1  # the two invalid rows
    assert pa.default_memory_pool().backend_name == RETURNING


@pytest.mark.usefixtures("arrow_pool")
def test_a_rollback_has_arrow_give_freed_memory_back_before_it_reads_the_backup(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """jemalloc's decay holds only for arenas made after it is set: a rollback reads its
    backup before the run of it begins, so it sets the decay first."""
    import pyarrow as pa

    from bulkrunner.records.backup import backup_operation

    source, report = plan(tmp_path / "plan.csv"), tmp_path / "report.csv"
    with simulator() as sim:
        args = ["--report", str(report), *FAST, "--base-url", sim.base_url]
        assert main(["run", "--input", str(source), *args]) == 1  # the two invalid rows
        events: list[str] = []
        set_decay = pa.jemalloc_set_decay_ms

        def decay(ms: int) -> None:
            events.append(f"decay {ms}")
            set_decay(ms)

        def operation(path: Path) -> str:
            events.append("read")
            return backup_operation(path)

        monkeypatch.setattr(pa, "jemalloc_set_decay_ms", decay)
        monkeypatch.setattr("bulkrunner.commands.drift.backup_operation", operation)
        pa.set_memory_pool(pa.mimalloc_memory_pool())
        assert main(["rollback", str(report), "--report", str(tmp_path / "back.csv"),
                     *rate_alone("1000/1"), "--base-url", sim.base_url]) == 0  # fmt: skip
    assert events[:2] == ["decay 0", "read"]
    assert pa.default_memory_pool().backend_name == RETURNING


def returning_pool() -> str:
    """The allocator a run has Arrow use: jemalloc, unless pyarrow was built without it."""
    import pyarrow as pa

    try:
        pa.jemalloc_memory_pool()
    except NotImplementedError:
        return "system"
    return "jemalloc"


RETURNING = returning_pool()


@pytest.mark.usefixtures("arrow_pool")
def test_an_allocator_the_user_chose_for_arrow_is_kept() -> None:
    import pyarrow as pa

    from bulkrunner.config.environment import return_freed_memory

    return_freed_memory({"ARROW_DEFAULT_MEMORY_POOL": "mimalloc"})
    assert pa.default_memory_pool().backend_name == "mimalloc"
    return_freed_memory({})
    assert pa.default_memory_pool().backend_name == RETURNING


# --- the input is read three times at most: survey, send, report ---------------------------------


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_a_run_reads_its_input_three_times_at_most(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, suffix: str
) -> None:
    """A run of six batches, resumed, into a Parquet report: its input is read once to survey it
    (the campaigns that repeat and the report's cell types found on the way), once a batch at a
    time to send it, and once to write the report -- each a pass of ``InputFile.chunks``."""
    from bulkrunner.input.loading import InputFile

    batches_of(monkeypatch, BATCH)
    source = plan(tmp_path / "plan.csv")
    if suffix == ".parquet":
        frame = pd.read_csv(source, dtype=str, keep_default_na=False)
        source = tmp_path / "plan.parquet"
        frame.to_parquet(source, index=False)
    report = tmp_path / "report.parquet"
    passes: list[str] = []
    chunks = InputFile.chunks

    def counted(self: InputFile, *args: Any, **kwargs: Any) -> Any:
        if self.path == source:
            passes.append(str(kwargs.get("columns") or (args[1:] and args[1]) or "every column"))
        return chunks(self, *args, **kwargs)

    monkeypatch.setattr(InputFile, "chunks", counted)
    with simulator() as sim:
        args = ["run", "--input", str(source), "--report", str(report), *FAST]
        monkeypatch.setenv("SMARTLEAD_API_KEY", "sk-revoked")  # stops at the first read
        assert main([*args, "--base-url", sim.base_url]) == 3
        assert passes == ["every column"] * 3  # survey; its first batch, where it stopped; report
        passes.clear()
        monkeypatch.setenv("SMARTLEAD_API_KEY", KEY)
        assert main([*args, "--base-url", sim.base_url, "--resume"]) == 1  # two invalid rows
    assert passes == ["every column"] * 3  # survey, send, report
    assert len(pd.read_parquet(report)) == ROWS
