"""The state store: one SQLite database per user that every bulkrunner process shares, holding
what one command must know of the ones before it and beside it (the requests sent on each
account: ``budget``; runs and the changes they applied: ``history``). It never holds a key: an
account is named by ``folders.account_id``.

Where: ``state.sqlite3`` in ``--state-dir`` (or a job file's ``state_dir``) when given, else
``$BULKRUNNER_STATE_DIR``, else the user's bulkrunner folder (``folders.user_folder``:
``~/.local/state/bulkrunner`` on Linux). The folder is made for this user alone (0700) and
checked as the lock folder is; the file is made 0600.

How: WAL journaling (readers never block the writer nor each other; one writer at a time), a
busy timeout (a process waits its turn to write rather than fail), every write in one short
``BEGIN IMMEDIATE`` transaction (``StateStore.write``: it takes the write lock before reading,
so what it reads cannot change before it writes), foreign keys enforced. The schema carries its
version (``schema_version``); an older store is migrated forward on opening, a newer one is
refused.

A store that cannot be used (not a database, damaged, a newer schema, a folder that cannot be
made or written, one stuck) raises ``StoreError``: one line naming the file and the fix, exit 2;
``--no-state`` runs without the store."""

from __future__ import annotations

import os
import sqlite3
import stat
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType

from bulkrunner.config.environment import STATE_DIR_ENV
from bulkrunner.config.folders import private_folder_problem, state_folder
from bulkrunner.config.run_config import RunConfig
from bulkrunner.errors import UsageError
from bulkrunner.records.schema import MIGRATIONS

if sys.platform != "win32":
    import fcntl

DATABASE = "state.sqlite3"
# Writers take turns on an flock of this file beside the database before SQLite's write lock:
# a process waiting for another's transaction then wakes as soon as it ends, where SQLite's own
# busy handler sleeps 1 ms, then 2, 5, 10... (a run's event loop stalled with it). Not on
# Windows, which has no flock: there, SQLite's busy handler.
WRITER_LOCK = "state.writer.lock"
# Seconds a process waits for another's write transaction before giving up. Transactions last
# microseconds (a claim) to a few hundred milliseconds (a batch of 10,000 changes): a wait this
# long means a process is stuck holding the lock, not busy.
BUSY_TIMEOUT = 10.0
_NO_STATE = "or run with --no-state"


class StoreError(UsageError):
    """The state store cannot be used: one line naming its file and the fix (exit 2)."""


def for_config(config: RunConfig) -> StateStore | None:
    """The store a command of ``config`` uses (``--state-dir``, else the usual folder); None with
    ``--no-state``. StoreError if it cannot be used."""
    return None if config.no_state else StateStore.open(config.state_dir)


class StateStore:
    """An open state store: ``with StateStore.open() as store: ...``.

    One connection, usable from any thread of the process (its transactions take turns);
    every process opens its own."""

    def __init__(self, path: Path, connection: sqlite3.Connection, writer: int | None) -> None:
        self.path = path
        self._connection = connection
        self._writer = writer  # the descriptor of WRITER_LOCK (None: none)
        self._lock = threading.RLock()  # one transaction at a time on the connection
        # account -> its row and reach, as committed; and as the open transaction has them
        self._accounts: dict[str, tuple[int, float]] = {}
        self._pending: dict[str, tuple[int, float]] = {}
        self.stuck: StoreError | None = None  # its turn to write never came: not waited again

    @classmethod
    def open(cls, folder: Path | None = None) -> StateStore:
        """Open (creating or migrating it if need be) the store in ``state_folder(folder)``;
        StoreError if it cannot be used."""
        where = state_folder(folder)
        try:
            problem = private_folder_problem(where)
        except OSError as exc:
            raise StoreError(
                f"{where}: cannot create the state folder ({exc.strerror or exc}): set "
                f"{STATE_DIR_ENV} or --state-dir to a folder of yours, {_NO_STATE}"
            ) from None
        if problem:
            why = "" if problem == "is not a folder" else ": another user could change it"
            raise StoreError(
                f"{where}: the state folder {problem}{why}; move it aside (a folder of yours "
                f"alone is made in its place), set {STATE_DIR_ENV} or --state-dir to a folder "
                f"of yours, {_NO_STATE}"
            )
        path = where / DATABASE
        os.close(_open_file(path, "the state store"))
        writer = None if sys.platform == "win32" else _open_file(where / WRITER_LOCK, "a lock")
        try:
            connection = sqlite3.connect(
                path, timeout=BUSY_TIMEOUT, isolation_level=None, check_same_thread=False
            )
        except sqlite3.Error as exc:
            _close(writer)
            raise _store_error(path, exc) from None
        store = cls(path, connection, writer)
        try:
            with store._guarded():
                store._configure()
                store._migrate()
        except BaseException:
            store.close()
            raise
        return store

    def close(self) -> None:
        with self._lock:
            self._connection.close()
            _close(self._writer)
            self._writer = None

    def __enter__(self) -> StateStore:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    @contextmanager
    def _guarded(self) -> Iterator[None]:
        """A failure of the store inside (``_failing``) becomes a StoreError naming it."""
        try:
            yield
        except sqlite3.Error as exc:
            if _failing(exc):
                raise _store_error(self.path, exc) from None
            raise

    def write(self) -> Transaction:
        """``with store.write() as db:`` one write transaction, taken before anything is read
        (``BEGIN IMMEDIATE``): committed when the block ends, rolled back if it raises."""
        return Transaction(self, "BEGIN IMMEDIATE")

    def read(self) -> Transaction:
        """``with store.read() as db:`` reads that see one state of the store (writers go on)."""
        return Transaction(self, "BEGIN")

    def account(self, db: sqlite3.Connection, identity: str, reach: float = 0.0) -> int:
        """The row of the account ``identity`` (``folders.account_id``) in the open transaction
        ``db``, made if need be, its reach (see ``budget``) at least ``reach``. Remembered once
        the transaction commits, so that most transactions need not ask."""
        known = self._pending.get(identity) or self._accounts.get(identity)
        if known is not None and known[1] >= reach:
            return known[0]
        db.execute(
            "INSERT INTO accounts (identity, reach) VALUES (?, ?) ON CONFLICT (identity) "
            "DO UPDATE SET reach = max(reach, excluded.reach)",
            (identity, reach),
        )
        key, recorded = db.execute(
            "SELECT id, reach FROM accounts WHERE identity = ?", (identity,)
        ).fetchone()
        self._pending[identity] = (key, recorded)
        return int(key)

    def _configure(self) -> None:
        db = self._connection
        # in the writers' turn: SQLite may refuse at once (seeing a deadlock, not waiting) a
        # process that switches a new store's journal while another switches it or writes
        if self._writer is not None:
            _take_turn(self._writer, self.path)
        try:
            db.execute("PRAGMA journal_mode = WAL")
        finally:
            if self._writer is not None:
                _end_turn(self._writer)
        # In WAL mode, NORMAL writes each commit to the WAL file (the system's page cache) and
        # syncs it to the disk only at checkpoints: a process killed at any moment, kill -9
        # included, loses nothing it committed; only a system crash or power cut can take the
        # latest commits back, never the store's consistency (WAL frames carry checksums). FULL
        # would sync every commit: hundreds of microseconds for each request claimed.
        db.execute("PRAGMA synchronous = NORMAL")
        db.execute("PRAGMA foreign_keys = ON")

    def _migrate(self) -> None:
        with self.write() as db:
            db.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER PRIMARY KEY)")
            found = _version(db)
            if found > len(MIGRATIONS):
                raise StoreError(
                    f"{self.path}: the state store was written by a newer bulkrunner (schema "
                    f"{found}; this one knows up to {len(MIGRATIONS)}): upgrade bulkrunner, "
                    f"{_NO_STATE}"
                )
            if found == 0 and _foreign_tables(db):
                raise StoreError(
                    f"{self.path}: not a bulkrunner state store (an SQLite database of other "
                    f"tables): move it aside or choose another --state-dir, {_NO_STATE}"
                )
            for version in range(found + 1, len(MIGRATIONS) + 1):
                for statement in MIGRATIONS[version - 1]:
                    db.execute(statement)
                db.execute("INSERT INTO schema_version (version) VALUES (?)", (version,))


class Transaction:
    """A transaction on a store's connection, the store's lock held throughout (and, for a write,
    the writers' turn: WRITER_LOCK); any SQLite error in it is a StoreError. (A class, not a
    generator: a request's claim is one, and this costs a third of what two nested context
    managers did.)"""

    __slots__ = ("_begin", "_store", "_turn")

    def __init__(self, store: StateStore, begin: str) -> None:
        self._store = store
        self._begin = begin
        self._turn = store._writer if begin == "BEGIN IMMEDIATE" else None

    def __enter__(self) -> sqlite3.Connection:
        store = self._store
        store._lock.acquire()
        try:
            if store.stuck is not None and self._begin != "BEGIN":  # a writer waits for a stuck
                raise store.stuck  # process once, not each time; readers go on
            if self._turn is not None:
                _take_turn(self._turn, store.path)
            store._connection.execute(self._begin)
        except BaseException as exc:
            self._end()
            if isinstance(exc, sqlite3.Error) and _failing(exc):
                store.stuck = _store_error(store.path, exc)
                raise store.stuck from None
            if isinstance(exc, StoreError):
                store.stuck = exc
            raise
        return store._connection

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        store = self._store
        db = store._connection
        try:
            if exc is None:
                db.execute("COMMIT")
                store._accounts.update(store._pending)
            elif db.in_transaction:
                db.rollback()
        except sqlite3.Error as ending:
            if db.in_transaction:
                db.rollback()
            raise _store_error(store.path, ending) from None
        finally:
            store._pending.clear()
            self._end()
        if isinstance(exc, sqlite3.Error) and _failing(exc):
            raise _store_error(store.path, exc) from None

    def _end(self) -> None:
        if self._turn is not None:
            _end_turn(self._turn)
        self._store._lock.release()


if sys.platform == "win32":

    def _take_turn(writer: int, path: Path) -> None:
        raise NotImplementedError  # (no WRITER_LOCK on Windows)

    def _end_turn(writer: int) -> None:
        raise NotImplementedError

else:

    def _take_turn(writer: int, path: Path) -> None:
        """The writers' turn: the flock of WRITER_LOCK, asked for again after a pause growing
        from 20 µs to 0.5 ms (a claim lasts about 0.1 ms); StoreError past BUSY_TIMEOUT (a
        process stuck in its transaction)."""
        pause, deadline = 0.00002, None
        while True:
            try:
                fcntl.flock(writer, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return
            except BlockingIOError:
                now = time.monotonic()
                deadline = deadline or now + BUSY_TIMEOUT
                if now >= deadline:
                    raise _busy(path) from None
                time.sleep(pause)
                pause = min(2 * pause, 0.0005)

    def _end_turn(writer: int) -> None:
        fcntl.flock(writer, fcntl.LOCK_UN)


def _failing(exc: sqlite3.Error) -> bool:
    """Whether ``exc`` is the store failing (unreadable, damaged, locked, full, unwritable:
    OperationalError, or DatabaseError itself), not a statement at fault (IntegrityError,
    ProgrammingError...: a bug, left to be one)."""
    return isinstance(exc, sqlite3.OperationalError) or type(exc) is sqlite3.DatabaseError


def _version(db: sqlite3.Connection) -> int:
    found = db.execute("SELECT max(version) FROM schema_version").fetchone()[0]
    return int(found or 0)


def _foreign_tables(db: sqlite3.Connection) -> Sequence[str]:
    rows = db.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table' "
        "AND name NOT IN ('schema_version', 'sqlite_sequence')"
    ).fetchall()
    return [str(name) for (name,) in rows]


_OPEN_FLAGS = (
    os.O_RDWR
    | os.O_CREAT
    | getattr(os, "O_NOFOLLOW", 0)  # a link planted in its place is not followed
    | getattr(os, "O_NONBLOCK", 0)  # nor does a FIFO planted there hold the run up
    | getattr(os, "O_CLOEXEC", 0)
    | getattr(os, "O_BINARY", 0)
)


def _open_file(path: Path, what: str) -> int:
    """A descriptor of ``path``, made for this user alone if need be (0600; SQLite gives the
    store's WAL and shared-memory files its mode); StoreError if it is there but not a regular
    file (a folder, a symbolic link) or cannot be made."""
    try:
        descriptor = os.open(path, _OPEN_FLAGS, 0o600)
    except OSError as exc:
        if os.path.islink(path) or (os.path.lexists(path) and not os.path.isfile(path)):
            raise _not_regular(path, what) from None
        verb = "open" if os.path.lexists(path) else "create"
        raise StoreError(
            f"{path}: cannot {verb} {what} ({exc.strerror or exc}): make it and its folder "
            f"writable or set {STATE_DIR_ENV} or --state-dir to a folder of yours, {_NO_STATE}"
        ) from None
    if not stat.S_ISREG(os.fstat(descriptor).st_mode):
        os.close(descriptor)
        raise _not_regular(path, what)
    return descriptor


def _not_regular(path: Path, what: str) -> StoreError:
    kind = "a symbolic link" if os.path.islink(path) else "a folder or device"
    return StoreError(
        f"{path}: {what} must be a regular file, not {kind}: move it aside (a new one is made "
        f"in its place), {_NO_STATE}"
    )


def _close(descriptor: int | None) -> None:
    if descriptor is not None:
        os.close(descriptor)


def _busy(path: Path) -> StoreError:
    return StoreError(
        f"{path}: the state store stayed locked by another process for {BUSY_TIMEOUT:g}s: try "
        f"again once the other bulkrunner has finished, {_NO_STATE}"
    )


def _store_error(path: Path, exc: sqlite3.Error) -> StoreError:
    """What a failure of the store at ``path`` tells the user: what is wrong, and the fix."""
    name = getattr(exc, "sqlite_errorname", "")
    if name == "SQLITE_NOTADB":
        problem, fix = "not a bulkrunner state store (not an SQLite database)", _ASIDE
    elif name.startswith("SQLITE_CORRUPT"):
        problem, fix = f"the state store is damaged ({exc})", _ASIDE
    elif name.startswith(("SQLITE_BUSY", "SQLITE_LOCKED")):
        return _busy(path)
    elif name.startswith("SQLITE_FULL"):
        problem, fix = "the state store cannot grow: the disk is full", "free some space"
    else:  # SQLITE_READONLY, SQLITE_CANTOPEN, SQLITE_IOERR, SQLITE_PERM...
        problem = f"cannot use the state store ({exc})"
        fix = (
            f"make it and its folder writable or set {STATE_DIR_ENV} or --state-dir to a "
            "folder of yours"
        )
    return StoreError(f"{path}: {problem}: {fix}, {_NO_STATE}")


_ASIDE = "move it aside (a new store is made in its place)"
