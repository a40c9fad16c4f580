"""The run lock where there is no ``fcntl`` (Windows): ``bulkrunner.locking`` loaded as on win32,
with a stand-in for ``msvcrt`` that holds byte-range locks the way Windows does (one holder per
byte, per open handle, a non-blocking attempt on a held byte failing with PermissionError).

The POSIX lock itself is tested through the CLI in ``test_recovery``."""

from __future__ import annotations

import importlib.util
import os
import sys
import types
from datetime import UTC, datetime
from pathlib import Path

import pytest

import bulkrunner.locking
from bulkrunner.errors import RunInProgress

WHEN = datetime(2026, 11, 26, 9, 0, tzinfo=UTC)


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
    """A copy of ``bulkrunner.locking`` as imported on Windows, and its ``msvcrt``."""
    real = sys.platform
    fake = FakeMsvcrt()
    monkeypatch.setitem(sys.modules, "msvcrt", fake)
    monkeypatch.setitem(sys.modules, "fcntl", None)  # importing it would fail, as on Windows
    monkeypatch.setattr(sys, "platform", "win32")
    origin = bulkrunner.locking.__file__
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


def test_the_lock_folder_is_named_for_the_user_not_a_uid(
    windows: tuple[types.ModuleType, FakeMsvcrt], monkeypatch: pytest.MonkeyPatch
) -> None:
    locking, _ = windows
    posix = bulkrunner.locking.lock_folder()
    monkeypatch.setattr(locking.getpass, "getuser", lambda: "ana")
    monkeypatch.setattr(sys, "platform", "win32")
    assert locking.lock_folder().name == "bulkrunner-ana"
    assert posix.name == f"bulkrunner-{os.getuid()}"  # on POSIX, as it was
