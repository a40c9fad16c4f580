"""``bulkrunner runs``: the runs the state store recorded, latest first (``--json``: a JSON
array, an object per run); ``bulkrunner runs show ID``: one run, and the rows of its report
that did not end well; and the run ``retry --run ID`` and ``rollback --run ID`` follow up.

Every command that runs, retries, rolls back, plans or exports is recorded
(``commands.recording``); these only read what was recorded.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

from bulkrunner.config.paths import backup_path
from bulkrunner.config.run_config import RunConfig
from bulkrunner.errors import ExitCode, UsageError
from bulkrunner.model import FINE, Status, count
from bulkrunner.records.history import History, RunRecord
from bulkrunner.records.store import StateStore, for_config

SHOWN_ROWS = 20  # rows of a run's report that did not end well, shown by ``runs show``
UNFINISHED = "unfinished"


def runs_command(folder: Path | None, limit: int, as_json: bool, out: TextIO) -> ExitCode:
    """The latest ``limit`` runs of the store in ``folder``: a table, or a JSON array."""
    with StateStore.open(folder) as store:
        runs = History(store).runs(limit)
    if as_json:
        print(json.dumps([as_object(run) for run in runs], indent=2), file=out)
    elif not runs:
        print(f"no runs recorded yet in {store.path}", file=out)
    else:
        for line in _table(runs):
            print(line, file=out)
    return ExitCode.OK


def show_command(folder: Path | None, run: int, as_json: bool, out: TextIO) -> ExitCode:
    """Run ``run``: what was recorded of it, and the rows of its report that did not end well."""
    with StateStore.open(folder) as store:
        history = History(store)
        found = history.run(run)
        if found is None:
            raise UsageError(_missing(run, store))
        changes = history.change_count(run)
        followers = history.following(run)
        replaced = history.replaced_by(found)
    rows, problem = (
        _rows_not_fine(found)
        if replaced is None
        else ([], f"its report was written over by run {replaced}'s")
    )
    if as_json:
        whole = as_object(found) | {"changes": changes, "followed_by": [r.id for r in followers]}
        whole |= {"replaced_by": replaced, "rows": rows, "rows_problem": problem}
        print(json.dumps(whole, indent=2), file=out)
        return ExitCode.OK
    for line in _described(found, changes, followers, replaced):
        print(line, file=out)
    if problem:
        print(problem, file=out)
    elif rows:
        print(f"rows that did not end well ({count(len(rows), 'row')}):", file=out)
        for each in rows[:SHOWN_ROWS]:
            error = f": {each['error']}" if each["error"] else ""
            campaign = f" (campaign {each['campaign_id']})" if each["campaign_id"] else ""
            print(f"  row {each['row']}{campaign} {each['status']}{error}", file=out)
        if len(rows) > SHOWN_ROWS:
            print(f"  ... and {len(rows) - SHOWN_ROWS} more (see the report)", file=out)
    return ExitCode.OK


def followed_up(config: RunConfig, run: int, command: str) -> Path:
    """What ``retry --run`` (the run's report) or ``rollback --run`` (its backup) follows up,
    as the store recorded it; UsageError when it cannot be."""
    store = for_config(config)
    if store is None:
        raise UsageError(
            f"--run {run}: the runs are recorded in the state store, which --no-state leaves "
            f"out: give the run's {'report' if command == 'retry' else 'report or backup'} instead"
        )
    with store:
        history = History(store)
        found = history.run(run)
        if found is None:
            raise UsageError(_missing(run, store))
        replaced = history.replaced_by(found)
    report = Path(_shown_path(found.report_path)) if found.report_path else None
    what = f"run {run} ({found.command}, {when(found.started_at)})"
    if replaced is not None:
        undone = "retried" if command == "retry" else "rolled back"
        raise UsageError(
            f"{what} wrote {report}, which run {replaced} then wrote over, with its backup: "
            f"run {run} can no longer be {undone} from them"
        )
    if command == "retry":
        if report is None or not report.exists():
            if not found.finished:
                why = "did not finish: resume it (--resume) rather than retry it"
            elif report is None:
                why = "wrote no report"
            else:
                why = f"has no report any more: {report} was removed (--keep prunes old runs)"
            raise UsageError(f"{what} {why}")
        return report
    backup = Path(_shown_path(found.backup_path)) if found.backup_path else None
    if backup is None and report is not None and backup_path(report).exists():
        backup = backup_path(report)  # a run killed before it could record its backup
    if backup is None or not backup.exists():
        why = "it changed nothing, or ran with --no-backup, or was a plan or an export"
        raise UsageError(f"{what} left no backup to roll back to ({backup or why})")
    return backup


def as_object(run: RunRecord) -> dict[str, Any]:
    """A run as ``runs --json`` gives it: times in ISO 8601 (UTC)."""
    return {
        "id": run.id,
        "command": run.command,
        "operation": run.operation,
        "of_run": run.of_run,
        "input": run.input_path,
        "input_sha256": run.input_sha256,
        "accounts": [{"name": a.name, "account": a.account} for a in run.accounts],
        "pid": run.pid,
        "started_at": _iso(run.started_at),
        "finished_at": _iso(run.finished_at) if run.finished_at is not None else None,
        "finished": run.finished,
        "counts": dict(run.counts),
        "exit_code": run.exit_code,
        "report": run.report_path,
        "backup": run.backup_path,
    }


def _table(runs: list[RunRecord]) -> list[str]:
    header = (
        "id",
        "started (UTC)",
        "took",
        "command",
        "operation",
        "input",
        "rows",
        "exit",
        "report",
    )
    lines = [
        (
            str(run.id),
            when(run.started_at),
            _took(run) if run.finished_at is not None else UNFINISHED,
            run.command,
            run.operation or "",
            Path(run.input_path).name if run.input_path else "",
            _counts(run.counts),
            str(run.exit_code) if run.exit_code is not None else "",
            _shown_path(run.report_path),
        )
        for run in runs
    ]
    return columns([header, *lines])


def columns(rows: list[tuple[str, ...]]) -> list[str]:
    """``rows`` (the first, the header) as lines of aligned columns."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    return [
        "  ".join([*(cell.ljust(width) for cell, width in zip(row, widths, strict=False)), row[-1]])
        for row in rows
    ]


def _described(
    run: RunRecord, changes: int, followers: list[RunRecord], replaced: int | None
) -> list[str]:
    continued = [r.id for r in followers if r.command == run.command]  # its --resume, --fresh
    if run.finished_at is None and continued:
        ended = f"{UNFINISHED}: stopped, and continued by run {continued[0]}"
    elif run.finished_at is None:
        ended = f"{UNFINISHED}: still running (pid {run.pid}) or killed"
    else:
        code = ExitCode(run.exit_code) if run.exit_code in tuple(ExitCode) else None
        ended = f"exit {run.exit_code}" + (f": {code.brief}" if code is not None else "")
    lines = [f"run {run.id}: {run.command} {run.operation or ''}".rstrip() + f" ({ended})"]
    took = f", took {_took(run)}" if run.finished_at is not None else ""
    lines.append(f"  started:  {when(run.started_at)} UTC{took}")
    if run.of_run is not None:
        lines.append(f"  follows:  run {run.of_run}")
    if followers:
        each = ", ".join(f"run {r.id} ({r.command})" for r in followers)
        lines.append(f"  followed: by {each}")
    if run.input_path:
        digest = f" (SHA-256 {run.input_sha256[:12]}...)" if run.input_sha256 else ""
        lines.append(f"  input:    {run.input_path}{digest}")
    if run.accounts:
        names = ", ".join(f"{a.name or 'the key'} ({a.account[:8]})" for a in run.accounts)
        lines.append(f"  accounts: {names}")
    lines.append(f"  rows:     {_counts(run.counts) or 'none counted'}")
    lines.append(f"  changes:  {count(changes, 'field')} recorded as applied")
    for what, path in (("report", run.report_path), ("backup", run.backup_path)):
        if path:
            gone = "" if Path(path).exists() else " (no longer there)"
            if replaced is not None:
                gone = f" (written over by run {replaced})"
            lines.append(f"  {what}:   {_shown_path(path)}{gone}")
    if run.backup_path and Path(run.backup_path).exists() and replaced is None:
        lines.append(f"  undo:     bulkrunner rollback --run {run.id}")
    return lines


def _rows_not_fine(run: RunRecord) -> tuple[list[dict[str, Any]], str]:
    """The rows of ``run``'s report whose status is not a fine one, and why there are none
    to show if it cannot say (no report)."""
    if run.report_path is None:
        return [], "" if run.command.startswith("export") else "no report was recorded"
    path = Path(run.report_path)
    if run.command.startswith("export"):
        return [], ""
    if not path.exists():
        why = "the run did not finish" if run.finished_at is None else "it was removed"
        return [], f"the report {_shown_path(run.report_path)} is not there ({why})"
    from bulkrunner.output.report import read_report  # (pandas: only when there is a report)

    frame = read_report(path)
    fine = {status.value for status in FINE}
    chosen = frame[~frame["status"].astype(str).isin(fine)]
    return [
        {
            "row": _number(line.get("row")),
            "campaign_id": _number(line.get("campaign_id")),
            "status": str(line.get("status")),
            "error": str(line.get("error") or ""),
        }
        for line in chosen.to_dict("records")
    ], ""


def _number(cell: Any) -> int | None:
    try:
        return int(str(cell).strip())
    except ValueError:
        return None


def _counts(counts: Mapping[str, int]) -> str:
    order = {status.value: at for at, status in enumerate(Status)}  # then others, as given
    ranked = sorted(counts.items(), key=lambda item: order.get(item[0], len(order)))
    return ", ".join(f"{n} {status}" for status, n in ranked if n)


def _took(run: RunRecord) -> str:
    assert run.finished_at is not None
    seconds = max(0.0, run.finished_at - run.started_at)
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, seconds = divmod(round(seconds), 60)
    return f"{minutes}m{seconds:02d}s" if minutes < 60 else f"{minutes // 60}h{minutes % 60:02d}m"


def when(at: float) -> str:
    """A recorded time as tables show it (UTC)."""
    return f"{datetime.fromtimestamp(at, UTC):%Y-%m-%d %H:%M:%S}"


def _iso(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).isoformat()


def _shown_path(path: str | None) -> str:
    """A recorded path as it reads best here: relative to the current folder, if under it."""
    if not path:
        return ""
    try:
        return os.path.relpath(path) if Path(path).is_relative_to(Path.cwd()) else path
    except ValueError:  # (another drive, on Windows)
        return path


def _missing(run: int, store: StateStore) -> str:
    return f"no run {run} in the state store {store.path}: bulkrunner runs lists those recorded"
