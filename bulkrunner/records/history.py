"""Run history and change history, in the state store: every run of every command (what it was
given, when it started and ended, how its rows ended, where its report and backup are), and
every change a run applied (a campaign's field, from what to what), so that ``bulkrunner runs``
and ``bulkrunner changes CAMPAIGN`` can tell what happened across runs.

A run is recorded in two steps, ``start_run`` as it starts and ``finish_run`` as it ends: a run
killed in between stays unfinished (``finished_at`` None), which is what it is. Run ids are
increasing integers (``bulkrunner runs show 42``), never reused, even once older runs are gone.
Changes are recorded a batch at a time (one transaction each: a 100,000-row run is a few dozen
of them), each field's ``before`` and ``after`` as JSON. No key is recorded: an account is its
``folders.account_id`` and the name it has in the run (its accounts-file name, or "").
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bulkrunner.config.paths import backup_path
from bulkrunner.records.store import StateStore


@dataclass(frozen=True, slots=True)
class RunAccount:
    """An account a run used: its name in the run ("" for the run's one key) and its
    ``folders.account_id``."""

    name: str
    account: str


@dataclass(frozen=True, slots=True)
class RunRecord:
    """A run as the history has it. Times are wall-clock seconds (``time.time()``)."""

    id: int
    command: str  # run, retry, rollback, plan, export, validate...
    started_at: float
    operation: str | None = None  # settings, schedule, status, email-accounts
    of_run: int | None = None  # the run it retries, resumes or rolls back
    input_path: str | None = None
    input_sha256: str | None = None
    accounts: tuple[RunAccount, ...] = ()
    pid: int | None = None
    finished_at: float | None = None  # None: still running, or killed
    counts: Mapping[str, int] = field(default_factory=dict)  # rows by status
    exit_code: int | None = None
    report_path: str | None = None
    backup_path: str | None = None

    @property
    def finished(self) -> bool:
        return self.finished_at is not None


@dataclass(frozen=True, slots=True)
class ChangeRecord:
    """A field of a campaign that a run changed, on an account (``folders.account_id``), at
    ``at`` (wall-clock seconds); ``before`` and ``after`` are JSON values."""

    run: int
    at: float
    account: str
    campaign_id: int
    field: str
    before: Any
    after: Any


class History:
    """The runs and changes of every process of the user (see the module's docstring)."""

    def __init__(self, store: StateStore) -> None:
        self._store = store

    def start_run(
        self,
        command: str,
        started_at: float,
        *,
        operation: str | None = None,
        of_run: int | None = None,
        input_path: Path | None = None,
        input_sha256: str | None = None,
        accounts: Sequence[RunAccount] = (),
        report_path: Path | None = None,
        backup_path: Path | None = None,
    ) -> int:
        """Record a run that starts; its id."""
        names = [{"name": a.name, "account": a.account} for a in accounts]
        with self._store.write() as db:
            cursor = db.execute(
                "INSERT INTO runs (command, operation, of_run, input_path, input_sha256, "
                "accounts, pid, started_at, report_path, backup_path) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    command,
                    operation,
                    of_run,
                    _text(input_path),
                    input_sha256,
                    json.dumps(names),
                    os.getpid(),
                    started_at,
                    _text(report_path),
                    _text(backup_path),
                ),
            )
            run = cursor.lastrowid
        assert run is not None  # (an INSERT into a table with a rowid)
        return run

    def finish_run(
        self,
        run: int,
        finished_at: float,
        exit_code: int,
        counts: Mapping[str, int],
        *,
        report_path: Path | None = None,
        backup_path: Path | None = None,
    ) -> None:
        """Record how run ``run`` ended: its exit code and its rows by status; the report and
        backup paths when they were not known at its start. KeyError if there is no such run."""
        with self._store.write() as db:
            cursor = db.execute(
                "UPDATE runs SET finished_at = ?, exit_code = ?, counts = ?, "
                "report_path = coalesce(?, report_path), backup_path = coalesce(?, backup_path) "
                "WHERE id = ?",
                (
                    finished_at,
                    exit_code,
                    json.dumps(dict(counts)),
                    _text(report_path),
                    _text(backup_path),
                    run,
                ),
            )
            if cursor.rowcount != 1:
                raise KeyError(run)

    def note_run(
        self,
        run: int,
        *,
        of_run: int | None = None,
        input_sha256: str | None = None,
        accounts: Sequence[RunAccount] | None = None,
        report_path: Path | None = None,
        backup_path: Path | None = None,
    ) -> None:
        """Record what run ``run`` found out once started (what is None is left as it was)."""
        names = (
            None if accounts is None else [{"name": a.name, "account": a.account} for a in accounts]
        )
        with self._store.write() as db:
            db.execute(
                "UPDATE runs SET of_run = coalesce(?, of_run), "
                "input_sha256 = coalesce(?, input_sha256), accounts = coalesce(?, accounts), "
                "report_path = coalesce(?, report_path), backup_path = coalesce(?, backup_path) "
                "WHERE id = ?",
                (
                    of_run,
                    input_sha256,
                    None if names is None else json.dumps(names),
                    _text(report_path),
                    _text(backup_path),
                    run,
                ),
            )

    def runs(self, limit: int = 20) -> list[RunRecord]:
        """The latest ``limit`` runs, the latest first."""
        with self._store.read() as db:
            rows = db.execute(f"{_RUNS} ORDER BY id DESC LIMIT ?", (limit,)).fetchall()
        return [_run(row) for row in rows]

    def run(self, run: int) -> RunRecord | None:
        with self._store.read() as db:
            row = db.execute(f"{_RUNS} WHERE id = ?", (run,)).fetchone()
        return None if row is None else _run(row)

    def with_report(self, report: Path) -> list[RunRecord]:
        """The runs that wrote (or write) the report ``report`` (as recorded: give the path as
        it was given, absolute), the latest first."""
        return self._wrote("report_path", report)

    def with_backup(self, backup: Path) -> list[RunRecord]:
        """The runs that wrote the backup ``backup``, the latest first."""
        return self._wrote("backup_path", backup)

    def _wrote(self, column: str, path: Path) -> list[RunRecord]:
        with self._store.read() as db:
            rows = db.execute(
                f"{_RUNS} WHERE {column} = ? ORDER BY id DESC", (str(path),)
            ).fetchall()
        return [_run(row) for row in rows]

    def moved(self, report: Path, to: Path, but: int) -> None:
        """The report ``report`` and its backup were moved to ``to`` and its backup: the runs
        recorded with them (but run ``but``, which writes ``report`` anew) point there."""
        with self._store.write() as db:
            for column, old, new in (
                ("report_path", report, to),
                ("backup_path", backup_path(report), backup_path(to)),
            ):
                db.execute(
                    f"UPDATE runs SET {column} = ? WHERE {column} = ? AND id != ?",
                    (str(new), str(old), but),
                )

    def replaced_by(self, run: RunRecord) -> int | None:
        """The later run that wrote over ``run``'s report (and its backup) where they were: the
        first after it with the same report that does not continue it (a ``--resume`` of it
        writes on into the same files, and so may a resume of that). None if none did."""
        if run.report_path is None:
            return None
        chain = {run.id}
        for later in reversed(self.with_report(Path(run.report_path))):
            if later.id <= run.id:
                continue
            if later.of_run not in chain:
                return later.id
            chain.add(later.id)
        return None

    def following(self, run: int) -> list[RunRecord]:
        """The runs that follow up run ``run`` (retry it, roll it back, continue it)."""
        with self._store.read() as db:
            rows = db.execute(f"{_RUNS} WHERE of_run = ? ORDER BY id", (run,)).fetchall()
        return [_run(row) for row in rows]

    def change_count(self, run: int) -> int:
        """How many changes run ``run`` is recorded to have applied."""
        with self._store.read() as db:
            return int(
                db.execute("SELECT count(*) FROM changes WHERE run = ?", (run,)).fetchone()[0]
            )

    def changed_in(self, runs: Iterable[int]) -> set[tuple[int, str, str]]:
        """What runs ``runs`` are recorded to have changed: (campaign, field, JSON of after)."""
        found: set[tuple[int, str, str]] = set()
        with self._store.read() as db:
            for run in runs:
                found.update(
                    db.execute("SELECT campaign, field, after FROM changes WHERE run = ?", (run,))
                )
        return found

    def record_changes(self, changes: Iterable[ChangeRecord]) -> int:
        """Record ``changes`` in one transaction (all of them or, if it fails, none); how many.
        Give a batch at a time (a few thousand): each is one commit."""
        batch = list(changes)
        with self._store.write() as db:
            keys = {
                account: self._store.account(db, account) for account in {c.account for c in batch}
            }
            cursor = db.executemany(
                "INSERT INTO changes (run, at, account, campaign, field, before, after) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                [
                    (
                        c.run,
                        c.at,
                        keys[c.account],
                        c.campaign_id,
                        c.field,
                        as_json(c.before),
                        as_json(c.after),
                    )
                    for c in batch
                ],
            )
            return cursor.rowcount

    def changes(self, campaign_id: int, account: str | None = None) -> list[ChangeRecord]:
        """Every recorded change of campaign ``campaign_id`` (on ``account`` only, when given),
        across runs, in the order they were applied."""
        query = (
            "SELECT c.run, c.at, a.identity, c.campaign, c.field, c.before, c.after "
            "FROM changes c JOIN accounts a ON a.id = c.account WHERE c.campaign = ?"
        )
        parameters: tuple[object, ...] = (campaign_id,)
        if account is not None:
            query += " AND a.identity = ?"
            parameters += (account,)
        with self._store.read() as db:
            rows = db.execute(f"{query} ORDER BY c.at, c.rowid", parameters).fetchall()
        return [
            ChangeRecord(run, at, who, campaign, name, json.loads(before), json.loads(after))
            for run, at, who, campaign, name, before, after in rows
        ]


_RUNS = (
    "SELECT id, command, started_at, operation, of_run, input_path, input_sha256, accounts, "
    "pid, finished_at, counts, exit_code, report_path, backup_path FROM runs"
)


def _run(row: tuple[Any, ...]) -> RunRecord:
    (id_, command, started, operation, of_run, input_path, sha, accounts, pid, finished) = row[:10]
    counts, exit_code, report, backup = row[10:]
    return RunRecord(
        id=id_,
        command=command,
        started_at=started,
        operation=operation,
        of_run=of_run,
        input_path=input_path,
        input_sha256=sha,
        accounts=tuple(RunAccount(a["name"], a["account"]) for a in json.loads(accounts)),
        pid=pid,
        finished_at=finished,
        counts=json.loads(counts) if counts else {},
        exit_code=exit_code,
        report_path=report,
        backup_path=backup,
    )


def as_json(value: Any) -> str:
    """A change's value as the history holds it: JSON (a value JSON has no form for, as its
    text, as the journal and the report write it)."""
    if type(value) is int:  # most values are: their JSON is their digits, at a tenth of the cost
        return str(value)
    return _ENCODER.encode(value)


# one encoder (``json.dumps`` given any option makes a new one for each value)
_ENCODER = json.JSONEncoder(separators=(",", ":"), default=str)


def _text(path: Path | None) -> str | None:
    return None if path is None else str(path)
