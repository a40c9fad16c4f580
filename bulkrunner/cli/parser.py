"""The ``bulkrunner`` command line's parser: its commands, and each command's arguments added
only when that command is given (``_Parser.later``), so that ``bulkrunner --help`` imports neither
the option declarations nor anything only a run needs.

The options of run, retry, rollback, validate, plan, export and doctor, with their help, are
declared once, as the fields of ``RunConfig`` (see ``bulkrunner/config/options.py``); the
simulator's are its own (``bulkrunner.cli.simulate``). The command as given is kept in a
canonical form (``canonical_words``), so that the hints printed can be pasted.
"""

from __future__ import annotations

import argparse
import functools
import sys

from bulkrunner.config.environment import API_KEY_ENV, key_in
from bulkrunner.errors import ExitCode

# `bulkrunner --help` imports no more than this: a command's options (the configuration's
# declarations) when that command is given, logging, JSON and the rest once it is parsed.
TYPE_CHECKING = False  # typing.TYPE_CHECKING, without importing typing (`--help` needs none)
if TYPE_CHECKING:
    from typing import Any, NoReturn


_COMMANDS = {  # each command, as the help lists them
    "run": "send the settings in a file to SmartLead",
    "retry": "re-run the failed and not-attempted rows of an earlier report",
    "rollback": "restore what a run changed, from the backup it wrote beside its report",
    "validate": "check a file without sending anything",
    "export": "write the account's campaigns as an input file of an operation, to edit and run",
    "plan": "read the account's current state and show what a run would change; writes nothing",
    "doctor": "check each account with one read: key accepted, limits announced, latency",
    "runs": "list the runs recorded, latest first (runs show ID: one run and its failed rows)",
    "changes": "show what the runs recorded changed of a campaign, across runs",
    "simulate": "run the SmartLead simulator in the foreground",
}


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
        """One line naming the mistake (argparse's own prints the command's usage first: 23
        lines for ``run``, the error at their end), never a key (``_unechoed``)."""
        message = _unechoed(message)
        if not self.json_errors:
            self.exit(
                int(ExitCode.USAGE), f"{self.prog}: error: {message} (see {self.prog} --help)\n"
            )
        from bulkrunner.output.events import json_line

        print(
            json_line(
                "error", "error", message=f"{self.prog}: {message}", exit_code=int(ExitCode.USAGE)
            ),
            file=sys.stderr,
        )
        sys.exit(int(ExitCode.USAGE))


_UNRECOGNIZED = "unrecognized arguments: "
_SECRET_WORDS = ("key", "token", "secret", "password", "auth")


def _unechoed(message: str) -> str:
    """A usage error's ``message`` without a key in it: the value given to an unknown option
    named as a secret is (``--api-key K``, ``--token=K``: a key is read from the environment,
    never a flag), and the key of SMARTLEAD_API_KEY is redacted (``--rate K``: a key pasted in
    the wrong place)."""
    from bulkrunner.config.redaction import redact

    if message.startswith(_UNRECOGNIZED):
        words, secret = message.removeprefix(_UNRECOGNIZED).split(" "), False
        for index, word in enumerate(words):
            name, equals, _ = word.partition("=")
            if name.startswith("-") and any(part in name.lower() for part in _SECRET_WORDS):
                secret = True
                if equals:
                    words[index] = f"{name}=…"
                elif index + 1 < len(words) and not words[index + 1].startswith("-"):
                    words[index + 1] = "…"
        message = _UNRECOGNIZED + " ".join(words)
        if secret:
            message += f" (a key is read from {API_KEY_ENV} or an accounts file, never a flag)"
    return redact(message, [key_in()])


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


def canonical_words(parser: argparse.ArgumentParser, args: argparse.Namespace) -> list[str]:
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


def complete_parser() -> argparse.ArgumentParser:
    """The whole command line, every command's arguments added (``main`` adds only the given
    command's): what the reference docs list, flag by flag."""
    whole = _new_parser(json_errors=False)
    for action in whole._actions:
        if isinstance(action, argparse._SubParsersAction):
            for each in action.choices.values():
                if isinstance(each, _Parser):
                    each.complete()
    return whole


@functools.cache
def build(json_errors: bool = False) -> argparse.ArgumentParser:
    """The command line's parser, built once a process for each form of its errors (text or
    JSON). Argparse builds slowly (it looks up translations for every parser and option), and
    ``main`` runs many times in a process that calls it as a library or tests it; parsing
    changes nothing in a parser but adds the given command's arguments, once."""
    return _new_parser(json_errors)


def _new_parser(json_errors: bool) -> argparse.ArgumentParser:
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
    (the configuration's, declared once: see ``bulkrunner/config/options.py``)."""
    if command == "simulate":
        from bulkrunner.cli.simulate import add_options

        add_options(parser)
        return
    if command in ("runs", "changes"):
        _history(parser, command)
    elif command == "retry":
        parser.add_argument(
            "earlier_report", nargs="?", metavar="REPORT", help="a report written by bulkrunner"
        )
        parser.add_argument("job_file", nargs="?", metavar="JOB_FILE", help="a TOML job file")
        _run_id(parser, "the run whose report to retry, as bulkrunner runs lists it")
    elif command == "rollback":
        from bulkrunner.config.paths import BACKUP_SUFFIX

        parser.add_argument(
            "earlier_report",
            nargs="?",
            metavar="REPORT_OR_BACKUP",
            help=f"a run's report, or its {BACKUP_SUFFIX}",
        )
        parser.add_argument("job_file", nargs="?", metavar="JOB_FILE", help="a TOML job file")
        _run_id(parser, "the run to roll back (from its backup), as bulkrunner runs lists it")
    elif command == "doctor":
        parser.add_argument(
            "job_file",
            nargs="?",
            metavar="JOB_FILE|ACCOUNTS_FILE",
            help="a TOML job file (its accounts file, base URL and limits), or an accounts file",
        )
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


def _run_id(parser: argparse.ArgumentParser, help: str) -> None:
    """``--run ID``: the run a retry or rollback follows up, found in the state store, in place
    of its report."""
    parser.add_argument("--run", type=int, metavar="ID", help=f"{help} (instead of the file)")


def _history(parser: argparse.ArgumentParser, command: str) -> None:
    """The arguments of ``runs`` and ``changes``, which read the state store."""
    if command == "runs":
        parser.add_argument("show", nargs="?", metavar="show", help="show one run: runs show ID")
        parser.add_argument("run_id", nargs="?", type=int, metavar="ID", help="the run to show")
        parser.add_argument(
            "--limit", type=int, default=20, metavar="N", help="list the N latest (default 20)"
        )
    else:
        parser.add_argument("campaign_id", type=int, metavar="CAMPAIGN_ID", help="a campaign id")
    parser.add_argument("--json", action="store_true", help="print JSON, for scripts")


def _job_or_input(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "job_file",
        nargs="?",
        metavar="JOB_FILE|INPUT",
        help="a TOML job file, or (any other name) the input file itself",
    )
