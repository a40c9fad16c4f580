"""How a run option is declared: once, on its field of ``run_config.RunConfig``.

Each option of ``run``, ``retry``, ``rollback``, ``validate`` and ``plan`` is one field of the
frozen ``RunConfig`` dataclass, and that field is its whole declaration: its Python type and default
are the field's, and ``metadata=option(...)`` adds the rest (help text, the commands that take
it, the TOML types a job file may give, flag spelling, choices, whether it is a path relative to
the job file). ``declared(RunConfig)`` reads the fields back as ``Option`` values
(``run_config.OPTIONS``, beside the dataclass, since this module cannot import it), and those drive
everything else:

- ``job_file.read_job_file``: which keys a job file may hold (every option but ``fresh``), their
  types and choices, which are paths, and the suggestion for a mistyped key;
- ``job_file.build_config``: the defaults (the fields') and the conversion of each value;
- ``add_flags``: the command line's flags, for each command the ones that take them, with help
  whose ``{default}`` is the field's default.

So a new option is one new field, and nothing else to keep in step. This module imports nothing
heavy: ``bulkrunner --help`` builds its parser from it.
"""

from __future__ import annotations

import argparse
import dataclasses
import enum
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import MISSING, dataclass

from bulkrunner.errors import ExitCode
from bulkrunner.limits.rates import with_published
from bulkrunner.model import Rate
from bulkrunner.operations.fields import CAMPAIGN_STATUSES

TYPE_CHECKING = False  # typing.TYPE_CHECKING, without importing typing (`--help` needs none)
if TYPE_CHECKING:
    from pathlib import Path
    from typing import Any, Literal, TypeAlias

    # How a flag is given: ``value`` (``--timeout 30``), ``toggle`` (``--verify`` /
    # ``--no-verify``), ``switch`` (``--resume``, only on), ``append`` (``--rate`` repeated).
    Form: TypeAlias = Literal["value", "toggle", "switch", "append"]

# The commands, by what they do: which options each takes follows from these.
SENDING = frozenset({"run", "retry", "rollback"})  # send, keep a journal, notify when they fail
CHECKING = frozenset({"run", "validate", "plan"})  # read an input file (or a job file naming it)
FOLLOWING = frozenset({"retry", "rollback"})  # follow up the report of an earlier run
DOING = frozenset({"run", "retry"})  # do the job (a heartbeat says it ran); a rollback undoes it
READING = SENDING | {"plan"}  # read the account: plan reads as a run does first
EVERY = SENDING | CHECKING
EXPORTING = frozenset({"export"})  # reads the account's campaigns into an input file
DIAGNOSING = frozenset({"doctor"})  # reads each account once: is its key accepted?
CONNECTING = READING | EXPORTING | DIAGNOSING  # reach an account: its address, limits, retries
HISTORY = frozenset({"runs", "changes"})  # read the run history in the state store


@dataclass(frozen=True, slots=True)
class Option:
    """One option. ``key``, ``field`` and ``default`` are filled in from the field."""

    help: str  # ``{default}`` in it is replaced by the default
    commands: frozenset[str]  # the commands whose command line takes it
    accepts: tuple[type, ...] = ()  # the TOML types a job file may give; (): no job-file key
    form: Form = "value"
    flags: tuple[str, ...] = ()  # (): ``--key`` with dashes
    metavar: str | None = None
    parse: Callable[[str], Any] | None = None  # the flag's argparse type
    choices: tuple[str, ...] = ()  # the only values allowed, from a flag or a job file
    convert: Callable[[Any], Any] | None = None  # the job-file or flag value -> the field's
    path: bool = False  # a path; in a job file, relative to the job file's folder
    key: str = ""  # the job-file key and flag name: the field's name unless given
    field: str = ""
    default: Any = None  # None also for the one option that has none: input

    @property
    def in_job_file(self) -> bool:
        return bool(self.accepts)

    def help_text(self) -> str:
        return self.help.replace("{default}", shown(self.default))


def option(help: str, commands: Iterable[str], **details: Any) -> Mapping[str, Option]:
    """The ``metadata`` of a ``RunConfig`` field that is an option (see ``Option``)."""
    return {"option": Option(help=help, commands=frozenset(commands), **details)}


def seconds(help: str, commands: Iterable[str]) -> Mapping[str, Option]:
    """An option of a number of seconds (``--timeout 2.5``, ``timeout = 30``)."""
    return option(
        help, commands, accepts=(int, float), metavar="SECONDS", parse=float, convert=float
    )


def whole(help: str, commands: Iterable[str]) -> Mapping[str, Option]:
    """An option of a whole number (``--concurrency 8``)."""
    return option(help, commands, accepts=(int,), metavar="N", parse=int)


def choice(
    help: str, commands: Iterable[str], among: Iterable[Any], convert: Callable[[Any], Any] = str
) -> Mapping[str, Option]:
    """An option of one of ``among`` (``--log-format json``; in a job file a text): of an enum,
    one of its values, converted to it."""
    if isinstance(among, enum.EnumMeta):
        values: list[Any] = [member.value for member in among]  # type: ignore[var-annotated]
        return choice(help, commands, values, among)
    return option(help, commands, accepts=(str,), choices=tuple(among), convert=convert)


def names(help: str, commands: Iterable[str]) -> Mapping[str, Option]:
    """An option of names: a job file's list, or a flag's text of them (``--keep-columns a,b``)."""
    return option(help, commands, accepts=(list, str), metavar="A,B", convert=as_columns)


def exit_codes(help: str, commands: Iterable[str]) -> Mapping[str, Option]:
    """An option of exit codes: a job file's list, or a flag's text of them (``1,3``)."""
    return option(help, commands, accepts=(list, str), metavar="CODES", convert=as_exit_codes)


def optional_path(help: str, commands: Iterable[str], metavar: str = "PATH") -> Any:
    """A field: an option of a path, None unless given; in a job file, relative to its folder."""
    return dataclasses.field(
        default=None,
        metadata=option(
            help, commands, accepts=(str,), metavar=metavar, convert=as_optional_path, path=True
        ),
    )


def secret_url(help: str, commands: Iterable[str]) -> Any:
    """A field: an option of a URL that is a secret, as a webhook's token makes it
    (``--notify https://...``); ``secret_url_variable`` declares its twin."""
    return dataclasses.field(
        default=None,
        metadata=option(help, commands, accepts=(str,), metavar="URL", convert=as_text),
    )


def secret_url_variable(flag: str, what: str, commands: Iterable[str]) -> Any:
    """A field: the option giving ``flag`` (``--notify``) from the environment variable it
    names, so that the secret (``what``: "the webhook URL") is not in the process list."""
    help = (
        f"{flag} with {what} (a secret: it carries a token) read from this environment "
        "variable, so that it is not in the process list"
    )
    return dataclasses.field(
        default=None,
        metadata=option(help, commands, accepts=(str,), metavar="VAR", convert=as_text),
    )


def toggle(help: str, commands: Iterable[str]) -> Mapping[str, Option]:
    """An option on or off either way (``--verify``, ``--no-verify``)."""
    return option(help, commands, accepts=(bool,), form="toggle", convert=bool)


def switch(
    help: str, commands: Iterable[str], *, in_job_file: bool = True, **details: Any
) -> Mapping[str, Option]:
    """An option only switched on (``--force``); ``in_job_file=False``: a flag alone."""
    accepts = (bool,) if in_job_file else ()
    return option(help, commands, accepts=accepts, form="switch", convert=bool, **details)


def declared(cls: type) -> tuple[Option, ...]:
    """The options of dataclass ``cls``, in field order, each completed from its field."""
    found: list[Option] = []
    for field in dataclasses.fields(cls):
        meta = field.metadata.get("option")
        if not isinstance(meta, Option):
            continue
        key = meta.key or field.name
        found.append(
            dataclasses.replace(
                meta,
                key=key,
                field=field.name,
                default=None if field.default is MISSING else field.default,
                flags=meta.flags or (f"--{key.replace('_', '-')}",),
            )
        )
    return tuple(found)


# --- the conversion of a value given (``Option.convert``) ---------------------------------------


def as_path(value: Any) -> Path:
    from pathlib import Path  # (`bulkrunner run --help` has no use for it)

    return Path(value)


def as_optional_path(value: Any) -> Path | None:
    return as_path(str(value)) if value else None


def as_text(value: Any) -> str | None:
    return str(value) if value else None


def as_rates(value: Any) -> tuple[Rate, ...]:
    """The limits given, and the published windows they do not name (``with_published``)."""
    texts = [value] if isinstance(value, str) else list(value)
    return with_published(tuple(Rate.parse(str(text)) for text in texts))


def as_columns(value: Any) -> tuple[str, ...]:
    """Column names: a list (a job file's), or one text of them comma-separated (a flag's)."""
    names = str(value).split(",") if isinstance(value, str) else [str(each) for each in value]
    return tuple(dict.fromkeys(name.strip() for name in names if name.strip()))


def as_exit_codes(value: Any) -> tuple[ExitCode, ...]:
    """Exit codes: a list (a job file's), or one text of them comma-separated (a flag's)."""
    items = str(value).split(",") if isinstance(value, str) else list(value)
    codes: set[ExitCode] = set()
    for item in items:
        text = str(item).strip()
        try:
            codes.update([ExitCode(int(text))] if text else [])
        except ValueError:
            known = ", ".join(str(int(code)) for code in ExitCode)
            raise ValueError(f"notify on: {item!r} is not an exit code ({known})") from None
    return tuple(sorted(codes))


def as_client_id(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"client id must be a whole number of at least 1, got {value!r}")
    return value


def as_campaign_status(value: Any) -> str:
    status = str(value).strip().upper()
    if status not in CAMPAIGN_STATUSES:
        raise ValueError(
            f"status must be one of {', '.join(CAMPAIGN_STATUSES)} (any case), got {value!r}"
        )
    return status


def shown(value: Any) -> str:
    """A default as the help prints it: 30 for 30.0, ``10/2 60/60`` for rates."""
    if isinstance(value, enum.Enum):
        return str(value.value)
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, tuple):
        return " ".join(shown(each) for each in value)
    return str(value)


def rate_argument(text: str) -> str:
    """An argparse type: ``text`` if it is a rate like ``10/2``."""
    try:
        Rate.parse(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def add_flags(parser: argparse.ArgumentParser, command: str, options: Iterable[Option]) -> None:
    """Add the flags of every option ``command`` takes. A flag not given is None, so that it
    does not override the job file."""
    for each in options:
        if command not in each.commands:
            continue
        kwargs: dict[str, Any] = {"dest": each.key, "default": None, "help": each.help_text()}
        if each.form == "toggle":
            kwargs["action"] = argparse.BooleanOptionalAction
        elif each.form == "switch":
            kwargs["action"] = "store_true"
        else:
            if each.form == "append":
                kwargs["action"] = "append"
            kwargs["metavar"] = each.metavar
            kwargs["type"] = each.parse
            kwargs["choices"] = each.choices or None
        parser.add_argument(*each.flags, **kwargs)


_COMMAND_LINE = {
    "`bulkrunner run --dry-run`": "`bulkrunner.apply(..., dry_run=True)`",
    "`bulkrunner run`": "`bulkrunner.apply`",
}
_FLAG = re.compile(r"(?<![\w-])--(no-)?([a-z][a-z0-9-]*)")


def as_keywords(text: str, options: Iterable[Option]) -> str:
    """``text`` (a message that names the command line's flags) as a caller of the Python API
    reads it: ``--dry-run`` as ``dry_run=True``, ``--no-verify`` as ``verify=False``,
    ``--accounts`` as ``accounts=...``. A flag no option has is left as it is."""
    by_flag = {flag: each for each in options for flag in each.flags if flag.startswith("--")}

    def keyword(found: re.Match[str]) -> str:
        each = by_flag.get(f"--{found[2]}")
        if each is None:
            return found[0]
        if each.form in ("toggle", "switch"):
            return f"{each.key}={found[1] is None}"
        return f"{each.key}=..."

    for command, call in _COMMAND_LINE.items():
        text = text.replace(command, call)
    return _FLAG.sub(keyword, text)
