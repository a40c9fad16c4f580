"""One run per report, and one per input, at a time.

A run holds two locks: ``<report>.lock`` beside its report, and one keyed on its input's resolved
path (in a folder of this user's under the system's temporary folder), so that two runs of the
same job are refused even when their reports differ (a ``{timestamp}`` in the name). A run that
sends also holds one lock per account it uses (``bulkrunner.accounts.account_lock_path``: a hash
of base URL and key), so that two runs never together exceed one account's limits.

Each lock is an advisory ``flock`` (on Windows, where there is no ``fcntl``, an ``msvcrt`` lock
of the file's first byte). The system releases it when the process ends, however it ends, so a
lock left by a killed run is never stale: the next run simply gets it. The file holds the
owner's pid and start time, only to name the owner in the refusal.
"""

from __future__ import annotations

import contextlib
import getpass
import hashlib
import json
import logging
import os
import sys
import tempfile
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import IO

from bulkrunner.errors import RunInProgress

if sys.platform == "win32":
    import msvcrt
else:
    import fcntl

log = logging.getLogger("bulkrunner")


def lock_path(report_path: Path) -> Path:
    return report_path.with_name(report_path.name + ".lock")


def input_lock_path(input_path: Path) -> Path:
    """The lock of every run of ``input_path``, wherever their reports go."""
    key = hashlib.sha256(str(input_path.resolve()).encode()).hexdigest()[:24]
    return lock_folder() / f"input-{key}.lock"


def lock_folder() -> Path:
    """This user's folder of locks that are not beside a report, under the temporary folder."""
    if sys.platform == "win32":  # no uid; the temporary folder is the user's own anyway
        return Path(tempfile.gettempdir()) / f"bulkrunner-{getpass.getuser()}"
    else:
        return Path(tempfile.gettempdir()) / f"bulkrunner-{os.getuid()}"


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
                _lock(handle)
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
            _release(self._handle, self.path)
            self._handle = None


if sys.platform == "win32":

    def _lock(handle: IO[str]) -> None:
        """Lock the first byte (a lock may lie past the end of the file), or BlockingIOError."""
        handle.seek(0)
        try:
            msvcrt.locking(handle.fileno(), msvcrt.LK_NBLCK, 1)
        except OSError as exc:  # PermissionError (EACCES) or EDEADLOCK: another holds it
            raise BlockingIOError(str(exc)) from exc

    def _release(handle: IO[str], path: Path) -> None:
        # An open file cannot be removed: unlock and close first. Another run may open the
        # file meanwhile; then it stays, and the next run takes the lock as usual.
        handle.seek(0)
        msvcrt.locking(handle.fileno(), msvcrt.LK_UNLCK, 1)
        handle.close()
        with contextlib.suppress(PermissionError):
            path.unlink(missing_ok=True)

else:

    def _lock(handle: IO[str]) -> None:
        """An exclusive flock, or BlockingIOError when another process holds it."""
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)

    def _release(handle: IO[str], path: Path) -> None:
        # Removed while still locked: a run that opens it now finds it gone (``_same_file``).
        path.unlink(missing_ok=True)
        fcntl.flock(handle, fcntl.LOCK_UN)
        handle.close()


def _owner(handle: IO[str]) -> dict[str, object]:
    handle.seek(0)
    try:
        owner = json.loads(handle.read() or "{}")
    except (ValueError, OSError):  # OSError: on Windows, the owner's lock keeps its first byte
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
