"""The tests of a module run on a fake clock: a command the command line runs in the test's
process (``main``, ``cli_here``) takes one (``tests/fakes.py``, ``commands_on``), so its rate
windows, backoff and Retry-After waits take the fake clock's time, not the test's. A test of
how a run meets a server judging its windows on real time says so: ``@pytest.mark.real_clock``.
"""

from __future__ import annotations

import pytest

from tests.fakes import FakeClock, commands_on


@pytest.fixture(autouse=True)
def commands_on_a_fake_clock(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    if request.node.get_closest_marker("real_clock") is None:
        commands_on(FakeClock(), monkeypatch)
