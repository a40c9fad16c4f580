"""The ``bulkrunner`` command: parse arguments, build one RunConfig, call the runner, exit.

bulkrunner run [JOB_FILE|INPUT] [--input PATH] [--report PATH] [--base-url URL] [--rate N/S ...]
               [--concurrency N] [--max-attempts N] [--timeout SECONDS]
               [--vocabulary documented|long] [--dry-run] [--simulate] [-v] [-q]
               [--log-format text|json] [--notify URL]
bulkrunner --version
bulkrunner retry REPORT [JOB_FILE] [the options of run, but --input]
bulkrunner rollback REPORT_OR_BACKUP [JOB_FILE] [the options of run, but --input]
bulkrunner validate [JOB_FILE|INPUT] [--input PATH] [--vocabulary ...]
bulkrunner simulate [--port PORT] [--rate N/SECONDS ...] [fault options]

retry and rollback take --resume, --fresh and --vocabulary too; from a job file they take
everything but its input and report, which name the run they follow up. The command as given is
kept in the configuration (``RunConfig.command``), so the hints printed can be pasted.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import os
import sys
import traceback
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn, TextIO, cast

from bulkrunner.config import API_KEY_ENV, RunConfig, build_config, read_job_file
from bulkrunner.errors import ExitCode, RunInProgress, UsageError
from bulkrunner.events import JsonFormatter, Output, events, json_line
from bulkrunner.fields import Vocabulary
from bulkrunner.rates import DEFAULT_RATES, Rate
from bulkrunner.redaction import RedactingFilter, redact

log = logging.getLogger("bulkrunner")


_NOTIFYING = ("run", "retry", "rollback")  # validate and simulate send no notification


def main(argv: Sequence[str] | None = None) -> int:
    words = list(sys.argv[1:] if argv is None else argv)
    json_mode = _asks_json(words)
    parser = _parser(json_errors=json_mode)
    args = parser.parse_args(words)
    args.words = _words(parser, args)
    quiet = bool(getattr(args, "quiet", None))
    _setup_logging(getattr(args, "verbose", None) or False, "json" if json_mode else "text", quiet)
    out = Output(sys.stdout, json_lines=json_mode)
    built: list[RunConfig] = []
    code, error = _main(args, out, built)
    out.flush()
    config = built[0] if built else None
    url = config.notify if config is not None else getattr(args, "notify", None)
    webhook = str(url or "")
    # (a URL that is not http(s) was refused as a usage error: nothing to notify)
    if code != 0 and webhook.startswith(("http://", "https://")) and args.command in _NOTIFYING:
        _notify(webhook, args, config, out.recorded.get("summary"), code, error)
    return code


def _main(args: argparse.Namespace, out: Output, built: list[RunConfig]) -> tuple[int, str | None]:
    """The exit code, and the error that ended the run, if one did (already printed)."""
    try:
        if args.command == "simulate":
            return _simulate(args), None
        config = _config(args)
        built.append(config)
        out.json_lines = config.log_format == "json"
        _setup_logging(config.verbose, config.log_format, config.quiet)
        stdout = cast(TextIO, out)  # a text stream, that can also print records
        # the commands are imported when chosen: `--help` and `simulate` need no pandas or aiohttp
        if args.command == "validate":
            from bulkrunner.job import validate_job

            return int(validate_job(config, stdout)), None
        if args.command == "retry":
            from bulkrunner.job import retry_job

            return int(retry_job(config, stdout)), None
        if args.command == "rollback":
            from bulkrunner.rollback import rollback_job

            return int(rollback_job(config, stdout)), None
        from bulkrunner.job import run_job

        return int(run_job(config, stdout)), None
    except RunInProgress as exc:
        return _error(out, str(exc), ExitCode.IN_PROGRESS)
    except UsageError as exc:
        return _error(out, str(exc), ExitCode.USAGE)
    except KeyboardInterrupt:
        return _error(out, "interrupted before anything was sent", ExitCode.ABORTED, "")
    except Exception as exc:  # a bug: say so in one line, key redacted; -v shows the traceback
        secrets = [os.environ.get(API_KEY_ENV, "")]
        log.debug("%s", redact(traceback.format_exc(), secrets))
        return _error(
            out,
            f"{redact(f'{type(exc).__name__}: {exc}', secrets)} (run with -v for details; rows "
            "already finished are in the journal beside the report: --resume continues)",
            ExitCode.ABORTED,
            "internal error: ",
        )


def _error(
    out: Output, message: str, code: ExitCode, kind: str = "error: "
) -> tuple[int, str | None]:
    """Print the one line that ends a run on stderr: ``bulkrunner: error: ...``, or in json mode
    ``{"event": "error", "message": ...}``."""
    out.flush()
    if out.json_lines:
        internal = kind.startswith("internal")
        print(
            json_line("error", "error", message=message, exit_code=int(code), internal=internal),
            file=sys.stderr,
        )
    else:
        print(redact(f"bulkrunner: {kind}{message}"), file=sys.stderr)
    return int(code), message


def _notify(
    url: str,
    args: argparse.Namespace,
    config: RunConfig | None,
    summary: dict[str, Any] | None,
    code: int,
    error: str | None,
) -> None:
    from bulkrunner import notify

    job = getattr(args, "job_file", None) or getattr(args, "earlier_report", None)
    if job is None and config is not None:
        job = str(config.input)
    body = notify.message(
        job=str(job or getattr(args, "input", None) or ""),
        command=args.command,
        exit_code=code,
        summary=summary,
        error=error,
    )
    notify.send(url, body, [os.environ.get(API_KEY_ENV, "")])


def _asks_json(words: Sequence[str]) -> bool:
    """Whether the command line asks for ``--log-format json`` (known before it is parsed, so
    that even a mistyped option is reported as JSON)."""
    pairs = zip(words, [*words[1:], ""], strict=True)
    return "--log-format=json" in words or any(
        a == "--log-format" and b == "json" for a, b in pairs
    )


class _Parser(argparse.ArgumentParser):
    """An argument parser whose errors, in json mode, are one JSON object."""

    json_errors = False

    def error(self, message: str) -> NoReturn:
        if not self.json_errors:
            super().error(message)
        print(
            json_line("error", "error", message=f"{self.prog}: {message}", exit_code=2),
            file=sys.stderr,
        )
        sys.exit(int(ExitCode.USAGE))


class _Version(argparse.Action):
    """``--version``: read from the installed package's metadata only when asked."""

    def __init__(self, option_strings: list[str], dest: str, **kwargs: Any) -> None:
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS, **kwargs)

    def __call__(self, parser: argparse.ArgumentParser, *args: Any, **kwargs: Any) -> None:
        from importlib.metadata import PackageNotFoundError, version

        try:
            number = version("bulkrunner")
        except PackageNotFoundError:
            number = "(version unknown: not installed)"
        print(f"bulkrunner {number}")
        parser.exit()


_FLAGS = (
    "input",
    "report",
    "base_url",
    "rate",
    "concurrency",
    "max_attempts",
    "timeout",
    "vocabulary",
    "dry_run",
    "simulate",
    "verbose",
    "resume",
    "fresh",
    "outage_timeout",
    "max_wait",
    "grace",
    "guard",
    "skip_unchanged",
    "verify",
    "no_backup",
    "quiet",
    "progress_interval",
    "log_format",
    "notify",
    "accounts",
)


def _config(args: argparse.Namespace) -> RunConfig:
    flags: dict[str, Any] = {name: getattr(args, name, None) for name in _FLAGS}
    job_file = args.job_file
    if args.command in ("run", "validate") and job_file and not _is_job_file(job_file):
        # `bulkrunner validate plan.csv`: a data file where the job file goes is the input
        if flags["input"] is not None:
            raise UsageError(
                f"{job_file} is not a TOML job file, and --input {flags['input']} is given: "
                "give the input file once, as --input or in the place of the job file"
            )
        flags["input"], job_file = job_file, None
    job = read_job_file(Path(job_file)) if job_file else {}
    if args.command in ("retry", "rollback"):
        flags["input"] = args.earlier_report
        job.pop("report", None)  # the job's report is its run's: a retry or rollback writes its own
    return dataclasses.replace(build_config(job, flags), command=tuple(args.words))


def _words(parser: argparse.ArgumentParser, args: argparse.Namespace) -> list[str]:
    """The command as given, in a canonical form hints can edit: the subcommand, its positional
    arguments, then each option given (long name) and its value as separate words."""
    (commands,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    words = [args.command]
    chosen = commands.choices[args.command]
    for action in chosen._actions:
        value = getattr(args, action.dest, None)
        if not action.option_strings and value is not None:
            words.append(str(value))
    for action in chosen._actions:
        value = getattr(args, action.dest, None)
        if not action.option_strings or value is None or action.dest == "help":
            continue
        name = next(o for o in action.option_strings if o.startswith("--"))
        if isinstance(action, argparse.BooleanOptionalAction):
            words.append(name if value else f"--no-{name[2:]}")
        elif action.nargs == 0:  # store_true
            words.extend([name] if value else [])
        elif isinstance(value, list):
            for item in value:
                words.extend([name, str(item)])
        else:
            words.extend([name, str(value)])
    return words


def _is_job_file(name: str) -> bool:
    return Path(name).suffix.lower() == ".toml"


def _rate(text: str) -> str:
    try:
        Rate.parse(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def _parser(json_errors: bool = False) -> argparse.ArgumentParser:
    parser = _Parser(
        prog="bulkrunner",
        description="Apply settings to many SmartLead campaigns from a CSV or Parquet file.",
        epilog=f"The API key is read from the environment variable {API_KEY_ENV}.",
    )
    parser.add_argument("--version", action=_Version, help="print the version and exit")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = commands.add_parser("run", help="send the settings in a file to SmartLead")
    _input_options(run)
    _sending_options(run)
    _resume_options(run)

    retry = commands.add_parser(
        "retry", help="re-run the failed and not-attempted rows of an earlier report"
    )
    retry.add_argument("earlier_report", metavar="REPORT", help="a report written by bulkrunner")
    retry.add_argument("job_file", nargs="?", metavar="JOB_FILE", help="a TOML job file")
    retry.add_argument("--vocabulary", choices=[v.value for v in Vocabulary])
    _sending_options(retry)
    _resume_options(retry)

    rollback = commands.add_parser(
        "rollback", help="restore what a run changed, from the backup it wrote beside its report"
    )
    rollback.add_argument(
        "earlier_report", metavar="REPORT_OR_BACKUP", help="a run's report, or its .backup.parquet"
    )
    rollback.add_argument("job_file", nargs="?", metavar="JOB_FILE", help="a TOML job file")
    rollback.add_argument("--vocabulary", choices=[v.value for v in Vocabulary])
    _sending_options(rollback)
    _resume_options(rollback)

    check = commands.add_parser("validate", help="check a file without sending anything")
    _input_options(check)
    check.add_argument(
        "--accounts", metavar="FILE", help="an accounts file: each row must name one of them"
    )

    simulate = commands.add_parser("simulate", help="run the SmartLead simulator in the foreground")
    _simulator_options(simulate)
    for each in (parser, *commands.choices.values()):
        each.json_errors = json_errors
    return parser


def _sending_options(parser: argparse.ArgumentParser) -> None:
    defaults = " ".join(str(rate) for rate in DEFAULT_RATES)
    parser.add_argument(
        "--report",
        metavar="PATH",
        help="results file: .csv, .parquet, .json or .jsonl "
        "(default reports/<input stem>-<UTC time>.csv)",
    )
    parser.add_argument(
        "--accounts",
        metavar="FILE",
        help="a TOML file of SmartLead accounts (each: the variable holding its key, its limits, "
        "its base URL); the input's account column picks one per row",
    )
    parser.add_argument(
        "--base-url",
        metavar="URL",
        help="API base URL (default: $SMARTLEAD_BASE_URL, else SmartLead's)",
    )
    parser.add_argument(
        "--rate",
        metavar="N/SECONDS",
        action="append",
        type=_rate,
        help=f"at most N requests in any SECONDS; repeat for several limits, all "
        f"of which hold (default {defaults})",
    )
    parser.add_argument(
        "--concurrency", type=int, metavar="N", help="parallel requests (default 4)"
    )
    parser.add_argument(
        "--max-attempts",
        type=int,
        metavar="N",
        help="tries per row before it is failed (default 6)",
    )
    parser.add_argument(
        "--timeout", type=float, metavar="SECONDS", help="per-request timeout (default 30)"
    )
    parser.add_argument(
        "--outage-timeout",
        type=float,
        metavar="SECONDS",
        help="abort (exit 3, resumable) when only retryable errors came back for this long, "
        "counting the waits between tries (default 600)",
    )
    parser.add_argument(
        "--max-wait",
        type=float,
        metavar="SECONDS",
        help="the longest single wait a server may ask for (Retry-After, X-RateLimit-Reset); "
        "asked for longer, the run stops (exit 3, resumable) (default 300)",
    )
    parser.add_argument(
        "--grace",
        type=float,
        metavar="SECONDS",
        help="after Ctrl-C or SIGTERM, how long requests in flight get to finish (default 5)",
    )
    parser.add_argument(
        "--guard",
        type=float,
        metavar="SECONDS",
        help="the least added to every rate window against network jitter; more is learned "
        "from round-trip times (default 0.01)",
    )
    parser.add_argument(
        "--dry-run",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="load and validate, report what would be sent, send nothing",
    )
    parser.add_argument(
        "--simulate",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="run against the embedded SmartLead simulator (with injected faults)",
    )
    parser.add_argument(
        "--skip-unchanged",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="read the current settings first and do not send rows that change nothing "
        "(default on; --no-skip-unchanged sends every row)",
    )
    parser.add_argument(
        "--verify",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="read each changed campaign back and mark rows that differ 'mismatch'",
    )
    parser.add_argument(
        "--no-backup",
        action="store_true",
        default=None,
        help="write no backup, and send rows even when their campaign's current settings "
        "cannot be read (by default such rows fail unsent); the run cannot be rolled back",
    )
    parser.add_argument(
        "-q",
        "--quiet",
        action="store_true",
        default=None,
        help="errors and the final summary only: no progress, no log lines below errors",
    )
    parser.add_argument(
        "--progress-interval",
        type=float,
        metavar="SECONDS",
        help="seconds between progress lines when there is no bar (default 10)",
    )
    parser.add_argument(
        "--log-format",
        choices=["text", "json"],
        help="json: every line on stdout and stderr is one JSON object, for log shippers "
        "(default text)",
    )
    parser.add_argument(
        "--notify",
        metavar="URL",
        help="when the run ends with a non-zero exit, POST a short JSON message (Slack-"
        "compatible: counts per status, exit code, report) to this webhook",
    )
    parser.add_argument(
        "-v", "--verbose", action="store_true", default=None, help="log every request and answer"
    )


def _resume_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--resume",
        action="store_true",
        default=None,
        help="continue an interrupted run: rows its journal has as succeeded are not sent again "
        "(without --report: the newest unfinished run of this same input)",
    )
    parser.add_argument(
        "--fresh",
        action="store_true",
        default=None,
        help="discard an interrupted run's journal for this report and start over",
    )


def _input_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "job_file",
        nargs="?",
        metavar="JOB_FILE|INPUT",
        help="a TOML job file, or (any other name) the input file itself",
    )
    parser.add_argument("--input", metavar="PATH", help="the .csv or .parquet file of settings")
    parser.add_argument(
        "--vocabulary",
        choices=[v.value for v in Vocabulary],
        help="enum names to send: documented (default) or long",
    )


def _simulator_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--port", type=int, default=8787, help="port on 127.0.0.1 (0: any free)")
    parser.add_argument(
        "--rate",
        metavar="N/SECONDS",
        action="append",
        type=_rate,
        help="the server's sliding-window limit; repeatable (default: none)",
    )
    parser.add_argument(
        "--vocabulary",
        choices=[*(v.value for v in Vocabulary), "both"],
        default="documented",
        help="enum names POST accepts (default documented)",
    )
    parser.add_argument(
        "--campaigns",
        metavar="IDS",
        help="campaigns that exist, e.g. 1-500,900 (default: every id)",
    )
    parser.add_argument(
        "--latency", type=float, default=0.0, metavar="SECONDS", help="delay before every answer"
    )
    parser.add_argument(
        "--jitter",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="inbound network jitter: each request waits uniform(0, SECONDS) before the rate "
        "limit counts it (default 0; seeded by --seed)",
    )
    parser.add_argument(
        "--limit-retry-after",
        type=float,
        metavar="SECONDS",
        help="Retry-After of the rate limit's 429s (default: the seconds until the window has "
        "room; SmartLead says 30)",
    )
    for kind in ("429", "500", "503", "slow", "drop"):
        parser.add_argument(
            f"--fault-{kind}",
            type=float,
            default=0.0,
            metavar="P",
            help=f"probability of a {kind} fault per POST",
        )
    parser.add_argument(
        "--retry-after",
        type=float,
        default=1.0,
        metavar="SECONDS",
        help="Retry-After of injected 429s (default 1; see --limit-retry-after)",
    )
    parser.add_argument(
        "--slow-seconds",
        type=float,
        default=35.0,
        metavar="SECONDS",
        help="how long a slow answer takes (default 35)",
    )
    parser.add_argument("--seed", type=int, help="seed for the fault and jitter draws")
    parser.add_argument(
        "--schedule-shape",
        choices=["nested", "flat", "both"],
        default="both",
        help="schedule bodies accepted: nested (days 0=Sunday), flat (days_of_the_week "
        "1=Monday) or both (default)",
    )
    parser.add_argument(
        "--cron-as-string",
        action="store_true",
        help="read scheduler_cron_value back as a JSON string instead of an object",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log every request")


def _simulate(args: argparse.Namespace) -> int:
    from bulkrunner.simulator import FaultPlan, SimulatorConfig, serve_forever

    rates = tuple(Rate.parse(text) for text in args.rate or ())
    try:
        faults = FaultPlan(
            probabilities={
                kind: p
                for kind in ("429", "500", "503", "slow", "drop")
                if (p := getattr(args, f"fault_{kind}")) > 0
            },
            seed=args.seed,
            retry_after=args.retry_after,
            slow_seconds=args.slow_seconds,
        )
        config = SimulatorConfig(
            api_key=os.environ.get(API_KEY_ENV) or "sim-key",
            vocabulary=None if args.vocabulary == "both" else Vocabulary(args.vocabulary),
            rates=rates,
            campaigns=_campaigns(args.campaigns) if args.campaigns else None,
            faults=faults,
            latency=args.latency,
            jitter=args.jitter,
            jitter_seed=args.seed,
            limit_retry_after=args.limit_retry_after,
            schedule_shape=args.schedule_shape,
            cron_as_string=args.cron_as_string,
        )
    except ValueError as exc:
        raise UsageError(f"simulate: {exc}") from None
    key_from = f"the key in {API_KEY_ENV}" if os.environ.get(API_KEY_ENV) else "the key sim-key"
    try:
        state = serve_forever(
            config,
            args.port,
            lambda url: print(
                f"SmartLead simulator listening on {url} (accepting {key_from}); Ctrl-C stops it",
                flush=True,
            ),
        )
    except OSError as exc:
        raise UsageError(
            f"simulate: cannot listen on 127.0.0.1:{args.port} ({exc.strerror or exc})"
        ) from None
    for line in state.summary(rates):
        print(line, flush=True)
    return 0


def _campaigns(text: str) -> set[int]:
    ids: set[int] = set()
    try:
        for part in text.split(","):
            low, _, high = part.strip().partition("-")
            ids.update(range(int(low), int(high or low) + 1))
    except ValueError:
        raise UsageError(
            f"--campaigns: expected ids and ranges like 1-500,900, got {text!r}"
        ) from None
    return ids


class _StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever ``sys.stderr`` is at the time, so the progress bar, which redirects
    it while it is drawn, can print log lines above itself instead of through it."""

    @property
    def stream(self) -> TextIO:
        return sys.stderr

    @stream.setter
    def stream(self, value: TextIO) -> None:
        pass


def _setup_logging(verbose: bool, log_format: str = "text", quiet: bool = False) -> None:
    """Log to the current stderr, key redacted; replaces the handler of an earlier call.
    Quiet: errors only (the summary is printed on stdout); verbose wins over quiet."""
    secrets = [os.environ.get(API_KEY_ENV, "")]
    logger = logging.getLogger("bulkrunner")
    logger.setLevel(logging.DEBUG if verbose else logging.ERROR if quiet else logging.INFO)
    for old in logger.handlers[:]:
        logger.removeHandler(old)
    handler = _StderrHandler()
    if log_format == "json":
        handler.setFormatter(JsonFormatter(secrets))
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(message)s", "%H:%M:%S"))
        handler.addFilter(RedactingFilter(secrets))
    logger.addHandler(handler)
    logger.propagate = False
    events.setLevel(logging.INFO if log_format == "json" and not quiet else logging.WARNING)
    # Python's own warnings (a library's deprecation notice) would be plain text on stderr
    logging.captureWarnings(log_format == "json")
    warnings = logging.getLogger("py.warnings")
    for old in warnings.handlers[:]:
        warnings.removeHandler(old)
    if log_format == "json":
        warnings.addHandler(handler)
        warnings.propagate = False


if __name__ == "__main__":
    sys.exit(main())
