"""One run per report, and one per input, at a time.

A run holds two locks: ``<report>.lock`` beside its report, and one keyed on its input's resolved
path (in a folder of this user's under the system's temporary folder), so that two runs of the
same job are refused even when their reports differ (a ``{timestamp}`` in the name). A run that
sends also holds one lock per account it uses (``bulkrunner.accounts.account_lock_path``: a hash
of base URL and key), so that two runs never together exceed one account's limits.

Each lock is an advisory ``flock``. The kernel releases it when the process
ends, however it ends, so a lock left by a killed run is never stale: the next run simply gets
it. The file holds the owner's pid and start time, only to name the owner in the refusal.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import os
import tempfile
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import IO

from bulkrunner.errors import RunInProgress

log = logging.getLogger("bulkrunner")


def lock_path(report_path: Path) -> Path:
    return report_path.with_name(report_path.name + ".lock")


def input_lock_path(input_path: Path) -> Path:
    """The lock of every run of ``input_path``, wherever their reports go."""
    key = hashlib.sha256(str(input_path.resolve()).encode()).hexdigest()[:24]
    return Path(tempfile.gettempdir()) / f"bulkrunner-{os.getuid()}" / f"input-{key}.lock"


class RunLock:
    """Held for the length of a run: ``with RunLock(path, started): ...``.

    ``subject`` names what the lock guards in the refusal (by default this report)."""

    def __init__(
        self,
        path: Path,
        started: datetime,
        subject: str | None = None,
        holding: str = "this input",
    ) -> None:
        self.path = path
        self.started = started
        self.subject = subject
        self.holding = holding  # what the lock guards, in the refusal: "this input"
        self._handle: IO[str] | None = None

    def __enter__(self) -> RunLock:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        while True:
            handle = self.path.open("a+", encoding="utf-8")
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                owner = _owner(handle)
                handle.close()
                if self.subject is not None:
                    raise RunInProgress(
                        f"{self.subject}: another bulkrunner run{_describe(owner)} "
                        f"{'of' if self.holding == 'this input' else 'using'} {self.holding} "
                        "is in progress; nothing was sent: wait for it to finish"
                    ) from None
                raise RunInProgress(
                    f"{self.path}: another bulkrunner run{_describe(owner)} is using this "
                    "report; nothing was sent: wait for it to finish or choose another --report"
                ) from None
            if _same_file(handle, self.path):
                break
            handle.close()  # the owner removed the file as we opened it: lock the new one
        previous = _owner(handle)
        if previous:
            log.warning(
                "taking over the lock of an earlier run%s that ended without releasing it",
                _describe(previous),
            )
        handle.seek(0)
        handle.truncate()
        handle.write(json.dumps({"pid": os.getpid(), "started_at": self.started.isoformat()}))
        handle.flush()
        self._handle = handle
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._handle is not None:
            self.path.unlink(missing_ok=True)
            fcntl.flock(self._handle, fcntl.LOCK_UN)
            self._handle.close()
            self._handle = None


def _owner(handle: IO[str]) -> dict[str, object]:
    handle.seek(0)
    try:
        owner = json.loads(handle.read() or "{}")
    except ValueError:
        return {}
    return owner if isinstance(owner, dict) else {}


def _describe(owner: dict[str, object]) -> str:
    if "pid" not in owner:
        return ""
    return f" (pid {owner['pid']}, started {owner.get('started_at', '?')})"


def _same_file(handle: IO[str], path: Path) -> bool:
    try:
        return os.stat(path).st_ino == os.fstat(handle.fileno()).st_ino
    except FileNotFoundError:
        return False
