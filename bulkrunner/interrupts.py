"""SIGINT and SIGTERM outside the sending event loop, which has handlers of its own (``sending``).

Until a run has finished sending, either signal interrupts like Ctrl-C (``KeyboardInterrupt``;
SIGTERM would otherwise end the process on the spot, leaving its lock file behind). Once it
has, they are only noted: writing the report, removing the journal and the lock, and printing
the summary are short and must not be cut short, or a run could end with half a report, a
temporary file or a lock file, and a message that does not say what was sent.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from types import FrameType, TracebackType
from typing import Any

SIGNALS = (signal.SIGINT, signal.SIGTERM)


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
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    mask = signal.pthread_sigmask(signal.SIG_BLOCK, SIGNALS)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)
