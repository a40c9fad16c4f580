"""The Python API (``bulkrunner.apply``, ``plan``, ``export``): the CLI's jobs over DataFrames,
against the simulator on 127.0.0.1. Nothing exits: every error is raised."""

from __future__ import annotations

import re
import signal
import threading
from pathlib import Path

import pandas as pd
import pytest

import bulkrunner
from bulkrunner.cli.app import main
from bulkrunner.errors import Aborted, UsageError
from bulkrunner.simulator import SimulatorConfig, SimulatorThread, default_settings, default_status

KEY = "sk-api-SENTINEL-58"


@pytest.fixture(autouse=True)
def environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("SMARTLEAD_API_KEY", KEY)
    monkeypatch.delenv("SMARTLEAD_BASE_URL", raising=False)
    monkeypatch.chdir(tmp_path)


def frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "campaign_id": [11, 12, 13],
            "sending_limit": [150, None, default_settings(13)["sending_limit"]],
            "track_settings": [["DONT_EMAIL_OPEN"], ["DONT_LINK_CLICK"], None],
            "unsubscribe_text": ["Reply STOP", None, None],
        }
    )


def inputs(folder: Path) -> list[Path]:
    """The DataFrames written as input files in ``folder`` (not the backups beside them)."""
    return [
        path for path in folder.iterdir() if re.fullmatch(r"frame-[0-9a-f]{16}\.parquet", path.name)
    ]


def test_apply_runs_a_dataframe_and_returns_its_report(tmp_path: Path) -> None:
    with SimulatorThread(SimulatorConfig(api_key=KEY, campaigns={11, 12, 13})) as sim:
        report = bulkrunner.apply(frame(), base_url=sim.base_url, rate=["20/1"])
        assert report["status"].tolist() == ["succeeded", "succeeded", "unchanged"]
        assert report["row"].tolist() == [1, 2, 3]
        assert report["attempts"].tolist() == [1, 1, 0]
        assert report.attrs["exit_code"] == 0
        assert Path(report.attrs["report"]).exists()
        settings = sim.state.settings
        assert settings[11]["sending_limit"] == 150
        assert settings[11]["track_settings"] == ["DONT_EMAIL_OPEN"]
        assert settings[11]["unsubscribe_text"] == "Reply STOP"
        assert settings[12]["track_settings"] == ["DONT_LINK_CLICK"]
        # the DataFrame was written beside the report, named after its content, and the same
        # DataFrame again is the same input: every row is now unchanged, nothing is sent
        (written,) = inputs(tmp_path / "reports")
        assert Path(report.attrs["report"]).parent.name.startswith(written.stem)
        again = bulkrunner.apply(frame(), base_url=sim.base_url)
        assert again["status"].tolist() == ["unchanged"] * 3
        assert inputs(tmp_path / "reports") == [written]
        assert sorted(sim.state.applied) == [11, 12]
        # the backup beside the report undoes it, as after a CLI run
        assert main(["rollback", report.attrs["report"], "--base-url", sim.base_url]) == 0
        assert settings[11]["sending_limit"] == default_settings(11)["sending_limit"]


def test_a_run_with_failed_rows_returns_its_report(tmp_path: Path) -> None:
    with SimulatorThread(SimulatorConfig(api_key=KEY, campaigns={11, 12})) as sim:  # no 13
        report = bulkrunner.apply(frame(), base_url=sim.base_url)
    assert report["status"].tolist() == ["succeeded", "succeeded", "failed"]
    assert "not found" in str(report["error"].tolist()[2])
    assert report.attrs["exit_code"] == 1


def test_an_aborted_run_raises_and_resume_continues_it(tmp_path: Path) -> None:
    with SimulatorThread(SimulatorConfig(api_key="not-this-key", campaigns={11, 12, 13})) as sim:
        with pytest.raises(Aborted) as stopped:
            bulkrunner.apply(frame(), base_url=sim.base_url)
        assert sim.state.writes() == []
    assert KEY not in str(stopped.value)
    assert "resume with resume=True" in str(stopped.value)
    assert stopped.value.report is not None
    with SimulatorThread(SimulatorConfig(api_key=KEY, campaigns={11, 12, 13})) as sim:
        report = bulkrunner.apply(frame(), base_url=sim.base_url, resume=True)
        assert report.attrs["report"] == str(stopped.value.report)  # the same run, continued
        assert report["status"].tolist() == ["succeeded", "succeeded", "unchanged"]


def test_plan_needs_a_key_and_apply_dry_run_needs_none(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A plan reads the account: without a key it is a usage error, as for the command; the
    offline preview is ``apply(dry_run=True)``."""
    monkeypatch.delenv("SMARTLEAD_API_KEY")
    bad = frame()
    bad.loc[1, "sending_limit"] = -3
    with pytest.raises(UsageError, match="SMARTLEAD_API_KEY is not set") as refused:
        bulkrunner.plan(bad)
    # in the words of a call, not of the command line ("--simulate", `bulkrunner run --dry-run`)
    assert str(refused.value).endswith(
        "(or accounts=..., or simulate=True to read the embedded simulator); the offline "
        "preview, which reads nothing, is `bulkrunner.apply(..., dry_run=True)`"
    )
    with pytest.raises(UsageError, match=r"\(or use dry_run=True, or simulate=True to try"):
        bulkrunner.apply(bad)
    previewed = bulkrunner.apply(bad, dry_run=True)
    assert previewed["status"].tolist() == ["dry_run", "invalid", "dry_run"]
    assert "sending_limit: -3 is below 0" in str(previewed["error"].tolist()[1])
    assert previewed.attrs["exit_code"] == 1


def test_plan_with_a_key_reads_the_account_and_shows_before_and_after() -> None:
    with SimulatorThread(SimulatorConfig(api_key=KEY, campaigns={11, 12, 13})) as sim:
        planned = bulkrunner.plan(frame(), base_url=sim.base_url, rate=["20/1"])
        assert sim.state.posts() == []  # read, never written
        assert {r.method for r in sim.state.requests} == {"GET"}
    assert planned["status"].tolist() == ["dry_run", "dry_run", "unchanged"]
    before = str(planned["before"].tolist()[0])
    after = str(planned["after"].tolist()[0])
    assert f'"sending_limit": {default_settings(11)["sending_limit"]}' in before
    assert '"sending_limit": 150' in after


def test_apply_and_plan_work_from_a_thread_other_than_the_main_one(tmp_path: Path) -> None:
    # Python gives signals to the main thread only: a run in another cannot take them over
    # (a notebook's or a web server's worker thread), and runs without them.
    handlers = {signum: signal.getsignal(signum) for signum in (signal.SIGINT, signal.SIGTERM)}
    results: dict[str, pd.DataFrame] = {}
    failures: list[BaseException] = []
    with SimulatorThread(SimulatorConfig(api_key=KEY, campaigns={11, 12, 13})) as sim:

        def work() -> None:
            try:
                results["plan"] = bulkrunner.plan(frame(), base_url=sim.base_url, rate=["20/1"])
                results["apply"] = bulkrunner.apply(frame(), base_url=sim.base_url, rate=["20/1"])
            except BaseException as exc:  # to fail the test in its own thread
                failures.append(exc)

        thread = threading.Thread(target=work)
        thread.start()
        thread.join()
        assert failures == []
        assert sorted(sim.state.applied) == [11, 12]
    assert results["plan"]["status"].tolist() == ["dry_run", "dry_run", "unchanged"]
    assert results["apply"]["status"].tolist() == ["succeeded", "succeeded", "unchanged"]
    left = sorted(path.name for path in (tmp_path / "reports").iterdir())
    assert not [name for name in left if name.endswith((".journal", ".lock", ".tmp"))], left
    assert {s: signal.getsignal(s) for s in handlers} == handlers


def test_a_path_is_an_input_too(tmp_path: Path) -> None:
    path = tmp_path / "plan.csv"
    path.write_text("campaign_id,sending_limit\n11,5\n")
    with SimulatorThread(SimulatorConfig(api_key=KEY, campaigns={11})) as sim:
        report = bulkrunner.apply(path, base_url=sim.base_url, report=tmp_path / "r.parquet")
        assert sim.state.settings[11]["sending_limit"] == 5
    assert report["status"].tolist() == ["succeeded"]
    assert report.attrs["report"] == str(tmp_path / "r.parquet")


def test_export_returns_typed_rows_that_apply_takes_back(tmp_path: Path) -> None:
    with SimulatorThread(SimulatorConfig(api_key=KEY, campaigns=set(range(1, 15)))) as sim:
        current = bulkrunner.export(base_url=sim.base_url, status="PAUSED")
        assert current["campaign_id"].tolist() == [
            cid for cid in range(1, 15) if default_status(cid) == "PAUSED"
        ]
        assert current["sending_limit"].dtype.kind == "i"
        assert current["track_settings"].tolist() == [[], []]
        assert current["enable_ai_esp_matching"].dtype == bool
        unchanged = bulkrunner.apply(current, base_url=sim.base_url)
        assert set(unchanged["status"]) == {"unchanged"}
        assert sim.state.writes() == []
        current["sending_limit"] = 7
        changed = bulkrunner.apply(current, base_url=sim.base_url)
        assert set(changed["status"]) == {"succeeded"}
        assert {sim.state.settings[cid]["sending_limit"] for cid in current["campaign_id"]} == {7}


def test_a_date_time_without_an_offset_among_some_with_one_is_refused() -> None:
    """pyarrow took it as UTC, where a file's cell without an offset is refused."""
    moments = [
        pd.Timestamp("2026-12-01 09:00", tz="America/New_York"),
        pd.Timestamp("2026-12-01 09:00"),
    ]
    given = pd.DataFrame(
        {"campaign_id": [1480601, 1480602], "schedule_start_time": pd.Series(moments, dtype=object)}
    )
    planned = bulkrunner.plan(given, operation="schedule", simulate=True)
    assert planned["status"].tolist() == ["dry_run", "invalid"]
    assert planned["after"][0] == '{"schedule_start_time": "2026-12-01T14:00:00Z"}'
    assert "has no UTC offset" in planned["error"][1]


def test_export_writes_the_file_when_given_an_output(tmp_path: Path) -> None:
    out = tmp_path / "current.parquet"
    current = bulkrunner.export(simulate=True, output=out)
    assert current.attrs["output"] == str(out)
    assert pd.read_parquet(out)["campaign_id"].tolist() == current["campaign_id"].tolist()


def test_export_refuses_an_existing_output_unless_forced(tmp_path: Path) -> None:
    out = tmp_path / "current.csv"
    out.write_text("mine\n")
    with pytest.raises(UsageError, match=r"the file exists; choose another output=\.\.\."):
        bulkrunner.export(simulate=True, output=out)
    assert out.read_text() == "mine\n"
    current = bulkrunner.export(simulate=True, output=out, force=True)
    assert pd.read_csv(out)["campaign_id"].tolist() == current["campaign_id"].tolist()


def test_export_names_the_campaigns_whose_state_no_row_can_set() -> None:
    current = bulkrunner.export(operation="status", simulate=True)
    drafted = current.attrs["unwritable"]
    assert drafted
    assert all(why == "it is DRAFTED, which no status row can set" for why in drafted.values())
    assert not set(drafted) & set(current["campaign_id"])
    assert current.attrs["left_out"] == {}


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: bulkrunner.apply(frame(), rat=["10/2"]), "unknown option 'rat' of apply"),
        (lambda: bulkrunner.apply(frame(), concurrency="4"), "'concurrency' must be int"),
        (lambda: bulkrunner.apply(frame(), output="x.csv"), "unknown option 'output'"),
        (lambda: bulkrunner.apply(frame(), verify="yes"), "'verify' must be bool"),
        (lambda: bulkrunner.apply(frame(), vocabulary="short"), "vocabulary must be one of"),
        (lambda: bulkrunner.apply(frame(), operation="pause"), "operation must be one of"),
        (
            lambda: bulkrunner.apply(42),  # type: ignore[arg-type]
            "data must be a pandas DataFrame or the path",
        ),
        (lambda: bulkrunner.apply("missing.csv"), "missing.csv"),
        (lambda: bulkrunner.export(status="running"), "status must be one of"),
        (lambda: bulkrunner.export(dry_run=True), "unknown option 'dry_run' of export"),
    ],
)
def test_bad_options_raise_usage_errors_and_never_exit(call: object, message: str) -> None:
    assert callable(call)
    with SimulatorThread(SimulatorConfig(api_key=KEY)) as sim:
        with pytest.raises(UsageError, match=message.replace("(", r"\(")):
            call()
        assert sim.state.requests == []


def test_options_may_be_named_as_fields_or_keys(tmp_path: Path) -> None:
    with SimulatorThread(SimulatorConfig(api_key=KEY, campaigns={11, 12, 13})) as sim:
        report = bulkrunner.apply(
            frame(), base_url=sim.base_url, rates=("20/1",), max_attempts=2, skip_unchanged=False
        )
    assert report["status"].tolist() == ["succeeded"] * 3  # every row sent


def test_export_stays_the_function_once_the_export_module_is_imported(
    capsys: pytest.CaptureFixture[str],
) -> None:
    import bulkrunner.commands.export  # the module export_job lives in, which the CLI imports

    assert main(["export", "--simulate", "--output", "x.csv"]) == 0
    assert callable(bulkrunner.export)
    assert bulkrunner.export.__module__ == "bulkrunner.api"
