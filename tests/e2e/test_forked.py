"""``tests/forked.py``'s processes end as new interpreters do: the same exit status and the
same on stderr, whatever the test's process holds (pytest's logging handlers, warning filters
and hooks) when it forks."""

from __future__ import annotations

import logging
import signal
import subprocess
import sys
from collections.abc import Iterator

import pytest

from tests import forked

CASES = {  # code: its exit status, and what stderr shows
    "a library's error logged": (
        "import logging; logging.getLogger('asyncio').error('boom from asyncio')",
        0,
        "boom from asyncio",
    ),
    "exit with a message": ("import sys; sys.exit('bye now')", 1, "bye now"),
    "exit with a status": ("import sys; sys.exit(3)", 3, ""),
    "an uncaught Ctrl-C": ("raise KeyboardInterrupt", -signal.SIGINT, ""),
    "an error while collected": (
        "class A:\n    def __del__(self): raise ValueError('in a finalizer')\nA()",
        0,
        "in a finalizer",
    ),
    "a warning": ("import warnings; warnings.warn('careful', UserWarning)", 0, "careful"),
}


@pytest.fixture
def a_handler_of_the_tests() -> Iterator[None]:
    """A handler of the test's process on a descriptor the child closes, and may reuse."""
    handler = logging.FileHandler("/dev/null")
    logging.getLogger().addHandler(handler)
    yield
    logging.getLogger().removeHandler(handler)
    handler.close()


@pytest.mark.usefixtures("a_handler_of_the_tests")
@pytest.mark.parametrize("case", sorted(CASES))
def test_a_forked_process_ends_as_a_new_interpreter_does(case: str) -> None:
    code, status, shown = CASES[case]
    command = [sys.executable, "-c", code]
    real = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
    fork = forked.run(command, capture_output=True, text=True, timeout=60)
    assert (real.returncode, shown in real.stderr) == (status, True), real
    assert (fork.returncode, shown in fork.stderr) == (status, True), fork
