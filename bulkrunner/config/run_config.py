"""One run's configuration: a job file (TOML) overlaid with command-line flags.

Each option is declared once, as a field of ``RunConfig`` whose metadata says the rest (see
``bulkrunner/options.py``). A job file holds any option under its long name (``max_attempts`` or
``max-attempts``); flags given on the command line win. Relative paths in a job file resolve
against the job file's folder, so a job runs the same from cron as from a shell.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field

from bulkrunner.config.environment import API_KEY_ENV as API_KEY_ENV
from bulkrunner.config.environment import BASE_URL_ENV
from bulkrunner.config.options import (
    CHECKING,
    EVERY,
    EXPORTING,
    READING,
    SENDING,
    declared,
    option,
    rate_argument,
)
from bulkrunner.errors import UsageError
from bulkrunner.limits.rates import DEFAULT_GUARD, DEFAULT_RATES, guard_problem
from bulkrunner.model import Rate
from bulkrunner.operations import NAMES as OPERATIONS
from bulkrunner.operations.fields import Vocabulary

TYPE_CHECKING = False  # typing.TYPE_CHECKING, without importing typing (`--help` needs none)
if TYPE_CHECKING:
    from datetime import datetime
    from pathlib import Path
    from typing import Any

    from bulkrunner.operations.base import Operation, Wire

DEFAULT_BASE_URL = "https://server.smartlead.ai/api/v1"

MAX_CONCURRENCY = 1000  # more connections at once only run out of file descriptors

# Each option is declared once, here, as a field of RunConfig: see bulkrunner/options.py.
_NUMBER = (int, float)


def _file(value: Any) -> Path:
    from pathlib import Path  # (`bulkrunner run --help` has no use for it)

    return Path(value)


def _path(value: Any) -> Path | None:
    return _file(str(value)) if value else None


def _text(value: Any) -> str | None:
    return str(value) if value else None


def _rates(value: Any) -> tuple[Rate, ...]:
    texts = [value] if isinstance(value, str) else list(value)
    return tuple(Rate.parse(str(text)) for text in texts) if texts else DEFAULT_RATES


# The statuses a campaign reads back with (``START`` is what is written to get ``ACTIVE``).
CAMPAIGN_STATUSES = ("DRAFTED", "ACTIVE", "PAUSED", "STOPPED", "COMPLETED")


def _client_id(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"client id must be a whole number of at least 1, got {value!r}")
    return value


def _campaign_status(value: Any) -> str:
    status = str(value).strip().upper()
    if status not in CAMPAIGN_STATUSES:
        raise ValueError(
            f"status must be one of {', '.join(CAMPAIGN_STATUSES)} (any case), got {value!r}"
        )
    return status


@dataclass(frozen=True, slots=True)
class RunConfig:
    """One run's configuration. Each field with ``metadata=option(...)`` is an option, declared
    there once; the last three are derived (a docstring also spares the dataclass from working
    out its signature for one at every start)."""

    input: Path = field(
        metadata=option(
            "the .csv or .parquet file of settings",
            CHECKING,
            accepts=(str,),
            metavar="PATH",
            convert=_file,
            path=True,
        )
    )
    operation: str = field(
        default="settings",
        metadata=option(
            "what the rows change: settings, schedule, status or email-accounts "
            "(default {default})",
            EVERY | EXPORTING,
            accepts=(str,),
            choices=OPERATIONS,
        ),
    )
    vocabulary: Vocabulary = field(
        default=Vocabulary.DOCUMENTED,
        metadata=option(
            "enum names to send: {default} (default) or long",
            EVERY | EXPORTING,
            accepts=(str,),
            choices=tuple(v.value for v in Vocabulary),
            convert=Vocabulary,
        ),
    )
    schedule_shape: str = field(
        default="nested",
        metadata=option(
            "wire shape of schedule requests: nested (current reference, days 0=Sunday) or flat "
            "(older docs, days_of_the_week 1=Monday) (default {default})",
            READING,
            accepts=(str,),
            choices=("nested", "flat"),
        ),
    )
    # None: reports/<input stem>-<UTC timestamp>.csv
    report: Path | None = field(
        default=None,
        metadata=option(
            "results file: .csv, .parquet, .json or .jsonl "
            "(default reports/<input stem>-<UTC time>.csv)",
            READING,
            accepts=(str,),
            metavar="PATH",
            convert=_path,
            path=True,
        ),
    )
    # a TOML file of accounts; an input column picks one per row
    accounts: Path | None = field(
        default=None,
        metadata=option(
            "a TOML file of SmartLead accounts (each: the variable holding its key, its limits, "
            "its base URL); the input's account column picks one per row",
            EVERY,
            accepts=(str,),
            metavar="FILE",
            convert=_path,
            path=True,
        ),
    )
    base_url: str = field(
        default=DEFAULT_BASE_URL,
        metadata=option(
            f"API base URL (default: ${BASE_URL_ENV}, else SmartLead's)",
            READING | EXPORTING,
            accepts=(str,),
            metavar="URL",
        ),
    )
    rates: tuple[Rate, ...] = field(
        default=DEFAULT_RATES,
        metadata=option(
            "at most N requests in any SECONDS; repeat for several limits, all of which hold "
            "(default {default})",
            READING | EXPORTING,
            key="rate",
            accepts=(list, str),
            form="append",
            metavar="N/SECONDS",
            parse=rate_argument,
            convert=_rates,
        ),
    )
    concurrency: int = field(
        default=4,
        metadata=option(
            f"parallel requests (default {{default}}, at most {MAX_CONCURRENCY})",
            READING | EXPORTING,
            accepts=(int,),
            metavar="N",
            parse=int,
        ),
    )
    max_attempts: int = field(
        default=6,
        metadata=option(
            "tries per row before it is failed (default {default})",
            READING | EXPORTING,
            accepts=(int,),
            metavar="N",
            parse=int,
        ),
    )
    timeout: float = field(
        default=30.0,
        metadata=option(
            "per-request timeout (default {default})",
            READING | EXPORTING,
            accepts=_NUMBER,
            metavar="SECONDS",
            parse=float,
            convert=float,
        ),
    )
    # abort when only retryable errors came back for this long
    outage_timeout: float = field(
        default=600.0,
        metadata=option(
            "abort (exit 3, resumable) when only retryable errors came back for this long, "
            "counting the waits between tries (default {default})",
            SENDING,
            accepts=_NUMBER,
            metavar="SECONDS",
            parse=float,
            convert=float,
        ),
    )
    # abort rather than wait longer for a Retry-After or rate reset
    max_wait: float = field(
        default=300.0,
        metadata=option(
            "the longest single wait a server may ask for (Retry-After, X-RateLimit-Reset, a "
            "lower X-RateLimit-Limit); asked for longer, the run stops (exit 3, resumable) "
            "(default {default})",
            READING | EXPORTING,
            accepts=_NUMBER,
            metavar="SECONDS",
            parse=float,
            convert=float,
        ),
    )
    # seconds requests in flight get to finish after an interruption
    grace: float = field(
        default=5.0,
        metadata=option(
            "after Ctrl-C or SIGTERM, how long requests in flight get to finish "
            "(default {default})",
            SENDING,
            accepts=_NUMBER,
            metavar="SECONDS",
            parse=float,
            convert=float,
        ),
    )
    # seconds added to every rate window against arrival jitter
    guard: float = field(
        default=DEFAULT_GUARD,
        metadata=option(
            "the least added to every rate window against network jitter; more is learned "
            "from round-trip times (default {default})",
            READING | EXPORTING,
            accepts=_NUMBER,
            metavar="SECONDS",
            parse=float,
            convert=float,
        ),
    )
    dry_run: bool = field(
        default=False,
        metadata=option(
            "load and validate, report what would be sent, send nothing",
            SENDING,
            accepts=(bool,),
            form="toggle",
            convert=bool,
        ),
    )
    simulate: bool = field(
        default=False,
        metadata=option(
            "run against the embedded SmartLead simulator (with injected faults)",
            READING | EXPORTING,
            accepts=(bool,),
            form="toggle",
            convert=bool,
        ),
    )
    # read current settings first; rows already as wanted: unchanged
    skip_unchanged: bool = field(
        default=True,
        metadata=option(
            "read the current settings first and do not send rows that change nothing "
            "(default on; --no-skip-unchanged sends every row)",
            READING,
            accepts=(bool,),
            form="toggle",
            convert=bool,
        ),
    )
    # read each changed campaign back after writing it
    verify: bool = field(
        default=False,
        metadata=option(
            "read each changed campaign back: rows that differ are 'mismatch', unread 'unverified'",
            READING,
            accepts=(bool,),
            form="toggle",
            convert=bool,
        ),
    )
    # send rows whose current values could not be read; write no backup
    no_backup: bool = field(
        default=False,
        metadata=option(
            "write no backup, and send rows even when their campaign's current settings "
            "cannot be read (by default such rows fail unsent); the run cannot be rolled back",
            READING,
            accepts=(bool,),
            form="switch",
            convert=bool,
        ),
    )
    allow_stop: bool = field(
        default=False,
        metadata=option(
            "allow rows that set status STOPPED, which cannot be undone",
            frozenset(
                {"run", "retry", "validate", "plan"}
            ),  # validate: such rows are valid with it
            accepts=(bool,),
            form="switch",
            convert=bool,
        ),
    )
    # send what a rollback could not undo; allow_stop is the narrower consent, to stops alone
    allow_irreversible: bool = field(
        default=False,
        metadata=option(
            "allow changes a rollback cannot undo: setting a field that has no value now (null "
            "or not shown: no API call takes a value away), and stopping campaigns (as "
            "--allow-stop); without it such rows fail unsent",
            EVERY,  # validate: it decides whether STOPPED is valid, as --allow-stop does
            accepts=(bool,),
            form="switch",
            convert=bool,
        ),
    )
    # no progress bar, even on a terminal
    quiet: bool = field(
        default=False,
        metadata=option(
            "errors and the final summary only: no progress, no log lines below errors",
            READING | EXPORTING,
            accepts=(bool,),
            form="switch",
            flags=("-q", "--quiet"),
            convert=bool,
        ),
    )
    # seconds between progress lines in a log
    progress_interval: float = field(
        default=10.0,
        metadata=option(
            "seconds between progress lines when there is no bar (default {default})",
            SENDING,
            accepts=_NUMBER,
            metavar="SECONDS",
            parse=float,
            convert=float,
        ),
    )
    # or "json": one JSON object per event
    log_format: str = field(
        default="text",
        metadata=option(
            "json: every line on stdout and stderr is one JSON object, for log shippers "
            "(default {default})",
            READING | EXPORTING,
            accepts=(str,),
            choices=("text", "json"),
            convert=str,
        ),
    )
    # a webhook URL to POST to when a run ends with a non-zero exit
    notify: str | None = field(
        default=None,
        metadata=option(
            "when the run ends with a non-zero exit, POST a short JSON message (Slack-"
            "compatible: counts per status, exit code, report) to this webhook",
            SENDING,
            accepts=(str,),
            metavar="URL",
            convert=_text,
        ),
    )
    # --notify's URL read from this variable instead: out of the process list and the job file
    notify_env: str | None = field(
        default=None,
        metadata=option(
            "--notify with the webhook URL (a secret: it carries a token) read from this "
            "environment variable, so that it is not in the process list",
            SENDING,
            accepts=(str,),
            metavar="VAR",
            convert=_text,
        ),
    )
    verbose: bool = field(
        default=False,
        metadata=option(
            "log every request and answer",
            READING | EXPORTING,
            accepts=(bool,),
            form="switch",
            flags=("-v", "--verbose"),
            convert=bool,
        ),
    )
    # skip rows the report's journal has as succeeded (a job file may say "auto": auto_resume)
    resume: bool = field(
        default=False,
        metadata=option(
            "continue an interrupted run: rows its journal has as succeeded are not sent again "
            "(without --report: the newest unfinished run of this same input)",
            SENDING,
            accepts=(bool, str),  # true, false or "auto"
            form="switch",
        ),
    )
    # discard an unfinished run's journal and start over (a flag only: no job-file key)
    fresh: bool = field(
        default=False,
        metadata=option(
            "discard an interrupted run's journal for this report and start over",
            SENDING,
            form="switch",
            convert=bool,
        ),
    )
    # export: which campaigns to read, and where their state goes (flags only: no job-file keys)
    client_id: int | None = field(
        default=None,
        metadata=option(
            "export only the campaigns of this agency client (GET /campaigns/?client_id=N)",
            EXPORTING,
            metavar="N",
            parse=int,
            convert=_client_id,
        ),
    )
    status: str | None = field(
        default=None,
        metadata=option(
            f"export only the campaigns with this status: {', '.join(CAMPAIGN_STATUSES)} "
            "(any case)",
            EXPORTING,
            metavar="STATUS",
            convert=_campaign_status,
        ),
    )
    output: Path | None = field(
        default=None,
        metadata=option(
            "the export file, .csv or .parquet: the operation's input format "
            "(default exports/<operation>-<UTC time>.csv)",
            EXPORTING,
            metavar="PATH",
            convert=_path,
        ),
    )
    force: bool = field(
        default=False,
        metadata=option(
            "replace the --output file if it exists (never a bulkrunner backup)",
            EXPORTING,
            form="switch",
            convert=bool,
        ),
    )
    auto_resume: bool = False  # job file resume = "auto": continue an unfinished run, if any
    report_template: str | None = None  # the report as given, if it has {timestamp} or {date}
    command: tuple[str, ...] = ()  # the command line that started this, for hints to paste


OPTIONS = declared(RunConfig)
"""Every option, in the order of the help."""
_JOB_KEYS = {each.key: each for each in OPTIONS if each.in_job_file}
JOB_OPTIONS = tuple(_JOB_KEYS)


def read_toml(path: Path, what: str) -> dict[str, Any]:
    """The TOML file ``path`` (a ``what``: "job file", "accounts file"), or a one-line
    UsageError naming it."""
    import tomllib  # only when there is a file to read: not for `--help`

    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except FileNotFoundError:
        raise UsageError(f"{path}: {what} not found") from None
    except OSError as exc:
        raise UsageError(f"{path}: cannot read the {what} ({exc.strerror or exc})") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise UsageError(f"{path}: not valid TOML ({exc})") from None


def read_job_file(path: Path) -> dict[str, Any]:
    """The options in job file ``path``, checked, with paths made absolute."""
    from pathlib import Path

    raw = read_toml(path, "job file")
    options: dict[str, Any] = {}
    for key, value in raw.items():
        name = key.replace("-", "_")
        declaration = _JOB_KEYS.get(name)
        if declaration is None:
            import difflib

            close = difflib.get_close_matches(name, JOB_OPTIONS, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise UsageError(f"{path}: unknown option {key!r}{hint}")
        types = declaration.accepts
        if not isinstance(value, types) or (isinstance(value, bool) and bool not in types):
            wanted = " or ".join("list" if t is list else t.__name__ for t in types)
            raise UsageError(f"{path}: option {key!r} must be {wanted}, got {value!r}")
        if declaration.choices and value not in declaration.choices:
            raise UsageError(
                f"{path}: option {key!r} must be one of {', '.join(declaration.choices)}, "
                f"got {value!r}"
            )
        if declaration.path:
            value = str((path.parent / Path(str(value)).expanduser()).resolve())
        if name == "base_url":
            from bulkrunner.config.baseurl import check

            value = check(value, f"{path}: {key}")
        options[name] = value
    return options


def expand_template(path: str, now: datetime) -> str:
    """``{timestamp}`` (20261126T021500Z) and ``{date}`` (2026-11-26) in a path, in UTC."""
    return path.replace("{timestamp}", f"{now:%Y%m%dT%H%M%SZ}").replace("{date}", f"{now:%Y-%m-%d}")


def build_config(
    job: Mapping[str, Any], flags: Mapping[str, Any], now: datetime | None = None
) -> RunConfig:
    """Combine job-file options with command-line flags (flags given as None are not set)."""
    merged = {**job, **{k: v for k, v in flags.items() if v is not None}}
    from datetime import UTC, datetime

    template = None
    if merged.get("report"):
        template = str(merged["report"])
        merged["report"] = expand_template(template, now or datetime.now(UTC))
    if flags.get("fresh") and flags.get("resume") is None:
        merged.pop("resume", None)  # --fresh on the command line wins over the job's resume
    for given, other in (("notify", "notify_env"), ("notify_env", "notify")):
        if flags.get(given) is not None and flags.get(other) is None:
            merged.pop(other, None)  # the command line's webhook wins over the job file's
    resume, auto_resume = _resume(merged.get("resume", False))
    merged["resume"] = resume
    if "input" not in merged:
        raise UsageError('no input file: give --input PATH or a job file with input = "..."')
    merged["base_url"] = _base_url(job, flags)
    values: dict[str, Any] = {}
    for each in OPTIONS:
        value = merged.get(each.key)
        if value is None:
            continue  # the field's default
        if each.choices and value not in each.choices:
            raise UsageError(
                f"{each.key.replace('_', ' ')} must be one of {', '.join(each.choices)}, "
                f"got {value!r}"
            )
        try:
            values[each.field] = each.convert(value) if each.convert else value
        except ValueError as exc:
            raise UsageError(str(exc)) from None
    if values.get("notify_env") is not None:
        from bulkrunner.config.webhook import from_environment  # only when it is needed

        if values.get("notify") is not None:
            raise UsageError("notify and notify env both name a webhook: give one of them")
        values["notify"] = from_environment(values["notify_env"], os.environ)
    if values.get("notify"):
        from bulkrunner.config.redaction import remember

        remember(values["notify"])  # a secret too: no log line or message shows it whole
    config = RunConfig(
        **values,
        auto_resume=auto_resume,
        report_template=template if template != merged.get("report") else None,
    )
    _check(config)
    return config


def _base_url(job: Mapping[str, Any], flags: Mapping[str, Any]) -> str:
    """The base URL: the flag's, else the job file's, else the environment's, else SmartLead's;
    checked, naming where it came from."""
    from bulkrunner.config.baseurl import check  # (urllib, ipaddress: not for `run --help`)

    for value, where in (
        (flags.get("base_url"), "--base-url"),
        (job.get("base_url"), "the job file's base_url"),
        (os.environ.get(BASE_URL_ENV), BASE_URL_ENV),
    ):
        if value:
            return check(str(value), where)
    return DEFAULT_BASE_URL


def _resume(value: Any) -> tuple[bool, bool]:
    """(resume, auto_resume) from the option: true, false, or "auto" (a job file's)."""
    if isinstance(value, bool):
        return value, False
    if isinstance(value, str) and value.strip().lower() in ("auto", "true", "false"):
        word = value.strip().lower()
        return word == "true", word == "auto"
    raise UsageError(f'resume must be true, false or "auto", got {value!r}')


_SECONDS = ("timeout", "outage_timeout", "max_wait", "grace", "guard", "progress_interval")


def _check(config: RunConfig) -> None:
    if not 1 <= config.concurrency <= MAX_CONCURRENCY:
        raise UsageError(
            f"concurrency must be between 1 and {MAX_CONCURRENCY}, got {config.concurrency}"
        )
    for name in _SECONDS:
        if not math.isfinite(getattr(config, name)):
            what = name.replace("_", " ")
            raise UsageError(
                f"{what} must be a finite number of seconds, got {getattr(config, name)}"
            )
    if config.max_attempts < 1:
        raise UsageError(f"max attempts must be at least 1, got {config.max_attempts}")
    if not config.timeout > 0:
        raise UsageError(f"timeout must be a positive number of seconds, got {config.timeout:g}")
    if config.resume and config.fresh:
        raise UsageError("--resume and --fresh contradict each other: choose one")
    if not (config.outage_timeout > 0 and config.grace >= 0 and config.guard >= 0):
        raise UsageError("outage timeout must be positive, grace and guard not negative")
    if not config.max_wait > 0:
        raise UsageError(f"max wait must be a positive number of seconds, got {config.max_wait:g}")
    if config.timeout > config.outage_timeout:
        raise UsageError(
            f"timeout must be at most the outage timeout ({config.outage_timeout:g}s), got "
            f"{config.timeout:g}: a request that never answers would outlast the outage"
        )
    # (each account of an accounts file has its own limits: checked as the file is read)
    if config.accounts is None and (problem := guard_problem(config.guard, config.rates)):
        raise UsageError(problem)
    if config.notify is not None:
        from bulkrunner.config.webhook import webhook_problem  # only when it is needed

        if problem := webhook_problem(config.notify):
            raise UsageError(f"notify must be {problem}")


def for_config(config: RunConfig) -> tuple[Operation, Wire]:
    """The operation a run applies, and the options that shape its requests."""
    from bulkrunner.operations import operation
    from bulkrunner.operations.base import Wire

    # --allow-irreversible consents to every change a rollback cannot undo, stops included
    allow_stop = config.allow_stop or config.allow_irreversible
    return operation(config.operation), Wire(config.vocabulary, config.schedule_shape, allow_stop)
