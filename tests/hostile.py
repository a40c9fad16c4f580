"""A small, odd or hostile HTTP server on 127.0.0.1, in a thread, for tests of what the real
SmartLead simulator never does: redirects, echoed request lines, bogus charsets, huge waits."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import threading
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Self

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


def run_cli(
    cwd: Path, key: str, *args: str, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """``python -m bulkrunner ARGS`` in ``cwd`` with ``key`` as the API key."""
    env = {**os.environ, "SMARTLEAD_API_KEY": key}
    env.pop("SMARTLEAD_BASE_URL", None)
    return subprocess.run(
        [sys.executable, "-m", "bulkrunner", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


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
