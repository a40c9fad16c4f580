"""``bulkrunner plan``: read the account's current state as a real run would (the same read and
plan stages, through the same connection, with its retries and --max-wait), then say what each
row would change, how many rows would change, and how long the run would take; write nothing to
the account. The report has each row as the run would leave it, but ``dry_run`` for a row it
would send, with ``before`` and ``after``. A plan is streamed a batch at a time as a run is.

With no key to read with (no SMARTLEAD_API_KEY, --accounts or --simulate) it is the offline
dry run, and says so.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Mapping
from contextlib import ExitStack, closing
from dataclasses import dataclass, field, replace
from typing import TextIO

from bulkrunner.commands.dry_run import opened
from bulkrunner.commands.reporting import exit_code, show_summary, typed, write_report
from bulkrunner.commands.resumption import check_paths, unused
from bulkrunner.commands.run import run_job
from bulkrunner.commands.streamed import Stream, send
from bulkrunner.config.environment import API_KEY_ENV
from bulkrunner.config.paths import default_report_path, lock_path
from bulkrunner.config.redaction import remember
from bulkrunner.config.run_config import RunConfig
from bulkrunner.errors import ExitCode
from bulkrunner.model import REAL_CLOCK, Changes, Clock, Outcome, Row, Status
from bulkrunner.output.events import show
from bulkrunner.output.planning import SHOWN_CHANGES, Duration, Forecast, Requests
from bulkrunner.output.summary import Summary
from bulkrunner.records.locks import RunLock
from bulkrunner.sending.interrupts import Interrupts
from bulkrunner.sending.pipeline import Pipeline


def plan_job(
    config: RunConfig,
    out: TextIO,
    environ: Mapping[str, str] = os.environ,
    clock: Clock = REAL_CLOCK,
) -> ExitCode:
    """``bulkrunner plan``: the report and the forecast of a run, sending nothing."""
    key = environ.get(API_KEY_ENV, "")
    remember(key)
    if not (key or config.simulate or config.accounts):
        show(
            out,
            "plan_offline",
            [
                f"plan: {API_KEY_ENV} is not set, so nothing is read from the account: "
                "checking the file only, as run --dry-run does (set the key, or use --simulate, "
                "to see what would change)"
            ],
        )
        return run_job(replace(config, dry_run=True), out, environ, clock)
    started = clock.wall()
    config = replace(
        config, report=config.report or unused(default_report_path(config.input, started))
    )
    assert config.report is not None
    report_path = config.report
    check_paths(config)
    source, ids = opened(config)
    stream = Stream.of(config, source, environ, key, clock, ids=ids)
    found = _Found(config)
    if stream.rows.operation.identity is not None:  # leads: counted by campaign
        found.campaigns = {}
        stream.rows.on_known = found.known
    with Interrupts() as interrupts, ExitStack() as held, closing(stream.rows):
        stream.survey_and_lock(held, started)
        session = send(
            stream, interrupts, planning=True, planned=found.planned, hand_over=found.batch
        )
        stats = session.stats
        stopped = [p for p in session.pipelines.values() if p.stats.aborted]
        # shown unless nothing was read: an account whose key was rejected stops only its rows
        if session.aborted is None and not (
            session.pipelines and len(stopped) == len(session.pipelines)
        ):
            forecast = found.forecast(stopped, stream.survey.invalid)
            show(out, "plan", forecast.lines(each_row=not config.quiet), **forecast.fields())
        stream.rows.unreached = stats.aborted or "plan interrupted"
        counts: Counter[Status] = Counter()
        by_account: dict[str, Counter[Status]] = {}
        written = write_report(
            source,
            stream.numbering,
            stream.results(counts, by_account),
            report_path,
            clock,
            out=out,
            lock=lambda: RunLock(lock_path(report_path), clock.wall()),
            rows=stream.report_rows,
            examples=lambda: stream.survey.types if stream.rows.types else typed(source),
        )
    summary = Summary.counted(counts, stats, stream.ceiling(), written)
    show_summary(out, summary, source.ignored)
    return exit_code(counts, stats.aborted is not None)


@dataclass
class _Found:
    """What the batches' plans found, kept as counts and the first rows to send."""

    config: RunConfig
    counts: Counter[Status] = field(default_factory=Counter)
    shown: list[Row] = field(default_factory=list)
    changes: dict[int, Changes] = field(default_factory=dict)
    irreversible: dict[int, list[str]] = field(default_factory=dict)
    to_change: int = 0
    irreversible_rows: int = 0
    missing: int = 0
    writes: Counter[str] = field(default_factory=Counter)  # by account
    sent: Counter[str] = field(default_factory=Counter)  # rows to send, by account
    pipelines: dict[str, Pipeline] = field(default_factory=dict)
    campaigns: dict[int | None, Counter[str]] | None = None  # a leads plan's, by campaign
    _batch: list[Row] = field(default_factory=list)  # the batch at hand's rows to send

    def planned(self, pipeline: Pipeline) -> None:
        """One account's batch planned."""
        planned, name = pipeline.plan, pipeline.connection.name or ""
        assert planned is not None
        self.pipelines[name] = pipeline
        if pipeline.stats.aborted:
            return
        operation, wire = pipeline.operation, pipeline.wire
        self.to_change += len(planned.send)
        self.irreversible_rows += len(planned.irreversible)
        self.missing += len(planned.missing)
        self.sent[name] += len(planned.send)
        self.writes[name] += Requests.of(planned.send, 0, operation, wire, False).writes
        if self.campaigns is not None:
            self._count(pipeline)
        for row in planned.send[:SHOWN_CHANGES]:
            self._batch.append(row)
            self.changes[row.number] = planned.changes[row.number]
            if row.number in planned.irreversible:
                self.irreversible[row.number] = planned.irreversible[row.number]

    def _count(self, pipeline: Pipeline) -> None:
        """A leads plan: each campaign's rows to add, already there, refused."""
        planned, campaigns = pipeline.plan, self.campaigns
        assert planned is not None
        assert campaigns is not None
        of = {row.number: row.campaign_id for row in pipeline.rows}
        for row in planned.send:
            campaigns.setdefault(row.campaign_id, Counter())["add"] += 1
        for number, outcome in planned.known.items():
            why = "missing" if number in planned.missing else "refused"
            word = "already" if outcome.status is Status.UNCHANGED else why
            campaigns.setdefault(of[number], Counter())[word] += 1

    def known(self, number: int, campaign: int | None, outcome: Outcome) -> None:
        """A row of the input that ends unsent: counted under its campaign."""
        assert self.campaigns is not None
        word = {
            Status.INVALID: "invalid",
            Status.SUPPRESSED: "suppressed",
            Status.UNCHANGED: "repeated",
            Status.SUCCEEDED: "added",
        }.get(outcome.status, "refused")
        self.campaigns.setdefault(campaign, Counter())[word] += 1

    def batch(self, outcomes: Mapping[int, Outcome], changes: Mapping[int, Changes]) -> None:
        """A batch ended: its rows counted, and the first rows to send kept."""
        self.counts.update(outcome.status for outcome in outcomes.values())
        room = SHOWN_CHANGES - len(self.shown)
        self._batch.sort(key=lambda row: row.number)
        self.shown += self._batch[: max(0, room)]
        kept = {row.number for row in self.shown}
        self.changes = {n: c for n, c in self.changes.items() if n in kept}
        self.irreversible = {n: f for n, f in self.irreversible.items() if n in kept}
        self._batch = []

    def forecast(self, stopped: list[Pipeline], invalid: int) -> Forecast:
        """What the plans say a run would do: the accounts that were read (a stopped account's
        rows are ``not_attempted``, with the reason, as a run would leave them), and the
        ``invalid`` rows."""
        durations = []
        for name, pipeline in self.pipelines.items():
            if pipeline in stopped:
                continue
            # a run reads first unless it needs nothing read (--no-skip-unchanged --no-backup)
            reads = (
                pipeline.stats.reads
                if self.config.skip_unchanged or not self.config.no_backup
                else 0
            )
            per_campaign = pipeline.operation.reads_per_campaign
            verify = self.sent[name] * per_campaign if self.config.verify else 0
            needed = Requests(reads, self.writes[name], verify)
            account = pipeline.connection.account
            rates = account.rates if account is not None else self.config.rates
            durations.append(Duration(needed, tuple(rates), name or None))
        failed = self.counts[Status.FAILED]
        return Forecast(
            shown=self.shown,
            changes={n: dict(c) for n, c in self.changes.items()},
            irreversible=self.irreversible,
            to_change=self.to_change,
            irreversible_rows=self.irreversible_rows,
            unchanged=self.counts[Status.UNCHANGED],
            invalid=invalid,
            missing=self.missing,
            refused=failed - self.missing,
            durations=durations,
            campaigns=self.campaigns,
        )
