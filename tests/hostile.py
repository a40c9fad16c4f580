"""A small, odd or hostile HTTP server on 127.0.0.1, in a thread, for tests of what the real
SmartLead simulator never does: redirects, echoed request lines, bogus charsets, huge waits."""

from __future__ import annotations

import asyncio
import contextlib
import re
import socket
import subprocess
import threading
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Protocol, Self

import pyarrow.parquet as pq
from aiohttp import web

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class ServerThread:
    """Serves ``handler`` for every path on an ephemeral loopback port; records each request's
    method and path with its query (``requests``)."""

    def __init__(self, handler: Handler) -> None:
        self._handler = handler
        self.requests: list[tuple[str, str]] = []
        self.port = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping: asyncio.Event | None = None
        self._ready = threading.Event()
        self._thread = threading.Thread(target=lambda: asyncio.run(self._serve()), daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> Self:
        self._thread.start()
        self._ready.wait(10)
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._loop is not None and self._stopping is not None:
            self._loop.call_soon_threadsafe(self._stopping.set)
        self._thread.join(10)

    async def _serve(self) -> None:
        async def record(request: web.Request) -> web.StreamResponse:
            self.requests.append((request.method, request.path_qs))
            return await self._handler(request)

        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", record)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        server = site._server
        assert server is not None
        self.port = server.sockets[0].getsockname()[1]  # type: ignore[attr-defined]
        self._loop, self._stopping = asyncio.get_running_loop(), asyncio.Event()
        self._ready.set()
        try:
            await self._stopping.wait()
        finally:
            await runner.cleanup()


Reply = Callable[[socket.socket, threading.Event], None]


class RawServer:
    """A TCP server on 127.0.0.1 whose every connection is answered by ``reply(connection,
    stopping)`` with raw bytes, for what no HTTP server library writes: a bad status line, too
    many headers, a trickle that never ends, or nothing at all. ``connections`` counts those
    accepted (``accepted`` is set at the first); ``hung_up`` is set when a client closed a
    connection that was still being answered. Stopping the server ends every reply
    (``stopping`` is set)."""

    def __init__(self, reply: Reply) -> None:
        self._reply = reply
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = int(self._listener.getsockname()[1])
        self.connections = 0
        self.accepted = threading.Event()
        self.hung_up = threading.Event()
        self.stopping = threading.Event()
        self._thread = threading.Thread(target=self._accept, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stopping.set()
        with contextlib.suppress(OSError):
            self._listener.shutdown(socket.SHUT_RDWR)
        self._listener.close()
        self._thread.join(10)

    def _accept(self) -> None:
        while not self.stopping.is_set():
            try:
                connection, _ = self._listener.accept()
            except OSError:
                return
            self.connections += 1
            self.accepted.set()
            threading.Thread(target=self._answer, args=(connection,), daemon=True).start()

    def _answer(self, connection: socket.socket) -> None:
        with connection:
            connection.settimeout(10)
            try:
                read_request(connection)
                self._reply(connection, self.stopping)
            except OSError:  # BrokenPipeError, ConnectionResetError: the client hung up
                if not self.stopping.is_set():
                    self.hung_up.set()


def read_request(connection: socket.socket) -> bytes:
    """The request on ``connection``: its head, and its body as long as its Content-Length says.
    Read whole, so that a reply that closes the connection closes it cleanly: closing with bytes
    unread makes the system reset it, which the client may see before the close it was sent."""
    request = b""
    while b"\r\n\r\n" not in request:
        chunk = connection.recv(4096)
        if not chunk:
            return request
        request += chunk
    head = request.split(b"\r\n\r\n", 1)[0]
    length = re.search(rb"(?im)^content-length:\s*(\d+)\s*$", head)
    wanted = len(head) + 4 + (int(length[1]) if length else 0)
    while len(request) < wanted:
        chunk = connection.recv(4096)
        if not chunk:
            break
        request += chunk
    return request


def silent(connection: socket.socket, stopping: threading.Event) -> None:
    """Never answer: hold the connection until the server stops."""
    stopping.wait()


def trickle(connection: socket.socket, stopping: threading.Event) -> None:
    """A status line, then one byte of one endless header every 20 ms, until the client hangs
    up (or the server stops): no read ever waits long, the answer never ends."""
    connection.sendall(b"HTTP/1.1 200 OK\r\nX-Trickle: ")
    while not stopping.wait(0.02):
        connection.sendall(b"a")


class RunCli(Protocol):
    """The ``cli_here`` fixture's shape (``tests/conftest.py``): ``bulkrunner ARGS`` in ``cwd``
    with ``key`` as the API key, run in the test's process."""

    def __call__(
        self, cwd: Path, key: str, *args: str, timeout: float = 60
    ) -> subprocess.CompletedProcess[str]: ...


def every_file_text(folder: Path) -> dict[str, str]:
    """Every file under ``folder`` as text (Parquet files as their values: they are
    compressed, so their bytes would not show a secret)."""
    texts: dict[str, str] = {}
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        if path.suffix == ".parquet":
            texts[str(path)] = repr(pq.read_table(path).to_pylist())
        else:
            texts[str(path)] = path.read_bytes().decode("utf-8", errors="replace")
    return texts
