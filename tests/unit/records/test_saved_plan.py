"""Saved plans, as terraform's ``plan -out``: ``plan FILE --out PLAN`` writes what would change,
``run --plan PLAN`` applies exactly that and nothing else (the input is not read again), and
leaves a campaign changed since the plan as it is (``drifted``, named, exit 1); a run with
other options or another account is refused. ``plan --exit-code`` tells cron whether anything
would change; ``plan`` without a key is a usage error.

Whole commands in this process, on a fake clock, against the embedded simulator.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from bulkrunner.cli.app import main
from bulkrunner.commands.plan import plan_job
from bulkrunner.commands.run import run_job
from bulkrunner.config.folders import account_id
from bulkrunner.errors import ExitCode, UsageError
from bulkrunner.model import Rate
from bulkrunner.records.saved_plan import read_header
from bulkrunner.simulator import FaultPlan, SimulatorConfig, SimulatorThread, default_settings
from tests.fakes import FakeClock, JobCommands

KEY = "sk-saved-plan-SENTINEL-58"
ENVIRON = {"SMARTLEAD_API_KEY": KEY}
IDS = [301, 302, 303, 304]


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def sim(clock: FakeClock) -> Any:
    config = SimulatorConfig(api_key=KEY, campaigns=set(IDS), rates=[Rate(100, 1)])
    with SimulatorThread(config, clock=clock) as running:
        yield running


command = JobCommands(ENVIRON)


def limit(sim: SimulatorThread, campaign: int) -> Any:
    return sim.state.settings.get(campaign, default_settings(campaign))["sending_limit"]


def statuses(report: Path) -> list[str]:
    return pd.read_csv(report, dtype=str, keep_default_na=False)["status"].tolist()


@pytest.fixture
def source(tmp_path: Path) -> Path:
    """Row 1 changes nothing (already as wanted), rows 2-4 change, row 5 is invalid."""
    same = default_settings(IDS[0])["sending_limit"]
    path = tmp_path / "in.csv"
    lines = [
        "campaign_id,sending_limit,unsubscribe_text",
        f"{IDS[0]},{same},",
        f"{IDS[1]},61,",
        f"{IDS[2]},62,Bye",
        f"{IDS[3]},63,",
        "x,1,",
    ]
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture
def saved(tmp_path: Path, clock: FakeClock, sim: SimulatorThread, source: Path) -> Path:
    plan = tmp_path / "tonight.plan"
    code = command(plan_job, clock, sim, source, tmp_path / "p.csv", out=str(plan))
    assert code == ExitCode.ROWS_FAILED  # (the invalid row)
    assert sim.state.writes() == []
    return plan


def test_plan_out_saves_each_row_to_change_with_its_before_and_after(
    saved: Path, source: Path, sim: SimulatorThread
) -> None:
    assert f"plan saved: {saved} (3 rows to change); to apply it: bulkrunner run" in (command.out)
    table = pq.read_table(saved).to_pandas()
    assert table["row"].tolist() == [2, 3, 4]  # the rows to send, by their numbers in the input
    assert table["campaign_id"].tolist() == IDS[1:]
    assert table["sending_limit"].tolist() == [61, 62, 63]
    assert json.loads(table["before"][1]) == {
        "sending_limit": default_settings(IDS[2])["sending_limit"],
        "unsubscribe_text": "",
    }
    assert json.loads(table["after"][1]) == {"sending_limit": 62, "unsubscribe_text": "Bye"}
    header = read_header(saved)
    assert header.operation == "settings"
    assert header.input == str(source.resolve())
    assert header.accounts == {"": account_id(sim.base_url, KEY)}
    assert KEY not in saved.read_bytes().decode("latin-1")  # never the key: a one-way hash


def test_run_plan_applies_exactly_the_plan_and_not_the_input(
    tmp_path: Path, clock: FakeClock, sim: SimulatorThread, source: Path, saved: Path
) -> None:
    """The input is edited after the plan was approved (a row added, a value changed): the run
    applies the plan, as approved; its report numbers each row as the input the plan read."""
    source.write_text(source.read_text().replace(",63,", ",99,") + "305,5,\n")
    report = tmp_path / "applied.csv"
    assert command(run_job, clock, sim, source, report, plan=str(saved)) == ExitCode.OK
    assert [limit(sim, c) for c in IDS] == [default_settings(IDS[0])["sending_limit"], 61, 62, 63]
    assert sim.state.settings[IDS[2]]["unsubscribe_text"] == "Bye"
    written = sorted(int(r.path.split("/")[-2]) for r in sim.state.writes("settings"))
    assert written == IDS[1:]  # nothing else: not row 1, not the row added to the input
    applied = pd.read_csv(report, dtype=str, keep_default_na=False)
    assert applied["row"].tolist() == ["2", "3", "4"]
    assert applied["status"].tolist() == ["succeeded"] * 3
    # the input columns the plan holds, then the result columns (its own are not echoed)
    assert list(applied.columns[:3]) == ["campaign_id", "sending_limit", "unsubscribe_text"]
    assert list(applied.columns).count("before") == 1


def _edited(plan: Path, header: dict[str, Any] | None = None, **columns: Any) -> None:
    """``plan`` edited by hand: its header's values replaced, its columns replaced (None:
    taken out)."""
    table = pq.read_table(plan)
    metadata = dict(table.schema.metadata)
    if header is not None:
        found = json.loads(metadata[b"bulkrunner.plan"])
        metadata[b"bulkrunner.plan"] = json.dumps({**found, **header}).encode()
    for name, cells in columns.items():
        at = table.schema.get_field_index(name)
        table = table.remove_column(at)
        if cells is not None:
            table = table.add_column(at, name, pa.array(cells))
    pq.write_table(table.replace_schema_metadata(metadata), plan)


@pytest.mark.parametrize(
    ("edit", "said"),
    [
        ({"header": {"operation": "bogus"}}, "the plan's header is damaged"),
        ({"header": {"options": "x"}}, "the plan's header is damaged"),
        ({"header": {"accounts": [1]}}, "the plan's header is damaged"),
        ({"campaign_id": None}, "the plan has no campaign_id column"),
        ({"row": None}, "the plan has no row column"),
        ({"row": ["one", "two", "three"]}, "the plan's row numbers are damaged"),
    ],
    ids=["operation", "options", "accounts", "no campaign_id", "no row", "row words"],
)
def test_a_plan_edited_by_hand_is_refused_in_one_line(
    tmp_path: Path,
    clock: FakeClock,
    sim: SimulatorThread,
    source: Path,
    saved: Path,
    edit: dict[str, Any],
    said: str,
) -> None:
    _edited(saved, **edit)
    with pytest.raises(UsageError) as refused:
        command(run_job, clock, sim, source, tmp_path / "r.csv", plan=str(saved))
    assert str(refused.value).startswith(f"{saved}: {said}")
    assert "\n" not in str(refused.value)
    assert sim.state.writes() == []


def test_a_campaign_changed_since_the_plan_is_refused_by_name(
    tmp_path: Path, clock: FakeClock, sim: SimulatorThread, saved: Path
) -> None:
    later = tmp_path / "later.csv"
    later.write_text(f"campaign_id,sending_limit\n{IDS[2]},44\n")
    assert command(run_job, clock, sim, later, tmp_path / "later-report.csv") == ExitCode.OK
    was = default_settings(IDS[2])["sending_limit"]
    report = tmp_path / "applied.csv"
    code = command(run_job, clock, sim, later, report, plan=str(saved))
    assert code == ExitCode.ROWS_FAILED
    assert [limit(sim, c) for c in IDS[1:]] == [61, 44, 63]  # the later change kept
    assert statuses(report) == ["succeeded", "drifted", "succeeded"]
    error = pd.read_csv(report, dtype=str, keep_default_na=False)["error"].tolist()[1]
    assert error == (
        f"campaign {IDS[2]} changed since the plan: sending_limit is 44 now, the plan found "
        f"{was}; not sent (make the plan again to see what a run would change now)"
    )


def test_a_campaign_already_as_planned_is_unchanged_but_half_of_it_is_drift(
    tmp_path: Path, clock: FakeClock, sim: SimulatorThread, saved: Path
) -> None:
    """A campaign someone already set wholly as the plan does needs nothing; one set half so
    is no longer what the plan found: drifted."""
    later = tmp_path / "later.csv"
    later.write_text(f"campaign_id,sending_limit\n{IDS[1]},61\n{IDS[2]},62\n")
    assert command(run_job, clock, sim, later, tmp_path / "later-report.csv") == ExitCode.OK
    report = tmp_path / "applied.csv"
    assert command(run_job, clock, sim, later, report, plan=str(saved)) == 1
    assert statuses(report) == ["unchanged", "drifted", "succeeded"]
    error = pd.read_csv(report, dtype=str, keep_default_na=False)["error"].tolist()[1]
    assert "sending_limit is already as the plan sets it (the plan found " in error


@pytest.mark.parametrize(
    ("more", "environ", "said"),
    [
        ({"vocabulary": "long"}, ENVIRON, "vocabulary documented (this run: long)"),
        ({"allow_irreversible": True}, ENVIRON, "allow-irreversible off (this run: on)"),
        ({"no_backup": True}, ENVIRON, "no-backup off (this run: on)"),
        (
            {},
            {"SMARTLEAD_API_KEY": "sk-another-account"},
            "SMARTLEAD_API_KEY opening another account (this run: another key or server)",
        ),
        ({"operation": "status"}, ENVIRON, "a plan of the settings operation, not of status"),
    ],
)
def test_a_plan_run_with_other_options_or_another_account_is_refused(
    tmp_path: Path,
    clock: FakeClock,
    sim: SimulatorThread,
    source: Path,
    saved: Path,
    more: dict[str, Any],
    environ: dict[str, str],
    said: str,
) -> None:
    report = tmp_path / "applied.csv"
    with pytest.raises(UsageError) as refused:
        command(run_job, clock, sim, source, report, environ, plan=str(saved), **more)
    assert said in str(refused.value)
    assert sim.state.requests == [] or all(r.method == "GET" for r in sim.state.requests)
    assert sim.state.writes() == []
    assert not report.exists()


def test_plan_exit_code_says_whether_anything_would_change(
    tmp_path: Path, clock: FakeClock, sim: SimulatorThread
) -> None:
    path = tmp_path / "in.csv"
    path.write_text(f"campaign_id,sending_limit\n{IDS[1]},61\n")
    report = tmp_path / "p.csv"
    assert command(plan_job, clock, sim, path, report, exit_code=True) == ExitCode.CHANGES
    assert command(plan_job, clock, sim, path, report) == ExitCode.OK  # (without it)
    assert command(run_job, clock, sim, path, tmp_path / "r.csv") == ExitCode.OK
    assert command(plan_job, clock, sim, path, report, exit_code=True) == ExitCode.OK
    # a plan that would fail a row still says so (1), changes or not
    path.write_text(f"campaign_id,sending_limit\n{IDS[2]},62\nx,1\n")
    assert command(plan_job, clock, sim, path, report, exit_code=True) == ExitCode.ROWS_FAILED
    assert ExitCode.CHANGES not in (ExitCode.OK, ExitCode.ROWS_FAILED, ExitCode.USAGE)
    assert len(set(ExitCode)) == len(ExitCode)  # distinct from every other code


def test_the_plan_is_not_saved_when_it_did_not_finish(
    tmp_path: Path, clock: FakeClock, sim: SimulatorThread, source: Path
) -> None:
    plan = tmp_path / "p.plan"
    bad = {"SMARTLEAD_API_KEY": "sk-rejected"}
    code = command(plan_job, clock, sim, source, tmp_path / "p.csv", bad, out=str(plan))
    assert code == ExitCode.ABORTED
    assert not plan.exists()
    assert list(tmp_path.glob(".*tmp*")) == []


def test_out_never_replaces_the_input_a_backup_or_a_file_that_is_not_a_plan(
    tmp_path: Path, clock: FakeClock, sim: SimulatorThread, source: Path, saved: Path
) -> None:
    other = tmp_path / "notes.txt"
    other.write_text("mine")
    report = tmp_path / "p2.csv"
    for out in (source, tmp_path / "x.csv.backup.parquet", other, report):
        with pytest.raises(UsageError, match=r"--out would overwrite|is not a saved plan"):
            command(plan_job, clock, sim, source, report, out=str(out))
    assert other.read_text() == "mine"
    # a plan saved before is replaced
    assert command(plan_job, clock, sim, source, tmp_path / "p3.csv", out=str(saved)) == 1


def test_the_command_line_runs_a_plan_in_place_of_an_input(
    saved: Path,
    source: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``run --plan`` takes the plan where the input goes: an input beside it is refused, and
    a file that is not a plan is named."""
    monkeypatch.setenv("SMARTLEAD_API_KEY", KEY)
    assert main(["run", str(source), "--plan", str(saved)]) == 2
    assert "a run of a plan reads no input" in capsys.readouterr().err
    assert main(["run", "--plan", str(source)]) == 2
    assert "not a plan saved by `bulkrunner plan --out`" in capsys.readouterr().err


def test_a_plan_of_email_accounts_is_applied_as_planned(
    tmp_path: Path, clock: FakeClock, sim: SimulatorThread
) -> None:
    """Lists of ids keep their type and order in the plan; the change is checked as the
    operation reads it (the attached ids)."""
    path = tmp_path / "in.csv"
    path.write_text(f'campaign_id,add\n{IDS[0]},"9;7"\n')
    plan = tmp_path / "accounts.plan"
    code = command(
        plan_job, clock, sim, path, tmp_path / "p.csv", out=str(plan), operation="email-accounts"
    )
    assert code == ExitCode.OK
    assert pq.read_table(plan).column("add").to_pylist() == [[9, 7]]
    before = json.loads(pq.read_table(plan).column("before").to_pylist()[0])
    report = tmp_path / "applied.csv"
    assert command(run_job, clock, sim, path, report, plan=str(plan)) == ExitCode.OK
    assert sim.state.email_accounts[IDS[0]] == sorted({*before["email_accounts"], 9, 7})
    assert len(sim.state.writes("email-accounts", "POST")) == 1


def test_a_plan_made_on_the_simulator_runs_on_the_simulator_only(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SMARTLEAD_API_KEY", raising=False)
    path = tmp_path / "in.csv"
    path.write_text("campaign_id,sending_limit\n1480601,61\n")
    plan = tmp_path / "demo.plan"
    common = ["--no-state", "--report"]
    report = str(tmp_path / "p.csv")
    assert main(["plan", str(path), "--simulate", "--out", str(plan), *common, report]) == 0
    assert read_header(plan).simulate
    assert read_header(plan).accounts == {}
    applied = tmp_path / "applied.csv"
    assert main(["run", "--plan", str(plan), "--simulate", *common, str(applied)]) == 0
    assert statuses(applied) == ["succeeded"]
    monkeypatch.setenv("SMARTLEAD_API_KEY", KEY)
    capsys.readouterr()
    assert main(["run", "--plan", str(plan), *common, str(tmp_path / "real.csv")]) == 2
    assert "--simulate on" in capsys.readouterr().err


def test_an_interrupted_run_of_a_plan_resumes_with_the_rest(
    tmp_path: Path, clock: FakeClock, source: Path
) -> None:
    """The third row's write is answered 429 asking for longer than --max-wait: the run of the
    plan stops; resumed, it sends the rest, each campaign once, none taken for drifted."""
    faults = FaultPlan(scripted={IDS[2]: ["429"]}, retry_after=900)
    config = SimulatorConfig(api_key=KEY, campaigns=set(IDS), rates=[Rate(100, 1)], faults=faults)
    with SimulatorThread(config, clock=clock) as sim:
        plan = tmp_path / "p.plan"
        assert command(plan_job, clock, sim, source, tmp_path / "p.csv", out=str(plan)) == 1
        report = tmp_path / "applied.csv"
        more: dict[str, Any] = {"plan": str(plan), "concurrency": 1}
        code = command(run_job, clock, sim, source, report, max_wait=60, **more)
        assert code == ExitCode.ABORTED
        assert statuses(report) == ["succeeded", "failed", "not_attempted"]
        assert command(run_job, clock, sim, source, report, resume=True, **more) == ExitCode.OK
        assert statuses(report) == ["succeeded"] * 3
        assert dict(sim.state.applied) == dict.fromkeys(IDS[1:], 1)


def test_the_python_api_saves_and_applies_a_plan(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``bulkrunner.plan(..., out=, exit_code=True)`` and ``bulkrunner.apply(..., plan=)``: the
    command's options, as the API takes every option."""
    import bulkrunner

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SMARTLEAD_API_KEY", KEY)
    frame = pd.DataFrame({"campaign_id": IDS[:2], "sending_limit": [61, 62]})
    plan = tmp_path / "api.plan"
    with SimulatorThread(SimulatorConfig(api_key=KEY, campaigns=set(IDS))) as sim:
        url: dict[str, Any] = {"base_url": sim.base_url, "rate": ["100/1"]}
        planned = bulkrunner.plan(frame, out=str(plan), exit_code=True, **url)
        assert planned.attrs["exit_code"] == ExitCode.CHANGES
        applied = bulkrunner.apply(frame.iloc[:0], plan=str(plan), **url)  # the plan, not data
        assert applied["status"].tolist() == ["succeeded", "succeeded"]
        assert [limit(sim, c) for c in IDS[:2]] == [61, 62]
