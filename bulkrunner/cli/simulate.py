"""``bulkrunner simulate``: the embedded SmartLead simulator in the foreground, with the faults,
limits and shapes its flags ask for."""

from __future__ import annotations

import argparse
import os

from bulkrunner.config.environment import API_KEY_ENV, STATE_DIR_ENV, read_key
from bulkrunner.config.folders import STATE_FOLDER, simulated_accounts_path
from bulkrunner.errors import UsageError

# `bulkrunner --help` imports no more than this: a command's options (the configuration's
# declarations) when that command is given, logging, JSON and the rest once it is parsed.
TYPE_CHECKING = False  # typing.TYPE_CHECKING, without importing typing (`--help` needs none)
if TYPE_CHECKING:
    from typing import Any


_BOTH = "both"  # the simulator takes either vocabulary, or either schedule shape


def add_options(parser: argparse.ArgumentParser) -> None:
    from bulkrunner.config.options import rate_argument
    from bulkrunner.operations.fields import ScheduleShape, Vocabulary
    from bulkrunner.simulator.faults import FAULT_KINDS

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
        choices=[*(v.value for v in Vocabulary), _BOTH],
        default=Vocabulary.DOCUMENTED.value,
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
    for kind in FAULT_KINDS:
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
    shapes = ", ".join(f"{shape} ({shape.meaning})" for shape in ScheduleShape)
    parser.add_argument(
        "--schedule-shape",
        choices=[*(shape.value for shape in ScheduleShape), _BOTH],
        default=_BOTH,
        help=f"schedule bodies accepted: {shapes} or {_BOTH} (default)",
    )
    parser.add_argument(
        "--cron-as-string",
        action="store_true",
        help="read scheduler_cron_value back as a JSON string instead of an object",
    )
    _add_lead_options(parser)
    parser.add_argument("-v", "--verbose", action="store_true", help="log every request")
    _reset_options(parser)


def _reset_options(parser: argparse.ArgumentParser) -> None:
    """The options of forgetting the simulated account that ``--simulate`` keeps."""
    parser.add_argument(
        "--reset",
        action="store_true",
        help="forget the simulated account that --simulate keeps between commands, and exit: "
        "the next --simulate command starts afresh",
    )
    parser.add_argument(
        "--state-dir",
        metavar="FOLDER",
        help=f"the state folder whose simulated account --reset forgets (default: "
        f"${STATE_DIR_ENV}, else {STATE_FOLDER})",
    )


def _add_lead_options(parser: argparse.ArgumentParser) -> None:
    """The flags of the simulated account's leads (``SimulatorConfig``'s lead fields, which
    refuses a value it does not know, naming those it does: ``--help`` imports no simulator)."""
    parser.add_argument(
        "--lead-answer",
        default="detailed",
        metavar="FORM",
        help="the form of a lead upload's answer: detailed (counts with details) or counts "
        "(added_count and skipped_count only) (default %(default)s)",
    )
    parser.add_argument(
        "--lead-added-field",
        default="upload_count",
        metavar="FIELD",
        help="which field of the detailed answer counts the leads added, upload_count or "
        "total_leads (the other counts the leads sent) (default %(default)s)",
    )
    parser.add_argument(
        "--leads-per-request",
        type=int,
        default=400,
        metavar="N",
        help="the most leads one upload may carry (default %(default)s)",
    )
    parser.add_argument(
        "--lead-capacity",
        type=int,
        metavar="N",
        help="the most leads the account holds, a lead counted once per campaign (default: none)",
    )
    parser.add_argument(
        "--seed-leads",
        type=int,
        default=0,
        metavar="N",
        help="leads each campaign of --campaigns starts with (default 0)",
    )
    lists = (
        ("--block-list", "addresses and domains blocked in every campaign"),
        ("--bounced", "addresses that bounced before: never added"),
        ("--unsubscribed", "addresses unsubscribed from the account"),
        ("--last-step", "addresses on their last sequence step: resuming them answers 500"),
    )
    for flag, what in lists:
        parser.add_argument(flag, metavar="FILE", help=f"{what}, one a line")
    parser.add_argument(
        "--client-block-list",
        metavar="CLIENT_ID=FILE",
        action="append",
        help="addresses and domains blocked in the campaigns of that client, one a line; "
        "repeatable",
    )


def simulate(args: argparse.Namespace) -> int:
    if args.reset:
        return reset(args.state_dir)
    from bulkrunner.model import Rate
    from bulkrunner.operations.fields import ScheduleShape, Vocabulary
    from bulkrunner.simulator import FaultPlan, SimulatorConfig, serve_forever
    from bulkrunner.simulator.faults import FAULT_KINDS

    rates = tuple(Rate.parse(text) for text in args.rate or ())
    try:
        faults = FaultPlan(
            probabilities={
                kind: p for kind in FAULT_KINDS if (p := getattr(args, f"fault_{kind}")) > 0
            },
            seed=args.seed,
            retry_after=args.retry_after,
            slow_seconds=args.slow_seconds,
        )
        config = SimulatorConfig(
            api_key=read_key(os.environ) or "sim-key",
            vocabulary=None if args.vocabulary == _BOTH else Vocabulary(args.vocabulary),
            rates=rates,
            campaigns=_campaigns(args.campaigns) if args.campaigns else None,
            faults=faults,
            latency=args.latency,
            jitter=args.jitter,
            jitter_seed=args.seed,
            limit_retry_after=args.limit_retry_after,
            schedule_shape=(
                None if args.schedule_shape == _BOTH else ScheduleShape(args.schedule_shape)
            ),
            cron_as_string=args.cron_as_string,
            **_lead_config(args),
        )
    except ValueError as exc:
        raise UsageError(f"simulate: {exc}") from None
    if not 0 <= args.port <= 65535:
        raise UsageError(f"simulate: port must be between 0 and 65535, got {args.port}")
    key_from = f"the key in {API_KEY_ENV}" if config.api_key != "sim-key" else "the key sim-key"
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


def reset(folder: str | None) -> int:
    """``--reset``: the simulated account of ``--simulate`` forgotten."""
    from pathlib import Path

    path = simulated_accounts_path(Path(folder) if folder else None)
    try:
        path.unlink()
    except FileNotFoundError:
        print(f"nothing to reset: no simulated account is kept in {path.parent}", flush=True)
        return 0
    except OSError as exc:
        raise UsageError(f"{path}: cannot remove it ({exc.strerror or exc})") from None
    print(f"the simulated account starts afresh: {path} removed", flush=True)
    return 0


def _lead_config(args: argparse.Namespace) -> dict[str, Any]:
    """``SimulatorConfig``'s lead fields from the flags; UsageError naming a file it cannot
    read or a client id that is not one."""
    clients: dict[int, list[str]] = {}
    for given in args.client_block_list or ():
        client, equals, path = given.partition("=")
        if not equals or not (client.strip().isascii() and client.strip().isdigit()):
            raise UsageError(f"--client-block-list: expected CLIENT_ID=FILE, got {given!r}")
        clients[int(client)] = _entries(path, "--client-block-list")
    return {
        "lead_answer": args.lead_answer,
        "lead_added_field": args.lead_added_field,
        "leads_per_request": args.leads_per_request,
        "lead_capacity": args.lead_capacity,
        "seeded_leads": args.seed_leads,
        "block_list": _entries(args.block_list, "--block-list"),
        "client_block_lists": clients,
        "bounced": _entries(args.bounced, "--bounced"),
        "unsubscribed": _entries(args.unsubscribed, "--unsubscribed"),
        "last_step_leads": _entries(args.last_step, "--last-step"),
    }


def _entries(path: str | None, flag: str) -> list[str]:
    """The entries of a list file: one a line, blank lines and ``#`` comments left out."""
    if path is None:
        return []
    try:
        with open(path, encoding="utf-8-sig") as handle:
            lines = [line.strip() for line in handle]
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"{flag}: cannot read {path} ({exc})") from None
    return [line for line in lines if line and not line.startswith("#")]


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
