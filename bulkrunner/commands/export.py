"""``bulkrunner export``: the account's campaigns, as an input file of an operation.

read the list of campaigns (``GET /campaigns/``, ``?client_id=N``) ─▶ keep those of ``--status``
     ─▶ read each one's detail, if the operation has one (``GET /campaigns/{id}/<detail>``)
     ─▶ ``operation.export(campaign)`` for each ─▶ a CSV or Parquet file in the operation's
     input format ─▶ read that file back as ``run`` would, and check it changes nothing

So ``export`` -> edit in a spreadsheet -> ``run`` is a migration, and an unedited export run
again is every row ``unchanged``. Every read goes through a run's read stage
(``bulkrunner.sending.reads``, over the account's connection: its limits, retries,
``--max-wait`` and ``--outage-timeout``); nothing is written to the account.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Mapping
from contextlib import ExitStack, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

import pandas as pd

from bulkrunner.commands.recording import current, recorded
from bulkrunner.config.accounts import Account
from bulkrunner.config.environment import API_KEY_ENV, key_not_set, read_key
from bulkrunner.config.paths import (
    STANDARD_STREAM,
    check_export_path,
    default_export_path,
    unused,
)
from bulkrunner.config.redaction import holds_secret, redact
from bulkrunner.config.run_config import RunConfig, for_config
from bulkrunner.errors import Aborted, ExitCode, UsageError
from bulkrunner.model import REAL_CLOCK, Clock, RunStats, count
from bulkrunner.operations import Operation
from bulkrunner.operations.fields import CAMPAIGN_ID, NAME
from bulkrunner.operations.state import shows_only_its_id
from bulkrunner.output.events import show
from bulkrunner.output.export_summary import SHOWN, export_lines
from bulkrunner.records.locks import lock_accounts
from bulkrunner.records.store import StateStore

if TYPE_CHECKING:
    from bulkrunner.sending.connection import Connection
    from bulkrunner.sending.reads import Current

log = logging.getLogger("bulkrunner")


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


@recorded("export")
def export_job(
    config: RunConfig,
    out: TextIO,
    environ: Mapping[str, str] = os.environ,
    clock: Clock = REAL_CLOCK,
) -> ExitCode:
    """``bulkrunner export``: read, write ``config.output`` (or the default path), check that
    the file reads back as the campaigns' state, and print a summary.

    Raises UsageError (nothing read) or Aborted (the reads could not be made: exit 3)."""
    from bulkrunner.output.export_file import piped

    to_stdout = str(config.output) == STANDARD_STREAM  # CSV, checked in a file of its own first
    with piped(sys.stdout) if to_stdout else nullcontext(None) as staged:
        path = (
            staged or config.output or unused(default_export_path(config.operation, clock.wall()))
        )
        if staged is None:
            check_export_path(path, force=config.force)
        exported = read_export(config, environ, clock)
        write_export(exported, path)
        check_round_trip(exported, config)
    where = "standard output" if to_stdout else str(path)
    stats = exported.stats
    counted = {"exported": len(exported.frame), "left_out": len(exported.left_out)}
    current().summarised({k: n for k, n in counted.items() if n}, None if to_stdout else path)
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
    clock: Clock = REAL_CLOCK,
) -> Export:
    """The campaigns of the account (of ``config.client_id``, of ``config.status``) as rows of
    ``config.operation``'s input, read through the read stage of a run (its connection: limits,
    retries, --max-wait, --outage-timeout, the budget shared through the state store), holding
    the account's lock as a run does. Raises UsageError without a key (StoreError: a store that
    cannot be used), RunInProgress while a run holds the account alone, Aborted when the list
    cannot be read (key rejected, nothing listening, a wait longer than --max-wait...)."""
    operation, _ = for_config(config)
    if not operation.exportable:
        raise UsageError(
            f"export --operation {operation.name}: a {operation.name} row is an action on a "
            "lead, not a state of the campaign, so there is nothing to export (write its rows "
            f"yourself: campaign_id, {', '.join(operation.columns)})"
        )
    api_key = read_key(environ)
    if not (api_key or config.simulate):
        raise UsageError(
            f"{key_not_set()} (or use --simulate to export from the embedded simulator)"
        )
    import anyio

    account = Account("", API_KEY_ENV, config.rates, config.base_url, api_key)
    current().sending({"": account}, None)
    with ExitStack() as held:
        store = current().shared(config, held)
        if not config.simulate:
            # The key's budget is shared: an export (whose per-campaign reads may be many)
            # counts a run's requests, and they its, through the store; without it, while a
            # run uses this account, the two would push past its limits together.
            shared = store is not None
            lock_accounts(held, [account], {"": api_key}, clock.wall(), shared=shared)
        return anyio.run(_read, config, account, clock, store)


async def _read(
    config: RunConfig, account: Account, clock: Clock, store: StateStore | None
) -> Export:
    from bulkrunner.errors import KeyRejected, Unavailable, Unreachable, WaitTooLong
    from bulkrunner.sending.connection import connect
    from bulkrunner.sending.demo import DEMO_CAMPAIGNS
    from bulkrunner.sending.retry import too_long

    operation, _ = for_config(config)
    reading = connect(config, account, clock, DEMO_CAMPAIGNS, faults=False, store=store)
    async with reading as connection:
        try:
            if operation.paged is not None:  # a campaign's leads: a row each
                return await _read_leads(connection, config, operation)
            current = await _read_campaigns(connection, config, operation)
        except (KeyRejected, Unreachable, Unavailable) as exc:
            raise Aborted(f"export aborted: {exc}; nothing was exported") from None
        except WaitTooLong as wait:
            raise Aborted(
                f"export aborted: {too_long(wait, config.max_wait)}; nothing was exported"
            ) from None
    return _rows(current, operation, connection.stats)


async def _read_leads(connection: Connection, config: RunConfig, operation: Operation) -> Export:
    """The leads of the campaigns of ``--campaign-id``, else of the list (``_listed``)."""
    from bulkrunner.commands.lead_export import lead_frame, read_leads

    ids = config.campaign_ids or sorted(await _listed(connection, config, operation))
    found, current = await read_leads(connection, operation, ids)
    left_out = dict(current.unreadable)
    left_out.update((c, "not found (404) when its leads were read") for c in current.missing)
    for campaign_id, why in sorted(left_out.items())[:SHOWN]:
        log.warning("campaign %d is not exported: %s", campaign_id, redact(why))
    return Export(lead_frame(found), operation, current.campaigns, connection.stats, left_out)


async def _read_campaigns(
    connection: Connection, config: RunConfig, operation: Operation
) -> Current:
    from bulkrunner.sending.reads import Current, read_details

    chosen = await _listed(connection, config, operation)
    current = Current(campaigns=chosen)
    if operation.detail is not None:
        await read_details(connection, operation.detail, current, sorted(chosen))
    return current


async def _listed(
    connection: Connection, config: RunConfig, operation: Operation
) -> dict[int, Mapping[str, Any]]:
    """The account's campaigns to export: of ``--client-id``, ``--status``, ``--campaign-id``."""
    from bulkrunner.errors import KeyRejected
    from bulkrunner.operations.state import parse_campaigns, slim
    from bulkrunner.sending.reads import LIST, read_list
    from bulkrunner.sending.retry import Verdict, classify

    client = config.client_id
    answer = await read_list(connection, LIST if client is None else f"{LIST}?client_id={client}")
    listed = parse_campaigns(answer, keys=operation.reads)
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
        and (not config.campaign_ids or campaign_id in config.campaign_ids)
    }
    log.info(
        "read %s%s; exporting %s",
        count(len(listed), "campaign"),
        f" of client {client}" if client is not None else "",
        count(len(chosen), "campaign")
        + (f" with status {config.status}" if config.status is not None else ""),
    )
    return chosen


def _wanted(campaign: Mapping[str, Any], config: RunConfig) -> bool:
    """Whether the list's ``campaign`` is one to export: of the client asked for (should the
    server have ignored the filter) and with the status asked for (any case)."""
    client = config.client_id
    if client is not None and str(campaign.get("client_id", client)).strip() != str(client):
        return False
    if config.status is None or shows_only_its_id(campaign):  # (left out, saying why)
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
            name: _sorted(value)
            for name, value in operation.export(campaign).items()
            if name in columns and value is not None
        }
        if unwritten := _unwritten(values):
            left_out[campaign_id] = unwritten
            continue
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
            elif shows_only_its_id(campaign):
                left_out[campaign_id] = "the list shows it by its id alone, or twice, differently"
            else:
                left_out[campaign_id] = f"none of its {operation.name} could be read"
            continue
        name = campaign.get(NAME)  # read-only, for people: shown without the key
        label = redact(name) if isinstance(name, str) else name
        rows.append({CAMPAIGN_ID: campaign_id, NAME: label, **values})
        campaigns[campaign_id] = campaign
    left_out.update(current.unreadable)
    for campaign_id in current.missing:
        left_out[campaign_id] = "not found (404) when its details were read"
    skipped = {**left_out, **unwritable}
    for campaign_id, why in sorted(skipped.items())[:SHOWN]:
        log.warning("campaign %d is not exported: %s", campaign_id, redact(why))
    if len(skipped) > SHOWN:
        log.warning("... and %s more not exported", count(len(skipped) - SHOWN, "campaign"))
    used = [name for name in operation.columns if any(name in row for row in rows)]
    named = [NAME] if any(row[NAME] is not None for row in rows) else []  # read-only, for people
    frame = pd.DataFrame(
        {
            CAMPAIGN_ID: pd.Series([row[CAMPAIGN_ID] for row in rows], dtype=object),
            **{name: _cells([row.get(name) for row in rows]) for name in [*named, *used]},
        }
    )
    return Export(frame, operation, campaigns, stats, left_out, unwritable=unwritable)


def _unwritten(values: Mapping[str, Any]) -> str:
    """Why a campaign's ``values`` cannot be written ("" if they can): one holds a NUL character,
    or the API key (which, written REDACTED, a run of the file would put in its place)."""
    for name, value in values.items():
        items = value if isinstance(value, list) else [value]
        if any(isinstance(item, str) and "\x00" in item for item in items):
            return f"its {name} holds a NUL character, which no file holds"
        if holds_secret(value):
            return f"its {name} holds the API key (read as REDACTED), which no file holds"
    return ""


def _sorted(value: Any) -> Any:
    """A value from the server as a cell holds it: a list for a tuple, a sorted one for a set."""
    if isinstance(value, set | frozenset):
        return sorted(value)
    return list(value) if isinstance(value, tuple) else value


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
    for campaign_id, why in sorted(exported.differ.items())[:SHOWN]:
        log.warning("campaign %d does not read back as it is: %s", campaign_id, redact(why))
    if len(exported.differ) > SHOWN:
        log.warning("... and %s more", count(len(exported.differ) - SHOWN, "campaign"))
    return exported.differ
