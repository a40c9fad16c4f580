"""An embedded SmartLead-compatible HTTP server on 127.0.0.1, for ``--simulate`` and the tests.

Routes (base ``/api/v1``): the writes ``POST /campaigns/{id}/settings``, ``.../schedule``,
``.../status``, ``POST`` and ``DELETE /campaigns/{id}/email-accounts``, ``POST
/campaigns/{id}/leads`` (an upload), ``POST /campaigns/{id}/leads/{lead_id}/pause``, ``.../resume``,
``.../unsubscribe``, ``DELETE /campaigns/{id}/leads/{lead_id}`` and ``POST
/leads/{lead_id}/unsubscribe``; the reads ``GET /campaigns/``, ``GET /campaigns/{id}``, ``GET
/campaigns/{id}/email-accounts``, ``GET /campaigns/{id}/leads?offset=&limit=`` and ``GET
/leads/?email=``; anything else answers 404. Every request, on any route, is recorded once in
``SimulatorState.requests`` (``SimulatorState.writes(operation)`` picks the writes of one
operation: "leads" are the uploads, each recording the leads it carried and added, "lead-status"
the lead actions) and goes through these steps, in this order:

1. it waits its inbound jitter, ``uniform(0, config.jitter)`` seconds drawn from a
   ``random.Random(config.jitter_seed)`` (none by default), as if the network had held it;
2. its arrival time is read from the clock and recorded, before any latency or fault sleep;
3. the sliding-window rate limit (``config.rates``) admits it or answers 429 (with
   ``Retry-After: config.limit_retry_after`` if set, else the whole seconds until the window has
   room). Only admitted requests consume budget; everything after this step (401s, injected
   faults, 404s, validation errors, successes) was admitted and counts;
4. the ``api_key`` query parameter is checked (401 ``{"message": "Invalid API Key"}``);
5. a write draws its injected fault: the campaign's script first, then the probabilities. Only
   writes that reach this step advance a campaign's script, which all of its operations share,
   lead writes included (a write to ``/leads/{lead_id}/unsubscribe`` names no campaign: only the
   probabilities apply to it);
6. the campaign must exist (404), and the lead for a lead action (404), the body must validate
   (400 or 422) and the campaign's or the lead's state must allow it (422; 500 to resume a lead
   on its last sequence step), then it is applied;
7. the answer waits ``config.latency`` seconds, then is sent.

Faults: "429" (rate-limit shape, ``faults.retry_after``), "500" (JSON), "503" (plain text),
"drop" (the connection closes without an answer) and "slow". A slow write with ``slow_applies``
is processed on arrival (so a client that timed out may find it applied) and its answer waits
``slow_seconds``; without ``slow_applies`` it waits and answers 504 without applying. When the
server shuts down, pending waits end at once and their connections are dropped.

Settings are stored in the documented vocabulary; an enum value that has only a long name
(``DONT_TRACK_REPLY_TO_AN_EMAIL``) is stored under its long name. No URL with its query string
is ever recorded or logged (the access log is off: the key travels in the query string).

A campaign reads back its status, its settings, its schedule as ``scheduler_cron_value``
(``{"tz", "days" (0=Sunday), "startHour", "endHour"}``, or that JSON as a string with
``cron_as_string``) with ``schedule_start_time``, and ``max_leads_per_day`` beside
``sending_limit``: a schedule's ``max_new_leads_per_day`` and ``min_time_btw_emails`` are the
settings ``sending_limit`` and ``min_time_btwn_emails``, stored once.

Leads, their rules and the two forms of an upload's answer are described in ``lead_writes``.

Modules: ``state`` (configuration, request records, account state), ``validation`` (settings
bodies and the error shapes), ``operations`` (schedule, status and email-account bodies, and the
rules of a campaign's state), ``campaigns`` (seeds, read-back views, applying writes), ``leads``
(the account's leads and how they are stored and seeded), ``lead_bodies`` (lead bodies and
queries), ``lead_writes`` (the lead endpoints' rules and answers), ``faults``
(injected faults), ``ratelimit`` (the server's true rate limit), ``server`` (the aiohttp handlers,
``create_app``), ``running`` (``Simulator``, ``SimulatorThread``, ``serve_forever``) and ``saved``
(an account kept between ``--simulate`` commands).
"""

import importlib as _importlib

_TYPE_CHECKING = False  # typing.TYPE_CHECKING, without importing typing (`simulate --help`)
if _TYPE_CHECKING:  # __all__, for the type checker
    from bulkrunner.simulator.campaigns import (
        default_email_accounts,
        default_schedule,
        default_status,
    )
    from bulkrunner.simulator.faults import FaultKind, FaultPlan
    from bulkrunner.simulator.leads import seed_lead
    from bulkrunner.simulator.operations import Schedule, email_account
    from bulkrunner.simulator.running import Simulator, SimulatorThread, serve_forever
    from bulkrunner.simulator.server import create_app
    from bulkrunner.simulator.state import (
        RequestRecord,
        SimulatorConfig,
        SimulatorState,
        default_settings,
    )

__all__ = [
    "FaultKind",
    "FaultPlan",
    "RequestRecord",
    "Schedule",
    "Simulator",
    "SimulatorConfig",
    "SimulatorState",
    "SimulatorThread",
    "create_app",
    "default_email_accounts",
    "default_schedule",
    "default_settings",
    "default_status",
    "email_account",
    "seed_lead",
    "serve_forever",
]

# The modules that define the names of __all__, lightest first: a name is imported on first use
# from the first that has it, so that `simulate --help` reads the fault kinds without aiohttp.
_HOMES = ("faults", "operations", "state", "leads", "campaigns", "server", "running")


def __getattr__(name: str) -> object:
    if name in __all__:
        for home in _HOMES:
            module = _importlib.import_module(f"bulkrunner.simulator.{home}")
            if name in vars(module):
                globals()[name] = value = vars(module)[name]
                return value
    raise AttributeError(f"module 'bulkrunner.simulator' has no attribute {name!r}")
