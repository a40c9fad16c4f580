"""Each run option is declared once (a RunConfig field) and that declaration drives the job file,
the defaults, the command line's flags and its help."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest

from bulkrunner.cli import app as cli
from bulkrunner.cli.parser import build, canonical_words
from bulkrunner.config.job_file import JOB_OPTIONS, build_config, read_job_file
from bulkrunner.config.options import EVERY, Option
from bulkrunner.config.run_config import OPTIONS, RunConfig
from bulkrunner.errors import UsageError
from bulkrunner.model import Rate
from bulkrunner.operations.fields import Vocabulary

# A value other than the default for each job-file key, as TOML, and what the RunConfig field
# should then hold (paths are checked separately: they resolve against the job file's folder).
NOT_DEFAULT: dict[str, tuple[str, Any]] = {
    "input": ('"data/in.csv"', None),
    "operation": ('"schedule"', "schedule"),
    "vocabulary": ('"long"', Vocabulary.LONG),
    "schedule_shape": ('"flat"', "flat"),
    "report": ('"out/report.csv"', None),
    "accounts": ('"accounts.toml"', None),
    "keep_columns": ('["notes", "Client Name"]', ("notes", "Client Name")),
    "base_url": ('"http://127.0.0.1:9"', "http://127.0.0.1:9"),
    "rate": ('["5/1", "50/60"]', (Rate(5, 1), Rate(10, 2), Rate(50, 60), Rate(1000, 3600))),
    "concurrency": ("9", 9),
    "max_attempts": ("2", 2),
    "timeout": ("7", 7.0),
    "outage_timeout": ("45.5", 45.5),  # (at least the timeout, 30)
    "max_wait": ("40", 40.0),
    "grace": ("0", 0.0),
    "guard": ("0.25", 0.25),
    "dry_run": ("true", True),
    "simulate": ("true", True),
    "skip_unchanged": ("false", False),
    "verify": ("true", True),
    "no_backup": ("true", True),
    "state_dir": ('"state"', None),
    "no_state": ("true", True),
    "keep": ("3", 3),
    "allow_stop": ("true", True),
    "allow_irreversible": ("true", True),
    "quiet": ("true", True),
    "progress_interval": ("3", 3.0),
    "log_format": ('"json"', "json"),
    "notify": ('"http://127.0.0.1:9/hook"', "http://127.0.0.1:9/hook"),
    "notify_env": ('"TEST_WEBHOOK"', "TEST_WEBHOOK"),  # set by the fixture below
    "notify_on": ("[3, 1]", (1, 3)),
    "heartbeat": ('"http://127.0.0.1:9/ping"', "http://127.0.0.1:9/ping"),
    "heartbeat_env": ('"TEST_WEBHOOK"', "TEST_WEBHOOK"),
    "verbose": ("true", True),
    "resume": ("true", True),
    "ignore_global_block_list": ("true", True),
    "ignore_unsubscribe_list": ("true", True),
    "ignore_duplicate_leads_in_other_campaign": ("true", True),
    "leads_per_request": ("400", 400),
    "suppress": ('"suppressed.csv"', None),
    "campaign_id": ("[5, 6]", (5, 6)),
}


@pytest.fixture(autouse=True)
def no_ambient_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SMARTLEAD_BASE_URL", raising=False)
    monkeypatch.setenv("TEST_WEBHOOK", "http://127.0.0.1:9/hook/from-the-environment")
    monkeypatch.setenv("COLUMNS", "1000")  # help lines unwrapped, so texts compare whole


def by_key(key: str) -> Option:
    (found,) = [each for each in OPTIONS if each.key == key]
    return found


def test_the_declarations_are_the_fields_of_run_config() -> None:
    fields = {field.name: field for field in dataclasses.fields(RunConfig)}
    assert [each.key for each in OPTIONS][:4] == [
        "input",
        "operation",
        "vocabulary",
        "schedule_shape",
    ]
    for each in OPTIONS:
        assert each.field in fields
        if each.key != "input":
            assert each.default == fields[each.field].default
    assert by_key("rate").field == "rates"


def test_every_job_file_option_is_covered_here() -> None:
    assert set(JOB_OPTIONS) == set(NOT_DEFAULT)
    assert "fresh" not in JOB_OPTIONS  # a flag only: a job that always starts over makes no sense


@pytest.mark.parametrize("key", sorted(NOT_DEFAULT))
def test_every_option_is_a_job_file_key_that_reaches_the_config(key: str, tmp_path: Path) -> None:
    text, expected = NOT_DEFAULT[key]
    job = tmp_path / "job.toml"
    lines = [f"{key} = {text}"] if key == "input" else ['input = "in.csv"', f"{key} = {text}"]
    job.write_text("\n".join(lines) + "\n")
    config = build_config(read_job_file(job), {})
    value = getattr(config, by_key(key).field)
    if by_key(key).path:  # relative to the job file's folder
        assert value == (tmp_path / text.strip('"')).resolve()
    else:
        assert value == expected
        assert value != by_key(key).default


def test_dashes_in_a_job_file_key_are_accepted(tmp_path: Path) -> None:
    job = tmp_path / "job.toml"
    job.write_text('input = "in.csv"\nallow-stop = true\nschedule-shape = "flat"\n')
    config = build_config(read_job_file(job), {})
    assert (config.allow_stop, config.schedule_shape) == (True, "flat")


def test_the_defaults_are_the_declared_ones() -> None:
    config = build_config({"input": "in.csv"}, {})
    for each in OPTIONS:
        if each.key != "input":
            assert getattr(config, each.field) == each.default, each.key
    assert (config.operation, config.allow_stop, config.schedule_shape) == (
        "settings",
        False,
        "nested",
    )


def help_of(command: str, capsys: pytest.CaptureFixture[str]) -> str:
    with pytest.raises(SystemExit) as exit_:
        cli.main([command, "--help"])
    assert exit_.value.code == 0
    return " ".join(capsys.readouterr().out.split())


@pytest.mark.parametrize("command", sorted(EVERY))
def test_each_command_has_the_flags_and_help_of_the_options_it_takes(
    command: str, capsys: pytest.CaptureFixture[str]
) -> None:
    shown = help_of(command, capsys)
    # each command that takes it lists every operation
    shown_ops = "--operation {settings,schedule,status,email-accounts,leads,lead-status}"
    assert shown_ops in shown
    for each in OPTIONS:
        long_flag = each.flags[-1]
        if command in each.commands:
            assert long_flag in shown, (command, long_flag)
            assert " ".join(each.help_text().split()) in shown, (command, each.key)
        else:
            assert f"{long_flag} " not in shown, (command, each.key)
            # (a whole flag: `[--out` begins `[--outage-timeout`, `[--keep` `[--keep-columns`)
            assert f"[{long_flag} " not in shown, (command, each.key)
            assert f"[{long_flag}]" not in shown, (command, each.key)


@pytest.mark.parametrize(
    ("key", "commands"),
    [
        ("operation", {"run", "validate", "retry", "rollback", "plan", "export"}),
        ("client_id", {"export"}),
        ("status", {"export"}),
        ("output", {"export"}),
        ("allow_stop", {"run", "retry", "validate", "plan"}),  # it decides whether STOPPED is valid
        # and a rollback may meet a field emptied since the run
        ("allow_irreversible", {"run", "retry", "rollback", "validate", "plan"}),
        ("schedule_shape", {"run", "retry", "rollback", "plan"}),
        # plan reads the account as a run does first, and writes nothing; doctor reads it once
        ("max_wait", {"run", "retry", "rollback", "plan", "export", "doctor"}),
        ("rate", {"run", "retry", "rollback", "plan", "export", "doctor"}),
        ("accounts", {"run", "retry", "rollback", "validate", "plan", "doctor"}),
        ("concurrency", {"run", "retry", "rollback", "plan", "export"}),
        ("dry_run", {"run", "retry", "rollback"}),
        ("resume", {"run", "retry", "rollback"}),
        ("outage_timeout", {"run", "retry", "rollback", "plan", "export", "doctor"}),
    ],
)
def test_the_new_options_belong_to_the_commands_asked_for(key: str, commands: set[str]) -> None:
    assert by_key(key).commands == commands


def test_help_shows_the_declared_defaults(capsys: pytest.CaptureFixture[str]) -> None:
    shown = help_of("run", capsys)
    assert "parallel requests (default 4, at most 1000)" in shown
    assert "per-request timeout (default 30)" in shown
    assert "(default 10/2 60/60 1000/3600)" in shown
    assert "(default nested)" in shown
    assert "allow rows that set status STOPPED, which cannot be undone" in shown


def config_of(*words: str) -> RunConfig:
    parser = build()
    args = parser.parse_args(list(words))
    args.words = canonical_words(parser, args)
    return cli._config(args)


def test_the_new_flags_reach_the_config_and_win_over_the_job_file(tmp_path: Path) -> None:
    job = tmp_path / "job.toml"
    job.write_text('input = "in.csv"\noperation = "status"\nschedule_shape = "nested"\n')
    config = config_of(
        "run", str(job), "--operation", "schedule", "--schedule-shape", "flat", "--allow-stop"
    )
    assert (config.operation, config.schedule_shape, config.allow_stop) == (
        "schedule",
        "flat",
        True,
    )
    # the command as recorded for hints to paste carries them
    assert config.command == (
        "run",
        str(job),
        "--operation",
        "schedule",
        "--schedule-shape",
        "flat",
        "--allow-stop",
    )
    retry = config_of("retry", str(tmp_path / "r.csv"), "--operation", "status", "--allow-stop")
    assert (retry.operation, retry.allow_stop) == ("status", True)
    assert config_of("validate", "in.csv", "--operation", "email-accounts").operation == (
        "email-accounts"
    )


@pytest.mark.parametrize(
    ("words", "complaint"),
    [
        (["run", "in.csv", "--operation", "pause"], "--operation: invalid choice: 'pause'"),
        (["run", "in.csv", "--schedule-shape", "round"], "invalid choice: 'round'"),
        # validate sends nothing: no wire shape
        (["validate", "in.csv", "--schedule-shape", "flat"], "unrecognized arguments"),
        (["rollback", "r.csv", "--allow-stop"], "unrecognized arguments: --allow-stop"),
    ],
)
def test_flags_outside_their_choices_or_commands_are_usage_errors(
    words: list[str], complaint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_:
        cli.main(words)
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert complaint in err
    assert "Traceback" not in err


@pytest.mark.parametrize(
    ("line", "message"),
    [
        (
            'operation = "pause"',
            "option 'operation' must be one of settings, schedule, status, "
            "email-accounts, leads, lead-status, got 'pause'",
        ),
        (
            'schedule-shape = "round"',
            "option 'schedule-shape' must be one of nested, flat, got 'round'",
        ),
        (
            'vocabulary = "short"',
            "option 'vocabulary' must be one of documented, long, got 'short'",
        ),
        ('allow_stop = "yes"', "option 'allow_stop' must be bool, got 'yes'"),
        ("operation = 3", "option 'operation' must be str, got 3"),
        ("concurrency = true", "option 'concurrency' must be int, got True"),
        (
            'schedule_shap = "flat"',
            "unknown option 'schedule_shap' (did you mean 'schedule_shape'?)",
        ),
    ],
)
def test_a_bad_job_file_value_is_one_line_naming_the_file_and_key(
    line: str, message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    job = tmp_path / "job.toml"
    job.write_text(f'input = "in.csv"\n{line}\n')
    with pytest.raises(UsageError) as error:
        read_job_file(job)
    assert str(error.value) == f"{job}: {message}"
    code = cli.main(["run", str(job)])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert err == f"bulkrunner: error: {job}: {message}"


@pytest.mark.parametrize("key", sorted(NOT_DEFAULT))
def test_every_job_file_key_refuses_a_table(key: str, tmp_path: Path) -> None:
    job = tmp_path / "job.toml"
    first = "" if key == "input" else 'input = "in.csv"\n'
    job.write_text(f"{first}{key} = {{ a = 1 }}\n")
    with pytest.raises(UsageError) as error:
        read_job_file(job)
    assert str(error.value).startswith(f"{job}: option '{key}' must be ")


def test_build_config_checks_choices_given_directly() -> None:
    with pytest.raises(UsageError, match="schedule shape must be one of nested, flat, got 'x'"):
        build_config({"input": "in.csv"}, {"schedule_shape": "x"})
    with pytest.raises(UsageError, match="vocabulary must be one of documented, long, got 'x'"):
        build_config({"input": "in.csv"}, {"vocabulary": "x"})


@pytest.mark.parametrize(
    ("option", "message"),
    [
        (("--concurrency", "0"), "concurrency must be between 1 and 1000, got 0"),
        (("--concurrency", "10" * 10), f"concurrency must be between 1 and 1000, got {'10' * 10}"),
        (("--timeout", "1e400"), "timeout must be a finite number of seconds, got inf"),
        (("--guard", "inf"), "guard must be a finite number of seconds, got inf"),
        (("--max-wait", "1e999"), "max wait must be a finite number of seconds, got inf"),
        (("--grace", "inf"), "grace must be a finite number of seconds, got inf"),
    ],
)
def test_a_number_out_of_bounds_is_refused_before_anything_starts(
    option: tuple[str, str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    plan = tmp_path / "in.csv"
    plan.write_text("campaign_id,sending_limit\n1,10\n")
    code = cli.main(["run", str(plan), "--dry-run", *option])
    assert (code, capsys.readouterr().err.strip()) == (2, f"bulkrunner: error: {message}")


# --- absurd values: refused (exit 2) however they are given --------------------------------------

RATE_FORM = (
    "expected N/SECONDS with N a whole number of requests and SECONDS a positive number up to "
    "2678400 (31 days), e.g. 10/2"
)
ABSURD: list[tuple[dict[str, Any], str]] = [
    ({"guard": 2.5}, "guard must be shorter than the shortest rate window (2s, of 10/2), got 2.5"),
    (
        {"guard": 0.5, "rate": ["100/60", "3/0.5"]},
        "guard must be shorter than the shortest rate window (0.5s, of 3/0.5), got 0.5",
    ),
    (
        {"timeout": 601.0},
        "timeout must be at most the outage timeout (600s), got 601: a request that never "
        "answers would outlast the outage",
    ),
    ({"timeout": 45.0, "outage_timeout": 40.0}, "outage timeout (40s), got 45"),
    ({"rate": ["10/1e308"]}, f"invalid rate '10/1e308': {RATE_FORM}"),  # finite, yet no limit
    ({"rate": ["10/inf"]}, f"invalid rate '10/inf': {RATE_FORM}"),
    ({"rate": ["10/nan"]}, f"invalid rate '10/nan': {RATE_FORM}"),
    ({"rate": ["10/0"]}, f"invalid rate '10/0': {RATE_FORM}"),
    ({"rate": ["10/-2"]}, f"invalid rate '10/-2': {RATE_FORM}"),
]


def toml(values: dict[str, Any]) -> str:
    def value(v: Any) -> str:
        return "[" + ", ".join(f'"{each}"' for each in v) + "]" if isinstance(v, list) else repr(v)

    return "".join(f"{key} = {value(v)}\n" for key, v in values.items())


def settings_file(folder: Path) -> Path:
    path = folder / "in.csv"
    path.write_text("campaign_id,sending_limit\n1,10\n")
    return path


@pytest.mark.parametrize(("values", "message"), ABSURD)
def test_an_absurd_value_on_the_command_line_is_refused(
    values: dict[str, Any], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    flags: list[str] = []
    for key, value in values.items():
        for each in value if isinstance(value, list) else [value]:
            text = f"{each:g}" if isinstance(each, float) else str(each)
            flags += [f"--{key.replace('_', '-')}", text]
    try:
        code = cli.main(["run", str(settings_file(tmp_path)), "--dry-run", *flags])
    except SystemExit as exc:  # argparse's own errors (a --rate it cannot parse) exit so
        code = int(exc.code or 0)
    err = capsys.readouterr().err
    assert code == 2
    assert message in err
    assert "Traceback" not in err


@pytest.mark.parametrize(("values", "message"), ABSURD)
def test_an_absurd_value_in_a_job_file_is_refused(
    values: dict[str, Any], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    settings_file(tmp_path)
    job = tmp_path / "job.toml"
    job.write_text('input = "in.csv"\n' + toml(values))
    code = cli.main(["run", str(job), "--dry-run"])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert err.startswith("bulkrunner: error: ")
    assert message in err
    assert len(err.splitlines()) == 1


@pytest.mark.parametrize(("values", "message"), ABSURD)
def test_an_absurd_value_given_to_the_python_api_is_refused(
    values: dict[str, Any], message: str, tmp_path: Path
) -> None:
    import bulkrunner

    with pytest.raises(UsageError) as caught:
        bulkrunner.apply(settings_file(tmp_path), dry_run=True, **values)
    assert message in str(caught.value)


@pytest.mark.parametrize(
    ("rate", "flags", "message"),
    [
        ("10/1e308", (), f"rate: invalid rate '10/1e308': {RATE_FORM}"),
        ("10/nan", (), f"rate: invalid rate '10/nan': {RATE_FORM}"),
        (
            "3/0.5",
            ("--guard", "0.5"),
            "guard must be shorter than the shortest rate window (0.5s, of 3/0.5), got 0.5 "
            "(--guard holds for every account)",
        ),
    ],
)
def test_an_absurd_rate_in_an_accounts_file_is_refused_naming_the_file_and_account(
    rate: str,
    flags: tuple[str, ...],
    message: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    accounts = tmp_path / "accounts.toml"
    accounts.write_text(f'[accounts.acme]\nkey_env = "ACME_KEY"\nrate = ["{rate}"]\n')
    source = tmp_path / "in.csv"
    source.write_text("campaign_id,account,sending_limit\n1,acme,10\n")
    code = cli.main(["run", str(source), "--accounts", str(accounts), "--dry-run", *flags])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert err == f"bulkrunner: error: {accounts}: account 'acme': {message}"


def test_a_guard_longer_than_the_run_windows_but_not_an_accounts_is_taken(tmp_path: Path) -> None:
    """With an accounts file, the guard is checked against each account's own windows, not the
    run's default ones that no account uses."""
    accounts = tmp_path / "accounts.toml"
    accounts.write_text('[accounts.acme]\nkey_env = "ACME_KEY"\nrate = ["60/60"]\n')
    config = build_config({}, {"input": "in.csv", "accounts": str(accounts), "guard": 3.0})
    assert config.guard == 3.0
