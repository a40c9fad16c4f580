"""The run lock where there is no ``fcntl`` (Windows): ``bulkrunner.records.locks`` loaded as on
win32, with a stand-in for ``msvcrt`` that holds byte-range locks the way Windows does (one holder
per byte, per open handle, a non-blocking attempt on a held byte failing with PermissionError).

The POSIX lock itself is tested through the CLI here (where locks are, and what may be planted
in their place) and in ``test_recovery``."""

from __future__ import annotations

import importlib.util
import os
import pwd
import sys
import tempfile
import types
from datetime import UTC, datetime
from pathlib import Path

import pytest

import bulkrunner.records.locks
from bulkrunner.config.folders import input_lock_path, lock_folder
from bulkrunner.errors import RunInProgress
from bulkrunner.simulator import SimulatorConfig, SimulatorThread
from tests.fakes import one_line_error, run

WHEN = datetime(2026, 11, 26, 9, 0, tzinfo=UTC)
KEY = "sk-locks-SENTINEL-4c1d"


class FakeMsvcrt(types.ModuleType):
    LK_UNLCK = 0
    LK_NBLCK = 2

    def __init__(self) -> None:
        super().__init__("msvcrt")
        self.held: dict[tuple[int, int], int] = {}  # (file, offset) -> descriptor holding it
        self.calls: list[tuple[int, int]] = []  # (mode, offset)

    def locking(self, fd: int, mode: int, nbytes: int) -> None:
        assert nbytes == 1
        offset = os.lseek(fd, 0, os.SEEK_CUR)
        byte = (os.fstat(fd).st_ino, offset)
        self.calls.append((mode, offset))
        if mode == self.LK_UNLCK:
            assert self.held.pop(byte) == fd, "unlocking a byte this handle does not hold"
        elif byte in self.held:
            raise PermissionError(13, "Permission denied")
        else:
            self.held[byte] = fd


@pytest.fixture
def windows(monkeypatch: pytest.MonkeyPatch) -> tuple[types.ModuleType, FakeMsvcrt]:
    """A copy of ``bulkrunner.records.locks`` as imported on Windows, and its ``msvcrt``."""
    real = sys.platform
    fake = FakeMsvcrt()
    monkeypatch.setitem(sys.modules, "msvcrt", fake)
    monkeypatch.setitem(sys.modules, "fcntl", None)  # importing it would fail, as on Windows
    monkeypatch.setattr(sys, "platform", "win32")
    origin = bulkrunner.records.locks.__file__
    assert origin is not None
    spec = importlib.util.spec_from_file_location("locking_on_windows", origin)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    monkeypatch.setattr(sys, "platform", real)  # the rest of the test runs as it is
    return module, fake


def test_a_second_holder_is_refused_until_the_first_lets_go(
    windows: tuple[types.ModuleType, FakeMsvcrt], tmp_path: Path
) -> None:
    locking, msvcrt = windows
    path = tmp_path / "r.csv.lock"
    with locking.RunLock(path, WHEN):
        assert len(msvcrt.held) == 1
        with pytest.raises(RunInProgress, match=f"another bulkrunner run \\(pid {os.getpid()}"):
            locking.RunLock(path, WHEN).__enter__()
    assert msvcrt.held == {}
    assert not path.exists()
    with locking.RunLock(path, WHEN):  # free again
        assert len(msvcrt.held) == 1
    assert [offset for _, offset in msvcrt.calls] == [0] * len(msvcrt.calls)  # the first byte


def test_a_lock_file_left_by_a_killed_run_is_taken_over(
    windows: tuple[types.ModuleType, FakeMsvcrt], tmp_path: Path
) -> None:
    locking, _ = windows
    path = tmp_path / "r.csv.lock"
    path.write_text('{"pid": 999999, "started_at": "2026-11-25T02:15:00+00:00"}')
    with locking.RunLock(path, WHEN):
        assert f'"pid": {os.getpid()}' in path.read_text()
    assert not path.exists()


def test_on_windows_the_lock_folder_is_the_users_whatever_the_temporary_folder(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("BULKRUNNER_LOCK_DIR")
    monkeypatch.setenv("LOCALAPPDATA", str(tmp_path / "AppData" / "Local"))
    monkeypatch.setattr(sys, "platform", "win32")
    for temp in ("cron", "shell"):
        monkeypatch.setenv("TEMP", str(tmp_path / temp))
        monkeypatch.setattr(tempfile, "tempdir", None)  # as in a process of its own
        assert lock_folder() == tmp_path / "AppData" / "Local" / "bulkrunner" / "locks"


# --- where the locks of inputs and accounts are, and who may touch them ------------------------


def test_the_lock_folder_is_the_same_for_every_process_of_the_user(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Cron and a shell (or two cron environments) differ in their temporary folder and XDG
    variables, and a sudo may keep another's HOME: none of them moves the lock folder."""
    monkeypatch.delenv("BULKRUNNER_LOCK_DIR")
    found = set()
    for environment in ("cron", "shell"):
        monkeypatch.setenv("TMPDIR", str(tmp_path / environment / "tmp"))
        monkeypatch.setattr(tempfile, "tempdir", None)  # as in a process of its own
        for name in ("XDG_RUNTIME_DIR", "XDG_STATE_HOME", "HOME"):
            monkeypatch.setenv(name, str(tmp_path / environment / name))
        found.add(lock_folder())
    home = Path(pwd.getpwuid(os.getuid()).pw_dir)
    assert found == {home / ".local" / "state" / "bulkrunner" / "locks"}


def source_and_server(tmp_path: Path, rows: int, first_id: int = 100) -> Path:
    lines = ["campaign_id,sending_limit"] + [f"{first_id + n},{10 + n}" for n in range(rows)]
    path = tmp_path / f"plan-{first_id}.csv"
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.mark.parametrize("planted", ["link", "fifo", "folder"])
def test_what_is_planted_as_a_reports_lock_is_refused_and_left_alone(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], planted: str
) -> None:
    """A link in the lock file's place is not followed (the run would truncate its target),
    and a lock file must be a regular file: one line, exit 2, nothing written."""
    source = source_and_server(tmp_path, 2)
    victim = tmp_path / "victim.txt"
    victim.write_text("precious\n")
    lock = tmp_path / "r.csv.lock"
    if planted == "link":
        lock.symlink_to(victim)
    elif planted == "fifo":
        os.mkfifo(lock)
    else:
        lock.mkdir()
    code, _, err = run(capsys, "run", str(source), "--report", str(tmp_path / "r.csv"), "--dry-run")
    assert code == 2, err
    line = one_line_error(err)
    assert line.startswith(f"bulkrunner: error: {lock}: a lock file must")
    assert victim.read_text() == "precious\n"
    assert not (tmp_path / "r.csv").exists()
    assert lock.is_symlink() == (planted == "link")  # left as it was


def test_a_link_planted_in_the_lock_folder_is_not_followed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SMARTLEAD_API_KEY", KEY)
    source = source_and_server(tmp_path, 2)
    victim = tmp_path / "victim.txt"
    victim.write_text("precious\n")
    planted = input_lock_path(source)
    planted.parent.mkdir(mode=0o700)
    planted.symlink_to(victim)
    with SimulatorThread(SimulatorConfig(api_key=KEY)) as sim:
        code, _, err = run(
            capsys, "run", str(source), "--base-url", sim.base_url,
            "--report", str(tmp_path / "r.csv"),
        )  # fmt: skip
        assert sim.state.requests == []
    assert code == 2, err
    assert f"{planted}: a lock file must not be a symbolic link" in one_line_error(err)
    assert victim.read_text() == "precious\n"


@pytest.mark.parametrize("problem", ["a link", "open to all", "another user's"])
def test_a_lock_folder_another_user_could_plant_in_is_refused(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    own_lock_folder: Path,
    problem: str,
) -> None:
    """Locks of inputs and accounts are only taken in a folder of this user's alone: one a
    link, one others may write in or one another user made first is refused, exit 2."""
    monkeypatch.setenv("SMARTLEAD_API_KEY", KEY)
    folder = own_lock_folder
    if problem == "a link":
        elsewhere = tmp_path / "elsewhere"
        elsewhere.mkdir(mode=0o700)
        folder.symlink_to(elsewhere)
        expected = "is a symbolic link"
    elif problem == "open to all":
        folder.mkdir()
        folder.chmod(0o1777)  # as /tmp is
        expected = "may be written by other users (mode 1777)"
    else:
        folder.mkdir(mode=0o700)
        monkeypatch.setattr(os, "geteuid", lambda: folder.stat().st_uid + 1)  # not its owner
        expected = f"belongs to another user (uid {folder.stat().st_uid})"
    source = source_and_server(tmp_path, 2)
    with SimulatorThread(SimulatorConfig(api_key=KEY)) as sim:
        code, _, err = run(
            capsys, "run", str(source), "--base-url", sim.base_url,
            "--report", str(tmp_path / "r.csv"),
            "--no-state",  # (the state folder, checked as the lock folder is, would say so first)
        )  # fmt: skip
        assert sim.state.requests == []
    assert code == 2, err
    line = one_line_error(err)
    assert line.startswith(f"bulkrunner: error: {folder}: the lock folder {expected}")
    assert "BULKRUNNER_LOCK_DIR" in line
