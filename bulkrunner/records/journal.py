"""A crash-safe record of finished rows, kept beside the report while a run is in progress.

Each finished row is one JSON line, written and flushed the moment the row finishes, so a
``kill -9`` loses at most the rows still in flight. Rows are keyed by their content (campaign and
exact payload), not their position: resuming with an edited input re-sends what changed. A
succeeded row's line holds what it changed (each field's value before and after), so that the
report of the run that resumes it still shows them.

The first line says whose journal it is: the input's resolved path, the SHA-256 of its bytes and
the options that change what is sent (``RunIdentity``). ``--resume`` finds a journal by it, and
never adopts the journal of another input.

The journal is ``<report>.journal`` beside the report (``bulkrunner.config.paths``), removed once
the run has finished and reported.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import stat
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import IO, Any

from bulkrunner.config.redaction import redact
from bulkrunner.errors import UsageError
from bulkrunner.model import Change, Changes, Outcome, Status

FORMAT_VERSION = 1

log = logging.getLogger("bulkrunner")


def row_key(campaign_id: int, payload: Mapping[str, Any]) -> str:
    """A row's identity: its campaign and the exact body it sends."""
    canonical = json.dumps([campaign_id, payload], sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:24]


APPLIED_EARLIER = Outcome(
    Status.SUCCEEDED, error="applied by the interrupted run: found as this row sets it"
)
"""A row the run it continues applied without journaling it (its answer was in flight)."""


@dataclass(frozen=True, slots=True)
class RunIdentity:
    """What makes two runs the same job: the same input file, with the same content, sent with
    the same options (those that change the requests: the vocabulary)."""

    input: str  # the input's resolved path
    sha256: str  # of the input file's bytes
    options: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def of(cls, input_path: Path, options: Mapping[str, str]) -> RunIdentity:
        digest = hashlib.sha256()
        try:
            # without waiting for a writer: a FIFO given as the input is no file to hash
            descriptor = os.open(input_path, os.O_RDONLY | os.O_NONBLOCK)
            with os.fdopen(descriptor, "rb") as handle:
                if not stat.S_ISREG(os.fstat(descriptor).st_mode):
                    raise UsageError(f"{input_path}: not a file")
                while block := handle.read(1 << 20):
                    digest.update(block)
        except OSError as exc:
            problem = exc.strerror or exc
            raise UsageError(f"{input_path}: cannot read the file ({problem})") from None
        return cls(str(input_path.resolve()), digest.hexdigest(), dict(options))

    def header(self) -> dict[str, Any]:
        return {"input": self.input, "input_sha256": self.sha256, "options": dict(self.options)}

    def differs(self, header: Mapping[str, Any]) -> str | None:
        """Why the journal with ``header`` belongs to another job (another input file, or other
        options), or None. A journal of the same file whose content has changed since is this
        job's (rows are journaled by content); so is one whose header has no identity."""
        if "input_sha256" not in header:
            return None
        if header.get("input") != self.input:
            return f"it is the journal of another input, {header.get('input')}"
        theirs = header.get("options") or {}
        for name, value in self.options.items():
            if name in theirs and theirs[name] != value:
                return f"that run used --{name} {theirs[name]}, not {value}"
        return None

    def same_input(self, header: Mapping[str, Any]) -> bool:
        """Whether ``header`` is of this input file (whatever its content and options were)."""
        return "input_sha256" not in header or header.get("input") == self.input

    def matches(self, header: Mapping[str, Any]) -> bool:
        """Whether ``header`` is of this very input (same content) and options."""
        return self.differs(header) is None and header.get("input_sha256") == self.sha256


class Journal:
    """Appends one flushed JSON line per finished row."""

    def __init__(self, path: Path, handle: IO[str]) -> None:
        self.path = path
        self._handle = handle

    @classmethod
    def open(
        cls,
        path: Path,
        *,
        input_path: Path,
        started: datetime,
        identity: RunIdentity | None = None,
    ) -> Journal:
        path.parent.mkdir(parents=True, exist_ok=True)
        fresh = not path.exists()
        if not fresh:
            _mend_last_line(path)
        handle = path.open("a", encoding="utf-8")
        journal = cls(path, handle)
        if fresh:
            whose = identity.header() if identity else {"input": str(input_path)}
            try:
                journal._write(
                    {"journal": FORMAT_VERSION, **whose, "started_at": started.isoformat()}
                )
            except OSError:  # say, the disk is full: leave no torn journal behind
                with contextlib.suppress(OSError):
                    handle.close()
                remove(path)
                raise
        return journal

    def record(
        self,
        key: str,
        number: int,
        campaign_id: int | None,
        outcome: Outcome,
        changes: Mapping[str, Change] | None = None,
        account: str | None = None,
    ) -> None:
        """One finished row; ``changes``, what it changed, are kept if it succeeded; the
        ``account`` it was sent with, when it has a name."""
        entry: dict[str, Any] = {
            "key": key,
            "row": number,
            "campaign_id": campaign_id,
            "status": outcome.status.value,
            "http_status": outcome.http_status,
            "attempts": outcome.attempts,
            "error": outcome.error,
            "duration_ms": outcome.duration_ms,
            "finished_at": outcome.finished_at.isoformat() if outcome.finished_at else None,
        }
        if account:
            entry["account"] = account
        if changes and outcome.status is Status.SUCCEEDED:
            entry["changes"] = {name: [c.before, c.after] for name, c in changes.items()}
        self._write(entry)

    def close(self) -> None:
        # Every entry was flushed as it was written: closing can only fail again on a write
        # that already failed (a full disk), which the run has dealt with. The file is closed.
        with contextlib.suppress(OSError):
            self._handle.close()

    def __enter__(self) -> Journal:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _write(self, entry: dict[str, Any]) -> None:
        # Errors are a server's words, which may echo the key: never write it to disk. A value
        # JSON has no form for is written as the report writes it (``str``).
        line = json.dumps(entry, separators=(",", ":"), default=str)
        self._handle.write(redact(line) + "\n")
        self._handle.flush()  # to the OS: survives kill -9 of this process


@dataclass(frozen=True, slots=True)
class Success:
    """A row the journal records as succeeded: how it ended, and what it changed (nothing in a
    journal line that records none)."""

    outcome: Outcome
    changes: Changes = field(default_factory=Changes)


def read_successes(path: Path) -> dict[str, Success]:
    """The rows a journal records as succeeded, by key. A torn last line (a crash mid-write)
    is ignored with a warning; anything else unreadable is a usage error naming the line and
    the fix, raised before anything is sent. The journal is read a line at a time."""
    successes: dict[str, Success] = {}
    try:
        with path.open("rb") as handle:
            held: tuple[int, bytes] | None = None  # each line is judged once the next is read
            for number, line in enumerate(handle, start=1):
                if held is not None:
                    _read_entry(path, *held, last=False, into=successes)
                held = (number, line)
            if held is not None:
                _read_entry(path, *held, last=True, into=successes)
    except OSError as exc:
        raise UsageError(f"{path}: cannot read the journal ({exc.strerror or exc})") from None
    return successes


def _read_entry(
    path: Path, number: int, raw: bytes, *, last: bool, into: dict[str, Success]
) -> None:
    """Line ``number`` of the journal at ``path``: a success goes ``into`` the successes."""
    line = raw.decode("utf-8", errors="replace")
    if not line.strip():
        return
    try:
        entry = json.loads(line)
    except ValueError:
        if last:  # the write a crash (or a full disk) interrupted
            log.warning(
                "%s: ignoring its last line (line %d): it was cut short while being "
                "written (a crash or a full disk); a row it recorded is sent again",
                path,
                number,
            )
            return
        raise _damaged(path, number, "is not a journal entry") from None
    if isinstance(entry, dict) and "journal" in entry and "key" not in entry:
        return  # the header
    if not isinstance(entry, dict) or not isinstance(entry.get("key"), str):
        raise _damaged(path, number, "is not a journal entry")
    if entry.get("status") == Status.SUCCEEDED.value:
        try:
            into[entry["key"]] = _success(entry)
        except (TypeError, ValueError, OverflowError) as exc:
            raise _damaged(path, number, f"has a bad value ({exc})") from None


def _mend_last_line(path: Path) -> None:
    """Before appending to a journal whose last write was cut short: drop the torn line, or end
    a whole entry that lacks only its newline, so that new entries start on a line of their
    own and the journal stays readable (a torn line in the middle would make it unreadable)."""
    with path.open("rb+") as handle:
        size = handle.seek(0, os.SEEK_END)
        tail, data = size, b""
        while tail > 0 and b"\n" not in data:  # back from the end to the last whole line
            step = min(tail, 1 << 16)
            tail -= step
            handle.seek(tail)
            data = handle.read(step) + data
        if not data or data.endswith(b"\n"):
            return
        start = tail + data.rfind(b"\n") + 1
        handle.seek(start)
        try:
            json.loads(handle.read())
        except ValueError:
            handle.truncate(start)
        else:
            handle.seek(0, os.SEEK_END)
            handle.write(b"\n")


def _success(entry: dict[str, Any]) -> Success:
    finished = entry.get("finished_at")
    http_status, duration = entry.get("http_status"), entry.get("duration_ms")
    for name, value in (("http_status", http_status), ("duration_ms", duration)):
        if value is not None and (not isinstance(value, int) or isinstance(value, bool)):
            raise ValueError(f"{name} {value!r} is not a whole number")
    outcome = Outcome(
        Status.SUCCEEDED,
        http_status,
        int(entry.get("attempts") or 0),
        str(entry.get("error") or ""),
        duration,
        datetime.fromisoformat(finished) if finished else None,
    )
    changed = entry.get("changes") or {}
    if not isinstance(changed, dict) or not all(
        isinstance(sides, list) and len(sides) == 2 for sides in changed.values()
    ):
        raise ValueError("changes is not a list of before and after values by field")
    return Success(outcome, Changes({str(n): Change(*sides) for n, sides in changed.items()}))


def _damaged(path: Path, number: int, problem: str) -> UsageError:
    return UsageError(
        f"{path}: line {number} {problem}; the journal is damaged: fix or delete that line "
        "and --resume again, or start over with --fresh"
    )


def read_header(path: Path) -> dict[str, Any]:
    """The first line of the journal at ``path`` (whose run it is); {} if it has none."""
    try:
        with path.open(encoding="utf-8") as handle:
            entry = json.loads(handle.readline() or "{}")
    except (OSError, ValueError):
        return {}
    return entry if isinstance(entry, dict) and "journal" in entry else {}


@dataclass(frozen=True, slots=True)
class Applied:
    """What a journal line records a row changed: its campaign, the account it was sent with
    (its name; None when it has none), when it finished, and each field's before and after."""

    campaign_id: int
    account: str | None
    finished_at: datetime | None
    changes: Mapping[str, list[Any]]


def applied(path: Path) -> Iterator[Applied]:
    """What the rows a journal records as succeeded changed, a line at a time; lines it cannot
    read (a torn last line) are passed over: ``read_successes`` says what is wrong with them."""
    with contextlib.suppress(OSError), path.open(encoding="utf-8", errors="replace") as lines:
        for line in lines:
            with contextlib.suppress(ValueError, TypeError, KeyError, AttributeError):
                entry = json.loads(line)
                changes = entry.get("changes")
                if entry.get("status") != Status.SUCCEEDED.value or not isinstance(changes, dict):
                    continue
                finished = entry.get("finished_at")
                yield Applied(
                    int(entry["campaign_id"]),
                    entry.get("account"),
                    datetime.fromisoformat(finished) if finished else None,
                    changes,
                )


def finish_times(
    path: Path, since: datetime | None = None, account: str | None = None
) -> list[datetime]:
    """When each row the journal records finished (its last answer), oldest first; given
    ``since``, only those at or after it; given ``account``, only that account's (and those of
    a journal that names no account). The journal is read a line at a time."""
    times: list[datetime] = []
    with contextlib.suppress(OSError), path.open(encoding="utf-8", errors="replace") as lines:
        for line in lines:
            with contextlib.suppress(ValueError, TypeError, KeyError, AttributeError):
                entry = json.loads(line)
                if account is not None and entry.get("account", account) != account:
                    continue
                at = datetime.fromisoformat(entry["finished_at"])
                if since is None or at >= since:
                    times.append(at)
    return sorted(times)


def remove(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.remove(path)
