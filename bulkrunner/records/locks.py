"""One run per report, and one per input, at a time; an account's budget shared or held alone.

A run holds two locks: ``<report>.lock`` beside its report, and one keyed on its input's resolved
path, in this user's lock folder (``config.folders.lock_folder``), so that two runs of the
same job are refused even when their reports differ (a ``{timestamp}`` in the name). A run that
sends also holds one lock per account it uses (``account_lock_path``: a hash of its server and
key), so that two runs never together exceed one account's limits: shared by the runs that use
the state store (each counts every other's requests in the account's windows: its ledger), held
alone by a run without it (``--no-state``), whose requests no other run could count. So runs
with the store go together, and a run without it neither waits for them nor they for it: the
later is refused. (On Windows, whose locks cannot be shared, runs with the store take none.)

The lock folder is created with mode 0700 and, before each lock in it, checked to be a folder
(not a link) of this user's that no one else may write in: another local user can neither plant a
lock there to block runs nor a link for a run to truncate a file. A lock file, there or beside a
report, is opened without following a symbolic link and must be a regular file.

Each lock is an advisory ``flock`` (on Windows, where there is no ``fcntl``, an ``msvcrt`` lock
of the file's first byte). The system releases it when the process ends, however it ends, so a
lock left by a killed run is never stale: the next run simply gets it. The file holds the
owner's pid and start time, only to name the owner in the refusal.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import stat
import sys
import time
from collections.abc import Mapping, Sequence
from contextlib import ExitStack
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import IO

from bulkrunner.config.accounts import Account
from bulkrunner.config.environment import LOCK_DIR_ENV
from bulkrunner.config.folders import account_lock_path, lock_folder, private_folder_problem
from bulkrunner.errors import RunInProgress, UsageError

if sys.platform == "win32":
    import msvcrt
else:
    import fcntl

log = logging.getLogger("bulkrunner")

_SHARED_PATIENCE = 0.1  # seconds a run sharing an account's lock tries again for


def lock_accounts(
    stack: ExitStack,
    accounts: Sequence[Account],
    keys: Mapping[str, str],
    started: datetime,
    *,
    shared: bool = False,
) -> None:
    """Hold every account's lock in ``stack``: ``shared`` with other runs that share its budget
    through the state store, else alone. RunInProgress if a run holds one otherwise."""
    if shared and sys.platform == "win32":
        return
    for account in accounts:
        lock = RunLock(
            account_lock_path(account.base_url, keys[account.name]),
            started,
            # A run without an accounts file: its one key, named after its variable.
            subject=f"account {account.name!r}" if account.name else f"the key {account.key_env}",
            holding="this account",
            shared=shared,
        )
        stack.enter_context(lock)


def _private_folder(folder: Path) -> None:
    """Create ``folder`` for this user alone (0700), or check that it is still: a folder, not
    a symbolic link, this user's, that no one else may write in. A UsageError if not."""
    try:
        problem = private_folder_problem(folder)
    except OSError as exc:
        raise UsageError(
            f"{folder}: cannot create the lock folder ({exc.strerror or exc}); set "
            f"{LOCK_DIR_ENV} to a folder of yours; nothing was sent"
        ) from None
    if problem:
        raise UsageError(
            f"{folder}: the lock folder {problem}: another user could block or redirect runs; "
            f"remove it (it is made again, yours alone) or set {LOCK_DIR_ENV} to a folder of "
            "yours; nothing was sent"
        )


class RunLock:
    """Held for the length of a run: ``with RunLock(path, started): ...``.

    ``subject`` names what the lock guards in the refusal (by default this report); a
    ``shared`` lock is held together with other shared holders (not on Windows)."""

    def __init__(
        self,
        path: Path,
        started: datetime,
        subject: str | None = None,
        holding: str = "this input",
        shared: bool = False,
    ) -> None:
        self.path = path
        self.started = started
        self.subject = subject
        self.holding = holding  # what the lock guards, in the refusal: "this input"
        self.shared = shared
        self._handle: IO[str] | None = None

    def __enter__(self) -> RunLock:
        if self.path.parent == lock_folder():
            _private_folder(self.path.parent)
        else:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        # A run sharing the lock lets go of it by holding it alone for a moment (to remove the
        # file when it is the last): a sharer coming then tries again for a little while.
        patience = time.monotonic() + (_SHARED_PATIENCE if self.shared else 0.0)
        while True:
            handle = _open(self.path)
            try:
                _lock(handle, self.shared)
            except BlockingIOError:
                owner = _owner(handle)
                handle.close()
                if time.monotonic() < patience:
                    time.sleep(0.005)
                    continue
                raise self._refusal(owner) from None
            if _same_file(handle, self.path):
                break
            handle.close()  # the owner removed the file as we opened it: lock the new one
        previous = _owner(handle)
        if previous and not (self.shared or previous.get("shared")):  # (sharers leave it)
            log.warning(
                "taking over the lock of an earlier run%s that ended without releasing it",
                _describe(previous),
            )
        handle.seek(0)
        handle.truncate()
        owner = {"pid": os.getpid(), "started_at": self.started.isoformat()}
        handle.write(json.dumps({**owner, "shared": True} if self.shared else owner))
        handle.flush()
        self._handle = handle
        return self

    def _refusal(self, owner: dict[str, object]) -> RunInProgress:
        if self.subject is None:
            return RunInProgress(
                f"{self.path}: another bulkrunner run{_describe(owner)} is using this "
                "report; nothing was sent: wait for it to finish or choose another --report"
            )
        alone = not owner.get("shared")  # a run without the state store holds it alone
        return RunInProgress(
            f"{self.subject}: another bulkrunner run{_describe(owner)} "
            f"{'of' if self.holding == 'this input' else 'using'} {self.holding} "
            f"{'without the state store (--no-state) ' if self.shared and alone else ''}"
            "is in progress; nothing was sent: wait for it to finish"
            + ("" if self.shared or alone else ", or run without --no-state to share its budget")
        )

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._handle is not None:
            if not self.shared or _alone_now(self._handle):
                _release(self._handle, self.path)
            else:  # other holders still run: the file stays theirs
                self._handle.close()
            self._handle = None


if sys.platform == "win32":

    def _lock(handle: IO[str], shared: bool = False) -> None:
        """Lock the first byte (a lock may lie past the end of the file), or BlockingIOError.
        (Never ``shared``: ``lock_accounts`` takes no shared lock on Windows.)"""
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

    def _lock(handle: IO[str], shared: bool = False) -> None:
        """An exclusive (or ``shared``) flock, or BlockingIOError when another process holds
        it (exclusively, or at all)."""
        fcntl.flock(handle, (fcntl.LOCK_SH if shared else fcntl.LOCK_EX) | fcntl.LOCK_NB)

    def _release(handle: IO[str], path: Path) -> None:
        # Removed while still locked: a run that opens it now finds it gone (``_same_file``).
        path.unlink(missing_ok=True)
        fcntl.flock(handle, fcntl.LOCK_UN)
        handle.close()


_OPEN_FLAGS = (
    os.O_RDWR
    | os.O_CREAT
    | getattr(os, "O_NOFOLLOW", 0)  # a link planted in its place is not followed
    | getattr(os, "O_NONBLOCK", 0)  # nor does a FIFO planted there hold the run up
    | getattr(os, "O_CLOEXEC", 0)
    | getattr(os, "O_BINARY", 0)  # (Windows: bytes as they are; the text layer decodes)
)


def _open(path: Path) -> IO[str]:
    """The lock file ``path``, created (0600) if need be: never through a symbolic link, and
    only a regular file; else a one-line UsageError."""
    try:
        descriptor = os.open(path, _OPEN_FLAGS, 0o600)
    except OSError as exc:  # ELOOP or EMLINK for a link, EISDIR for a folder...
        if os.path.islink(path):
            raise UsageError(
                f"{path}: a lock file must not be a symbolic link: remove it; nothing was sent"
            ) from None
        if os.path.lexists(path) and not os.path.isfile(path):
            raise _not_regular(path) from None
        raise UsageError(
            f"{path}: cannot open the lock file ({exc.strerror or exc}); nothing was sent"
        ) from None
    if not stat.S_ISREG(os.fstat(descriptor).st_mode):  # a FIFO, a device...
        os.close(descriptor)
        raise _not_regular(path)
    return os.fdopen(descriptor, "r+", encoding="utf-8")


def _not_regular(path: Path) -> UsageError:
    return UsageError(f"{path}: a lock file must be a regular file: remove it; nothing was sent")


def _owner(handle: IO[str]) -> dict[str, object]:
    handle.seek(0)
    try:
        owner = json.loads(handle.read() or "{}")
    except (ValueError, OSError):  # OSError: on Windows, the owner's lock keeps its first byte
        return {}
    return owner if isinstance(owner, dict) else {}


def _alone_now(handle: IO[str]) -> bool:
    """Whether the shared lock of ``handle`` is the last one held (it is then held alone, and
    its file can go); else the lock is let go of."""
    try:
        _lock(handle)
    except BlockingIOError:
        return False
    return True


def _describe(owner: dict[str, object]) -> str:
    if "pid" not in owner:
        return ""
    return f" (pid {owner['pid']}, started {owner.get('started_at', '?')})"


def _same_file(handle: IO[str], path: Path) -> bool:
    try:
        named, opened = os.lstat(path), os.fstat(handle.fileno())
    except FileNotFoundError:
        return False
    return (named.st_dev, named.st_ino) == (opened.st_dev, opened.st_ino)
