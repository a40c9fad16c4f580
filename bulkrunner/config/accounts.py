"""The accounts a run sends with: those of an accounts file, or the one account of its key.

An accounts file (TOML) names each account, the environment variable holding its key (never the
key itself), its limits and, optionally, its base URL::

    [accounts.acme]
    key_env = "ACME_SMARTLEAD_KEY"
    rate = ["10/2", "60/60", "1000/3600"]
    base_url = "https://server.smartlead.ai/api/v1"   # optional: the run's base URL

The input's ``account`` column picks the account of each row. A run without an accounts file
sends with one account: the key in ``SMARTLEAD_API_KEY``, at ``--base-url`` and ``--rate``,
unnamed (``""``; ``null`` in JSON events). Either way each account gets a connection of its own
(``bulkrunner.sending.connection``: HTTP client, limiter, adaptive limits, 429 pauses) and its
rows go through the same pipeline; the accounts of a run send at once (``sending.session``), so
N accounts take about the time of the slowest. A key rejected (401/403) stops only its account's
rows. The run keeps one journal, one report and one backup (with an ``account`` column, so a
rollback restores each campaign with its own account's key).

Two runs using the same account at the same time are refused (exit 4): each run holds a lock per
account, named after a hash of the server its base URL names (``bulkrunner.config.baseurl.server``)
and its key (never the key itself), so that runs of different inputs, job files or accounts files
never together exceed its limits.
"""

from __future__ import annotations

import difflib
import logging
import re
from collections import Counter
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeGuard

from bulkrunner.config.baseurl import check as check_base_url
from bulkrunner.config.environment import API_KEY_ENV, key_not_set, read_key
from bulkrunner.config.job_file import read_toml
from bulkrunner.config.run_config import RunConfig
from bulkrunner.errors import UsageError
from bulkrunner.limits.rates import guard_problem, with_published
from bulkrunner.model import Rate, Rejection, Row, Status, Validation, count
from bulkrunner.operations.fields import ACCOUNT

if TYPE_CHECKING:
    from bulkrunner.model import RunStats

log = logging.getLogger("bulkrunner")

_KEYS = ("key_env", "rate", "base_url")
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# A word of a variable name is a word (ACME, SMARTLEAD, KEY, EU2); a key is one long random word
_KEY_LIKE = re.compile(r"(?=.*[0-9])(?=.*[A-Za-z])[A-Za-z0-9]{20,}")


@dataclass(frozen=True, slots=True)
class Account:
    """One SmartLead account a run sends with; ``name`` is "" for the one key of a run without
    an accounts file."""

    name: str
    key_env: str  # the environment variable that holds its API key
    rates: tuple[Rate, ...]
    base_url: str
    key: str = field(default="", repr=False, compare=False)  # set once the run needs it


def read_accounts(path: Path, config: RunConfig) -> dict[str, Account]:
    """The accounts of ``path``; limits and base URL default to the run's (``config``)."""
    raw = read_toml(path, "accounts file")
    table = raw.get("accounts")
    others = [key for key in raw if key != "accounts"]
    if others:
        raise UsageError(
            f"{path}: unknown entry {others[0]!r}: each account is a table [accounts.NAME]"
        )
    if not isinstance(table, dict) or not table:
        raise UsageError(
            f'{path}: no accounts: add one as [accounts.NAME] with key_env = "ITS_KEY_VARIABLE"'
        )
    for name in table:
        if not str(name).strip() or str(name) != str(name).strip():
            raise UsageError(
                f"{path}: account {str(name)!r}: a name with no spaces around it is needed: a "
                "row's account cell is read without them (a blank cell names no account)"
            )
    return {str(name): _account(path, str(name), entry, config) for name, entry in table.items()}


def _account(path: Path, name: str, entry: Any, config: RunConfig) -> Account:
    where = f"{path}: account {name!r}"
    if not isinstance(entry, dict):
        raise UsageError(f"{where}: must be a table [accounts.{name}], got {entry!r}")
    for key in entry:
        if key not in _KEYS:
            if key in ("key", "api_key"):  # never echo what may be a key
                raise UsageError(
                    f"{where}: {key!r}: an accounts file never holds a key; put it in an "
                    'environment variable and name that variable: key_env = "..."'
                )
            close = difflib.get_close_matches(key, _KEYS, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise UsageError(f"{where}: unknown setting {key!r}{hint}; known: {', '.join(_KEYS)}")
    key_env = entry.get("key_env")
    if not _variable_name(key_env):
        # Never echoed: what is there instead of a variable's name may be the key itself.
        given = "nothing" if key_env is None else "a value that is no variable's name (not shown)"
        raise UsageError(
            f"{where}: key_env must name the environment variable holding its key "
            f'(key_env = "ACME_SMARTLEAD_KEY"), not hold the key, got {given}'
        )
    rate = entry.get("rate")
    if rate is None:
        rates = config.rates
    else:
        texts = [rate] if isinstance(rate, str) else rate
        if not isinstance(texts, list) or not texts:
            raise UsageError(f'{where}: rate must be a list like ["10/2", "60/60"], got {rate!r}')
        try:
            rates = with_published(tuple(Rate.parse(str(text)) for text in texts))
        except ValueError as exc:
            raise UsageError(f"{where}: rate: {exc}") from None
    if problem := guard_problem(config.guard, rates):
        raise UsageError(f"{where}: {problem} (--guard holds for every account)")
    base_url = entry.get("base_url", config.base_url)
    if not isinstance(base_url, str):
        raise UsageError(f"{where}: base_url must be a URL in quotes, got {base_url!r}")
    return Account(name, key_env, rates, check_base_url(base_url, f"{where}: base_url"))


def _variable_name(value: object) -> TypeGuard[str]:
    """Whether ``value`` is a plausible environment variable's name, and not a key pasted in
    its place: letters, digits and underscores, with no long word mixing letters and digits."""
    if not isinstance(value, str) or not _ENV_NAME.fullmatch(value):
        return False
    return not any(_KEY_LIKE.fullmatch(word) for word in value.split("_"))


def account_keys(
    path: Path, accounts: Mapping[str, Account], environ: Mapping[str, str]
) -> dict[str, str]:
    """Each account's key, from its variable; one missing is an error naming the variable."""
    keys: dict[str, str] = {}
    for account in accounts.values():
        key = read_key(environ, account.key_env)
        if not key:
            unset = key_not_set(account.key_env, "that account's")
            raise UsageError(
                f"{path}: account {account.name!r}: the environment variable {unset}; "
                "nothing was sent"
            )
        keys[account.name] = key
    return keys


def account_error(cell: str, accounts: Mapping[str, Account], path: Path) -> str:
    """Why a row's ``account`` cell (stripped) names no account of ``path``; "" if it does."""
    if cell in accounts:
        return ""
    names = ", ".join(accounts)
    if not cell:
        return f"account: missing (the accounts of {path}: {names})"
    close = difflib.get_close_matches(cell, list(accounts), n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return f"account: {cell!r} is not in {path}{hint}; its accounts: {names}"


def assign(validation: Validation, accounts: Mapping[str, Account], path: Path) -> Validation:
    """``validation`` with rows naming no account, or one ``path`` does not have, invalid."""
    rows: list[Row] = []
    rejections = list(validation.rejections)
    for row in validation.rows:
        error = account_error(row.account or "", accounts, path)
        if error:
            rejections.append(Rejection(row.number, row.campaign_id, error))
        else:
            rows.append(row)
    rejections.sort(key=lambda rejection: rejection.number)
    return Validation(tuple(rows), tuple(rejections))


def check_column(input_path: Path, columns: Sequence[str], accounts: Accounts | None) -> None:
    """An accounts file needs an ``account`` column to pick from, and that column an accounts
    file to name its accounts: either alone is an error before anything is sent."""
    if accounts is None and ACCOUNT in columns:
        raise UsageError(
            f"{input_path}: has an {ACCOUNT!r} column but no accounts file is given: give "
            '--accounts FILE (or accounts = "..." in the job file); nothing was sent'
        )
    if accounts is not None and ACCOUNT not in columns:
        raise UsageError(
            f"{input_path}: no {ACCOUNT!r} column to pick each row's account of "
            f"{accounts.path} ({', '.join(accounts.accounts)}); nothing was sent"
        )


def summary_lines(
    accounts: Mapping[str, Account],
    counts: Mapping[str, Counter[Status]],
    by_account: Mapping[str, RunStats],
) -> list[str]:
    """One line per account: its rows by status, its requests, 429s, time, and why it stopped.
    ``counts``: each account's rows of each status, by the name in their ``account`` cells."""
    lines = []
    for name in accounts:
        counted = counts.get(name)
        if not counted:
            continue
        parts = ", ".join(f"{counted[s]} {s.value}" for s in Status if counted[s])
        line = f"account {name}: {count(counted.total(), 'row')} ({parts})"
        stats = by_account.get(name)
        if stats is not None:
            line += (
                f"; {count(stats.requests, 'request')}, {stats.throttled} answered 429, "
                f"in {stats.sending_seconds:.1f}s"
            )
            if stats.aborted:
                line += f"; {stats.aborted}"
        lines.append(line)
    return lines


@dataclass(frozen=True, slots=True)
class Accounts:
    """A run's accounts file as read; ``with_keys`` gives the accounts its rows use."""

    path: Path
    accounts: dict[str, Account]
    environ: Mapping[str, str] | None = field(default=None, repr=False)  # None: no key needed

    @classmethod
    def load(cls, config: RunConfig, environ: Mapping[str, str] | None) -> Accounts | None:
        """The accounts file ``config.accounts`` (None without one: see ``sending_with``). Their
        keys are read from ``environ`` by ``with_keys``; a dry run, --simulate or no ``environ``
        needs none."""
        if config.accounts is None:
            return None
        accounts = read_accounts(config.accounts, config)
        needed = not (config.dry_run or config.simulate)
        return cls(config.accounts, accounts, environ if needed else None)

    def with_keys(self, used: Collection[str]) -> dict[str, Account]:
        """The accounts ``used`` by the input's rows, each with its key, from its variable: one
        not set is an error naming it, before anything is sent. Accounts no row names need no
        key, so one accounts file serves every client's plan."""
        chosen = {name: account for name, account in self.accounts.items() if name in used}
        if self.environ is None:
            return chosen
        keys = account_keys(self.path, chosen, self.environ)
        return {name: replace(account, key=keys[name]) for name, account in chosen.items()}


def sending_with(
    config: RunConfig, accounts: Accounts | None, key: str, used: Collection[str]
) -> dict[str, Account]:
    """The accounts a run sends with, by name, each with its key: those of its accounts file
    that its rows to send name (``used``); without an accounts file, its one key (``key``, from
    SMARTLEAD_API_KEY) at --base-url and --rate, named "", if it has rows to send."""
    if accounts is not None:
        return accounts.with_keys(used)
    one = Account("", API_KEY_ENV, config.rates, config.base_url, key)
    return {"": one} if "" in used else {}
