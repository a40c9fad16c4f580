"""The simulated SmartLead API as aiohttp handlers: routes, processing order and answer shapes.

The order every request goes through, and the faults' answers, are described in the
``bulkrunner.simulator`` package docstring.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import time
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from bulkrunner.simulator.campaigns import Campaigns
from bulkrunner.simulator.faults import FaultKind, FaultPicker, FaultPlan
from bulkrunner.simulator.lead_writes import LEAD_NOT_FOUND, Leads
from bulkrunner.simulator.ratelimit import ServerRateLimit, whole_seconds
from bulkrunner.simulator.state import Clock, RequestRecord, SimulatorConfig, SimulatorState, Sleep
from bulkrunner.simulator.validation import Accepted, Applied, BodyRejection

# The package's name, not this module's, so that ``-v`` shows the simulator's requests as before.
log = logging.getLogger("bulkrunner.simulator")

BASE_PATH = "/api/v1"
SHUTDOWN_TIMEOUT = 5.0  # seconds pending handlers get to finish once the server shuts down

Answer = web.StreamResponse | None  # None: drop the connection without answering
Route = Callable[[web.Request, int], Awaitable[Answer]]
Change = Callable[[int, object], Applied]  # applies a campaign write's body, or refuses it
# Applies a lead write: campaign (None: the route names none), lead id, body.
LeadChange = Callable[[int | None, int, object], Applied]
Apply = Callable[[web.Request, int | None, object], Applied]  # what a write's route applies
CAMPAIGN_NOT_FOUND = BodyRejection(404, {"error": "Campaign not found"})


def _json(status: int, body: object, headers: dict[str, str] | None = None) -> web.Response:
    return web.json_response(body, status=status, headers=headers)


def _rate_limited(retry_after: float, headers: dict[str, str]) -> web.Response:
    message = f"Rate limit exceeded, retry after {retry_after:g} seconds."
    error = {"code": "RATE_LIMIT_EXCEEDED", "message": message, "retry_after": retry_after}
    return _json(429, {"error": error}, {**headers, "Retry-After": f"{retry_after:g}"})


def _announced(retry_after: float) -> float:
    """Whole seconds as HTTP has them; a test may ask for less than a second to run fast."""
    return whole_seconds(retry_after) if retry_after >= 1 else retry_after


def _fault_answer(fault: FaultKind, plan: FaultPlan) -> Answer:
    """The answer of an injected fault other than "slow"."""
    if fault == "429":
        seconds = _announced(plan.retry_after)
        return _rate_limited(
            seconds, {"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": f"{seconds:g}"}
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


def _number(request: web.Request, name: str) -> int | None:
    text = request.match_info.get(name, "")
    return int(text) if text.isascii() and text.isdigit() else None


def _campaign_id(request: web.Request) -> int | None:
    return _number(request, "campaign_id")


def _body(data: bytes) -> object:
    """A request's JSON body; None when it has none, an object no validator accepts when it is
    not JSON."""
    if not data:
        return None
    try:
        return json.loads(data)
    except ValueError:
        return _NOT_JSON


_NOT_JSON = object()


class _Server:
    """One simulated account: the handlers of ``create_app`` and the state they share."""

    def __init__(
        self, config: SimulatorConfig, state: SimulatorState, clock: Clock, sleep: Sleep | None
    ) -> None:
        self.config = config
        self.state = state
        self.clock = clock
        self.sleep = sleep  # for the inbound jitter; None: a real wait that shutdown ends
        self.jitter = random.Random(config.jitter_seed)
        self.limiter = ServerRateLimit(config.rates)
        self.faults = FaultPicker(config.faults)
        self.campaigns = Campaigns(config, state)
        self.leads = Leads(config, state, self.campaigns)
        self.closing = asyncio.Event()
        self.tasks: set[asyncio.Task[Any]] = set()

    def handler(self, route: Route) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
        async def handle(request: web.Request) -> web.StreamResponse:
            return await self.serve(request, route)

        return handle

    async def serve(self, request: web.Request, route: Route) -> web.StreamResponse:
        self._track(asyncio.current_task())
        delay = self.jitter.uniform(0.0, self.config.jitter) if self.config.jitter > 0 else 0.0
        reached = await self._travel(delay)
        arrival = self.clock()
        record = RequestRecord(
            arrival, request.method, request.path, _campaign_id(request), None, None, False, delay
        )
        ticket = self.state._arrive(record)
        status: int | None = None
        try:
            answer = await self._answer(request, arrival, route, ticket) if reached else None
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
            after = self.config.limit_retry_after
            return _rate_limited(
                admission.retry_after if after is None else _announced(after),
                admission.headers(),
            )
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

    async def _travel(self, delay: float) -> bool:
        """The request's inbound jitter; False if the server started shutting down meanwhile."""
        if self.sleep is not None and delay > 0:
            await self.sleep(delay)
            return not self.closing.is_set()
        return await self._pause(delay)

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
            await asyncio.wait(set(self.tasks), timeout=SHUTDOWN_TIMEOUT)
        await asyncio.sleep(0)  # let aiohttp's connection tasks see their handlers finish

    def writing(self, change: Change) -> Route:
        """The route of a campaign write: its injected fault first, then the campaign must exist
        (404), then ``change`` applies the body or says why it is refused."""

        def apply(request: web.Request, campaign_id: int | None, body: object) -> Applied:
            if campaign_id is None or not self.campaigns.exists(campaign_id):
                return CAMPAIGN_NOT_FOUND
            return change(campaign_id, body)

        return self._writing(apply)

    def lead_writing(self, change: LeadChange) -> Route:
        """The route of a write to one lead: as ``writing``, then the lead id must be a number
        (404) before ``change`` has its say. A route without a campaign has no campaign check."""

        def apply(request: web.Request, campaign_id: int | None, body: object) -> Applied:
            if "campaign_id" in request.match_info and (
                campaign_id is None or not self.campaigns.exists(campaign_id)
            ):
                return CAMPAIGN_NOT_FOUND
            lead_id = _number(request, "lead_id")
            if lead_id is None:
                return LEAD_NOT_FOUND
            return change(campaign_id, lead_id, body)

        return self._writing(apply)

    def _writing(self, apply: Apply) -> Route:
        """A write's route: its injected fault first (the campaign's script, which every write
        to the campaign shares, then the probabilities), then ``apply``."""

        async def route(request: web.Request, ticket: int) -> Answer:
            campaign_id = self.state.requests[ticket].campaign_id
            fault = self.faults.choose(campaign_id)
            if fault is None:
                return await self._apply(request, campaign_id, ticket, apply)
            self.state._update(ticket, fault=fault)
            if fault != "slow":
                return _fault_answer(fault, self.config.faults)
            plan = self.config.faults
            if plan.slow_applies:
                answer = await self._apply(request, campaign_id, ticket, apply)
            else:
                answer = _json(
                    504, {"error": {"code": "GATEWAY_TIMEOUT", "message": "Gateway timeout"}}
                )
            return answer if await self._pause(plan.slow_seconds) else None

        return route

    async def _apply(
        self, request: web.Request, campaign_id: int | None, ticket: int, apply: Apply
    ) -> Answer:
        applied = apply(request, campaign_id, _body(await request.read()))
        if isinstance(applied, BodyRejection):
            return _json(applied.status, applied.body)
        if campaign_id is not None:
            self.state.applied[campaign_id] += 1
        if isinstance(applied, Accepted):
            self.state._update(ticket, applied=True, leads=applied.leads, added=applied.added)
            return _json(200, applied.body)
        self.state._update(ticket, applied=True)
        return _json(200, {"success": True, "data": {}})

    async def list_campaigns(self, request: web.Request, ticket: int) -> Answer:
        campaigns = [self.campaigns.view(i) for i in self.campaigns.listed()]
        client_id = request.query.get("client_id")
        if client_id is not None:
            campaigns = [c for c in campaigns if str(c["client_id"]) == client_id]
        return _json(200, campaigns)

    async def get_campaign(self, request: web.Request, ticket: int) -> Answer:
        campaign_id = self.state.requests[ticket].campaign_id
        if campaign_id is None or not self.campaigns.exists(campaign_id):
            return _json(404, {"error": "Campaign not found"})
        return _json(200, self.campaigns.view(campaign_id))

    async def list_email_accounts(self, request: web.Request, ticket: int) -> Answer:
        campaign_id = self.state.requests[ticket].campaign_id
        if campaign_id is None or not self.campaigns.exists(campaign_id):
            return _json(404, {"error": "Campaign not found"})
        return _json(200, self.campaigns.email_account_views(campaign_id))

    async def list_leads(self, request: web.Request, ticket: int) -> Answer:
        campaign_id = self.state.requests[ticket].campaign_id
        if campaign_id is None or not self.campaigns.exists(campaign_id):
            return _read(CAMPAIGN_NOT_FOUND)
        return _read(self.leads.page(campaign_id, request.query))

    async def find_lead(self, request: web.Request, ticket: int) -> Answer:
        return _read(self.leads.find(request.query))

    async def not_found(self, request: web.Request, ticket: int) -> Answer:
        return _json(404, {"error": "Not found"})


def _read(answer: dict[str, Any] | BodyRejection) -> web.Response:
    if isinstance(answer, BodyRejection):
        return _json(answer.status, answer.body)
    return _json(200, answer)


def create_app(
    config: SimulatorConfig,
    state: SimulatorState | None = None,
    clock: Clock = time.monotonic,
    sleep: Sleep | None = None,
) -> web.Application:
    """The simulated SmartLead API as an aiohttp application (see the package docstring).

    ``sleep``, when given, is how the inbound jitter waits (a test's fake clock)."""
    server = _Server(config, state if state is not None else SimulatorState(), clock, sleep)
    app = web.Application()
    campaigns = f"{BASE_PATH}/campaigns"
    one = campaigns + "/{campaign_id}"
    account = server.campaigns
    writes: list[tuple[str, str, Change]] = [
        ("POST", "/settings", account.change_settings),
        ("POST", "/schedule", account.change_schedule),
        ("POST", "/status", account.change_status),
        ("POST", "/email-accounts", account.add_accounts),
        ("DELETE", "/email-accounts", account.remove_accounts),
    ]
    for method, path, change in writes:
        app.router.add_route(method, one + path, server.handler(server.writing(change)))
    leads = server.leads
    lead = one + "/leads/{lead_id}"
    lead_writes: list[tuple[str, str, LeadChange]] = [
        ("POST", lead + "/pause", leads.pause),
        ("POST", lead + "/resume", leads.resume),
        ("POST", lead + "/unsubscribe", leads.unsubscribe),
        ("DELETE", lead, leads.remove),
        ("POST", BASE_PATH + "/leads/{lead_id}/unsubscribe", leads.unsubscribe_everywhere),
    ]
    for method, path, lead_change in lead_writes:
        app.router.add_route(method, path, server.handler(server.lead_writing(lead_change)))
    app.router.add_post(one + "/leads", server.handler(server.writing(leads.upload)))
    app.router.add_get(one + "/leads", server.handler(server.list_leads))
    app.router.add_get(BASE_PATH + "/leads/", server.handler(server.find_lead))
    app.router.add_get(BASE_PATH + "/leads", server.handler(server.find_lead))
    app.router.add_get(one + "/email-accounts", server.handler(server.list_email_accounts))
    app.router.add_get(campaigns + "/", server.handler(server.list_campaigns))
    app.router.add_get(campaigns, server.handler(server.list_campaigns))
    app.router.add_get(one, server.handler(server.get_campaign))
    app.router.add_route("*", "/{tail:.*}", server.handler(server.not_found))
    app.on_shutdown.append(server.shut_down)
    return app
