"""Serving the simulator on 127.0.0.1: inside an event loop, in a thread, or in the foreground."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import threading
import time
from collections.abc import Callable
from types import TracebackType

from aiohttp import web

from bulkrunner.simulator.server import BASE_PATH, SHUTDOWN_TIMEOUT, create_app
from bulkrunner.simulator.state import Clock, SimulatorConfig, SimulatorState, Sleep

HOST = "127.0.0.1"
_DEFAULT_CONFIG = SimulatorConfig()


class Simulator:
    """Serves ``create_app(config)`` on 127.0.0.1 (port 0: an ephemeral one) while entered.

    Single use: ``async with Simulator(config) as sim: ... sim.base_url ... sim.state``. A
    ``state`` given is the account it serves as it was left (``saved``); by default a new one.
    """

    def __init__(
        self,
        config: SimulatorConfig = _DEFAULT_CONFIG,
        port: int = 0,
        clock: Clock = time.monotonic,
        sleep: Sleep | None = None,
        state: SimulatorState | None = None,
    ) -> None:
        self.config = config
        self.state = state if state is not None else SimulatorState()
        self._requested_port = port
        self._clock = clock
        self._sleep = sleep
        self._runner: web.AppRunner | None = None
        self._port: int | None = None

    @property
    def port(self) -> int:
        """The bound port; only while running."""
        if self._port is None:
            raise RuntimeError("the simulator is not running")
        return self._port

    @property
    def base_url(self) -> str:
        return f"http://{HOST}:{self.port}{BASE_PATH}"

    async def __aenter__(self) -> Simulator:
        if self._runner is not None:
            raise RuntimeError("a Simulator can only be started once")
        app = create_app(self.config, self.state, self._clock, self._sleep)
        # No access log: it would print each URL, and the key travels in the query string.
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=SHUTDOWN_TIMEOUT)
        self._runner = runner
        await runner.setup()
        site = web.TCPSite(runner, HOST, self._requested_port)
        try:
            await site.start()
        except BaseException:
            await runner.cleanup()
            raise
        self._port = site.port
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._port = None
        if self._runner is not None:
            await self._runner.cleanup()


class SimulatorThread:
    """A ``Simulator`` on its own event loop in a daemon thread, for synchronous code.

    ``with SimulatorThread(config) as sim: ... sim.base_url ... sim.state``, or start()/stop().
    """

    def __init__(
        self,
        config: SimulatorConfig = _DEFAULT_CONFIG,
        port: int = 0,
        clock: Clock = time.monotonic,
    ) -> None:
        self._simulator = Simulator(config, port, clock)
        self.state = self._simulator.state
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping: asyncio.Event | None = None
        self._error: Exception | None = None

    @property
    def port(self) -> int:
        return self._simulator.port

    @property
    def base_url(self) -> str:
        return self._simulator.base_url

    def start(self) -> SimulatorThread:
        if self._thread is not None:
            raise RuntimeError("a SimulatorThread can only be started once")
        self._thread = threading.Thread(target=self._run, name="bulkrunner-simulator", daemon=True)
        self._thread.start()
        self._ready.wait()
        if self._error is not None:
            self._thread.join()
            raise self._error
        return self

    def stop(self) -> None:
        """Shut the server down and wait for its thread to end."""
        thread, loop, stopping = self._thread, self._loop, self._stopping
        if thread is None or loop is None or stopping is None or not thread.is_alive():
            return
        with contextlib.suppress(RuntimeError):  # the loop has already closed
            loop.call_soon_threadsafe(stopping.set)
        thread.join(timeout=2 * SHUTDOWN_TIMEOUT + 5)
        if thread.is_alive():
            raise RuntimeError("the simulator thread did not stop")
        if self._error is not None:
            raise self._error

    def _run(self) -> None:
        asyncio.run(self._main())

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stopping = asyncio.Event()
        try:
            async with self._simulator:
                self._ready.set()
                await self._stopping.wait()
        except Exception as exc:  # reported by start() or stop()
            self._error = exc
        finally:
            self._ready.set()

    def __enter__(self) -> SimulatorThread:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()


def serve_forever(
    config: SimulatorConfig, port: int, announce: Callable[[str], None]
) -> SimulatorState:
    """Serve in the foreground until Ctrl-C or SIGTERM; ``announce(base_url)`` once listening.

    Returns what the server recorded, for a closing summary.
    """
    simulator = Simulator(config, port)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve_until_signalled(simulator, announce))
    return simulator.state


async def _serve_until_signalled(simulator: Simulator, announce: Callable[[str], None]) -> None:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    signals = (signal.SIGINT, signal.SIGTERM)
    for signum in signals:
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(signum, stop.set)
    try:
        async with simulator:
            announce(simulator.base_url)
            await stop.wait()
    finally:
        for signum in signals:
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                loop.remove_signal_handler(signum)
