"""An embedded SmartLead-compatible HTTP server on 127.0.0.1, for ``--simulate`` and the tests.

Routes (base ``/api/v1``): ``POST /campaigns/{id}/settings``, ``GET /campaigns/`` and
``GET /campaigns/{id}``; anything else answers 404. Every request, on any route, is recorded once
in ``SimulatorState.requests`` and goes through these steps, in this order:

1. its arrival time is read from the clock and recorded, before any latency or fault sleep;
2. the sliding-window rate limit (``config.rates``) admits it or answers 429. Only admitted
   requests consume budget; everything after this step (401s, injected faults, 404s, validation
   errors, successes) was admitted and counts;
3. the ``api_key`` query parameter is checked (401 ``{"message": "Invalid API Key"}``);
4. a settings POST draws its injected fault: the campaign's script first, then the
   probabilities. Only POSTs that reach this step advance a campaign's script;
5. the campaign must exist (404), the body must validate (400 or 422), then it is applied;
6. the answer waits ``config.latency`` seconds, then is sent.

Faults: "429" (rate-limit shape, ``faults.retry_after``), "500" (JSON), "503" (plain text),
"drop" (the connection closes without an answer) and "slow". A slow POST with ``slow_applies``
is processed on arrival (so a client that timed out may find it applied) and its answer waits
``slow_seconds``; without ``slow_applies`` it waits and answers 504 without applying. When the
server shuts down, pending waits end at once and their connections are dropped.

Settings are stored in the documented vocabulary; an enum value that has only a long name
(``DONT_TRACK_REPLY_TO_AN_EMAIL``) is stored under its long name. No URL with its query string
is ever recorded or logged (the access log is off: the key travels in the query string).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import signal
import threading
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Collection, Sequence
from dataclasses import dataclass, field, replace
from types import TracebackType
from typing import Any

from aiohttp import web

from bulkrunner.faults import (
    FaultKind,
    FaultPicker,
    FaultPlan,
    ServerRateLimit,
    whole_seconds,
)
from bulkrunner.fields import ENUMS, FIELDS_BY_NAME, Field, Vocabulary, enum_names, translate
from bulkrunner.rates import Rate, max_in_window

__all__ = [
    "FaultKind",
    "FaultPlan",
    "RequestRecord",
    "Simulator",
    "SimulatorConfig",
    "SimulatorState",
    "SimulatorThread",
    "create_app",
    "default_settings",
    "serve_forever",
]

log = logging.getLogger(__name__)

HOST = "127.0.0.1"
BASE_PATH = "/api/v1"
Clock = Callable[[], float]


@dataclass(frozen=True, slots=True)
class SimulatorConfig:
    api_key: str = "sim-key"
    vocabulary: Vocabulary | None = Vocabulary.DOCUMENTED  # enum names POST accepts; None: both
    rates: Sequence[Rate] = ()  # the server's true sliding-window limits; empty = unlimited
    campaigns: Collection[int] | None = None  # campaigns that exist; None = every positive id
    faults: FaultPlan = field(default_factory=FaultPlan)
    latency: float = 0.0  # seconds every answer waits before being sent


@dataclass(frozen=True, slots=True)
class RequestRecord:
    arrival: float  # server clock at arrival, before any latency or fault sleep
    method: str
    path: str  # the URL path only: the key is in the query string
    campaign_id: int | None
    status: int | None  # status answered (even if the client had left); None: dropped
    fault: str | None  # the injected fault kind, or None
    applied: bool  # whether this request changed the stored settings


class SimulatorState:
    """What the simulated account holds and everything it has been asked, readable by tests."""

    def __init__(self) -> None:
        self.settings: dict[int, dict[str, Any]] = {}
        self.requests: list[RequestRecord] = []
        self.applied: Counter[int] = Counter()

    def posts(self) -> list[RequestRecord]:
        """The settings POSTs, in arrival order."""
        return [r for r in self.requests if r.method == "POST" and r.path.endswith("/settings")]

    def max_in_window(self, seconds: float) -> int:
        """The most request arrivals (any route, any status) in any window of ``seconds``."""
        return max_in_window(sorted(r.arrival for r in self.requests), seconds)

    def _arrive(self, record: RequestRecord) -> int:
        self.requests.append(record)
        return len(self.requests) - 1

    def _update(self, ticket: int, **changes: Any) -> None:
        self.requests[ticket] = replace(self.requests[ticket], **changes)


def default_settings(campaign_id: int) -> dict[str, Any]:
    """Deterministic, realistic starting settings of a campaign (documented vocabulary)."""
    return {
        "track_settings": [],
        "stop_lead_settings": "REPLY_TO_AN_EMAIL",
        "sending_limit": 20 + (campaign_id * 7) % 81,
        "min_time_btwn_emails": 5 + campaign_id % 11,
        "follow_up_percentage": 40 + (campaign_id * 3) % 61,
        "unsubscribe_text": "",
        "enable_ai_esp_matching": False,
        "send_as_plain_text": False,
        "client_id": None,
    }


# --- validation ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Rejection:
    status: int
    body: dict[str, Any]


_EXPECTED = {
    "int": "an integer",
    "bool": "a boolean",
    "text": "a string",
    "enum": "a string",
    "enum_list": "an array of strings",
}


def _invalid(message: str, **details: Any) -> _Rejection:
    error = {"code": "VALIDATION_ERROR", "message": message, "details": details}
    return _Rejection(422, {"error": error})


def _json_type(value: object) -> str:
    if isinstance(value, bool):
        return "boolean"
    names = {int: "integer", float: "number", str: "string", list: "array", dict: "object"}
    return names.get(type(value), "null")


def _has_type(spec: Field, value: object) -> bool:
    if spec.kind == "int":
        return isinstance(value, int) and not isinstance(value, bool)
    if spec.kind == "bool":
        return isinstance(value, bool)
    if spec.kind == "enum_list":
        return isinstance(value, list) and all(isinstance(item, str) for item in value)
    return isinstance(value, str)


def validate_settings(body: object, vocabulary: Vocabulary | None) -> dict[str, Any] | _Rejection:
    """The changes ``body`` asks for, in the documented vocabulary, or why it is refused."""
    if not isinstance(body, dict):
        return _Rejection(400, {"error": "Invalid JSON body"})
    if not body:
        return _Rejection(400, {"error": "No settings to update"})
    changes: dict[str, Any] = {}
    for name, value in body.items():
        spec = FIELDS_BY_NAME.get(name)
        if spec is None:
            return _invalid(f"Unknown field '{name}'", field=name, allowed=list(FIELDS_BY_NAME))
        checked = _check_value(spec, value, vocabulary)
        if isinstance(checked, _Rejection):
            return checked
        changes[name] = checked
    return changes


def _check_value(spec: Field, value: object, vocabulary: Vocabulary | None) -> object:
    if value is None:
        return _invalid(f"Field '{spec.name}' must not be null", field=spec.name)
    if not _has_type(spec, value):
        expected = _EXPECTED[spec.kind]
        message = f"Field '{spec.name}' must be {expected}"
        return _invalid(message, field=spec.name, expected=expected, received=_json_type(value))
    if spec.kind == "enum" and isinstance(value, str):
        return _check_enum(spec.name, value, vocabulary)
    if isinstance(value, list):
        names = [_check_enum(spec.name, item, vocabulary) for item in value]
        return next((n for n in names if isinstance(n, _Rejection)), names)
    if spec.kind == "int" and isinstance(value, int):
        return _check_range(spec, value)
    return value


def _check_enum(name: str, value: str, vocabulary: Vocabulary | None) -> str | _Rejection:
    accepted = ENUMS[name] if vocabulary is None else enum_names(name, vocabulary)
    if value not in accepted:
        return _Rejection(400, {"error": f"Invalid {name} value - {value}"})
    return translate(name, value, Vocabulary.DOCUMENTED) or value


def _check_range(spec: Field, value: int) -> int | _Rejection:
    if spec.minimum is not None and value < spec.minimum:
        message = f"Field '{spec.name}' must be at least {spec.minimum}"
        return _invalid(message, field=spec.name, minimum=spec.minimum, received=value)
    if spec.maximum is not None and value > spec.maximum:
        message = f"Field '{spec.name}' must be at most {spec.maximum}"
        return _invalid(message, field=spec.name, maximum=spec.maximum, received=value)
    return value


# --- the server ------------------------------------------------------------------------------

Answer = web.StreamResponse | None  # None: drop the connection without answering
Route = Callable[[web.Request, int], Awaitable[Answer]]
_SHUTDOWN_TIMEOUT = 5.0


def _json(status: int, body: object, headers: dict[str, str] | None = None) -> web.Response:
    return web.json_response(body, status=status, headers=headers)


def _rate_limited(retry_after: int, headers: dict[str, str]) -> web.Response:
    message = f"Rate limit exceeded, retry after {retry_after} seconds."
    error = {"code": "RATE_LIMIT_EXCEEDED", "message": message, "retry_after": retry_after}
    return _json(429, {"error": error}, {**headers, "Retry-After": str(retry_after)})


def _fault_answer(fault: FaultKind, plan: FaultPlan) -> Answer:
    """The answer of an injected fault other than "slow"."""
    if fault == "429":
        seconds = whole_seconds(plan.retry_after)
        return _rate_limited(
            seconds, {"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": str(seconds)}
        )
    if fault == "500":
        return _json(500, {"error": {"code": "INTERNAL_ERROR", "message": "Internal server error"}})
    if fault == "503":
        return web.Response(status=503, text="Service Unavailable", content_type="text/plain")
    return None


def _drop(request: web.Request) -> web.StreamResponse:
    """Close the connection unanswered; aiohttp then fails quietly to send the returned answer."""
    if request.transport is not None:
        request.transport.close()
    return web.Response(status=204)


def _campaign_id(request: web.Request) -> int | None:
    text = request.match_info.get("campaign_id", "")
    return int(text) if text.isascii() and text.isdigit() else None


class _Server:
    """One simulated account: the handlers of ``create_app`` and the state they share."""

    def __init__(self, config: SimulatorConfig, state: SimulatorState, clock: Clock) -> None:
        self.config = config
        self.state = state
        self.clock = clock
        self.limiter = ServerRateLimit(config.rates)
        self.faults = FaultPicker(config.faults)
        self.closing = asyncio.Event()
        self.tasks: set[asyncio.Task[Any]] = set()

    def handler(self, route: Route) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
        async def handle(request: web.Request) -> web.StreamResponse:
            return await self.serve(request, route)

        return handle

    async def serve(self, request: web.Request, route: Route) -> web.StreamResponse:
        self._track(asyncio.current_task())
        arrival = self.clock()
        record = RequestRecord(
            arrival, request.method, request.path, _campaign_id(request), None, None, False
        )
        ticket = self.state._arrive(record)
        status: int | None = None
        try:
            answer = await self._answer(request, arrival, route, ticket)
            if answer is None or not await self._pause(self.config.latency):
                return _drop(request)
            status = answer.status
            return answer
        finally:  # also when aiohttp cancels the handler
            self.state._update(ticket, status=status)
            log.debug("simulator: %s", self.state.requests[ticket])

    async def _answer(self, request: web.Request, now: float, route: Route, ticket: int) -> Answer:
        admission = self.limiter.admit(now)
        if not admission.admitted:
            return _rate_limited(admission.retry_after, admission.headers())
        if request.query.get("api_key") != self.config.api_key:
            answer: Answer = _json(401, {"message": "Invalid API Key"})
        else:
            answer = await route(request, ticket)
        if answer is not None:
            for name, value in admission.headers().items():
                answer.headers.setdefault(name, value)
        return answer

    def _track(self, task: asyncio.Task[Any] | None) -> None:
        if task is not None and task not in self.tasks:
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)

    async def _pause(self, seconds: float) -> bool:
        """Wait ``seconds``; False if the server started shutting down meanwhile."""
        if seconds > 0 and not self.closing.is_set():
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(seconds):
                    await self.closing.wait()
        return not self.closing.is_set()

    async def shut_down(self, app: web.Application) -> None:
        """End pending waits and let every handler finish, including those whose client left."""
        self.closing.set()
        if self.tasks:
            await asyncio.wait(set(self.tasks), timeout=_SHUTDOWN_TIMEOUT)
        await asyncio.sleep(0)  # let aiohttp's connection tasks see their handlers finish

    def _exists(self, campaign_id: int | None) -> bool:
        campaigns = self.config.campaigns
        return (
            campaign_id is not None
            and campaign_id > 0
            and (campaigns is None or campaign_id in campaigns)
        )

    def _view(self, campaign_id: int) -> dict[str, Any]:
        settings = self.state.settings.get(campaign_id) or default_settings(campaign_id)
        return {
            "id": campaign_id,
            "name": f"Campaign {campaign_id}",
            "status": "ACTIVE",
            **settings,
        }

    async def post_settings(self, request: web.Request, ticket: int) -> Answer:
        campaign_id = self.state.requests[ticket].campaign_id
        fault = self.faults.choose(campaign_id)
        if fault is None:
            return await self._apply(request, campaign_id, ticket)
        self.state._update(ticket, fault=fault)
        if fault != "slow":
            return _fault_answer(fault, self.config.faults)
        plan = self.config.faults
        if plan.slow_applies:
            answer = await self._apply(request, campaign_id, ticket)
        else:
            answer = _json(
                504, {"error": {"code": "GATEWAY_TIMEOUT", "message": "Gateway timeout"}}
            )
        return answer if await self._pause(plan.slow_seconds) else None

    async def _apply(self, request: web.Request, campaign_id: int | None, ticket: int) -> Answer:
        if campaign_id is None or not self._exists(campaign_id):
            return _json(404, {"error": "Campaign not found"})
        try:
            body: object = json.loads(await request.read())
        except ValueError:
            body = None
        changes = validate_settings(body, self.config.vocabulary)
        if isinstance(changes, _Rejection):
            return _json(changes.status, changes.body)
        self.state.settings.setdefault(campaign_id, default_settings(campaign_id)).update(changes)
        self.state.applied[campaign_id] += 1
        self.state._update(ticket, applied=True)
        return _json(200, {"success": True, "data": {}})

    async def list_campaigns(self, request: web.Request, ticket: int) -> Answer:
        ids = set(self.state.settings) | set(self.config.campaigns or ())
        campaigns = [self._view(i) for i in sorted(ids) if self._exists(i)]
        client_id = request.query.get("client_id")
        if client_id is not None:
            campaigns = [c for c in campaigns if str(c["client_id"]) == client_id]
        return _json(200, campaigns)

    async def get_campaign(self, request: web.Request, ticket: int) -> Answer:
        campaign_id = self.state.requests[ticket].campaign_id
        if campaign_id is None or not self._exists(campaign_id):
            return _json(404, {"error": "Campaign not found"})
        return _json(200, self._view(campaign_id))

    async def not_found(self, request: web.Request, ticket: int) -> Answer:
        return _json(404, {"error": "Not found"})


def create_app(
    config: SimulatorConfig,
    state: SimulatorState | None = None,
    clock: Clock = time.monotonic,
) -> web.Application:
    """The simulated SmartLead API as an aiohttp application (see the module docstring)."""
    server = _Server(config, state if state is not None else SimulatorState(), clock)
    app = web.Application()
    campaigns = f"{BASE_PATH}/campaigns"
    app.router.add_post(campaigns + "/{campaign_id}/settings", server.handler(server.post_settings))
    app.router.add_get(campaigns + "/", server.handler(server.list_campaigns))
    app.router.add_get(campaigns, server.handler(server.list_campaigns))
    app.router.add_get(campaigns + "/{campaign_id}", server.handler(server.get_campaign))
    app.router.add_route("*", "/{tail:.*}", server.handler(server.not_found))
    app.on_shutdown.append(server.shut_down)
    return app


# --- running it ------------------------------------------------------------------------------

_DEFAULT_CONFIG = SimulatorConfig()


class Simulator:
    """Serves ``create_app(config)`` on 127.0.0.1 (port 0: an ephemeral one) while entered.

    Single use: ``async with Simulator(config) as sim: ... sim.base_url ... sim.state``.
    """

    def __init__(
        self,
        config: SimulatorConfig = _DEFAULT_CONFIG,
        port: int = 0,
        clock: Clock = time.monotonic,
    ) -> None:
        self.config = config
        self.state = SimulatorState()
        self._requested_port = port
        self._clock = clock
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
        app = create_app(self.config, self.state, self._clock)
        # No access log: it would print each URL, and the key travels in the query string.
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=_SHUTDOWN_TIMEOUT)
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
        thread.join(timeout=2 * _SHUTDOWN_TIMEOUT + 5)
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


def serve_forever(config: SimulatorConfig, port: int, announce: Callable[[str], None]) -> None:
    """Serve in the foreground until Ctrl-C or SIGTERM; ``announce(base_url)`` once listening."""
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve_until_signalled(config, port, announce))


async def _serve_until_signalled(
    config: SimulatorConfig, port: int, announce: Callable[[str], None]
) -> None:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    signals = (signal.SIGINT, signal.SIGTERM)
    for signum in signals:
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(signum, stop.set)
    try:
        async with Simulator(config, port) as simulator:
            announce(simulator.base_url)
            await stop.wait()
    finally:
        for signum in signals:
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                loop.remove_signal_handler(signum)
