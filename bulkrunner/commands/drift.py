"""Runs that write only over what they expect to find (``sending.plan.Drift``), and saved plans.

- A rollback (or a plan of a backup) expects each campaign as its run left it: what the run
  set, recorded in the backup's ``set_by_run`` column (``of_backup``). A campaign changed since
  is left as it is, ``drifted``, unless ``--force``. A backup written before bulkrunner
  recorded it says nothing of what its run set (``unrecorded``): its rollback is refused unless
  ``--force``, and its plan cannot show drift. A ``leads`` run's backup, a ledger of the leads
  it added, has no drift: its rollback removes those still there.
- ``plan --out PLAN`` saves what would change (``records.saved_plan``) with a header of what it
  was made with (``header_of``); ``run --plan PLAN`` runs the plan's rows instead of an input
  (``open_plan``), refused unless its options and accounts are the plan's, and expects each
  campaign still to have the plan's ``before``: one changed since is left as it is, ``drifted``.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import Any

import pandas as pd

from bulkrunner.config.accounts import Account, Accounts, sending_with
from bulkrunner.config.folders import account_id
from bulkrunner.config.paths import check_regular
from bulkrunner.config.run_config import RunConfig, for_config
from bulkrunner.errors import UsageError
from bulkrunner.input.loading import CHUNK_ROWS, InputFile
from bulkrunner.input.parquet_reading import scan_parquet
from bulkrunner.model import Numbering
from bulkrunner.operations import operation as operation_named
from bulkrunner.operations.fields import SET_BY_RUN
from bulkrunner.output.hints import force_command
from bulkrunner.records.backup import backup_operation
from bulkrunner.records.expected import UnreadableRecord, has_column, read_expected
from bulkrunner.records.journal import RunIdentity
from bulkrunner.records.saved_plan import (
    AFTER,
    BEFORE,
    NUMBER,
    PlanHeader,
    check_columns,
    read_header,
    read_numbers,
)
from bulkrunner.sending.plan import Drift


def of_backup(config: RunConfig) -> tuple[RunConfig, Drift | None, str]:
    """A run (a rollback, or a plan of one) of the backup ``config.input``: with the backup's
    operation, writing only over what its run set (``--force``: over whatever is there). No
    drift for a ledger of leads, in which nothing can drift, nor for a backup that does not
    record what its run set: then also what that means (``unrecorded``), else ""."""
    backup = config.input
    check_regular(backup, "backup")
    operation = backup_operation(backup)
    try:
        operation_named(operation)
    except ValueError as exc:  # an edited backup's
        raise UsageError(f"{backup}: cannot read the backup ({exc})") from None
    undone_by = operation_named(config.operation).undone_by or config.operation
    if operation != undone_by and config.operation != "settings":
        raise UsageError(
            f"{backup}: the backup of a {operation} run, not of {config.operation} "
            "(leave --operation out: a rollback takes it from the backup)"
        )
    config = replace(config, operation=operation)
    if not operation_named(operation).backed_up:  # a ledger of the leads a run added
        return config, None, ""  # removed if still there: nothing in it can have drifted
    try:
        recorded = has_column(backup, SET_BY_RUN)
    except UnreadableRecord as exc:
        raise UsageError(str(exc)) from None
    if not recorded:
        return config, None, unrecorded(backup, config)
    forced = "restored all the same (--force)"
    return (
        config,
        Drift(
            partial(read_expected, backup, SET_BY_RUN, key=for_config(config)[0].key),
            "the run",
            force=config.force,
            hint=forced if config.force else "left as it is (--force restores it)",
            advice=f"to restore them all the same: {force_command(config, backup)}",
        ),
        "",
    )


def unrecorded(backup: Path, config: RunConfig) -> str:
    """What a backup that does not record what its run set means for its rollback."""
    return (
        f"{backup}: written by an earlier bulkrunner, it does not record what its run set, so a "
        "rollback cannot tell the campaigns changed since the run from the others (to restore "
        f"every campaign it holds all the same: {force_command(config, backup)})"
    )


def shaping(config: RunConfig) -> dict[str, Any]:
    """The options of ``config`` that shape what a run sends, or which rows it sends: a saved
    plan records them, and a run of it must have the same."""
    _, wire = for_config(config)
    options: dict[str, Any] = {"vocabulary": config.vocabulary.value}
    if config.operation == "schedule":
        options["schedule_shape"] = config.schedule_shape.value
    options["allow_stop"] = wire.allow_stop
    options["allow_irreversible"] = config.allow_irreversible
    options["no_backup"] = config.no_backup
    if config.operation == "leads":  # what each upload carries, and how many leads
        options.update(dict(wire.lead_settings), leads_per_request=wire.leads_per_request)
    return options


def identities(accounts: Mapping[str, Account]) -> dict[str, str]:
    """Each account by name, as ``account_id`` names it (never its key)."""
    return {name: account_id(each.base_url, each.key) for name, each in accounts.items()}


def header_of(config: RunConfig, accounts: Mapping[str, Account], made: datetime) -> PlanHeader:
    """The header of a plan of ``config``'s input, read with ``accounts``."""
    identity = RunIdentity.of(config.input, {})
    return PlanHeader(
        operation=config.operation,
        options=shaping(config),
        accounts={} if config.simulate else identities(accounts),
        simulate=config.simulate,
        input=identity.input,
        sha256=identity.sha256,
        made=made.isoformat(timespec="seconds").replace("+00:00", "Z"),
    )


@dataclass(frozen=True, slots=True)
class OpenedPlan:
    """A saved plan as the rows of a run: the run's configuration (the plan as its input),
    the rows, their numbers in the input the plan read, and what each campaign must still be."""

    config: RunConfig
    source: InputFile
    numbering: Numbering
    drift: Drift


def open_plan(config: RunConfig, environ: Mapping[str, str], key: str) -> OpenedPlan:
    """``run --plan``: the plan ``config.plan`` opened as the run's rows; a UsageError, before
    anything is read from the account, when it is not a plan or this run differs from it."""
    assert config.plan is not None
    path = config.plan
    check_regular(path, "saved plan")
    header = read_header(path)
    if config.operation not in (header.operation, "settings"):
        raise UsageError(
            f"{path}: a plan of the {header.operation} operation, not of {config.operation} "
            "(leave --operation out: a run of a plan takes it from the plan)"
        )
    config = replace(config, input=path, operation=header.operation)
    if not config.dry_run:  # (a dry run reads no account, and needs no key)
        _check_made_alike(path, header, config, environ, key)
    columns, rows, read = scan_parquet(path, CHUNK_ROWS)
    check_columns(path, columns)
    inputs = [name for name in columns if name not in (NUMBER, BEFORE, AFTER)]

    def chunks(size: int, chosen: Sequence[str] | None) -> Iterator[pd.DataFrame]:
        return read(size, chosen or inputs)

    source = InputFile(path, tuple(inputs), rows, chunks)
    drift = Drift(
        partial(read_expected, path, BEFORE, key=for_config(config)[0].key),
        "the plan",
        whole=True,
        hint="not sent (make the plan again to see what a run would change now)",
    )
    return OpenedPlan(config, source, Numbering(read_numbers(path)), drift)


def _check_made_alike(
    path: Path, header: PlanHeader, config: RunConfig, environ: Mapping[str, str], key: str
) -> None:
    """Refuse a run of the plan whose options or accounts are not the plan's."""
    names: Collection[str] = header.accounts
    loaded = Accounts.load(config, environ)
    accounts = {} if config.simulate else sending_with(config, loaded, key, names)
    mine = replace(
        header,
        options=shaping(config),
        accounts=identities(accounts),
        simulate=config.simulate,
    )
    differences = header.differences(mine)
    if differences:
        raise UsageError(
            f"{path}: the plan was made with {'; '.join(differences)}: run it with the job "
            "file, options and keys it was made with, or make the plan again; nothing was sent"
        )
