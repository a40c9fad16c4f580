"""One run's configuration: a job file (TOML) overlaid with command-line flags.

A job file holds any option of ``bulkrunner run`` under its long name (``max_attempts`` or
``max-attempts``); flags given on the command line win. Relative paths in a job file resolve
against the job file's folder, so a job runs the same from cron as from a shell.
"""

from __future__ import annotations

import difflib
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bulkrunner.errors import UsageError
from bulkrunner.fields import Vocabulary
from bulkrunner.rates import DEFAULT_GUARD, DEFAULT_RATES, Rate

DEFAULT_BASE_URL = "https://server.smartlead.ai/api/v1"

API_KEY_ENV = "SMARTLEAD_API_KEY"
BASE_URL_ENV = "SMARTLEAD_BASE_URL"

_PATH_OPTIONS = ("input", "report", "accounts")
_TYPES: dict[str, tuple[type, ...]] = {
    "input": (str,),
    "report": (str,),
    "accounts": (str,),
    "base_url": (str,),
    "rate": (list, str),
    "concurrency": (int,),
    "max_attempts": (int,),
    "timeout": (int, float),
    "vocabulary": (str,),
    "dry_run": (bool,),
    "simulate": (bool,),
    "verbose": (bool,),
    "outage_timeout": (int, float),
    "max_wait": (int, float),
    "grace": (int, float),
    "guard": (int, float),
    "skip_unchanged": (bool,),
    "verify": (bool,),
    "no_backup": (bool,),
    "quiet": (bool,),
    "progress_interval": (int, float),
    "log_format": (str,),
    "notify": (str,),
    "resume": (bool, str),  # true, false or "auto"
}
JOB_OPTIONS = tuple(_TYPES)


@dataclass(frozen=True, slots=True)
class RunConfig:
    input: Path
    report: Path | None = None  # None: reports/<input stem>-<UTC timestamp>.csv
    base_url: str = DEFAULT_BASE_URL
    rates: tuple[Rate, ...] = DEFAULT_RATES
    concurrency: int = 4
    max_attempts: int = 6
    timeout: float = 30.0
    vocabulary: Vocabulary = Vocabulary.DOCUMENTED
    dry_run: bool = False
    simulate: bool = False
    verbose: bool = False
    resume: bool = False  # skip rows the report's journal has as succeeded
    fresh: bool = False  # discard an unfinished run's journal and start over
    outage_timeout: float = 600.0  # abort when only retryable errors came back for this long
    max_wait: float = 300.0  # abort rather than wait longer for a Retry-After or rate reset
    grace: float = 5.0  # seconds requests in flight get to finish after an interruption
    guard: float = DEFAULT_GUARD  # seconds added to every rate window against arrival jitter
    skip_unchanged: bool = True  # read current settings first; rows already as wanted: unchanged
    verify: bool = False  # read each changed campaign back after writing it
    no_backup: bool = False  # send rows whose current values could not be read; write no backup
    quiet: bool = False  # no progress bar, even on a terminal
    operation: str = "settings"  # the campaign write (bulkrunner.operations)
    allow_stop: bool = False  # rows that set status STOPPED, which cannot be undone
    schedule_shape: str = "nested"  # the wire shape of schedule requests: nested or flat
    progress_interval: float = 10.0  # seconds between progress lines in a log
    log_format: str = "text"  # or "json": one JSON object per event
    notify: str | None = None  # a webhook URL to POST to when a run ends with a non-zero exit
    auto_resume: bool = False  # job file resume = "auto": continue an unfinished run, if any
    report_template: str | None = None  # the report as given, if it has {timestamp} or {date}
    command: tuple[str, ...] = ()  # the command line that started this, for hints to paste
    accounts: Path | None = None  # a TOML file of accounts; an input column picks one per row


def read_toml(path: Path, what: str) -> dict[str, Any]:
    """The TOML file ``path`` (a ``what``: "job file", "accounts file"), or a one-line
    UsageError naming it."""
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
    raw = read_toml(path, "job file")
    options: dict[str, Any] = {}
    for key, value in raw.items():
        name = key.replace("-", "_")
        if name not in _TYPES:
            close = difflib.get_close_matches(name, JOB_OPTIONS, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise UsageError(f"{path}: unknown option {key!r}{hint}")
        types = _TYPES[name]
        if not isinstance(value, types) or (isinstance(value, bool) and bool not in types):
            wanted = " or ".join("list" if t is list else t.__name__ for t in types)
            raise UsageError(f"{path}: option {key!r} must be {wanted}, got {value!r}")
        if name in _PATH_OPTIONS:
            value = str((path.parent / Path(str(value)).expanduser()).resolve())
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
    template = None
    if merged.get("report"):
        template = str(merged["report"])
        merged["report"] = expand_template(template, now or datetime.now(UTC))
    if flags.get("fresh") and flags.get("resume") is None:
        merged.pop("resume", None)  # --fresh on the command line wins over the job's resume
    resume, auto_resume = _resume(merged.get("resume", False))
    if "input" not in merged:
        raise UsageError('no input file: give --input PATH or a job file with input = "..."')
    rate = merged.get("rate")
    try:
        rates = DEFAULT_RATES if not rate else _rates([rate] if isinstance(rate, str) else rate)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    base_url = merged.get("base_url") or os.environ.get(BASE_URL_ENV) or DEFAULT_BASE_URL
    try:
        vocabulary = Vocabulary(merged.get("vocabulary", Vocabulary.DOCUMENTED.value))
    except ValueError:
        raise UsageError(
            f"vocabulary must be one of {', '.join(v.value for v in Vocabulary)}, "
            f"got {merged['vocabulary']!r}"
        ) from None
    config = RunConfig(
        input=Path(str(merged["input"])),
        report=Path(merged["report"]) if merged.get("report") else None,
        base_url=base_url,
        rates=rates,
        concurrency=merged.get("concurrency", 4),
        max_attempts=merged.get("max_attempts", 6),
        timeout=float(merged.get("timeout", 30.0)),
        vocabulary=vocabulary,
        dry_run=bool(merged.get("dry_run", False)),
        simulate=bool(merged.get("simulate", False)),
        verbose=bool(merged.get("verbose", False)),
        resume=resume,
        fresh=bool(merged.get("fresh", False)),
        outage_timeout=float(merged.get("outage_timeout", 600.0)),
        max_wait=float(merged.get("max_wait", 300.0)),
        grace=float(merged.get("grace", 5.0)),
        guard=float(merged.get("guard", DEFAULT_GUARD)),
        skip_unchanged=bool(merged.get("skip_unchanged", True)),
        verify=bool(merged.get("verify", False)),
        no_backup=bool(merged.get("no_backup", False)),
        quiet=bool(merged.get("quiet", False)),
        progress_interval=float(merged.get("progress_interval", 10.0)),
        log_format=str(merged.get("log_format", "text")),
        notify=str(merged["notify"]) if merged.get("notify") else None,
        auto_resume=auto_resume,
        report_template=template if template != merged.get("report") else None,
        accounts=Path(str(merged["accounts"])) if merged.get("accounts") else None,
    )
    _check(config)
    return config


def _resume(value: Any) -> tuple[bool, bool]:
    """(resume, auto_resume) from the option: true, false, or "auto" (a job file's)."""
    if isinstance(value, bool):
        return value, False
    if isinstance(value, str) and value.strip().lower() in ("auto", "true", "false"):
        word = value.strip().lower()
        return word == "true", word == "auto"
    raise UsageError(f'resume must be true, false or "auto", got {value!r}')


def _rates(texts: list[Any]) -> tuple[Rate, ...]:
    return tuple(Rate.parse(str(text)) for text in texts)


def _check(config: RunConfig) -> None:
    if config.concurrency < 1:
        raise UsageError(f"concurrency must be at least 1, got {config.concurrency}")
    if config.max_attempts < 1:
        raise UsageError(f"max attempts must be at least 1, got {config.max_attempts}")
    if not config.timeout > 0:
        raise UsageError(f"timeout must be a positive number of seconds, got {config.timeout:g}")
    if config.log_format not in ("text", "json"):
        raise UsageError(f"log format must be text or json, got {config.log_format!r}")
    if config.resume and config.fresh:
        raise UsageError("--resume and --fresh contradict each other: choose one")
    if not (config.outage_timeout > 0 and config.grace >= 0 and config.guard >= 0):
        raise UsageError("outage timeout must be positive, grace and guard not negative")
    if not config.max_wait > 0:
        raise UsageError(f"max wait must be a positive number of seconds, got {config.max_wait:g}")
    if config.notify is not None and not config.notify.startswith(("http://", "https://")):
        from bulkrunner.notify import webhook_label  # urllib: only when it is needed

        raise UsageError(
            "notify must be a webhook URL starting with http:// or https://, "
            f"got {webhook_label(config.notify)!r}"
        )
    if not config.base_url.startswith(("http://", "https://")):
        raise UsageError(f"base URL must start with http:// or https://, got {config.base_url!r}")
