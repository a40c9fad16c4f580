"""Commands printed for the user to paste: resume a run, start it over, roll it back.

Each is built from the command that started the run (``RunConfig.command``, in the canonical
form the command line records: the subcommand, its positional arguments, then one word per
option and one per value), so it carries the same job file, limits and base URL, and works
when pasted in the same folder.
"""

from __future__ import annotations

import shlex
from collections.abc import Sequence
from pathlib import Path

from bulkrunner.config.baseurl import shown
from bulkrunner.config.options import FOLLOWING
from bulkrunner.config.paths import STANDARD_STREAM
from bulkrunner.config.run_config import OPTIONS, RunConfig

_NOT_CARRIED = frozenset({"--resume", "--fresh", "--dry-run", "--no-dry-run", "--exit-code"})
# (a webhook's or a heartbeat's URL is a secret: its variable, if one was named, is carried)
_VALUE_NOT_CARRIED = frozenset({"--report", "--input", "--notify", "--heartbeat", "--out"})
_INPUTS = frozenset({"--input", "--plan"})  # what a run reads instead of an input: its plan
# a rollback never stops a campaign, and the consent to changes it cannot undo was the run's
_NOT_ROLLBACK = frozenset({"--allow-stop", "--allow-irreversible"})


def resume_command(config: RunConfig, report: Path) -> str:
    """Continue the unfinished run whose report is ``report``."""
    return _join(*_words(config), "--resume", "--report", str(report))


def fresh_command(config: RunConfig, report: Path) -> str:
    """Start the run with report ``report`` over, discarding its journal."""
    return _join(*_words(config), "--fresh", "--report", str(report))


def vocabulary_command(config: RunConfig, report: Path, vocabulary: str) -> str:
    """Start the run with report ``report`` over with another vocabulary (a run with another
    vocabulary is another job: it cannot resume this one, only start it over)."""
    return other_option_command(config, report, "--vocabulary", vocabulary)


def other_option_command(config: RunConfig, report: Path, option: str, value: str) -> str:
    """Start the run with report ``report`` over with ``option`` set to ``value``: an option
    that changes what is sent (the vocabulary, the schedule shape) makes another job, which
    cannot resume this one, only start it over."""
    command, positional, options = _parts(config)
    kept = _options(_without(options, option), keep_input=True)
    return _join(command, *positional, *kept, option, value, "--fresh", "--report", str(report))


def _without(words: Sequence[str], option: str) -> list[str]:
    """``words`` without ``option`` and its value."""
    kept: list[str] = []
    skip = False
    for word in words:
        if skip:
            skip = False
        elif word == option:
            skip = True
        else:
            kept.append(word)
    return kept


def rollback_command(config: RunConfig, backup: Path) -> str:
    """Put back the values saved in ``backup`` (with the run's job file, limits, base URL...;
    not its options a rollback does not take, such as a leads run's)."""
    command, positional, options = _parts(config)
    given = positional[1:] if command in FOLLOWING else positional
    job = [word for word in given if Path(word).suffix.lower() == ".toml"]  # not a data file
    taken = _taken_by("rollback", options)
    kept = [word for word in _options(taken, keep_input=False) if word not in _NOT_ROLLBACK]
    return _join("rollback", str(backup), *job, *kept)


def force_command(config: RunConfig, backup: Path) -> str:
    """Roll back ``backup``, restoring the campaigns changed since the run too."""
    return f"{rollback_command(config, backup)} --force"


def apply_command(config: RunConfig, plan: Path) -> str:
    """Apply the plan saved at ``plan`` (with the plan's job file, limits, base URL...)."""
    _, positional, options = _parts(config)
    job = [word for word in positional if Path(word).suffix.lower() == ".toml"]
    return _join("run", *job, *_options(options, keep_input=False), "--plan", str(plan))


def _taken_by(command: str, words: Sequence[str]) -> list[str]:
    """``words`` (options, each followed by its value, if it takes one) without the options
    ``command`` does not take."""
    flags = {flag: each for each in OPTIONS for flag in each.flags}
    kept: list[str] = []
    skip = False
    for word in words:
        if skip:
            skip = False
            continue
        each = flags.get(word) or flags.get(word.replace("--no-", "--", 1))
        if each is not None and command not in each.commands:
            skip = each.form in ("value", "append")
            continue
        kept.append(word)
    return kept


def _words(config: RunConfig) -> list[str]:
    command, positional, options = _parts(config)
    return [command, *positional, *_options(options, keep_input=True)]


def _parts(config: RunConfig) -> tuple[str, list[str], list[str]]:
    words = list(config.command) or ["run", "--input", str(config.input)]
    # an input piped in is pasted as the file it was kept in: what was piped is gone
    words = [
        str(config.input)
        if word == STANDARD_STREAM and (at == 1 or words[at - 1] == "--input")
        else word
        for at, word in enumerate(words)
    ]
    first_option = next((i for i, w in enumerate(words) if w.startswith("-")), len(words))
    return words[0], words[1:first_option], words[first_option:]


def _options(words: Sequence[str], *, keep_input: bool) -> list[str]:
    kept: list[str] = []
    skip = False
    for word in words:
        if skip:
            skip = False
        elif word in _VALUE_NOT_CARRIED | _INPUTS and not (keep_input and word in _INPUTS):
            skip = True
        elif word not in _NOT_CARRIED:
            # a base URL's credentials are secrets: REDACTED (a URL from a job file or
            # SMARTLEAD_BASE_URL is not in the command, so its hints paste as they are)
            kept.append(shown(word) if kept[-1:] == ["--base-url"] else word)
    return kept


def _join(*words: str) -> str:
    return shlex.join(["bulkrunner", *words])
