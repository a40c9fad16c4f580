"""A job file read, and one run's ``RunConfig`` built from it and the command line's flags.

A job file (TOML) holds any option under its long name (``max_attempts`` or ``max-attempts``);
flags given on the command line win. Relative paths in a job file resolve against the job
file's folder, so a job runs the same from cron as from a shell. Every value is checked here,
with a one-line UsageError naming the option.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping

from bulkrunner.config.environment import BASE_URL_ENV
from bulkrunner.config.paths import STANDARD_STREAM, expand_template
from bulkrunner.config.run_config import DEFAULT_BASE_URL, MAX_CONCURRENCY, OPTIONS, RunConfig
from bulkrunner.errors import UsageError
from bulkrunner.limits.rates import guard_problem

TYPE_CHECKING = False  # typing.TYPE_CHECKING, without importing typing (`--help` needs none)
if TYPE_CHECKING:
    from datetime import datetime
    from pathlib import Path
    from typing import Any


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
        if declaration.path and value != STANDARD_STREAM:  # (input = "-": standard input)
            value = str((path.parent / Path(str(value)).expanduser()).resolve())
        if name == "base_url":
            from bulkrunner.config.baseurl import check

            value = check(value, f"{path}: {key}")
        options[name] = value
    return options


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
    for url, variable in _SECRET_URLS:
        for given, other in ((url, variable), (variable, url)):
            if flags.get(given) is not None and flags.get(other) is None:
                merged.pop(other, None)  # the command line's URL wins over the job file's
    for url, variable in _SECRET_URLS:  # an empty one would turn the alerts off unsaid
        for name in (url, variable):
            if isinstance(merged.get(name), str) and not merged[name].strip():
                what = _WHAT[url] if name == url else f"the variable holding {_WHAT[url]}"
                raise UsageError(f"{name.replace('_', ' ')} is empty: give {what}, or leave it out")
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
    _secret_urls(values)
    config = RunConfig(
        **values,
        auto_resume=auto_resume,
        report_template=template if template != merged.get("report") else None,
    )
    _check(config)
    return config


# The URLs that are secrets (a token in them), each with the option giving it from a variable
_SECRET_URLS = (("notify", "notify_env"), ("heartbeat", "heartbeat_env"))
_WHAT = {"notify": "a webhook URL", "heartbeat": "a heartbeat URL"}


def _secret_urls(values: dict[str, Any]) -> None:
    """Each secret URL given by its variable read into ``values``, and every one remembered as
    a secret: no log line or message shows it whole."""
    for url, variable in _SECRET_URLS:
        if values.get(variable) is not None:
            from bulkrunner.config.webhook import from_environment  # only when it is needed

            if values.get(url) is not None:
                named = _WHAT[url].removesuffix(" URL")
                raise UsageError(f"{url} and {url} env both name {named}: give one of them")
            values[url] = from_environment(values[variable], os.environ, url, _WHAT[url])
        if values.get(url):
            from bulkrunner.config.redaction import remember

            remember(values[url])


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


_SECONDS = tuple(each.field for each in OPTIONS if each.metavar == "SECONDS")


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
    if config.keep is not None and config.keep < 1:
        raise UsageError(f"keep must be at least 1 (the run just made is kept), got {config.keep}")
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
    if config.keep_columns:
        _check_kept(config.keep_columns, config.operation)
    from bulkrunner.config.lead_options import check_leads

    if problem := check_leads(config):
        raise UsageError(problem)
    for url, _ in _SECRET_URLS:
        given = getattr(config, url)
        if given is not None:
            from bulkrunner.config.webhook import webhook_problem  # only when it is needed

            if problem := webhook_problem(given, _WHAT[url]):
                raise UsageError(f"{url} must be {problem}")


def _check_kept(names: tuple[str, ...], operation: str) -> None:
    """Refuse to keep a column bulkrunner reads (it would be sent, or mean the campaign or the
    account): keep columns carries only the user's own (of a leads run, whose other columns
    are custom fields, any but its own)."""
    from bulkrunner.operations import every_column, owner
    from bulkrunner.operations import operation as named
    from bulkrunner.operations.fields import ACCOUNT, CAMPAIGN_ID, column_key

    chosen = named(operation)
    read = chosen.columns if chosen.custom_fields else every_column()
    known = {column_key(name): name for name in (CAMPAIGN_ID, ACCOUNT, *read)}
    for name in names:
        meant = known.get(column_key(name))
        if meant is not None:
            whose = owner(meant)
            what = f"the {whose} operation's column {meant}" if whose else f"the {meant} column"
            raise UsageError(
                f"keep columns: {name!r} is {what}, which bulkrunner reads; keep columns "
                "carries only columns of your own"
            )
