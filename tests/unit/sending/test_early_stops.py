"""Runs that stop early instead of failing row after row: enum names the account refuses, and a
base URL where nothing listens."""

from __future__ import annotations

import shlex
import socket
from collections.abc import Mapping
from pathlib import Path

import anyio
import pandas as pd

from bulkrunner.model import Answer, Rate, Row
from bulkrunner.operations.fields import Vocabulary
from bulkrunner.operations.refusals import EnumRefusals
from bulkrunner.sending.engine import Engine
from bulkrunner.simulator import SimulatorConfig, SimulatorThread
from tests.fakes import FakeClock, ScriptedSender, connection, rate_alone
from tests.hostile import RunCli

KEY = "sk-live-SENTINEL-early-41c0"
FAST = (*rate_alone("200/1"), "--guard", "0")


def enum_plan(folder: Path, rows: int = 6) -> Path:
    path = folder / "plan.csv"
    lines = "".join(f"{i},OPENED_EMAIL\n" for i in range(1, rows + 1))
    path.write_text("campaign_id,stop_lead_settings\n" + lines)
    return path


def test_repeated_enum_refusals_stop_the_run_and_name_the_other_vocabulary(
    tmp_path: Path, cli_here: RunCli
) -> None:
    plan = enum_plan(tmp_path)
    with SimulatorThread(SimulatorConfig(api_key=KEY, vocabulary=Vocabulary.LONG)) as sim:
        args = ("run", str(plan), "--report", "r.csv", "--base-url", sim.base_url)
        done = cli_here(tmp_path, KEY, *args, *FAST, "--concurrency", "1")
        posts = [r for r in sim.state.requests if r.method == "POST"]
        assert done.returncode == 3, done.stderr
        assert len(posts) == 3  # stopped after three refusals, not six
        report = pd.read_csv(tmp_path / "r.csv")
        assert report["status"].tolist() == ["failed"] * 3 + ["not_attempted"] * 3
        assert "--vocabulary long" in done.stdout
        (line,) = [w for w in done.stdout.splitlines() if "run again with --vocabulary long" in w]
        again = shlex.split(line.split("--vocabulary long: ", 1)[1])
        assert again[0] == "bulkrunner"
        # the command it gives works: every row applied, in the long names
        redone = cli_here(tmp_path, KEY, *again[1:])
        assert redone.returncode == 0, redone.stdout + redone.stderr
        assert redone.stdout.startswith("rows: 6 (6 succeeded)")
        again_posts = [r for r in sim.state.requests if r.method == "POST"][3:]
        assert [r.status for r in again_posts] == [200] * 6


def row(number: int, payload: Mapping[str, object]) -> Row:
    return Row(number=number, campaign_id=number, payload=payload)


def refusal(value: str) -> Answer:
    return Answer(400, f'{{"error": "Invalid stop_lead_settings value - {value}"}}')


def test_other_failures_between_enum_refusals_do_not_stop_the_run() -> None:
    clock = FakeClock()
    payload = {"stop_lead_settings": "OPENED_EMAIL"}
    script = {
        1: [refusal("OPENED_EMAIL")],
        2: [refusal("OPENED_EMAIL")],
        3: [Answer(400, '{"error": "sending_limit too high"}')],  # not about an enum
        4: [refusal("OPENED_EMAIL")],
        5: [refusal("OPENED_EMAIL")],
    }
    sender = ScriptedSender(script)
    refusals = EnumRefusals(Vocabulary.DOCUMENTED, lambda other: f"again --vocabulary {other}")
    engine = Engine(connection(sender, clock, rates=[Rate(100, 1)], concurrency=1), judge=refusals)
    rows = [row(n, payload if n != 3 else {"sending_limit": 9}) for n in range(1, 6)]
    anyio.run(engine.run, rows)
    assert engine.stats.aborted is None
    assert len(sender.calls) == 5


def test_the_third_enum_refusal_in_a_row_stops_the_engine() -> None:
    clock = FakeClock()
    payload = {"stop_lead_settings": "OPENED_EMAIL"}
    sender = ScriptedSender({n: [refusal("OPENED_EMAIL")] for n in range(1, 6)})
    refusals = EnumRefusals(Vocabulary.DOCUMENTED, lambda other: f"again --vocabulary {other}")
    engine = Engine(connection(sender, clock, rates=[Rate(100, 1)], concurrency=1), judge=refusals)
    outcomes = anyio.run(engine.run, [row(n, payload) for n in range(1, 6)])
    assert len(sender.calls) == 3
    assert engine.stats.aborted is not None
    assert "again --vocabulary long" in engine.stats.aborted
    assert [o.status.value for o in outcomes.values()] == ["failed"] * 3 + ["not_attempted"] * 2


def refused_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_a_refused_connection_on_the_first_read_stops_before_any_row_is_sent(
    tmp_path: Path, cli_here: RunCli
) -> None:
    plan = enum_plan(tmp_path, rows=3)
    base = f"http://127.0.0.1:{refused_port()}/api/v1"
    done = cli_here(tmp_path, KEY, "run", str(plan), "--report", "r.csv", "--base-url", base, *FAST)
    assert done.returncode == 3
    assert f"connection refused by {base}/campaigns/?api_key=REDACTED" in done.stderr
    assert "nothing was sent" in done.stderr
    assert KEY not in done.stdout + done.stderr
    assert "retry in" not in done.stderr  # no waiting for a wrong address to start listening
    report = pd.read_csv(tmp_path / "r.csv")
    assert report["status"].tolist() == ["not_attempted"] * 3
    assert "to resume:" in done.stdout
