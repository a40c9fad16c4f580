"""Every JSON event bulkrunner writes is declared in ``events.EVENTS``, with its fields.

Two ways: every call in the source that names an event (``emit``, ``show``, ``json_line``) names
a declared one with declared fields; and the lines of real commands in json mode (a run with
retries and progress, a plan, an export, an error) hold only declared events and fields, those
whose fields are built at run time included.
"""

from __future__ import annotations

import ast
import io
import json
import os
from pathlib import Path
from typing import Any

import pytest

from bulkrunner.cli.app import main
from bulkrunner.output.events import COMMON_FIELDS, EVENTS, Output, setup_logging
from tests.fakes import rate_alone
from tests.sources import nodes, python_files

# the function and the index of its argument that names the event
NAMING = {"emit": 0, "json_line": 0, "show": 1}


def _named_events() -> list[tuple[str, int, str, list[str]]]:
    """(file, line, event, keyword fields) of each call in the package that names an event."""
    found = []
    for path in python_files():
        for node in nodes(path):
            if not isinstance(node, ast.Call):
                continue
            func = node.func
            name = func.id if isinstance(func, ast.Name) else None
            if name not in NAMING or len(node.args) <= NAMING[name]:
                continue
            event = node.args[NAMING[name]]
            if isinstance(event, ast.Constant) and isinstance(event.value, str):
                fields = [k.arg for k in node.keywords if k.arg is not None]
                found.append((path.name, node.lineno, event.value, fields))
    return found


def test_every_event_named_in_the_source_is_declared_with_its_fields() -> None:
    named = _named_events()
    assert {"run_start", "row_finished", "retry_scheduled", "summary"} <= {e for *_, e, _ in named}
    for file, line, event, fields in named:
        assert event in EVENTS, f"{file}:{line}: event {event!r} is not in events.EVENTS"
        undeclared = set(fields) - set(EVENTS[event].fields) - set(COMMON_FIELDS)
        assert not undeclared, f"{file}:{line}: {event} fields {undeclared} are not declared"


def _lines(text: str) -> list[dict[str, Any]]:
    entries = [json.loads(line) for line in text.splitlines() if line.strip()]
    assert all(isinstance(entry, dict) for entry in entries)
    return entries


def _check(entries: list[dict[str, Any]], stream: str) -> set[str]:
    for entry in entries:
        declared = EVENTS.get(entry["event"])
        assert declared is not None, f"undeclared event: {entry}"
        assert declared.stream == stream, entry
        assert set(entry) <= set(COMMON_FIELDS) | set(declared.fields), entry
    return {entry["event"] for entry in entries}


@pytest.mark.real_clock  # progress lines are printed as real time passes
@pytest.mark.slow  # a few seconds of real time: the simulator's injected faults are retried
def test_the_lines_of_real_commands_hold_only_declared_events_and_fields(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("SMARTLEAD_API_KEY", raising=False)
    plan = tmp_path / "plan.csv"
    plan.write_text(
        "campaign_id,sending_limit\n" + "".join(f"{n},{30 + n}\n" for n in range(1, 25))
    )
    fast = [*rate_alone("500/1"), "--guard", "0", "--log-format", "json"]
    seen: dict[str, set[str]] = {"stdout": set(), "stderr": set()}

    def command(*words: str) -> int:
        code = main([*words, *fast])
        out, err = capsys.readouterr()
        seen["stdout"] |= _check(_lines(out), "stdout")
        seen["stderr"] |= _check(_lines(err), "stderr")
        return code

    assert command("run", str(plan), "--simulate", "--progress-interval", "0") == 0
    assert command("plan", str(plan), "--simulate") == 0
    assert command("plan", str(plan), "--simulate", "--out", "saved.plan") == 0
    assert command("plan", str(plan)) == 2  # no key: a usage error, one JSON line
    assert command("export", "--simulate", "--output", "exported.csv") == 0
    assert command("run", str(plan), "--max-attempts", "0") == 2  # a usage error
    setup_logging(False)  # the text mode's logging again, for the tests after this one
    assert seen["stderr"] >= {"run_start", "row_finished", "progress", "run_end", "log", "error"}
    assert seen["stdout"] >= {"summary", "plan", "plan_saved"}


def test_an_output_whose_stream_closed_first_is_closed_without_an_error() -> None:
    """Collected after its stream was closed (a pipe whose reader left, a test's captured
    output), an Output is closed as its finalizer closes it, without an error Python 3.13 would
    print as "Exception ignored in"."""
    stream = io.StringIO()
    out = Output(stream, json_lines=True)
    out.write("a line not ended")
    stream.close()
    out.close()
    assert out.closed


@pytest.mark.parametrize("json_lines", [False, True])
def test_a_command_whose_reader_left_ends_as_it_would_have_not_with_an_internal_error(
    json_lines: bool, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """``bulkrunner runs | head -1``: the reader leaves after a line, and writing the rest
    fails with BrokenPipeError. The command ended with "internal error: BrokenPipeError" and
    exit 3; the rest of its output is now dropped, its exit code its own, and its standard
    output writes to nowhere, so that Python's flush at exit does not fail again."""
    reading, writing = os.pipe()
    stream = open(writing, "w", buffering=1, encoding="utf-8")  # noqa: SIM115
    os.close(reading)  # the reader has left
    monkeypatch.setattr("sys.stdout", stream)
    try:
        code = main(["runs", *(["--json"] if json_lines else [])])
        stream.write("after the command\n")  # Python's own flush at exit
        stream.flush()
    finally:
        stream.close()
    assert code == 0
    assert "internal error" not in capsys.readouterr().err
