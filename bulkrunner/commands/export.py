"""``bulkrunner export``: the account's campaigns, as an input file of an operation.

read the list of campaigns (``GET /campaigns/``, ``?client_id=N``) ─▶ keep those of ``--status``
     ─▶ read each one's detail, if the operation has one (``GET /campaigns/{id}/<detail>``)
     ─▶ ``operation.export(campaign)`` for each ─▶ a CSV or Parquet file in the operation's
     input format ─▶ read that file back as ``run`` would, and check it changes nothing

So ``export`` -> edit in a spreadsheet -> ``run`` is a migration, and an unedited export run
again is every row ``unchanged``. Every read goes through the limiter with the run's limits,
retries and ``--max-wait`` (the functions of ``sending.preflight``); nothing is written to the
account.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Awaitable, Callable, Mapping
from contextlib import ExitStack, nullcontext
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

import pandas as pd

from bulkrunner.config.accounts import Account
from bulkrunner.config.environment import API_KEY_ENV
from bulkrunner.config.paths import (
    EXPORT_FORMATS,
    STANDARD_STREAM,
    check_writable,
    default_export_path,
    is_backup,
    unused,
)
from bulkrunner.config.redaction import redact, remember
from bulkrunner.config.run_config import RunConfig, for_config
from bulkrunner.errors import Aborted, ExitCode, UsageError
from bulkrunner.model import RunStats, count
from bulkrunner.operations import Operation
from bulkrunner.operations.fields import CAMPAIGN_ID, NAME
from bulkrunner.output.events import show
from bulkrunner.output.export_summary import SHOWN as _SHOWN  # campaigns named one by one
from bulkrunner.output.export_summary import export_lines
from bulkrunner.records.locks import lock_accounts

if TYPE_CHECKING:
    from bulkrunner.sending.preflight import Current, Reading
    from bulkrunner.sending.transport import Sender

log = logging.getLogger("bulkrunner")
Sleep = Callable[[float], Awaitable[None]]

# The campaigns of the embedded simulator an ``export --simulate`` reads (seeded from their ids:
# mostly ACTIVE, some PAUSED and DRAFTED).
DEMO_CAMPAIGNS = tuple(range(1480601, 1480621))


@dataclass
class Export:
    """What an export read: one row per campaign (``campaign_id``, its ``name`` and the
    operation's columns any campaign has a value for, None where one has none), and what it
    cost."""

    frame: pd.DataFrame
    operation: Operation
    campaigns: dict[int, Mapping[str, Any]]  # each exported campaign's state as read
    stats: RunStats
    left_out: dict[int, str] = field(default_factory=dict)  # campaign -> why it is not exported
    path: Path | None = None  # where it was written, if it was
    differ: dict[int, str] = field(default_factory=dict)  # campaigns whose row reads back wrong
    unwritable: dict[int, str] = field(default_factory=dict)  # state read, but no row can set it


def check_output(path: Path, *, force: bool = False) -> None:
    """Refuse, before anything is read, an export file that could not be written, or that
    would replace a file: one already there (unless ``force``), and never a backup, nor a name
    ``rollback`` would take for one. (Journals and locks are not export formats.)"""
    check_writable(path, "export", EXPORT_FORMATS)
    if is_backup(path):
        raise UsageError(
            f"{path}: the name of a bulkrunner backup (what undoes a run), which no export "
            "takes, even with --force; choose another --output"
        )
    if path.exists() and not force:
        raise UsageError(
            f"{path}: the file exists; choose another --output, or add --force to replace it"
        )


def export_job(
    config: RunConfig,
    out: TextIO,
    environ: Mapping[str, str] = os.environ,
    now: datetime | None = None,
) -> ExitCode:
    """``bulkrunner export``: read, write ``config.output`` (or the default path), check that
    the file reads back as the campaigns' state, and print a summary.

    Raises UsageError (nothing read) or Aborted (the reads could not be made: exit 3)."""
    from bulkrunner.output.export_file import piped

    to_stdout = str(config.output) == STANDARD_STREAM  # CSV, checked in a file of its own first
    with piped(sys.stdout) if to_stdout else nullcontext(None) as staged:
        path = (
            staged
            or config.output
            or unused(default_export_path(config.operation, now or datetime.now(UTC)))
        )
        if staged is None:
            check_output(path, force=config.force)
        exported = read_export(config, environ)
        write_export(exported, path)
        check_round_trip(exported, config)
    where = "standard output" if to_stdout else str(path)
    stats = exported.stats
    show(
        out,
        "summary",
        export_lines(exported, where, config.quiet),
        exported=len(exported.frame),
        left_out=len(exported.left_out),
        unwritable=len(exported.unwritable),
        differ=len(exported.differ),
        requests=stats.requests,
        output=STANDARD_STREAM if to_stdout else str(path),
    )
    return ExitCode.ROWS_FAILED if exported.left_out or exported.differ else ExitCode.OK


# --- reading ---------------------------------------------------------------------------------


def read_export(
    config: RunConfig,
    environ: Mapping[str, str] = os.environ,
    *,
    sleep: Sleep | None = None,
) -> Export:
    """The campaigns of the account (of ``config.client_id``, of ``config.status``) as rows of
    ``config.operation``'s input, read holding the account's lock as a run does. Raises
    UsageError without a key, RunInProgress while a run uses the account, Aborted when the list
    cannot be read (key rejected, nothing listening, a wait longer than --max-wait...).
    ``sleep`` waits between the tries of a read (by default anyio's)."""
    api_key = environ.get(API_KEY_ENV, "")
    remember(api_key)
    if not (api_key or config.simulate):
        raise UsageError(
            f"{API_KEY_ENV} is not set: export your SmartLead API key in it "
            "(or use --simulate to export from the embedded simulator)"
        )
    import anyio

    with ExitStack() as held:
        if not config.simulate:
            # The key's budget is shared: while a run uses this account, an export (whose
            # per-campaign reads may be many) would push the two past its limits together.
            account = Account("", API_KEY_ENV, config.rates, config.base_url)
            lock_accounts(held, [account], {"": api_key}, datetime.now(UTC))
        return anyio.run(_read, config, api_key, sleep or anyio.sleep)


async def _read(config: RunConfig, api_key: str, sleep: Sleep) -> Export:
    if not config.simulate:
        return await _read_from(config, config.base_url, api_key, sleep)
    from bulkrunner.sending.session import DEMO_API_KEY
    from bulkrunner.simulator import Simulator, SimulatorConfig

    simulated = SimulatorConfig(
        api_key=DEMO_API_KEY, rates=config.rates, campaigns=set(DEMO_CAMPAIGNS)
    )
    async with Simulator(simulated) as simulator:
        log.info("exporting from the embedded simulator at %s", simulator.base_url)
        return await _read_from(config, simulator.base_url, DEMO_API_KEY, sleep)


async def _read_from(config: RunConfig, base_url: str, api_key: str, sleep: Sleep) -> Export:

    from bulkrunner.errors import KeyRejected, Unreachable
    from bulkrunner.limits.limiter import SlidingWindowLimiter, WaitTooLong
    from bulkrunner.sending.preflight import Reading
    from bulkrunner.sending.transport import HttpSender, client_session

    operation, _ = for_config(config)
    async with client_session(config.concurrency) as session:
        sender = HttpSender(session, base_url, api_key, config.timeout)
        limiter = SlidingWindowLimiter(config.rates, guard=config.guard)
        stats = RunStats()
        reading = Reading(
            limiter, config.max_attempts, sleep=sleep, max_wait=config.max_wait, stats=stats
        )
        try:
            current = await _read_campaigns(sender, reading, config, operation)
        except (KeyRejected, Unreachable) as exc:
            raise Aborted(f"export aborted: {exc}; nothing was exported") from None
        except WaitTooLong as wait:
            raise Aborted(
                f"export aborted: the server asked to wait {wait.seconds:.0f}s ({wait.asked_by}), "
                f"more than --max-wait {config.max_wait:g}; nothing was exported"
            ) from None
    return _rows(current, operation, stats)


async def _read_campaigns(
    sender: Sender, reading: Reading, config: RunConfig, operation: Operation
) -> Current:
    from bulkrunner.errors import KeyRejected, Unreachable
    from bulkrunner.operations.state import parse_campaigns, slim
    from bulkrunner.sending.preflight import Current, fetch, read_details
    from bulkrunner.sending.retry import Verdict, classify

    client = config.client_id
    if client is None:
        answer = await fetch(sender.list_campaigns, reading, "reading the list of campaigns")
    else:
        path = f"/campaigns/?client_id={client}"
        answer = await fetch(lambda: sender.read(path), reading, "reading the list of campaigns")
    if answer.refused:
        raise Unreachable(f"{answer.transport_error} (is the base URL right?)")
    listed = parse_campaigns(answer)
    if listed is None:
        decision = classify(answer)
        if decision.verdict is Verdict.ABORT:
            raise KeyRejected(decision.message)
        raise Aborted(
            "export aborted: cannot read the list of campaigns "
            f"({decision.message or 'the answer is not a list of campaigns'}); "
            "nothing was exported"
        )
    del answer
    chosen: dict[int, Mapping[str, Any]] = {
        campaign_id: slim(campaign, (*operation.reads, NAME))
        for campaign_id, campaign in listed.items()
        if _wanted(campaign, config)
    }
    log.info(
        "read %s%s; exporting %s",
        count(len(listed), "campaign"),
        f" of client {client}" if client is not None else "",
        count(len(chosen), "campaign")
        + (f" with status {config.status}" if config.status is not None else ""),
    )
    current = Current(campaigns=chosen)
    if operation.detail is not None:
        await read_details(
            sender, reading, operation.detail, current, sorted(chosen), config.concurrency
        )
    return current


def _wanted(campaign: Mapping[str, Any], config: RunConfig) -> bool:
    """Whether the list's ``campaign`` is one to export: of the client asked for (should the
    server have ignored the filter) and with the status asked for (any case)."""
    client = config.client_id
    if client is not None and str(campaign.get("client_id", client)).strip() != str(client):
        return False
    if config.status is None:
        return True
    return str(campaign.get("status") or "").strip().upper() == config.status


def _rows(current: Current, operation: Operation, stats: RunStats) -> Export:
    """One row per campaign, sorted by id; a campaign with no value in any column is left out
    (a row with nothing to send is not valid input)."""
    rows: list[dict[str, Any]] = []
    campaigns: dict[int, Mapping[str, Any]] = {}
    left_out: dict[int, str] = {}
    unwritable: dict[int, str] = {}
    columns = set(operation.columns)
    for campaign_id in sorted(current.campaigns):
        campaign = current.campaigns[campaign_id]
        values = {
            name: _clean(value)
            for name, value in operation.export(campaign).items()
            if name in columns and value is not None
        }
        if not values:
            state = operation.state(campaign)
            # read, but not a value a row can write (a DRAFTED status); all nulls: not read
            if state and operation.readable(campaign):
                shown = ", ".join(str(value) for value in state.values() if value)
                unwritable[campaign_id] = (
                    f"it is {shown}, which no {operation.name} row can set"
                    if shown
                    else f"it has no {operation.name}, which no {operation.name} row can set"
                )
            else:
                left_out[campaign_id] = f"none of its {operation.name} could be read"
            continue
        rows.append({CAMPAIGN_ID: campaign_id, NAME: _clean(campaign.get(NAME)), **values})
        campaigns[campaign_id] = campaign
    left_out.update(current.unreadable)
    for campaign_id in current.missing:
        left_out[campaign_id] = "not found (404) when its details were read"
    skipped = {**left_out, **unwritable}
    for campaign_id, why in sorted(skipped.items())[:_SHOWN]:
        log.warning("campaign %d is not exported: %s", campaign_id, redact(why))
    if len(skipped) > _SHOWN:
        log.warning("... and %s more not exported", count(len(skipped) - _SHOWN, "campaign"))
    used = [name for name in operation.columns if any(name in row for row in rows)]
    named = [NAME] if any(row[NAME] is not None for row in rows) else []  # read-only, for people
    frame = pd.DataFrame(
        {
            CAMPAIGN_ID: pd.Series([row[CAMPAIGN_ID] for row in rows], dtype=object),
            **{name: _cells([row.get(name) for row in rows]) for name in [*named, *used]},
        }
    )
    return Export(frame, operation, campaigns, stats, left_out, unwritable=unwritable)


def _clean(value: Any) -> Any:
    """A value from the server, with the key redacted from any text in it."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, list | tuple):
        return [_clean(item) for item in value]
    if isinstance(value, set | frozenset):
        return sorted(_clean(item) for item in value)
    return value


def _cells(values: list[Any]) -> pd.Series[Any]:
    cells = pd.Series([None] * len(values), dtype=object)
    for index, value in enumerate(values):
        cells[index] = value  # one by one: a list must stay one cell
    return cells


# --- writing ---------------------------------------------------------------------------------


def write_export(exported: Export, path: Path) -> Path:
    """Write the export to ``path`` (CSV or Parquet by its extension), atomically."""
    from bulkrunner.output.export_file import write_export_file

    try:
        write_export_file(exported.frame, exported.operation, path)
    except OSError as exc:
        raise Aborted(
            f"{path}: cannot write the export ({exc.strerror or exc}); nothing was changed"
        ) from None
    exported.path = path
    return path


# --- reading the file back -------------------------------------------------------------------


def check_round_trip(exported: Export, config: RunConfig) -> dict[int, str]:
    """Read the written file as ``run`` would and compare each row with its campaign's state:
    an unedited export must change nothing. Each campaign whose row is invalid or would change
    something is logged and kept in ``exported.differ``."""
    from bulkrunner.input.loading import read_input
    from bulkrunner.input.validation import validate

    assert exported.path is not None
    operation, wire = for_config(config)
    if exported.frame.empty:
        return {}
    frame, _ = read_input(exported.path, operation)
    checked = validate(frame, config.vocabulary, operation=operation, wire=wire)
    numbers = exported.frame[CAMPAIGN_ID].tolist()
    for rejection in checked.rejections:
        exported.differ[int(numbers[rejection.number - 1])] = (
            f"its row would be invalid: {rejection.error}"
        )
    for row in checked.rows:
        found = operation.changes(row.payload, exported.campaigns.get(row.campaign_id))
        if found:
            exported.differ[row.campaign_id] = "; ".join(
                f"{name}: the file says {change.after!r}, the account has {change.before!r}"
                for name, change in found.items()
            )
    for campaign_id, why in sorted(exported.differ.items())[:_SHOWN]:
        log.warning("campaign %d does not read back as it is: %s", campaign_id, redact(why))
    if len(exported.differ) > _SHOWN:
        log.warning("... and %s more", count(len(exported.differ) - _SHOWN, "campaign"))
    return exported.differ
