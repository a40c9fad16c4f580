"""``bulkrunner changes CAMPAIGN_ID``: every change the state store recorded of a campaign,
across runs, in the order they were applied: when, by which run (and command), on which
account, which field, from what to what (``--json``: a JSON array, an object per change).

A change is recorded as its row succeeds (``commands.recording``): what a run, a retry or a
rollback applied, whichever account it was on (a campaign id is an account's: the account
column tells two accounts' campaigns of the same id apart).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

from bulkrunner.commands.runs import columns, when
from bulkrunner.errors import ExitCode
from bulkrunner.model import count
from bulkrunner.records.history import ChangeRecord, History, as_json
from bulkrunner.records.store import StateStore


def changes_command(
    folder: Path | None, campaign: int, as_json_array: bool, out: TextIO
) -> ExitCode:
    """The recorded changes of ``campaign``: a table, or a JSON array."""
    with StateStore.open(folder) as store:
        history = History(store)
        changes = history.changes(campaign)
        runs = {run: history.run(run) for run in {change.run for change in changes}}
    commands = {run: found.command if found else "" for run, found in runs.items()}
    names = {
        (run, account.account): account.name
        for run, found in runs.items()
        if found is not None
        for account in found.accounts
    }
    if as_json_array:
        print(json.dumps([_object(c, commands, names) for c in changes], indent=2), file=out)
        return ExitCode.OK
    if not changes:
        print(f"no changes of campaign {campaign} recorded in {store.path}", file=out)
        return ExitCode.OK
    print(
        f"campaign {campaign}: {count(len(changes), 'change')} in "
        f"{count(len(runs), 'run')}, oldest first",
        file=out,
    )
    header = ("applied (UTC)", "run", "account", "field", "before -> after")
    rows = [
        (
            when(c.at),
            f"{c.run} {commands[c.run]}".rstrip(),
            _account(c, names),
            c.field,
            f"{as_json(c.before)} -> {as_json(c.after)}",
        )
        for c in changes
    ]
    for line in columns([header, *rows]):
        print(line, file=out)
    return ExitCode.OK


def _object(
    change: ChangeRecord, commands: dict[int, str], names: dict[tuple[int, str], str]
) -> dict[str, Any]:
    return {
        "run": change.run,
        "command": commands[change.run],
        "at": datetime.fromtimestamp(change.at, UTC).isoformat(),
        "account": change.account,
        "account_name": names.get((change.run, change.account)),
        "campaign_id": change.campaign_id,
        "field": change.field,
        "before": change.before,
        "after": change.after,
    }


def _account(change: ChangeRecord, names: dict[tuple[int, str], str]) -> str:
    """An account as the table shows it: its name in the run, else its id's first digits."""
    return names.get((change.run, change.account)) or change.account[:8]
