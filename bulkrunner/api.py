"""The Python API, for notebooks: ``apply``, ``plan`` and ``export`` over DataFrames.

    import bulkrunner
    current = bulkrunner.export(status="active")             # a DataFrame, one row a campaign
    current["sending_limit"] = 40
    report = bulkrunner.apply(current, rate=["10/2", "60/60"], verify=True)

They are the commands of the CLI: the same jobs (``commands.run.run_job``,
``commands.plan.plan_job``, ``commands.export.read_export``) with the same options, given as
keyword arguments named as the job-file keys or the ``RunConfig`` fields (``rate=`` or
``rates=``, ``max_attempts=``...), each checked by ``config.job_file.build_config`` as a flag is.
So limits, retries, the journal (``resume=True``), the backup (``bulkrunner rollback REPORT``),
the report file and the locks are a run's. Each function's signature and help list its options,
made from their one declaration (``RunConfig``'s fields): ``help(bulkrunner.apply)``.

A DataFrame is judged as a file is: its entirely blank rows are ignored (and not numbered), and
it is written first to ``frame-<hash of its content>.parquet`` in the report's folder
(``reports/`` by default): the journal identifies a run by its input file, so the same DataFrame
given again is the same job (``resume=True`` continues it; a second ``apply`` of it while one is
running is refused, ``RunInProgress``). Its cells are read as a Parquet file's: None or NaN
leaves a setting unchanged, ``""`` is an empty text, lists and booleans as they are. What is said
of it (errors, warnings) names "the DataFrame", not that file.

Nothing exits: bad options or input raise ``UsageError`` (nothing sent), another run of the job
``RunInProgress``, a run that stopped early ``Aborted`` (resumable; ``.report`` is its report's
path). A run whose rows failed returns its report like any other: read its ``status`` column.
``quiet=True`` prints nothing: no summary, no warning.
"""

from __future__ import annotations

import contextlib
import difflib
import inspect
import io
import logging
import os
import re
import sys
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO, TypeVar, cast

from bulkrunner.config.job_file import build_config
from bulkrunner.config.options import Option, as_keywords, as_optional_path, shown
from bulkrunner.config.paths import REPORTS
from bulkrunner.config.redaction import redact
from bulkrunner.config.run_config import OPTIONS, RunConfig
from bulkrunner.errors import Aborted, BulkrunnerError, ExitCode, UsageError
from bulkrunner.input.frames import THE_DATAFRAME
from bulkrunner.model import REAL_CLOCK, Clock

if TYPE_CHECKING:
    import pandas as pd

Job = Callable[[RunConfig, TextIO, Mapping[str, str], Clock], ExitCode]
_F = TypeVar("_F", bound=Callable[..., Any])

_NAMED = {each.key: each for each in OPTIONS} | {each.field: each for each in OPTIONS}
_NUMBERS = ("row", "http_status", "attempts", "duration_ms")  # the report's numeric columns


# --- the options each function takes, from their declaration ----------------------------------


def _options(command: str) -> Callable[[_F], _F]:
    """The public function's signature and help list every option of ``command`` (``"run"``:
    apply) with the Python types it takes and its default, from their one declaration."""

    def document(function: _F) -> _F:
        signature = inspect.signature(function)
        fixed = [p for p in signature.parameters.values() if p.kind is not p.VAR_KEYWORD]
        given = {"input", *(p.name for p in fixed)}  # (operation: the function's own argument)
        taken = [each for each in OPTIONS if command in each.commands and each.key not in given]
        named = [
            inspect.Parameter(
                each.key,
                inspect.Parameter.KEYWORD_ONLY,
                default=_python_default(each.default),
                annotation=" | ".join(_type_name(kind, code=True) for kind in _types(each)),
            )
            for each in taken
        ]
        whole = signature.replace(parameters=[*fixed, *named])
        function.__signature__ = whole  # type: ignore[attr-defined]
        lines = "\n".join(f"    {each.key}: {_help(each)}" for each in taken)
        function.__doc__ = (
            f"{inspect.cleandoc(function.__doc__ or '')}\n\nOptions (keyword arguments, named "
            f"as a job file's keys or as RunConfig's fields; None: the default):\n\n{lines}"
        )
        return function

    return document


def _python_default(value: Any) -> Any:
    """An option's default as the Python value the API takes for it."""
    if isinstance(value, tuple):
        return [_python_default(each) for each in value]
    if isinstance(value, Path):
        return str(value)
    import enum

    if isinstance(value, enum.IntEnum):
        return int(value)
    if isinstance(value, enum.Enum):
        return value.value
    return value if value is None or isinstance(value, bool | int | float | str) else str(value)


def _help(each: Option) -> str:
    """An option's help, its default said once (the signature has it too)."""
    text = re.sub(r"\s*\(default [^()]*\)$", "", each.help_text())
    types = " or ".join(_type_name(kind) for kind in _types(each))
    default = shown(each.default) if each.default not in (None, (), False) else ""
    return f"{text} [{types}{f'; default {default}' if default else ''}]"


def _types(each: Option) -> tuple[type, ...]:
    """The Python types an option takes: its job-file types (a tuple for a list, any path
    for a path), or for a flag-only option those its flag gives."""
    if each.accepts:
        kinds = list(each.accepts)
        if list in kinds:
            kinds.append(tuple)
        if each.path:
            kinds.append(os.PathLike)
        return tuple(kinds)
    if each.form in ("switch", "toggle"):
        return (bool,)
    if each.parse is int:
        return (int,)
    return (str, os.PathLike) if each.convert is as_optional_path else (str,)


def _type_name(kind: type, *, code: bool = False) -> str:
    """``a path`` (``os.PathLike`` as code), or the type's name."""
    if kind is os.PathLike:
        return "os.PathLike" if code else "a path"
    return kind.__name__


@_options("run")
def apply(
    data: pd.DataFrame | str | os.PathLike[str], operation: str = "settings", **options: Any
) -> pd.DataFrame:
    """Run ``data`` (a DataFrame, or the path of a CSV or Parquet file) as ``bulkrunner run``
    does, and return its report as a DataFrame (``.attrs``: ``exit_code``, ``report``, and
    ``blank_rows``: the blank rows of a DataFrame, ignored)."""
    return _apply(data, operation, options)


@_options("plan")
def plan(
    data: pd.DataFrame | str | os.PathLike[str], operation: str = "settings", **options: Any
) -> pd.DataFrame:
    """What ``apply`` would change, sending nothing, as ``bulkrunner plan`` does: with a key (or
    ``simulate=True``) the account's current state is read and each row's report line carries
    ``before`` and ``after``; without one, a UsageError (the offline preview is
    ``apply(dry_run=True)``). Rows that would change are ``dry_run``; the others ``unchanged``,
    ``invalid`` or ``failed`` (a campaign missing)."""
    return _plan(data, operation, options)


@_options("export")
def export(operation: str = "settings", **options: Any) -> pd.DataFrame:
    """The account's campaigns as input rows of ``operation``, as ``bulkrunner export`` reads
    them (``client_id=``, ``status=``, ``simulate=``, the limits...): ``campaign_id`` and the
    operation's columns, typed (lists, booleans, whole numbers; None where unknown). With
    ``output=`` the file is written too and checked to read back as the campaigns are; a file
    already there is refused unless ``force=True``."""
    return _export(operation, options)


# --- the functions above, on a clock of the caller's (a test's) ---------------------------------


def _apply(
    data: pd.DataFrame | str | os.PathLike[str],
    operation: str,
    options: Mapping[str, Any],
    clock: Clock = REAL_CLOCK,
) -> pd.DataFrame:
    return _called(data, operation, options, "run", None, clock)


def _plan(
    data: pd.DataFrame | str | os.PathLike[str],
    operation: str,
    options: Mapping[str, Any],
    clock: Clock = REAL_CLOCK,
) -> pd.DataFrame:
    from bulkrunner.commands.plan import plan_job

    return _called(data, operation, options, "plan", plan_job, clock)


def _called(
    data: pd.DataFrame | str | os.PathLike[str],
    operation: str,
    options: Mapping[str, Any],
    command: str,
    job: Job | None,
    clock: Clock,
) -> pd.DataFrame:
    flags = _flags(options, command)
    with _told(bool(flags.get("quiet"))) as told:
        flags["operation"] = operation
        flags["input"], told.frame, blank = _input(data, flags.get("report"))
        report = _run(_built(flags), job, clock)
        report.attrs["blank_rows"] = blank
        return report


def _export(operation: str, options: Mapping[str, Any], clock: Clock = REAL_CLOCK) -> pd.DataFrame:
    from bulkrunner.commands.export import check_round_trip, read_export, write_export
    from bulkrunner.config.paths import check_export_path

    flags = _flags(options, "export")
    with _told(bool(flags.get("quiet"))):
        config = _built({**flags, "input": "", "operation": operation})
        if config.output is not None:
            check_export_path(config.output, force=config.force)
        exported = read_export(config, os.environ, clock)
        if config.output is not None:
            write_export(exported, config.output)
            check_round_trip(exported, config)
    frame = exported.frame.infer_objects()  # whole numbers and booleans as such, for pandas
    frame.attrs.update(
        left_out=dict(exported.left_out),
        unwritable=dict(exported.unwritable),  # state read, but no row of the operation sets it
        differ=dict(exported.differ),
        output=str(config.output) if config.output is not None else None,
    )
    return frame


# --- what a call says -----------------------------------------------------------------------------


@dataclass
class _Told(logging.Filter):
    """What a call logs in its own thread (an ``apply`` of each thread its own): nothing when
    ``quiet``; the file a DataFrame was written to (``frame``) named as the DataFrame."""

    thread: int
    quiet: bool
    frame: Path | None = None

    def __post_init__(self) -> None:
        super().__init__()

    def filter(self, record: logging.LogRecord) -> bool:
        if record.thread != self.thread:
            return True
        if self.quiet:
            return False
        if self.frame is not None:
            record.msg, record.args = self.named(record.getMessage()), None
        return True

    def named(self, text: str) -> str:
        if self.frame is None:
            return text
        for path in (str(self.frame.absolute()), str(self.frame)):
            text = text.replace(path, THE_DATAFRAME)
        return text


@contextlib.contextmanager
def _told(quiet: bool) -> Iterator[_Told]:
    """While a call runs: ``quiet`` silences what it logs, and its errors, like its log, name
    a DataFrame given as such (once ``frame`` is known)."""
    told = _Told(threading.get_ident(), quiet)
    logger = logging.getLogger("bulkrunner")
    logger.addFilter(told)
    try:
        yield told
    except BulkrunnerError as error:
        error.args = tuple(
            told.named(as_keywords(a, OPTIONS)) if isinstance(a, str) else a for a in error.args
        )
        raise
    finally:
        logger.removeFilter(told)


# --- from keyword arguments to a RunConfig ------------------------------------------------------


def _built(flags: Mapping[str, Any]) -> RunConfig:
    config = build_config({}, flags)
    words = [f"{key}={value!r}" for key, value in flags.items() if key != "input"]
    return replace(config, command=("python", *words))


def _flags(options: Mapping[str, Any], command: str) -> dict[str, Any]:
    """The options as ``build_config`` takes flags, by key; a misspelt option, one of another
    command or a value of the wrong type is a UsageError naming it."""
    flags: dict[str, Any] = {}
    for name, value in options.items():
        each = _NAMED.get(name)
        if each is None or each.key == "input" or command not in each.commands:
            known = sorted(k for k, o in _NAMED.items() if command in o.commands and k != "input")
            close = difflib.get_close_matches(name, known, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            whose = "export" if command == "export" else "apply and plan"
            raise UsageError(f"unknown option {name!r} of {whose}{hint}")
        if value is None:
            continue
        types = _types(each)
        if not isinstance(value, types) or (isinstance(value, bool) and bool not in types):
            wanted = " or ".join(_type_name(kind) for kind in types)
            raise UsageError(f"option {name!r} must be {wanted}, got {value!r}")
        flags[each.key] = str(value) if isinstance(value, os.PathLike) else value
    return flags


def _input(data: Any, report: Any) -> tuple[str, Path | None, int]:
    """The input file of ``data``: its path, or a DataFrame written to a file, without its
    blank rows (as a file's are ignored); the file a DataFrame became, and how many blank rows
    it had."""
    import pandas as pd

    if isinstance(data, pd.DataFrame):
        from bulkrunner.input.files import report_ignored
        from bulkrunner.input.frames import frame_file, without_blank_rows

        kept, ignored = without_blank_rows(data)
        report_ignored(Path(THE_DATAFRAME), ignored)
        path = frame_file(kept, Path(str(report)).parent if report else Path(REPORTS))
        return str(path), path, ignored.rows
    if isinstance(data, str | os.PathLike):
        return str(data), None, 0
    raise UsageError(
        f"data must be a pandas DataFrame or the path of a .csv or .parquet file, "
        f"got {type(data).__name__}"
    )


# --- running ------------------------------------------------------------------------------------


def _run(config: RunConfig, job: Job | None = None, clock: Clock = REAL_CLOCK) -> pd.DataFrame:
    """Run ``config`` with ``job`` (by default ``bulkrunner run``'s) on ``clock``, and read its
    report."""
    from bulkrunner.output.events import Output
    from bulkrunner.output.report import read_report

    if job is None:
        from bulkrunner.commands.run import run_job

        job = run_job
    # records the summary (the report's path, why a run stopped); quiet: nothing is shown
    out = Output(io.StringIO() if config.quiet else sys.stdout)
    code = job(config, cast(TextIO, out), os.environ, clock)
    summary = out.recorded.get("summary", {})
    written = summary.get("report")
    if code == ExitCode.ABORTED:
        reason = redact(str(summary.get("aborted") or "the run stopped early"))
        raise Aborted(
            f"{reason}; resume with resume=True"
            + (f" (the report so far: {written})" if written else ""),
            Path(written) if written else None,
        )
    if not written:
        raise BulkrunnerError("the report could not be written to a file: it was printed instead")
    report = read_report(Path(written))
    for column in _NUMBERS:
        report[column] = _numbers(report[column])
    report.attrs.update(exit_code=int(code), report=written)
    return report


def _numbers(cells: pd.Series[Any]) -> pd.Series[Any]:
    import pandas as pd

    blank = cells.map(lambda cell: cell is None or (isinstance(cell, str) and not cell.strip()))
    return pd.to_numeric(cells.mask(blank), errors="coerce").astype("Int64")
