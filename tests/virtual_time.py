"""An event loop on virtual time: its clock stands still while any task has work to do or any
socket has something to read, and jumps to the next timer the moment none has. A client and a
simulator served by the same loop on 127.0.0.1 then see one time: the simulator stamps a
request's arrival at the instant the client sent it, the windows it judges are the client's, and
a minute of rate windows, latency and timeouts passes in the milliseconds its work takes.

This is what ``tests.fakes.FakeClock`` cannot give a server: its ``sleep`` moves time forward
for every task the moment one task sleeps, while other requests are still on their way.

Loopback delivers what one end sends before the send returns, so "nothing to read" is known by
looking (a poll with no timeout); the loop still waits ``SETTLE`` of real time before a jump,
for a kernel that hands a packet over a little later.
"""

from __future__ import annotations

import asyncio
import random
import selectors
from collections.abc import Coroutine, Mapping, Sequence
from typing import Any, TypeVar

from bulkrunner.limits.limiter import SlidingWindowLimiter
from bulkrunner.model import Clock, Rate
from bulkrunner.sending.connection import Connection
from bulkrunner.sending.retry import Policy
from bulkrunner.sending.transport import Sender

_T = TypeVar("_T")
SETTLE = 0.001  # seconds of real time the loop waits for I/O before it jumps to its next timer


class _Selector(selectors.BaseSelector):
    """The system's selector, but a wait with a timeout is a jump of the loop's clock once
    nothing is ready (a wait without one, for a thread or a signal, is a real wait)."""

    def __init__(self, loop: VirtualTimeLoop) -> None:
        self._real = selectors.DefaultSelector()
        self._loop = loop

    def register(self, fileobj: Any, events: int, data: Any = None) -> selectors.SelectorKey:
        return self._real.register(fileobj, events, data)

    def unregister(self, fileobj: Any) -> selectors.SelectorKey:
        return self._real.unregister(fileobj)

    def modify(self, fileobj: Any, events: int, data: Any = None) -> selectors.SelectorKey:
        return self._real.modify(fileobj, events, data)

    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        ready = self._real.select(0)
        if ready or timeout == 0:
            return ready
        if timeout is None:
            return self._real.select(None)
        ready = self._real.select(min(timeout, SETTLE))
        if not ready:
            self._loop.now += timeout
        return ready

    def close(self) -> None:
        self._real.close()

    def get_map(self) -> Mapping[Any, selectors.SelectorKey]:
        return self._real.get_map()


class VirtualTimeLoop(asyncio.SelectorEventLoop):
    """An asyncio loop whose ``time()`` is virtual (see the module's docstring)."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start
        super().__init__(_Selector(self))

    def time(self) -> float:
        return self.now


def run_virtual(main: Coroutine[Any, Any, _T]) -> _T:
    """``asyncio.run(main)`` on a new ``VirtualTimeLoop``."""
    with asyncio.Runner(loop_factory=VirtualTimeLoop) as runner:
        return runner.run(main)


def connection_on_loop_time(
    sender: Sender,
    rates: Sequence[Rate],
    policy: Policy,
    concurrency: int,
    *,
    seed: int,
    adaptive: bool = True,
) -> Connection:
    """A connection of ``sender`` whose limiter and retries wait on the running loop's time."""
    loop = asyncio.get_running_loop()
    return Connection(
        sender,
        SlidingWindowLimiter(rates, adaptive=adaptive, clock=loop.time, sleep=asyncio.sleep),
        policy,
        concurrency,
        Clock(monotonic=loop.time, sleep=asyncio.sleep),
        rng=random.Random(seed),
    )
