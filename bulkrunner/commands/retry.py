"""``bulkrunner retry REPORT``: re-run the failed and not-attempted rows of an earlier report.

A retry is a run of those rows, as the report has them (its input columns), with their numbers
in the original file (``Numbering``): its report, journal and events name each row as the first
run did.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any, TextIO

import pandas as pd

from bulkrunner.commands.dry_run import dry_run
from bulkrunner.commands.recording import recorded
from bulkrunner.commands.resumption import check_paths, choose_report, input_lock, run_identity
from bulkrunner.commands.run import execute
from bulkrunner.commands.streamed import Stream, api_key
from bulkrunner.config.environment import return_freed_memory
from bulkrunner.config.paths import DRY_RUN, RUN, follow_up_path
from bulkrunner.config.run_config import RunConfig
from bulkrunner.errors import ExitCode, UsageError
from bulkrunner.input.loading import InputFile
from bulkrunner.model import REAL_CLOCK, RESULT_COLUMNS, Clock, Numbering, Status, count, unechoed
from bulkrunner.operations import fitting
from bulkrunner.operations.answers import whole
from bulkrunner.operations.cells import quoted
from bulkrunner.output.report import read_report

log = logging.getLogger("bulkrunner")

RETRIED = frozenset({Status.FAILED.value, Status.NOT_ATTEMPTED.value})


@recorded("retry")
def retry_job(
    config: RunConfig,
    out: TextIO,
    environ: Mapping[str, str] = os.environ,
    clock: Clock = REAL_CLOCK,
) -> ExitCode:
    """Re-run the failed and not-attempted rows of the report ``config.input``."""
    if not config.dry_run:
        return_freed_memory()
    key = api_key(config, environ)
    earlier = read_report(config.input)
    status = earlier["status"].astype(str)
    for _, line in earlier[status == Status.INVALID.value].iterrows():
        print(f"row {line['row']} is invalid, not retried: {line['error']}", file=out)
    chosen = earlier[status.isin(RETRIED)]
    if chosen.empty:
        print(f"{config.input}: no failed or not-attempted rows to retry", file=out)
        return ExitCode.OK
    numbering = Numbering(_row_numbers(config.input, chosen["row"]))
    frame = chosen.drop(columns=[c for c in chosen.columns if c in RESULT_COLUMNS])
    frame = frame.rename(columns=lambda column: unechoed(str(column)))  # wanted_status: status
    kind = fitting([str(c) for c in frame.columns], config.operation)
    if kind != config.operation:
        log.info("%s: its columns are those of the %s operation", config.input, kind)
        config = replace(config, operation=kind)
    started = clock.wall()
    default = follow_up_path(config.input, "retry", started, DRY_RUN if config.dry_run else RUN)
    source = InputFile.of(config.input, frame.reset_index(drop=True))
    retrying = ("retrying %s of %s", count(len(frame), "row"), config.input)  # once checked
    if config.dry_run:
        config = replace(config, report=config.report or default)
        check_paths(config)
        log.info(*retrying)
        return dry_run(config, source, out, clock, numbering=numbering)
    with input_lock(config, started):
        identity = run_identity(config)
        config = choose_report(config, identity, default)
        log.info(*retrying)
        stream = Stream.of(config, source, environ, key, clock, numbering=numbering)
        return execute(stream, identity, out)


def _row_numbers(path: Path, cells: pd.Series[Any]) -> list[int]:
    """The rows' numbers in the input of the report at ``path``; a cell that is no row number
    (an edited report) stops the retry, naming it."""
    numbers: list[int] = []
    for position, cell in zip(cells.index, cells.tolist(), strict=True):
        number = whole(cell)
        if number is None or not 1 <= number < 2**63:
            raise UsageError(
                f"{path}: its row {position + 1} has {quoted(cell)} as its row number, which "
                "bulkrunner never writes: was the report edited? Put the number back"
            )
        numbers.append(number)
    return numbers
