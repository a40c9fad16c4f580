"""One folder per run (``config.paths``): a run's report, journal, lock and backup in
``reports/<input stem>-<time>/``, plans and dry runs named as such, retries and rollbacks in the
folder of the run they follow up (no name grows with each), ``--keep N`` pruning old folders
(``records.pruning``); ``--report`` paths, ``--resume`` and the refusal of a plain re-run as
before."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pytest

from bulkrunner.cli.app import main
from bulkrunner.config import paths
from bulkrunner.records.pruning import prune
from bulkrunner.simulator import FaultPlan, SimulatorConfig, SimulatorThread

KEY = "sk-folders-SENTINEL-7f1e"
WHEN = datetime(2026, 11, 26, 2, 15, tzinfo=UTC)
T = r"\d{8}T\d{6}Z(-\d+)?"  # a time in a name, with the number a second command adds


@pytest.fixture(autouse=True)
def here(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, no_ambient_settings: None) -> Path:
    monkeypatch.setenv("SMARTLEAD_API_KEY", KEY)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def simulator(faults: FaultPlan | None = None) -> SimulatorThread:
    campaigns = set(range(1, 10))
    plan = faults or FaultPlan()
    return SimulatorThread(SimulatorConfig(api_key=KEY, campaigns=campaigns, faults=plan))


def plan_file(path: Path, limit: int = 10) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        "campaign_id,sending_limit\n" + "".join(f"{n},{limit + n}\n" for n in (1, 2, 3))
    )
    return path


def cli(sim: SimulatorThread, *argv: str) -> int:
    return main([*argv, "--base-url", sim.base_url, "--rate", "100/1", "--max-attempts", "2"])


# --- the names -------------------------------------------------------------------------------


def test_each_kind_of_report_has_a_folder_of_its_own_named_as_such() -> None:
    source = Path("in/acme.csv")
    assert paths.default_report_path(source, WHEN) == Path(
        "reports/acme-20261126T021500Z/report.csv"
    )
    assert paths.default_report_path(source, WHEN, paths.PLAN) == Path(
        "reports/acme-20261126T021500Z-plan/plan.csv"
    )
    assert paths.default_report_path(source, WHEN, paths.DRY_RUN) == Path(
        "reports/acme-20261126T021500Z-dry-run/dry-run.csv"
    )
    Path("reports/acme-20261126T021500Z").mkdir(parents=True)  # a command of the same second
    assert paths.default_report_path(source, WHEN) == Path(
        "reports/acme-20261126T021500Z-2/report.csv"
    )


def test_a_follow_up_goes_in_the_folder_of_the_run_it_follows_up() -> None:
    run = Path("reports/acme-20261126T021500Z/report.csv")
    later = datetime(2026, 11, 26, 3, 0, tzinfo=UTC)
    retry = paths.follow_up_path(run, "retry", later)
    assert retry == run.parent / "retry-20261126T030000Z.csv"
    # a rollback of the retry (its backup), and of that rollback: short names, same folder
    rollback = paths.default_report_path(paths.backup_path(retry), later)
    assert rollback == run.parent / "rollback-20261126T030000Z.csv"
    again = paths.default_report_path(paths.backup_path(rollback), WHEN.replace(hour=4))
    assert again == run.parent / "rollback-20261126T041500Z.csv"
    preview = paths.default_report_path(paths.backup_path(run), later, paths.DRY_RUN)
    assert preview == run.parent / "rollback-dry-run-20261126T030000Z.csv"
    # a report named with --report is in no run folder: the follow-up makes one, named after it
    assert paths.follow_up_path(Path("out/nightly.csv"), "retry", later) == Path(
        "reports/nightly-20261126T030000Z/retry-20261126T030000Z.csv"
    )


def test_a_run_folders_name_and_files_are_told_from_others() -> None:
    assert paths.run_folder_of(Path("reports/acme-eu-20261126T021500Z-2-plan")) == (
        "acme-eu",
        "20261126T021500Z-000002",
        paths.PLAN,
    )
    assert paths.run_folder_of(Path("reports/acme-20261126T021500Z")) == (
        "acme",
        "20261126T021500Z-000001",
        paths.RUN,
    )
    assert paths.run_folder_of(Path("reports/notes")) is None
    for name in (
        "report.csv",
        "report.csv.journal",
        "report.json.lock",
        "report.parquet.backup.parquet",
        "retry-20261126T021500Z.csv",
        "rollback-dry-run-20261126T021500Z-3.csv",
        ".report.csv.tmp",
    ):
        assert paths.is_run_file(name), name
    for name in ("notes.txt", "report.txt", "mine.csv", "retry-today.csv"):
        assert not paths.is_run_file(name), name


# --- an afternoon of commands ----------------------------------------------------------------


def test_an_afternoon_of_commands_leaves_a_folder_a_run_and_no_name_grows() -> None:
    """Issue 21: reports/ held 33 files after an afternoon, plans and dry runs named like real
    runs, names growing with each rollback (``edited-…Z.csv.backup-…Z.csv.backup.parquet``)."""
    source = plan_file(Path("edited.csv"))
    faults = FaultPlan(scripted={3: ["500", "500"]})  # row 3 fails its two tries, then works
    with simulator(faults) as sim:
        assert cli(sim, "plan", str(source)) == 0
        assert cli(sim, "run", str(source), "--dry-run") == 0
        assert cli(sim, "run", str(source)) == 1
        (run,) = Path("reports").glob("edited-*/report.csv")
        assert cli(sim, "retry", str(run)) == 0
        assert cli(sim, "rollback", str(run)) == 0
        (rollback,) = run.parent.glob("rollback-*.csv")
        assert cli(sim, "rollback", str(rollback)) == 0  # undo the undo
        (retry,) = run.parent.glob("retry-*.csv")
        assert cli(sim, "rollback", str(retry)) == 0
    folders = sorted(path.name for path in Path("reports").iterdir())
    assert len(folders) == 3
    assert all(Path("reports", name).is_dir() for name in folders)
    (planned,) = [name for name in folders if re.fullmatch(rf"edited-{T}-plan", name)]
    (dry,) = [name for name in folders if re.fullmatch(rf"edited-{T}-dry-run", name)]
    assert run.parent.name in folders
    assert re.fullmatch(rf"edited-{T}", run.parent.name)
    assert [p.name for p in Path("reports", planned).iterdir()] == ["plan.csv"]
    assert [p.name for p in Path("reports", dry).iterdir()] == ["dry-run.csv"]
    files = sorted(path.name for path in run.parent.iterdir())
    short = rf"(report|retry-{T}|rollback-{T})\.csv(\.backup\.parquet)?"
    assert all(re.fullmatch(short, name) for name in files), files
    assert len([name for name in files if name.startswith("rollback-")]) == 6  # 3, backed up
    assert pd.read_csv(retry)["status"].tolist() == ["succeeded"]


def test_a_report_given_with_report_keeps_its_files_beside_it_and_follow_ups_a_folder() -> None:
    source = plan_file(Path("plan.csv"))
    with simulator(FaultPlan(scripted={3: ["500", "500"]})) as sim:
        assert cli(sim, "run", str(source), "--report", "out/nightly.csv") == 1
        assert sorted(p.name for p in Path("out").iterdir()) == [
            "nightly.csv",
            "nightly.csv.backup.parquet",
        ]
        assert cli(sim, "retry", "out/nightly.csv") == 0
        (retry,) = Path("reports").glob("nightly-*/retry-*.csv")
        assert cli(sim, "rollback", str(retry)) == 0
        assert len(list(retry.parent.glob("rollback-*.csv"))) == 1  # beside the retry


def test_an_interrupted_retry_is_resumed_in_its_run_folder() -> None:
    source = plan_file(Path("plan.csv"))
    faults = FaultPlan(scripted={3: ["500", "500", "429"]}, retry_after=1000)
    with simulator(faults) as sim:
        assert cli(sim, "run", str(source)) == 1
        (run,) = Path("reports").glob("plan-*/report.csv")
        assert cli(sim, "retry", str(run), "--max-wait", "5") == 3  # Retry-After 1000: stops
        (retry,) = run.parent.glob("retry-*.csv")
        assert paths.journal_path(retry).exists()
        assert cli(sim, "retry", str(run)) == 2  # a plain re-run is refused: it is unfinished
        assert cli(sim, "retry", str(run), "--resume") == 0
        assert sorted(run.parent.glob("retry-*.csv")) == [retry]  # continued, in its report
        assert not paths.journal_path(retry).exists()
        assert pd.read_csv(retry)["status"].tolist() == ["succeeded"]


# --- --keep ----------------------------------------------------------------------------------


def folder(name: str, *files: str) -> Path:
    made = Path("reports", name)
    made.mkdir(parents=True)
    for each in files or ("report.csv",):
        (made / each).write_text("{}\n")
    return made


@pytest.fixture
def earlier() -> dict[str, Path]:
    return {
        "oldest": folder("plan-20261101T000000Z", "report.csv", "report.csv.backup.parquet"),
        "old": folder("plan-20261102T000000Z"),
        "unfinished": folder("plan-20261103T000000Z", "report.csv.journal"),
        "yours": folder("plan-20261104T000000Z", "report.csv", "notes.txt"),
        "a plan": folder("plan-20261105T000000Z-plan", "plan.csv"),
        "newer": folder("plan-20261106T000000Z-2"),
        "another job": folder("plan-eu-20261101T000000Z"),
    }


def test_keep_removes_the_jobs_old_run_folders_but_never_one_a_run_needs(
    earlier: dict[str, Path],
) -> None:
    source = plan_file(Path("plan.csv"))
    with simulator() as sim:
        assert cli(sim, "run", str(source), "--keep", "2") == 0
        (new,) = [p for p in Path("reports").glob("plan-2026*") if p not in earlier.values()]
        left = {name for name, path in earlier.items() if path.exists()}
        assert left == {"unfinished", "yours", "a plan", "newer", "another job"}
        assert (new / "report.csv").exists()
        # plans are counted apart: a plan keeps one plan, the runs stay
        assert cli(sim, "plan", str(source), "--keep", "1") == 0
        assert not earlier["a plan"].exists()
        assert len(list(Path("reports").glob("plan-*-plan"))) == 1
        assert earlier["newer"].exists()
        assert new.exists()


def test_a_job_files_keep_prunes_as_the_flag_does(earlier: dict[str, Path]) -> None:
    source = plan_file(Path("plan.csv"))
    with simulator() as sim:
        job = Path("nightly.toml")
        job.write_text(f'input = "{source}"\nkeep = 1\nbase_url = "{sim.base_url}"\n')
        assert main(["run", str(job), "--rate", "100/1"]) == 0
    assert not earlier["newer"].exists()
    assert earlier["unfinished"].exists()
    assert earlier["yours"].exists()


def test_keep_must_keep_at_least_one(capsys: pytest.CaptureFixture[str]) -> None:
    source = plan_file(Path("plan.csv"))
    assert main(["run", str(source), "--keep", "0"]) == 2
    assert "keep must be at least 1" in capsys.readouterr().err
    assert not Path("reports").exists()


def test_pruning_a_folder_that_is_no_run_folder_removes_nothing(
    earlier: dict[str, Path],
) -> None:
    mine = Path("reports", "mine")
    mine.mkdir()
    assert prune(mine, 1) == []
    assert prune(Path("elsewhere/plan-20261107T000000Z"), 1) == []  # not there: nothing beside
    assert all(path.exists() for path in earlier.values())
