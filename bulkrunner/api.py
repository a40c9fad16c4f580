"""The Python API, for notebooks: ``apply``, ``plan`` and ``export`` over DataFrames.

    import bulkrunner
    current = bulkrunner.export(status="active")             # a DataFrame, one row a campaign
    current["sending_limit"] = 40
    report = bulkrunner.apply(current, rate=["10/2", "60/60"], verify=True)

They are the commands of the CLI: the same job functions (``commands.run.run_job``,
``commands.export.read_export``...) with the same options, given as keyword arguments named as the
job-file keys or the ``RunConfig`` fields (``rate=`` or ``rates=``, ``max_attempts=``...), each
checked by ``config.build_config`` as a flag is. So limits, retries, the journal (``resume=True``),
the backup (``bulkrunner rollback REPORT``), the report file and the locks are a run's.

A DataFrame is written first to ``frame-<hash of its content>.parquet`` in the report's folder
(``reports/`` by default): the journal identifies a run by its input file, so the same DataFrame
given again is the same job (``resume=True`` continues it; a second ``apply`` of it while one is
running is refused, ``RunInProgress``). Its cells are read as a Parquet file's: None or NaN
leaves a setting unchanged, ``""`` is an empty text, lists and booleans as they are.

Nothing exits: bad options or input raise ``UsageError`` (nothing sent), another run of the job
``RunInProgress``, a run that stopped early ``Aborted`` (resumable; ``.report`` is its report's
path). A run whose rows failed returns its report like any other: read its ``status`` column.
"""

from __future__ import annotations

import difflib
import hashlib
import os
import sys
from collections.abc import Callable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO, cast

from bulkrunner.config.job_file import build_config
from bulkrunner.config.options import Option
from bulkrunner.config.redaction import redact
from bulkrunner.config.run_config import OPTIONS, RunConfig
from bulkrunner.errors import Aborted, BulkrunnerError, ExitCode, UsageError
from bulkrunner.model import REAL_CLOCK, Clock

if TYPE_CHECKING:
    import pandas as pd

Job = Callable[[RunConfig, TextIO, Mapping[str, str], Clock], ExitCode]

_NAMED = {each.key: each for each in OPTIONS} | {each.field: each for each in OPTIONS}
_NUMBERS = ("row", "http_status", "attempts", "duration_ms")  # the report's numeric columns


def apply(
    data: pd.DataFrame | str | os.PathLike[str], operation: str = "settings", **options: Any
) -> pd.DataFrame:
    """Run ``data`` (a DataFrame, or the path of a CSV or Parquet file) as ``bulkrunner run``
    does, and return its report as a DataFrame (``.attrs``: ``exit_code``, ``report``)."""
    return _apply(data, operation, options)


def plan(
    data: pd.DataFrame | str | os.PathLike[str], operation: str = "settings", **options: Any
) -> pd.DataFrame:
    """What ``apply`` would change, sending nothing, as ``bulkrunner plan`` does: with a key (or
    ``simulate=True``) the account's current state is read and each row's report line carries
    ``before`` and ``after``; without one, a UsageError (the offline preview is
    ``apply(dry_run=True)``). Rows that would change are ``dry_run``; the others ``unchanged``,
    ``invalid`` or ``failed`` (a campaign missing)."""
    return _plan(data, operation, options)


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
    return _run(_config(data, operation, options, "run"), clock=clock)


def _plan(
    data: pd.DataFrame | str | os.PathLike[str],
    operation: str,
    options: Mapping[str, Any],
    clock: Clock = REAL_CLOCK,
) -> pd.DataFrame:
    from bulkrunner.commands.plan import plan_job

    return _run(_config(data, operation, options, "plan"), plan_job, clock)


def _export(operation: str, options: Mapping[str, Any], clock: Clock = REAL_CLOCK) -> pd.DataFrame:
    from bulkrunner.commands.export import check_output, check_round_trip, read_export, write_export

    config = _built({**_flags(options, "export"), "input": "", "operation": operation})
    if config.output is not None:
        check_output(config.output, force=config.force)
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


# --- from keyword arguments to a RunConfig ------------------------------------------------------


def _config(
    data: pd.DataFrame | str | os.PathLike[str],
    operation: str,
    options: Mapping[str, Any],
    command: str,
) -> RunConfig:
    flags = _flags(options, command)
    flags["operation"] = operation
    flags["input"] = _input(data, flags.get("report"))
    return _built(flags)


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
    return (str, os.PathLike)


def _type_name(kind: type) -> str:
    return "a path" if kind is os.PathLike else kind.__name__


def _input(data: Any, report: Any) -> str:
    """The input file of ``data``: its path, or a DataFrame written to a file."""
    import pandas as pd

    if isinstance(data, pd.DataFrame):
        folder = Path(str(report)).parent if report else Path("reports")
        return str(frame_file(data, folder))
    if isinstance(data, str | os.PathLike):
        return str(data)
    raise UsageError(
        f"data must be a pandas DataFrame or the path of a .csv or .parquet file, "
        f"got {type(data).__name__}"
    )


def frame_file(frame: pd.DataFrame, folder: Path) -> Path:
    """``frame`` written as Parquet to ``folder/frame-<hash of the file>.parquet`` (kept as it
    is if that file exists: the same content). A column Parquet cannot hold as one type (text
    mixed with numbers) is written as text, lists ``;``-joined."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    columns: dict[str, Any] = {}
    for name in frame.columns:
        cells = frame[name]
        try:
            columns[str(name)] = pa.array(cells, from_pandas=True)
        except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, ValueError, OverflowError):
            columns[str(name)] = pa.array([_text(cell) for cell in cells.tolist()], pa.string())
    if len(set(columns)) != len(frame.columns):
        raise UsageError("the DataFrame has two columns of the same name")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        tmp = folder / f".frame-{os.getpid()}.parquet.tmp"
        pq.write_table(pa.table(columns), tmp)
        digest = hashlib.sha256(tmp.read_bytes()).hexdigest()[:16]
        path = folder / f"frame-{digest}.parquet"
        if path.exists():
            tmp.unlink()
        else:
            os.replace(tmp, path)
    except OSError as exc:
        raise UsageError(
            f"{folder}: cannot write the DataFrame there ({exc.strerror or exc}); nothing was sent"
        ) from None
    return path


def _text(cell: Any) -> str | None:
    import pandas as pd

    if isinstance(cell, list | tuple):
        return ";".join(str(item) for item in cell) or "[]"
    if cell is None or (not hasattr(cell, "__len__") and pd.isna(cell)):
        return None
    return str(cell)


# --- running ------------------------------------------------------------------------------------


def _run(config: RunConfig, job: Job | None = None, clock: Clock = REAL_CLOCK) -> pd.DataFrame:
    """Run ``config`` with ``job`` (by default ``bulkrunner run``'s) on ``clock``, and read its
    report."""
    from bulkrunner.output.events import Output
    from bulkrunner.output.report import read_report

    if job is None:
        from bulkrunner.commands.run import run_job

        job = run_job
    out = Output(sys.stdout)  # records the summary: the report's path, why a run stopped
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
