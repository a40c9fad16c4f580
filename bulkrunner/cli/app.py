"""The ``bulkrunner`` command: parse arguments, build one RunConfig, call the runner, exit.

bulkrunner run [JOB_FILE|INPUT] [options]
bulkrunner run [JOB_FILE] --plan PLAN [options]
bulkrunner retry REPORT|--run ID [JOB_FILE] [options]
bulkrunner rollback REPORT_OR_BACKUP|--run ID [JOB_FILE] [options]
bulkrunner validate [JOB_FILE|INPUT] [options]
bulkrunner plan [JOB_FILE|INPUT] [--out PLAN] [--exit-code] [options]
bulkrunner runs [show ID] [--json]
bulkrunner changes CAMPAIGN_ID [--json]
bulkrunner export [JOB_FILE] [--operation O] [--client-id N] [--status S] [--output FILE] [options]
bulkrunner doctor [JOB_FILE|ACCOUNTS_FILE] [options]
bulkrunner simulate [--port PORT] [--rate N/SECONDS ...] [fault options]
bulkrunner --version

The parser is ``bulkrunner.cli.parser``'s; a command is imported when it is the one given. From
a job file retry and rollback take everything but its input and report, which name the run they
follow up. The command as given is kept in the configuration (``RunConfig.command``), so the
hints printed can be pasted. A failure ends with one line on stderr (one JSON object with
``--log-format json``) and the exit code its error carries.
"""

from __future__ import annotations

import argparse
import itertools
import os
import sys
from collections.abc import Sequence

from bulkrunner.cli.parser import build, canonical_words
from bulkrunner.config.environment import choose_arrow_allocator, key_in
from bulkrunner.errors import BulkrunnerError, ExitCode, UsageError

# `bulkrunner --help` imports no more than this: a command's options (the configuration's
# declarations) when that command is given, logging, JSON and the rest once it is parsed.
TYPE_CHECKING = False  # typing.TYPE_CHECKING, without importing typing (`--help` needs none)
if TYPE_CHECKING:
    from typing import Any, TextIO

    from bulkrunner.config.run_config import RunConfig
    from bulkrunner.output.events import Output


def main(argv: Sequence[str] | None = None) -> int:
    words = list(sys.argv[1:] if argv is None else argv)
    json_mode = _asks_json(words)
    parser = build(json_errors=json_mode)
    args = parser.parse_args(words)  # `--help` and usage errors end here
    from bulkrunner.config.options import SENDING

    # a run rewrites its backup batch after batch: see choose_arrow_allocator
    if args.command in SENDING and not getattr(args, "dry_run", False):
        choose_arrow_allocator(os.environ)  # before anything imports pyarrow
    from bulkrunner.output.events import Output, setup_logging

    args.words = canonical_words(parser, args)
    quiet = bool(getattr(args, "quiet", None))
    setup_logging(getattr(args, "verbose", None) or False, "json" if json_mode else "text", quiet)
    out = Output(sys.stdout, json_lines=json_mode)
    built: list[RunConfig] = []
    code, error = _main(args, out, built)
    out.flush()
    if args.command in SENDING:
        _tell(args, built[0] if built else None, out, code, error)
    return code


def _tell(
    args: argparse.Namespace, config: RunConfig | None, out: Output, code: int, error: str | None
) -> None:
    """``--notify``'s message when the run ended with an exit code of ``--notify-on``;
    ``--heartbeat``'s ping when it ended with 0 (a rollback undoes the job: it pings none)."""
    from bulkrunner.config.options import DOING
    from bulkrunner.output import notify

    secrets = [key_in()]
    codes: tuple[int, ...]
    if config is not None:
        webhook, codes = config.notify, config.notify_on
        if code == ExitCode.OK and config.heartbeat and args.command in DOING:
            notify.ping(config.heartbeat, secrets)
    else:  # the flags' webhook: that of a job file that failed to be read is unknown
        variable = getattr(args, "notify_env", None)
        webhook = getattr(args, "notify", None) or (
            os.environ.get(variable, "").strip() if variable else ""
        )
        codes = _flag_codes(getattr(args, "notify_on", None))
    # (a URL that is not http(s) was refused as a usage error: nothing to notify)
    if code in codes and str(webhook or "").startswith(("http://", "https://")):
        _notify(str(webhook), args, config, out, code, error)


def _flag_codes(given: str | None) -> tuple[int, ...]:
    """The exit codes ``--notify-on`` gives, or the default when it gives none it can."""
    from bulkrunner.config.options import as_exit_codes
    from bulkrunner.config.run_config import OPTIONS

    (declared,) = [each for each in OPTIONS if each.key == "notify_on"]
    try:
        return as_exit_codes(given) if given is not None else tuple(declared.default)
    except ValueError:
        return tuple(declared.default)


def _main(args: argparse.Namespace, out: Output, built: list[RunConfig]) -> tuple[int, str | None]:
    """The exit code, and the error that ended the run, if one did (already printed)."""
    from typing import TextIO, cast  # (imported only past parsing, as is all a run needs)

    from bulkrunner.config.options import SENDING
    from bulkrunner.output.events import setup_logging

    try:
        if args.command == "simulate":
            from bulkrunner.cli.simulate import simulate

            return simulate(args), None
        if args.command in ("runs", "changes"):
            return _history(args, cast(TextIO, out)), None
        config = _config(args)
        built.append(config)
        from bulkrunner.config.paths import STANDARD_STREAM  # pathlib: not for --help

        out.json_lines = config.log_format == "json"
        if args.command == "export" and str(config.output) == STANDARD_STREAM:
            out.stream = sys.stderr  # standard output carries the export, and nothing else
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

        if args.command == "doctor":
            from bulkrunner.commands.doctor import doctor_job

            return int(doctor_job(config, stdout)), None
        if args.command == "plan":
            from bulkrunner.commands.plan import plan_job

            return int(plan_job(config, stdout)), None
        from bulkrunner.commands.run import run_job

        return int(run_job(config, stdout)), None
    except BulkrunnerError as exc:
        return _error(out, str(exc), exc.exit_code)
    except KeyboardInterrupt:
        return _error(out, "interrupted before anything was sent", ExitCode.ABORTED, "")
    except Exception as exc:  # a bug: say so in one line, key redacted; -v shows the traceback
        import logging
        import traceback

        from bulkrunner.config.redaction import redact_url

        secrets = [key_in()]
        logging.getLogger("bulkrunner").debug("%s", redact_url(traceback.format_exc(), secrets))
        journaled = (
            "; rows already finished are in the journal beside the report: --resume continues"
            if args.command in SENDING  # the commands that send, and so keep a journal
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
    out: Output,
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
        summary=out.recorded.get("summary"),
        error=error,
        unrestorable=int(out.recorded.get("unrestorable_summary", {}).get("unrestorable", 0)),
    )
    notify.send(url, body, [key_in()])


def _history(args: argparse.Namespace, out: TextIO) -> int:
    """``bulkrunner runs [show ID]`` and ``bulkrunner changes CAMPAIGN_ID``."""
    from pathlib import Path

    folder = Path(args.state_dir).expanduser() if args.state_dir else None
    if args.command == "changes":
        from bulkrunner.commands.changes import changes_command

        return int(changes_command(folder, args.campaign_id, args.json, out))
    from bulkrunner.commands.runs import runs_command, show_command

    if args.show not in (None, "show"):  # argparse would say "invalid choice" of a word
        shown = args.show if args.show.isdigit() else "ID"
        raise UsageError(
            f"runs takes no {args.show!r}: to show a run, bulkrunner runs show {shown}"
        )
    if args.show and args.run_id is not None:
        return int(show_command(folder, args.run_id, args.json, out))
    if args.show or args.run_id is not None:
        raise UsageError("give the run to show as: bulkrunner runs show ID")
    if args.limit < 1:
        raise UsageError(f"--limit must be at least 1, got {args.limit}")
    return int(runs_command(folder, args.limit, args.json, out))


def _followed(args: argparse.Namespace) -> tuple[str | None, str | None]:
    """What a retry or rollback follows up as given (its report or backup; None with
    ``--run``), and its job file: ``retry --run 42 jobs/x.toml`` gives the job file first."""
    given, job_file = args.earlier_report, args.job_file
    if args.run is None:
        if given is None:
            raise UsageError(
                f"give the run to {args.command}: its report (or backup), or --run ID "
                "(bulkrunner runs lists them)"
            )
        return given, job_file
    if given is not None and job_file is None and _is_job_file(given):
        return None, given
    if given is not None:
        raise UsageError(f"give {given} or --run {args.run}, not both")
    return None, job_file


def _asks_json(words: Sequence[str]) -> bool:
    """Whether the command line asks for ``--log-format json`` (known before it is parsed, so
    that even a mistyped option is reported as JSON)."""
    return "--log-format=json" in words or any(
        a == "--log-format" and b == "json" for a, b in itertools.pairwise(words)
    )


def _config(args: argparse.Namespace) -> RunConfig:
    import dataclasses
    from pathlib import Path

    from bulkrunner.config.job_file import build_config, read_job_file
    from bulkrunner.config.options import CHECKING, DIAGNOSING, EXPORTING, FOLLOWING
    from bulkrunner.config.paths import REPORTS, STANDARD_STREAM
    from bulkrunner.config.run_config import OPTIONS

    flags: dict[str, Any] = {each.key: getattr(args, each.key, None) for each in OPTIONS}
    job_file, followed = args.job_file, None
    if args.command in DIAGNOSING and job_file and _is_accounts_file(job_file):
        if flags["accounts"] is not None:
            raise UsageError(
                f"{job_file} is an accounts file, and --accounts {flags['accounts']} is given: "
                "give the accounts file once"
            )
        flags["accounts"], job_file = job_file, None
    if args.command in FOLLOWING:
        followed, job_file = _followed(args)
    if args.command in CHECKING and job_file and not _is_job_file(job_file):
        # `bulkrunner validate plan.csv`: a data file where the job file goes is the input
        if flags["input"] is not None:
            raise UsageError(
                f"{job_file} is not a TOML job file, and --input {flags['input']} is given: "
                "give the input file once, as --input or in the place of the job file"
            )
        flags["input"], job_file = job_file, None
    if flags.get("plan") is not None:  # run --plan: the saved plan is what the run reads
        if flags["input"] is not None:
            raise UsageError(
                f"--plan {flags['plan']} and the input {flags['input']}: a run of a plan "
                "reads no input, only the plan (give a job file for its options, or nothing)"
            )
        flags["input"] = flags["plan"]
    job = read_job_file(Path(job_file)) if job_file else {}
    if args.command in EXPORTING | DIAGNOSING:  # read no input: take the job's connection
        exporting = {each.key for each in OPTIONS if args.command in each.commands}
        job = {key: value for key, value in job.items() if key in exporting}
        flags["input"] = ""
    if args.command in FOLLOWING:
        flags["input"] = followed or ""  # (--run: found in the store, below)
        job.pop("report", None)  # the job's report is its run's: a retry or rollback writes its own
    config = dataclasses.replace(build_config(job, flags), command=tuple(args.words))
    if args.command in FOLLOWING and followed is None:
        from bulkrunner.commands.runs import followed_up

        found = followed_up(config, args.run, args.command)
        words = list(config.command)
        at = words.index("--run")
        del words[at : at + 2]
        words.insert(1, str(found))  # the hints to paste name the file, as if it was given
        config = dataclasses.replace(config, input=found, command=tuple(words))
    if args.command in CHECKING and str(config.input) == STANDARD_STREAM:
        from bulkrunner.input.piped import save_piped

        folder = config.report.parent if config.report is not None else Path(REPORTS)
        config = dataclasses.replace(config, input=save_piped(sys.stdin.buffer, folder))
    return config


def _is_accounts_file(name: str) -> bool:
    """Whether the TOML file ``name`` is an accounts file (its accounts as tables), not a job
    file (whose ``accounts`` names one)."""
    from pathlib import Path

    from bulkrunner.config.job_file import read_toml

    return isinstance(read_toml(Path(name), "job file").get("accounts"), dict)


def _is_job_file(name: str) -> bool:
    from pathlib import Path

    return Path(name).suffix.lower() == ".toml"


if __name__ == "__main__":
    sys.exit(main())
