"""SIGINT and SIGTERM outside the sending event loop, which has handlers of its own (``sending``).

Until a run has finished sending, either signal interrupts like Ctrl-C (``KeyboardInterrupt``;
SIGTERM would otherwise end the process on the spot, leaving its lock file behind). Once it
has, they are only noted: writing the report, removing the journal and the lock, and printing
the summary are short and must not be cut short, or a run could end with half a report, a
temporary file or a lock file, and a message that does not say what was sent.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import sys
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from types import FrameType, TracebackType
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:  # imported where used: `bulkrunner validate` loads no async library
    import anyio

SIGNALS = (signal.SIGINT, signal.SIGTERM)
INTERRUPTED = "run interrupted"

log = logging.getLogger("bulkrunner")


class Interruptible(Protocol):
    """What ``run_gracefully`` stops: it counts the signals and can halt its sending."""

    signals: int

    def halt(self, reason: str) -> bool:
        """Send nothing more; False when nothing is sending yet (a signal then cancels)."""
        ...


async def run_gracefully(
    owner: Interruptible, work: Callable[[], Awaitable[None]], grace: float
) -> None:
    """``await work()`` with SIGINT and SIGTERM taken over by the event loop: the first halts
    ``owner`` (requests in flight get ``grace`` seconds, then are cancelled), a second cancels
    at once. The handlers found are put back afterwards. Where signals cannot be taken over
    (Windows, where Ctrl-C stops at once, and any thread but the main one, to which Python
    delivers no signal: an ``apply`` run from a thread) ``work`` runs as it is."""
    if sys.platform == "win32" or threading.current_thread() is not threading.main_thread():
        await work()
    else:
        await _gracefully(owner, work, grace)


async def _gracefully(
    owner: Interruptible, work: Callable[[], Awaitable[None]], grace: float
) -> None:
    import anyio

    failed: Exception | None = None
    with taken_over() as received, anyio.CancelScope() as scope:
        async with anyio.create_task_group() as group:
            group.start_soon(_on_signals, received, owner, scope, grace)
            try:
                await work()
            except Exception as exc:  # raised as it is, not inside the task group's group
                failed = exc
            group.cancel_scope.cancel()
    if failed is not None:
        raise failed
    if scope.cancelled_caught:
        owner.halt(INTERRUPTED)


async def _on_signals(
    received: AsyncIterator[int], owner: Interruptible, scope: anyio.CancelScope, grace: float
) -> None:
    """The first signal halts ``owner`` and gives what is in flight ``grace`` seconds (or
    cancels ``scope`` at once, when nothing sends yet); any later one cancels it at once."""
    import anyio

    async for _ in received:
        owner.signals += 1
        if owner.signals == 1 and owner.halt(INTERRUPTED):
            log.warning(
                "interrupted: sending nothing more; requests in flight get %gs to finish "
                "(interrupt again to stop at once)",
                grace,
            )
            scope.deadline = min(scope.deadline, anyio.current_time() + grace)
        else:
            log.warning("interrupted again: stopping now")
            scope.cancel()


@contextlib.contextmanager
def taken_over() -> Iterator[AsyncIterator[int]]:
    """SIGINT and SIGTERM as they come, for the event loop to act on; the handlers found are
    put back afterwards (the loop, letting go of a signal, would leave its default)."""
    import anyio

    previous = {signum: signal.getsignal(signum) for signum in SIGNALS}
    with contextlib.ExitStack() as stack:
        received = stack.enter_context(anyio.open_signal_receiver(*SIGNALS))
        try:
            yield received
        finally:
            with blocked():
                stack.close()
                for signum in SIGNALS:
                    signal.signal(signum, previous[signum] or signal.SIG_DFL)


class Interrupts:
    """``with Interrupts() as interrupts: ...; interrupts.hold(); <finish the run>``."""

    def __init__(self) -> None:
        self.received: list[int] = []  # signals that came while held
        self._held = False
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> Interrupts:
        if threading.current_thread() is threading.main_thread():  # else no signals come here
            for signum in SIGNALS:
                self._previous[signum] = signal.signal(signum, self._on_signal)
        return self

    def hold(self) -> None:
        """From now on, note signals instead of acting on them."""
        self._held = True

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        with blocked():
            for signum, previous in self._previous.items():
                signal.signal(signum, signal.SIG_DFL if previous is None else previous)
        self._previous.clear()

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        if not self._held:
            raise KeyboardInterrupt
        self.received.append(signum)


@contextlib.contextmanager
def blocked() -> Iterator[None]:
    """SIGINT and SIGTERM wait (pending) while handlers are swapped, so none finds the default
    handler in between (for SIGTERM, the end of the process)."""
    if sys.platform != "win32" and threading.current_thread() is threading.main_thread():
        mask = signal.pthread_sigmask(signal.SIG_BLOCK, SIGNALS)
        try:
            yield
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, mask)
    else:  # Windows has no signal masks; a thread but the main one gets no signals
        yield
