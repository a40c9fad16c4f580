"""The margin that tests on real time allow for scheduling noise: part of their contract.

The limiter spaces any N + 1 requests it grants at least S + guard seconds apart. The simulator
stamps a request's arrival when its handler runs, which a loaded machine delays by a varying
amount: a descheduled process, the GIL held by the other thread, a busy event loop. So a test
that lets the simulator judge the client's windows (its own 429s, ``max_in_window``) gives the
client a guard of ``JITTER`` and runs the simulator in its own thread or process, never as a
task of the client's event loop. Such a test asserts that the server saw no more than N in any
window of S: it holds as long as no arrival is held back ``JITTER`` seconds more than another.

Real-time tests are marked ``slow`` (``pytest -m "not slow"`` skips them for a quick loop); the
default ``pytest`` runs them all. A test that needs no process of its own runs the client and the
simulator in one loop on virtual time instead (``tests.virtual_time``), where there is no noise
to allow for.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

JITTER = 0.1  # seconds; measured against a CPU-loaded 2 cores


def wait_for_lines(path: Path, count: int, timeout: float = 30) -> None:
    """Until ``path`` holds more than ``count`` lines (a journal a run in another process is
    writing), polling; fails after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and len(path.read_text().splitlines()) > count:
            return
        time.sleep(0.02)
    raise AssertionError(f"{path} never reached {count} lines")


def wait_until(condition: Callable[[], bool], timeout: float = 30) -> None:
    """Until ``condition()`` holds, polling; fails after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("the condition never held")
        time.sleep(0.02)


def line_count(path: Path) -> int:
    return len(path.read_text().splitlines()) if path.exists() else 0


def wait_for_lines_or_exit(
    path: Path, count: int, process: subprocess.Popen[bytes], timeout: float = 60
) -> None:
    """Until ``path`` has ``count`` lines or the process has ended (it may finish first)."""
    deadline = time.monotonic() + timeout
    while line_count(path) < count and process.poll() is None:
        if time.monotonic() > deadline:
            raise AssertionError(f"{path} never reached {count} lines")
        time.sleep(0.005)


class Commands:
    """``bulkrunner`` commands in processes of their own, one after another as a user runs them,
    each with ``options`` after its words and its output in ``folder/<name>.log``: ``killed``
    with kill -9 once its journal has grown by ``grown()`` rows, or left to finish; ``codes``
    holds each one's exit code by name."""

    def __init__(
        self, folder: Path, env: Mapping[str, str], options: Sequence[str], grown: Callable[[], int]
    ) -> None:
        self.folder, self.env, self.options, self.grown = folder, dict(env), tuple(options), grown
        self.codes: dict[str, int] = {}

    def said(self, name: str) -> str:
        return (self.folder / f"{name}.log").read_text()

    def killed(self, name: str, journal: Path, *argv: str) -> None:
        process = self._launch(name, argv)
        wait_for_lines_or_exit(journal, line_count(journal) + self.grown(), process)
        process.kill()
        self.codes[name] = process.wait(timeout=60)
        assert self.codes[name] == -signal.SIGKILL, self.said(name)

    def finished(self, name: str, *argv: str, expected: int = 0) -> None:
        self.codes[name] = self._launch(name, argv).wait(timeout=120)
        assert self.codes[name] == expected, self.said(name)

    def _launch(self, name: str, argv: Sequence[str]) -> subprocess.Popen[bytes]:
        command = [sys.executable, "-m", "bulkrunner", *argv, *self.options]
        with (self.folder / f"{name}.log").open("wb") as log:
            return subprocess.Popen(command, env=self.env, stdout=log, stderr=subprocess.STDOUT)


def figures(title: str, values: Mapping[str, object]) -> str:
    """A line of measured figures, printed by the long checks (``pytest -s`` shows them)."""
    return f"{title}: " + ", ".join(f"{name} {value}" for name, value in values.items())
