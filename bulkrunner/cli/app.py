"""The ``bulkrunner`` command: parse arguments, build one RunConfig, call the runner, exit.

bulkrunner run [JOB_FILE|INPUT] [options]
bulkrunner retry REPORT [JOB_FILE] [options]
bulkrunner rollback REPORT_OR_BACKUP [JOB_FILE] [options]
bulkrunner validate [JOB_FILE|INPUT] [options]
bulkrunner plan [JOB_FILE|INPUT] [options]
bulkrunner export [JOB_FILE] [--operation O] [--client-id N] [--status S] [--output FILE] [options]
bulkrunner simulate [--port PORT] [--rate N/SECONDS ...] [fault options]
bulkrunner --version

The options of run, retry, rollback, validate and plan, with their help, are declared once, as the
fields of ``config.RunConfig`` (see ``bulkrunner/options.py``); ``add_flags`` gives each command
the ones it takes, when it is the command given (``_Parser.later``): ``bulkrunner --help``
imports neither those declarations nor anything only a run needs. From a job file retry and
rollback take everything but its input and report, which name the run they follow up. The
command as given is kept in the configuration (``RunConfig.command``), so the hints printed can be
pasted.
"""

from __future__ import annotations

import argparse
import itertools
import os
import sys
from collections.abc import Sequence

from bulkrunner.config.environment import API_KEY_ENV, choose_arrow_allocator
from bulkrunner.errors import Aborted, ExitCode, RunInProgress, UsageError

# `bulkrunner --help` imports no more than this: a command's options (the configuration's
# declarations) when that command is given, logging, JSON and the rest once it is parsed.
TYPE_CHECKING = False  # typing.TYPE_CHECKING, without importing typing (`--help` needs none)
if TYPE_CHECKING:
    from typing import Any, NoReturn

    from bulkrunner.config.run_config import RunConfig
    from bulkrunner.output.events import Output

_NOTIFYING = ("run", "retry", "rollback")  # validate and simulate send no notification
_SENDING = _NOTIFYING  # the commands that may send, and so rewrite a backup batch after batch

_COMMANDS = {  # each command, as the help lists them
    "run": "send the settings in a file to SmartLead",
    "retry": "re-run the failed and not-attempted rows of an earlier report",
    "rollback": "restore what a run changed, from the backup it wrote beside its report",
    "validate": "check a file without sending anything",
    "export": "write the account's campaigns as an input file of an operation, to edit and run",
    "plan": "read the account's current state and show what a run would change; writes nothing",
    "simulate": "run the SmartLead simulator in the foreground",
}


def main(argv: Sequence[str] | None = None) -> int:
    words = list(sys.argv[1:] if argv is None else argv)
    json_mode = _asks_json(words)
    parser = _parser(json_errors=json_mode)
    args = parser.parse_args(words)  # `--help` and usage errors end here
    if args.command in _SENDING and not getattr(args, "dry_run", False):
        choose_arrow_allocator(os.environ)  # before anything imports pyarrow
    from bulkrunner.output.events import Output, setup_logging

    args.words = _words(parser, args)
    quiet = bool(getattr(args, "quiet", None))
    setup_logging(getattr(args, "verbose", None) or False, "json" if json_mode else "text", quiet)
    out = Output(sys.stdout, json_lines=json_mode)
    built: list[RunConfig] = []
    code, error = _main(args, out, built)
    out.flush()
    config = built[0] if built else None
    # (without a configuration, the flags' webhook: that of a job file that failed is unknown)
    url = config.notify if config is not None else getattr(args, "notify", None)
    variable = getattr(args, "notify_env", None) if config is None else None
    webhook = str(url or (os.environ.get(variable, "").strip() if variable else ""))
    # (a URL that is not http(s) was refused as a usage error: nothing to notify)
    if code != 0 and webhook.startswith(("http://", "https://")) and args.command in _NOTIFYING:
        _notify(webhook, args, config, out.recorded.get("summary"), code, error)
    return code


def _main(args: argparse.Namespace, out: Output, built: list[RunConfig]) -> tuple[int, str | None]:
    """The exit code, and the error that ended the run, if one did (already printed)."""
    from typing import TextIO, cast  # (imported only past parsing, as is all a run needs)

    from bulkrunner.output.events import setup_logging

    try:
        if args.command == "simulate":
            return _simulate(args), None
        config = _config(args)
        built.append(config)
        out.json_lines = config.log_format == "json"
        setup_logging(config.verbose, config.log_format, config.quiet)
        stdout = cast(TextIO, out)  # a text stream, that can also print records
        # the commands are imported when chosen: `--help` and `simulate` need no pandas or aiohttp
        if args.command == "validate":  # a small CSV file is checked without pandas
            from bulkrunner.commands.validate import validate_command

            return int(validate_command(config, stdout)), None
        if args.command == "retry":
            from bulkrunner.commands.retry import retry_job

            return int(retry_job(config, stdout)), None
        if args.command == "rollback":
            from bulkrunner.commands.rollback import rollback_job

            return int(rollback_job(config, stdout)), None
        if args.command == "export":
            from bulkrunner.commands.export import export_job

            return int(export_job(config, stdout)), None

        if args.command == "plan":
            from bulkrunner.commands.plan import plan_job

            return int(plan_job(config, stdout)), None
        from bulkrunner.commands.run import run_job

        return int(run_job(config, stdout)), None
    except RunInProgress as exc:
        return _error(out, str(exc), ExitCode.IN_PROGRESS)
    except UsageError as exc:
        return _error(out, str(exc), ExitCode.USAGE)
    except Aborted as exc:
        return _error(out, str(exc), ExitCode.ABORTED)
    except KeyboardInterrupt:
        return _error(out, "interrupted before anything was sent", ExitCode.ABORTED, "")
    except Exception as exc:  # a bug: say so in one line, key redacted; -v shows the traceback
        import logging
        import traceback

        from bulkrunner.config.redaction import redact_url

        secrets = [os.environ.get(API_KEY_ENV, "")]
        logging.getLogger("bulkrunner").debug("%s", redact_url(traceback.format_exc(), secrets))
        journaled = (
            "; rows already finished are in the journal beside the report: --resume continues"
            if args.command in _NOTIFYING  # the commands that send, and so keep a journal
            else ""
        )
        return _error(
            out,
            f"{redact_url(f'{type(exc).__name__}: {exc}', secrets)} (run with -v for details"
            f"{journaled})",
            ExitCode.ABORTED,
            "internal error: ",
        )


def _error(
    out: Output, message: str, code: ExitCode, kind: str = "error: "
) -> tuple[int, str | None]:
    """Print the one line that ends a run on stderr: ``bulkrunner: error: ...``, or in json mode
    ``{"event": "error", "message": ...}``."""
    from bulkrunner.config.redaction import redact
    from bulkrunner.output.events import json_line

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
    from bulkrunner.output import notify

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
    return "--log-format=json" in words or any(
        a == "--log-format" and b == "json" for a, b in itertools.pairwise(words)
    )


class _Parser(argparse.ArgumentParser):
    """An argument parser whose errors, in json mode, are one JSON object. A command's parser
    is given its arguments (``_arguments``) when it is the command given: ``bulkrunner --help``
    and each ``bulkrunner COMMAND --help`` build only the parser they print."""

    json_errors = False
    command = ""  # the command this parser is the parser of; "" for the main one
    _incomplete = False

    def later(self, command: str) -> None:
        """Add the arguments of ``command`` when this parser is first used."""
        self.command, self._incomplete = command, True

    def complete(self) -> None:
        """Add the arguments of this parser's command, if not yet added."""
        if self._incomplete:
            self._incomplete = False
            _arguments(self, self.command)

    def parse_known_args(self, *args: Any, **kwargs: Any) -> Any:
        self.complete()
        return super().parse_known_args(*args, **kwargs)

    def error(self, message: str) -> NoReturn:
        if not self.json_errors:
            super().error(message)
        from bulkrunner.output.events import json_line

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


def _config(args: argparse.Namespace) -> RunConfig:
    import dataclasses
    from pathlib import Path

    from bulkrunner.config.run_config import OPTIONS, build_config, read_job_file

    flags: dict[str, Any] = {each.key: getattr(args, each.key, None) for each in OPTIONS}
    job_file = args.job_file
    if args.command in ("run", "validate", "plan") and job_file and not _is_job_file(job_file):
        # `bulkrunner validate plan.csv`: a data file where the job file goes is the input
        if flags["input"] is not None:
            raise UsageError(
                f"{job_file} is not a TOML job file, and --input {flags['input']} is given: "
                "give the input file once, as --input or in the place of the job file"
            )
        flags["input"], job_file = job_file, None
    job = read_job_file(Path(job_file)) if job_file else {}
    if args.command == "export":  # reads no input: takes the job's connection and operation
        exporting = {each.key for each in OPTIONS if "export" in each.commands}
        job = {key: value for key, value in job.items() if key in exporting}
        flags["input"] = ""
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
    from pathlib import Path

    return Path(name).suffix.lower() == ".toml"


def parser() -> argparse.ArgumentParser:
    """The whole command line, every command's arguments added (``main`` adds only the given
    command's): what the reference docs list, flag by flag."""
    whole = _parser()
    for action in whole._actions:
        if isinstance(action, argparse._SubParsersAction):
            for each in action.choices.values():
                if isinstance(each, _Parser):
                    each.complete()
    return whole


def _parser(json_errors: bool = False) -> argparse.ArgumentParser:
    parser = _Parser(
        prog="bulkrunner",
        description="Apply settings to many SmartLead campaigns from a CSV or Parquet file.",
        epilog=f"The API key is read from the environment variable {API_KEY_ENV}.",
    )
    parser.add_argument("--version", action=_Version, help="print the version and exit")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, text in _COMMANDS.items():
        commands.add_parser(name, help=text).later(name)
    for each in (parser, *commands.choices.values()):
        each.json_errors = json_errors
    return parser


def _arguments(parser: argparse.ArgumentParser, command: str) -> None:
    """Add the arguments of ``command`` to its parser: its positional ones, then its options
    (the configuration's, declared once: see ``bulkrunner/options.py``)."""
    if command == "simulate":
        _simulator_options(parser)
        return
    if command == "retry":
        parser.add_argument(
            "earlier_report", metavar="REPORT", help="a report written by bulkrunner"
        )
        parser.add_argument("job_file", nargs="?", metavar="JOB_FILE", help="a TOML job file")
    elif command == "rollback":
        parser.add_argument(
            "earlier_report",
            metavar="REPORT_OR_BACKUP",
            help="a run's report, or its .backup.parquet",
        )
        parser.add_argument("job_file", nargs="?", metavar="JOB_FILE", help="a TOML job file")
    elif command == "export":
        parser.add_argument(
            "job_file",
            nargs="?",
            metavar="JOB_FILE",
            help="a TOML job file: its operation, base URL and limits (not its input or report)",
        )
    else:
        _job_or_input(parser)
    from bulkrunner.config.options import add_flags
    from bulkrunner.config.run_config import OPTIONS

    add_flags(parser, command, OPTIONS)


def _job_or_input(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "job_file",
        nargs="?",
        metavar="JOB_FILE|INPUT",
        help="a TOML job file, or (any other name) the input file itself",
    )


def _simulator_options(parser: argparse.ArgumentParser) -> None:
    from bulkrunner.config.options import rate_argument
    from bulkrunner.operations.fields import Vocabulary

    parser.add_argument("--port", type=int, default=8787, help="port on 127.0.0.1 (0: any free)")
    parser.add_argument(
        "--rate",
        metavar="N/SECONDS",
        action="append",
        type=rate_argument,
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
    from bulkrunner.model import Rate
    from bulkrunner.operations.fields import Vocabulary
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
    if not 0 <= args.port <= 65535:
        raise UsageError(f"simulate: port must be between 0 and 65535, got {args.port}")
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


_MOST_CAMPAIGNS = 1_000_000  # a simulated account lists them all in one answer


def _campaigns(text: str) -> set[int]:
    ranges: list[range] = []
    try:
        for part in text.split(","):
            low, _, high = part.strip().partition("-")
            ranges.append(range(int(low), int(high or low) + 1))
    except ValueError:
        ranges = []
    if not ranges or not all(ranges):  # (an empty range: 9-1)
        raise UsageError(f"--campaigns: expected ids and ranges like 1-500,900, got {text!r}")
    if sum(map(len, ranges)) > _MOST_CAMPAIGNS:
        raise UsageError(f"--campaigns: at most {_MOST_CAMPAIGNS:,} campaigns, got {text!r}")
    return {n for each in ranges for n in each}


if __name__ == "__main__":
    sys.exit(main())
