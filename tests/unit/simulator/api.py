"""A client of one running simulator, as the simulator's endpoint tests call it."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, TypeVar

import aiohttp

from bulkrunner.simulator import Simulator, SimulatorConfig

Reply = tuple[int, Any]  # status, parsed JSON body (or text)


class Api:
    """Calls one running simulator: ``await api("POST", "/campaigns/5/status", {...})``, with
    the simulator's key unless another is given."""

    def __init__(self, session: aiohttp.ClientSession, base_url: str, key: str) -> None:
        self.session = session
        self.base_url = base_url
        self.key = key

    async def __call__(
        self,
        method: str,
        path: str,
        body: object = None,
        *,
        raw: bytes | None = None,
        key: str | None = None,
    ) -> Reply:
        data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
        async with self.session.request(
            method,
            self.base_url + path,
            params={"api_key": self.key if key is None else key},
            data=data,
            headers={"Content-Type": "application/json"},
        ) as response:
            text = await response.text()
            if response.content_type == "application/json":
                return response.status, json.loads(text)
            return response.status, text


A = TypeVar("A", bound=Api)


@asynccontextmanager
async def serving(
    kind: type[A], key: str, options: dict[str, Any]
) -> AsyncIterator[tuple[Simulator, A]]:
    """A simulator of ``options`` on a fixed clock, and a client of ``kind`` calling it."""
    simulator = Simulator(SimulatorConfig(api_key=key, **options), clock=lambda: 1000.0)
    async with simulator, aiohttp.ClientSession() as session:
        yield simulator, kind(session, simulator.base_url, key)
