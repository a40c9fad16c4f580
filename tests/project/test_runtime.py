"""One async runtime: anyio, on its asyncio backend (aiohttp runs on asyncio only).

``run_gracefully`` is driven in this process: a test raises SIGINT or SIGTERM at itself while the
handlers are the event loop's, and checks what the owner and the work saw. Nothing is timed:
the grace period is either 0 (over at once) or an hour (never over during a test).
"""

from __future__ import annotations

import ast
import signal
from types import FrameType

import anyio
import anyio.lowlevel
import pytest

from bulkrunner.sending.interrupts import INTERRUPTED, run_gracefully
from tests.sources import PACKAGE, nodes, python_files

HOUR = 3600.0
HANG = 30.0  # seconds: only a guard against a hang, never reached when the code is right

# asyncio is imported only where aiohttp's asyncio nature shows: the simulator is an aiohttp web
# server (its tasks and events), and transport catches asyncio.IncompleteReadError from aiohttp.
ASYNCIO_ALLOWED = {"sending/transport.py"}


class Owner:
    def __init__(self, sending: bool = True) -> None:
        self.signals = 0
        self.sending = sending
        self.halts: list[str] = []
        self.halted = anyio.Event()

    def halt(self, reason: str) -> bool:
        self.halts.append(reason)
        self.halted.set()
        return self.sending


def drive(owner: Owner, work: object, grace: float) -> None:
    async def main() -> None:
        with anyio.fail_after(HANG):
            await run_gracefully(owner, work, grace)  # type: ignore[arg-type]

    anyio.run(main, backend="asyncio")


def _asyncio_importers() -> list[str]:
    found = []
    for path in python_files():
        relative = path.relative_to(PACKAGE)
        if relative.parts[0] == "simulator" or str(relative) in ASYNCIO_ALLOWED:
            continue
        for node in nodes(path):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                names = [node.module or ""]
            else:
                continue
            if any(name.split(".")[0] == "asyncio" for name in names):
                found.append(f"{relative}:{node.lineno}")
    return found


def test_the_client_uses_anyio_not_asyncio() -> None:
    assert _asyncio_importers() == []


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_first_signal_halts_and_lets_the_work_finish_in_its_grace_period(signum: int) -> None:
    owner = Owner()
    finished: list[bool] = []

    async def work() -> None:
        signal.raise_signal(signum)
        await owner.halted.wait()
        await anyio.lowlevel.checkpoint()  # requests in flight finishing
        finished.append(True)

    drive(owner, work, HOUR)
    assert owner.signals == 1
    assert owner.halts == [INTERRUPTED]  # halted once, never cancelled
    assert finished == [True]


def test_a_second_signal_cancels_at_once() -> None:
    owner = Owner()

    async def work() -> None:
        signal.raise_signal(signal.SIGINT)
        await owner.halted.wait()
        signal.raise_signal(signal.SIGINT)
        await anyio.sleep_forever()

    drive(owner, work, HOUR)  # returns: the cancellation is the interrupt's, not an error
    assert owner.signals == 2
    assert owner.halts == [INTERRUPTED, INTERRUPTED]


def test_in_flight_work_is_cancelled_when_the_grace_period_ends() -> None:
    owner = Owner()

    async def work() -> None:
        signal.raise_signal(signal.SIGTERM)
        await anyio.sleep_forever()  # a request that never answers

    drive(owner, work, 0.0)
    assert owner.signals == 1
    assert owner.halts == [INTERRUPTED, INTERRUPTED]


def test_a_signal_before_anything_sends_cancels_at_once() -> None:
    owner = Owner(sending=False)  # still reading the current settings: no engine to halt

    async def work() -> None:
        signal.raise_signal(signal.SIGINT)
        await anyio.sleep_forever()

    drive(owner, work, HOUR)
    assert owner.signals == 1


def test_an_error_of_the_work_comes_out_as_it_is() -> None:
    async def work() -> None:
        raise LookupError("no such campaign")

    with pytest.raises(LookupError, match="no such campaign"):
        drive(Owner(), work, HOUR)


def test_a_cancellation_from_outside_is_not_taken_for_an_interrupt() -> None:
    owner = Owner()
    after: list[bool] = []

    async def main() -> None:
        with anyio.CancelScope() as outer:

            async def work() -> None:
                outer.cancel()
                await anyio.sleep_forever()

            await run_gracefully(owner, work, HOUR)
            after.append(True)  # not reached: the cancellation goes on to its scope
        assert outer.cancelled_caught

    anyio.run(main, backend="asyncio")
    assert after == []
    assert owner.halts == []


def test_the_signal_handlers_found_are_put_back() -> None:
    def mine(signum: int, frame: FrameType | None) -> None:
        raise AssertionError("not to be called")

    previous = {signum: signal.signal(signum, mine) for signum in (signal.SIGINT, signal.SIGTERM)}
    try:

        async def work() -> None:
            await anyio.lowlevel.checkpoint()

        drive(Owner(), work, HOUR)
        assert signal.getsignal(signal.SIGINT) is mine
        assert signal.getsignal(signal.SIGTERM) is mine
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
