from __future__ import annotations

import functools
import inspect
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aioresponses import aioresponses
from yarl import URL

from tests.hostile import RunCli

FOLDER = Path(__file__).parent
BY_FOLDER = {"e2e": pytest.mark.slow, "acceptance": pytest.mark.acceptance}
E2E = "tests/e2e/"

# pytest keeps a test module's rewritten asserts only where bytecode may be written. Where
# PYTHONDONTWRITEBYTECODE is set, each worker of each run would rewrite every test module again:
# about 4 of the 6 seconds a worker takes to collect. The suite's own bytecode is kept whatever it
# says (in __pycache__, which git ignores); the processes the tests start are left to it.
sys.dont_write_bytecode = False

# The tests' files (reports, journals, backups, state stores, spills) go to a folder in memory
# where there is one with room: they are written as a run writes them, synced to the disk
# (fsync) at every commit, 2-3 ms each on a disk, and the suite writes thousands of them. Not
# where the memory folder is small (a container's 64 MB), nor on a system without one.
MEMORY_FOLDER = Path("/dev/shm")
if (
    MEMORY_FOLDER.is_dir()
    and os.access(MEMORY_FOLDER, os.W_OK | os.X_OK)
    and shutil.disk_usage(MEMORY_FOLDER).free >= 4 * 2**30
):
    tempfile.tempdir = str(MEMORY_FOLDER)


def pytest_configure(config: pytest.Config) -> None:
    """The processes the tests start take Ctrl-C as a user's do, however the suite was started:
    a background job of a script starts with SIGINT ignored, and so would they (Python gives no
    KeyboardInterrupt for a signal ignored as it starts). A signal handled here is one its
    children start with by default."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, signal.default_int_handler)


@pytest.hookimpl(tryfirst=True)  # before -m deselects by marks
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """A test of ``e2e/`` runs on real time (``slow``), one of ``acceptance/`` is a long check run
    apart (``acceptance``): marked by its folder, not test by test."""
    for item in items:
        mark = BY_FOLDER.get(item.path.relative_to(FOLDER).parts[0])
        if mark is not None:
            item.add_marker(mark)


def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """With ``-n``, the tests of ``e2e/`` are one unit of work, the first given out, when other
    tests run too: they mostly wait, on processes and on real time, so one worker waits through
    them while the other runs the in-process tests' CPU. Every other test file is a unit of its
    own (``--dist loadfile``), the files of more tests first, as each file of ``e2e/`` is when
    they run alone."""
    if config.getvalue("dist") != "loadfile":
        return None  # another --dist asked for: xdist's own
    from xdist.scheduler import LoadFileScheduling

    class E2EFirst(LoadFileScheduling):  # type: ignore[misc]
        def _split_scope(self, nodeid: str) -> str:
            if nodeid.startswith(E2E) and self._others:
                return E2E
            return str(super()._split_scope(nodeid))

        def _assign_work_unit(self, node: Any) -> None:
            if E2E in self.workqueue:
                self.workqueue.move_to_end(E2E, last=False)
            super()._assign_work_unit(node)

        @functools.cached_property
        def _others(self) -> bool:
            return any(not nodeid.startswith(E2E) for nodeid in self.collection)

    return E2EFirst(config, log)


def _folder(tmp_path_factory: pytest.TempPathFactory, name: str) -> Path:
    """A new folder of the session's temporary folder, its name starting with ``name``. Not
    ``tmp_path_factory.mktemp``: that numbers the folder by listing every folder made before it,
    3 ms a test by the end of this suite's thousands."""
    return Path(tempfile.mkdtemp(prefix=f"{name}-", dir=tmp_path_factory.getbasetemp()))


@pytest.fixture
def tmp_path(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """pytest's ``tmp_path``, named after the test as pytest names it, and made at once
    (``_folder``); kept, as pytest keeps them, with the session's last three."""
    return _folder(tmp_path_factory, re.sub(r"\W", "_", request.node.name)[:30])


@pytest.fixture(autouse=True)
def own_folders(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Each test's locks of inputs and accounts and its state store in folders of its own
    (inherited by the runs it starts), not in the home folder of whoever runs the tests."""
    folder = _folder(tmp_path_factory, "bulkrunner")
    monkeypatch.setenv("BULKRUNNER_LOCK_DIR", str(folder / "locks"))
    monkeypatch.setenv("BULKRUNNER_STATE_DIR", str(folder / "state"))
    return folder


@pytest.fixture
def own_lock_folder(own_folders: Path) -> Path:
    """The test's folder of locks (``$BULKRUNNER_LOCK_DIR``), not made until a run locks."""
    return own_folders / "locks"


@pytest.fixture
def own_state_folder(own_folders: Path) -> Path:
    """The test's state store folder (``$BULKRUNNER_STATE_DIR``), not made until a run opens it."""
    return own_folders / "state"


@pytest.fixture(autouse=True)
def no_remembered_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test starts remembering no key, as a fresh process does, so a sender's own redaction
    is what it sees; and the pattern of every key the process has seen does not grow with each
    test, slower to build and to scan."""
    from bulkrunner.config import redaction

    monkeypatch.setattr(redaction, "_remembered", set())


@pytest.fixture
def cli_here(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> RunCli:
    """``bulkrunner ARGS`` in ``cwd`` with ``key`` as the API key, in this process: its exit code
    and output, as ``subprocess.run`` gives them. For what needs no process of its own (a
    signal, a kill, a second run at once: ``tests/forked.py``)."""
    from bulkrunner.cli.app import main
    from bulkrunner.config import redaction

    def run(
        cwd: Path, key: str, *args: str, timeout: float = 60
    ) -> subprocess.CompletedProcess[str]:
        monkeypatch.chdir(cwd)
        # a fresh process remembers no key: redaction must not pass on an earlier run's memory
        monkeypatch.setattr(redaction, "_remembered", set())
        monkeypatch.setenv("SMARTLEAD_API_KEY", key)
        monkeypatch.delenv("SMARTLEAD_BASE_URL", raising=False)
        capsys.readouterr()
        try:
            code = main(list(args))
        except SystemExit as exit:  # the parser's usage errors, --help and --version
            code = exit.code if isinstance(exit.code, int) else 1
        out, err = capsys.readouterr()
        return subprocess.CompletedProcess(["bulkrunner", *args], code, out, err)

    return run


@pytest.fixture
def no_ambient_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    """No API key or base URL from the environment of whoever runs the tests."""
    for name in ("SMARTLEAD_API_KEY", "SMARTLEAD_BASE_URL"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def write_csv(tmp_path: Path) -> Callable[[str, str], Path]:
    """Write ``text`` as a CSV file named ``name`` in a temporary folder."""

    def write(text: str, name: str = "input.csv") -> Path:
        path = tmp_path / name
        path.write_text(text, encoding="utf-8")
        return path

    return write


class _SentWriter:
    output_size = 0


_NEEDS_STREAM_WRITER = (
    "stream_writer" in inspect.signature(aiohttp.ClientResponse.__init__).parameters
)


class _CompatResponse(aiohttp.ClientResponse):
    """aiohttp 3.14 added a required ``stream_writer`` argument that aioresponses 0.7.9 does not
    pass (pnuckowski/aioresponses#289); supply a finished writer so mocked responses build."""

    def __init__(self, method: str, url: URL, **kwargs: Any) -> None:
        if _NEEDS_STREAM_WRITER:
            kwargs.setdefault("stream_writer", _SentWriter())
        super().__init__(method, url, **kwargs)


class CompatAioresponses(aioresponses):
    def add(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("response_class", _CompatResponse)
        super().add(*args, **kwargs)


@pytest.fixture
def mocked() -> Iterator[aioresponses]:
    """aioresponses, working with the installed aiohttp."""
    with CompatAioresponses() as mock:
        yield mock
