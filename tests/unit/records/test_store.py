"""The state store itself (``bulkrunner.records.store``): where it is, how it is opened, and a
store that cannot be used, each way, as one line naming its file and the fix (exit 2)."""

from __future__ import annotations

import contextlib
import os
import sqlite3
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

import bulkrunner.records.store
from bulkrunner.config import folders as places
from bulkrunner.config.accounts import Account
from bulkrunner.config.folders import account_id, account_lock_path, lock_folder, state_folder
from bulkrunner.errors import UsageError
from bulkrunner.limits.rates import DEFAULT_RATES
from bulkrunner.model import Rate
from bulkrunner.records.budget import Ledger
from bulkrunner.records.history import ChangeRecord, History
from bulkrunner.records.schema import MIGRATIONS
from bulkrunner.records.store import DATABASE, WRITER_LOCK, StateStore, StoreError

KEY = "sk-store-SENTINEL-77aa"
ACCOUNT = account_id("https://server.smartlead.ai/api/v1", KEY)


def version(store: StateStore) -> int:
    """The schema version the store holds."""
    with store.read() as db:
        return int(db.execute("SELECT max(version) FROM schema_version").fetchone()[0])


def failure(folder: Path) -> str:
    """The message of the StoreError that opening the store in ``folder`` raises, checked to be
    one line, naming the fix, of a UsageError (exit 2)."""
    with pytest.raises(StoreError) as caught:
        StateStore.open(folder)
    assert isinstance(caught.value, UsageError)
    message = str(caught.value)
    assert "\n" not in message
    assert message.endswith("or run with --no-state"), message
    return message


@contextlib.contextmanager
def write_protected(path: Path) -> Iterator[None]:
    """``path`` may not be written, even by root (who ignores modes: then an immutable file
    attribute, or the test is skipped where there is none)."""
    if os.geteuid() != 0:
        mode = stat.S_IMODE(path.stat().st_mode)
        path.chmod(mode & ~0o222)
        try:
            yield
        finally:
            path.chmod(mode)
        return
    if subprocess.run(["chattr", "+i", str(path)], capture_output=True).returncode != 0:
        pytest.skip("running as root, and no immutable attribute to write-protect a file with")
    try:
        yield
    finally:
        subprocess.run(["chattr", "-i", str(path)], check=True)


# --- where it is --------------------------------------------------------------------------------


def test_the_store_is_in_the_folder_given_else_the_variables_else_the_users_folder(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, own_state_folder: Path
) -> None:
    assert state_folder(tmp_path / "given") == tmp_path / "given"
    assert state_folder() == own_state_folder  # $BULKRUNNER_STATE_DIR
    monkeypatch.setenv("BULKRUNNER_STATE_DIR", "~/elsewhere")
    assert state_folder() == Path.home() / "elsewhere"
    monkeypatch.delenv("BULKRUNNER_STATE_DIR")
    for name in ("XDG_STATE_HOME", "XDG_DATA_HOME", "HOME", "TMPDIR"):  # cron and a shell differ
        monkeypatch.setenv(name, str(tmp_path / name))
    assert state_folder() == places.home() / ".local" / "state" / "bulkrunner"
    monkeypatch.setattr(sys, "platform", "darwin")
    assert state_folder() == places.home() / "Library" / "Application Support" / "bulkrunner"
    monkeypatch.setattr(sys, "platform", "win32")
    monkeypatch.setenv("LOCALAPPDATA", str(tmp_path / "Local"))
    assert state_folder() == tmp_path / "Local" / "bulkrunner"


def test_the_locks_are_in_the_same_users_folder(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("BULKRUNNER_LOCK_DIR")
    monkeypatch.delenv("BULKRUNNER_STATE_DIR")
    assert lock_folder() == state_folder() / "locks"


def test_a_new_store_is_this_users_alone_and_set_for_several_processes(
    own_state_folder: Path,
) -> None:
    with StateStore.open() as store:
        assert store.path == own_state_folder / DATABASE
        assert version(store) == len(MIGRATIONS)
        with store.read() as db:
            assert db.execute("PRAGMA journal_mode").fetchone() == ("wal",)
            assert db.execute("PRAGMA synchronous").fetchone() == (1,)  # NORMAL
            assert db.execute("PRAGMA foreign_keys").fetchone() == (1,)
            assert db.execute("PRAGMA busy_timeout").fetchone() == (10_000,)
    assert stat.S_IMODE(own_state_folder.stat().st_mode) == 0o700
    assert stat.S_IMODE(store.path.stat().st_mode) == 0o600


def test_an_account_is_named_as_its_lock_is_and_never_by_its_key(tmp_path: Path) -> None:
    """One identity for the lock and the store: the server however its URL is written, and
    the key, hashed."""
    spellings = ["https://server.smartlead.ai/api/v1", "HTTPS://Server.SmartLead.ai:443/other"]
    assert {account_id(url, KEY) for url in spellings} == {ACCOUNT}
    assert account_id(spellings[0], KEY + "x") != ACCOUNT
    assert account_id("http://127.0.0.1:8080", KEY) == account_id("http://localhost:8080", KEY)
    assert KEY not in ACCOUNT
    account = Account("acme", "ACME_KEY", DEFAULT_RATES, spellings[1])
    assert account_lock_path(account.base_url, KEY).name == f"account-{ACCOUNT}.lock"
    with StateStore.open(tmp_path / "state") as store:
        Ledger(store).claim(ACCOUNT, DEFAULT_RATES, 1000.0)
    assert KEY.encode() not in b"".join(path.read_bytes() for path in store.path.parent.iterdir())


# --- a store that cannot be used ----------------------------------------------------------------


def test_a_file_that_is_not_a_database_is_refused(tmp_path: Path) -> None:
    folder = tmp_path / "state"
    folder.mkdir(mode=0o700)
    (folder / DATABASE).write_text("campaign_id,sending_limit\n" * 200)
    message = failure(folder)
    assert message.startswith(f"{folder / DATABASE}: not a bulkrunner state store")
    assert "move it aside" in message
    assert (folder / DATABASE).read_text().startswith("campaign_id")  # left as it was


def test_another_programs_database_is_refused_and_left_alone(tmp_path: Path) -> None:
    folder = tmp_path / "state"
    folder.mkdir(mode=0o700)
    with contextlib.closing(sqlite3.connect(folder / DATABASE)) as other:
        other.execute("CREATE TABLE notes (text TEXT)")
        other.commit()
    assert "an SQLite database of other tables" in failure(folder)
    with contextlib.closing(sqlite3.connect(folder / DATABASE)) as other:
        tables = other.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall()
    assert tables == [("notes",)]


def test_a_store_of_a_newer_schema_is_refused(tmp_path: Path) -> None:
    folder = tmp_path / "state"
    StateStore.open(folder).close()
    with contextlib.closing(sqlite3.connect(folder / DATABASE)) as db:
        db.execute("INSERT INTO schema_version VALUES (?)", (len(MIGRATIONS) + 1,))
        db.commit()
    message = failure(folder)
    assert message.startswith(f"{folder / DATABASE}: the state store was written by a newer")
    assert f"schema {len(MIGRATIONS) + 1}; this one knows up to {len(MIGRATIONS)}" in message
    assert "upgrade bulkrunner" in message


def test_a_store_damaged_where_it_is_opened_is_refused(tmp_path: Path) -> None:
    folder = tmp_path / "state"
    with StateStore.open(folder) as store:
        Ledger(store).record(ACCOUNT, [1.0, 2.0])
    with (folder / DATABASE).open("r+b") as file:  # page 1's b-tree header: the schema
        file.seek(100)
        file.write(b"\xff" * 8)
    message = failure(folder)
    assert message.startswith(f"{folder / DATABASE}: the state store is damaged (")
    assert "move it aside (a new store is made in its place)" in message


def test_a_store_damaged_where_a_run_reads_it_fails_as_one_line(tmp_path: Path) -> None:
    folder = tmp_path / "state"
    with StateStore.open(folder) as store:
        Ledger(store).record(ACCOUNT, [float(n) for n in range(2000)])
        with store.read() as db:
            (root,) = db.execute(
                "SELECT rootpage FROM sqlite_master WHERE name = 'requests'"
            ).fetchone()
            (size,) = db.execute("PRAGMA page_size").fetchone()
    with (folder / DATABASE).open("r+b") as file:  # the ledger's table, not the schema
        file.seek((root - 1) * size)
        file.write(b"\xff" * 64)
    with StateStore.open(folder) as store, pytest.raises(StoreError) as caught:
        Ledger(store).claim(ACCOUNT, DEFAULT_RATES, 3000.0)
    message = str(caught.value)
    assert message.startswith(f"{folder / DATABASE}: the state store is damaged (")
    assert "\n" not in message
    assert message.endswith("or run with --no-state")


def test_a_file_where_the_folder_should_be_is_refused(tmp_path: Path) -> None:
    (tmp_path / "state").write_text("x")
    message = failure(tmp_path / "state")
    assert message.startswith(f"{tmp_path / 'state'}: the state folder is not a folder; ")
    message = failure(tmp_path / "state" / "inner")  # a file in the way of its parents
    assert message.startswith(f"{tmp_path / 'state' / 'inner'}: cannot create the state folder")
    assert (tmp_path / "state").read_text() == "x"


@pytest.mark.parametrize("name", [DATABASE, WRITER_LOCK])
@pytest.mark.parametrize("planted", ["a folder", "a symbolic link"])
def test_what_is_not_a_file_where_the_store_keeps_one_is_refused(
    tmp_path: Path, name: str, planted: str
) -> None:
    folder = tmp_path / "state"
    folder.mkdir(mode=0o700)
    victim = tmp_path / "victim"
    victim.write_text("precious\n")
    if planted == "a folder":
        (folder / name).mkdir()
        kind = "a folder or device"
    else:
        (folder / name).symlink_to(victim)
        kind = "a symbolic link"
    what = "the state store" if name == DATABASE else "a lock"
    message = failure(folder)
    assert message.startswith(f"{folder / name}: {what} must be a regular file, not {kind}")
    assert victim.read_text() == "precious\n"


def test_a_process_stuck_in_a_write_is_waited_for_then_named(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Writers take turns (an flock beside the store); one holding its turn too long (stopped,
    say) makes the others give up after the busy timeout, as one line, and then at once: a
    command waits for a stuck process once, not at each write (the budget, then the history)."""
    fcntl = pytest.importorskip("fcntl")
    monkeypatch.setattr(bulkrunner.records.store, "BUSY_TIMEOUT", 0.05)
    with StateStore.open(tmp_path / "state") as store:
        ledger = Ledger(store)
        assert ledger.claim(ACCOUNT, DEFAULT_RATES, 1000.0) == 0.0
        with (tmp_path / "state" / WRITER_LOCK).open("rb") as other:
            fcntl.flock(other, fcntl.LOCK_EX)  # another process's turn
            with pytest.raises(StoreError) as caught:
                ledger.claim(ACCOUNT, DEFAULT_RATES, 1001.0)
            assert ledger.recent(ACCOUNT, 0.0) == [1000.0]  # reading goes on meanwhile
            fcntl.flock(other, fcntl.LOCK_UN)
            with pytest.raises(StoreError) as again:
                ledger.claim(ACCOUNT, DEFAULT_RATES, 1002.0)
            assert again.value is caught.value  # said again, not waited for again
    with StateStore.open(tmp_path / "state") as store:  # the next command's store: its own
        assert Ledger(store).claim(ACCOUNT, DEFAULT_RATES, 1003.0) == 0.0
        assert Ledger(store).recent(ACCOUNT, 0.0) == [1000.0, 1003.0]
    message = str(caught.value)
    assert message == (
        f"{store.path}: the state store stayed locked by another process for 0.05s: try again "
        "once the other bulkrunner has finished, or run with --no-state"
    )


@pytest.mark.parametrize("problem", ["a link", "open to all"])
def test_a_folder_another_user_could_change_is_refused(tmp_path: Path, problem: str) -> None:
    folder = tmp_path / "state"
    if problem == "a link":
        (tmp_path / "elsewhere").mkdir(mode=0o700)
        folder.symlink_to(tmp_path / "elsewhere")
        expected = "is a symbolic link"
    else:
        folder.mkdir()
        folder.chmod(0o777)
        expected = "may be written by other users (mode 0777)"
    message = failure(folder)
    assert message.startswith(f"{folder}: the state folder {expected}: another user could")


def test_an_unwritable_folder_is_refused(tmp_path: Path) -> None:
    folder = tmp_path / "state"
    folder.mkdir(mode=0o700)
    with write_protected(folder):
        message = failure(folder)
    assert message.startswith(f"{folder / DATABASE}: cannot create the state store (")


def test_a_store_whose_folder_became_unwritable_is_refused(tmp_path: Path) -> None:
    """SQLite makes its WAL and shared-memory files beside the store as it opens it."""
    folder = tmp_path / "state"
    StateStore.open(folder).close()
    with write_protected(folder):
        message = failure(folder)
    assert message.startswith(f"{folder / DATABASE}: cannot use the state store (")
    assert "writable" in message


def test_a_write_protected_store_is_refused_as_it_is_opened(tmp_path: Path) -> None:
    """Not at a run's first request: SQLite would open it for reading only."""
    folder = tmp_path / "state"
    StateStore.open(folder).close()
    with write_protected(folder / DATABASE):
        message = failure(folder)
    assert message.startswith(f"{folder / DATABASE}: cannot open the state store (")
    assert "make it and its folder writable" in message


def test_a_statement_at_fault_is_a_bug_not_a_store_to_move_aside(tmp_path: Path) -> None:
    with StateStore.open(tmp_path / "state") as store:
        history = History(store)
        with pytest.raises(sqlite3.IntegrityError):  # the change of a run never recorded
            history.record_changes([ChangeRecord(42, 1.0, ACCOUNT, 1, "field", 1, 2)])
        assert history.changes(1) == []  # none of the batch, and the store goes on
        run = history.start_run("run", 1.0)
        assert history.record_changes([ChangeRecord(run, 1.0, ACCOUNT, 1, "field", 1, 2)]) == 1


# --- migrations ---------------------------------------------------------------------------------


def test_an_older_store_is_migrated_forward_and_keeps_what_it_held(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    folder = tmp_path / "state"
    with StateStore.open(folder) as store:
        Ledger(store).record(ACCOUNT, [5.0, 6.0], [Rate(10, 2)])
        run = History(store).start_run("export", 7.0)
    later = (*MIGRATIONS, ("CREATE TABLE notes (run INTEGER REFERENCES runs (id), text TEXT)",))
    monkeypatch.setattr(bulkrunner.records.store, "MIGRATIONS", later)
    with StateStore.open(folder) as store:
        assert version(store) == len(later)
        with store.write() as db:
            db.execute("INSERT INTO notes VALUES (?, 'kept')", (run,))
        assert Ledger(store).recent(ACCOUNT, 0.0) == [5.0, 6.0]
        found = History(store).run(run)
        assert found is not None
        assert found.command == "export"
        with store.read() as db:
            assert db.execute("SELECT version FROM schema_version").fetchall() == [(1,), (2,)]
    with StateStore.open(folder) as store:  # nothing left to do
        assert version(store) == len(later)
