"""``bulkrunner plan``: read the account's current state as a real run would (the same read and
plan stages, through the same connection, with its retries and --max-wait), then say what each
row would change, how many rows would change, and how long the run would take; write nothing to
the account. The report has each row as the run would leave it, but ``dry_run`` for a row it
would send, with ``before`` and ``after``. A plan is streamed a batch at a time as a run is.

It needs a key to read with (SMARTLEAD_API_KEY, --accounts or --simulate): without one it is a
usage error, as for ``run`` (the offline preview is ``run --dry-run``). A plan of a backup is
the plan of its rollback: it shows the campaigns changed since the run (``drifted``). With
``--out PLAN`` the plan is saved for ``run --plan`` (``records.saved_plan``); with
``--exit-code`` it exits ``CHANGES`` when rows would change.
"""

from __future__ import annotations

import logging
import os
from collections import Counter
from collections.abc import Mapping
from contextlib import ExitStack, closing
from dataclasses import dataclass, field, replace
from typing import TextIO

from bulkrunner.commands.drift import header_of, of_backup
from bulkrunner.commands.dry_run import opened
from bulkrunner.commands.recording import recorded
from bulkrunner.commands.reporting import exit_code, show_summary, typed, write_report
from bulkrunner.commands.resumption import check_paths, check_preview_path
from bulkrunner.commands.streamed import Stream, send
from bulkrunner.config.environment import API_KEY_ENV, read_key
from bulkrunner.config.paths import PLAN, default_report_path, is_backup, lock_path
from bulkrunner.config.run_config import RunConfig
from bulkrunner.errors import ExitCode, UsageError
from bulkrunner.model import REAL_CLOCK, Changes, Clock, Outcome, Row, Status, count
from bulkrunner.output.events import show
from bulkrunner.output.hints import apply_command
from bulkrunner.output.planning import SHOWN_CHANGES, Duration, Forecast, Requests
from bulkrunner.output.summary import Summary
from bulkrunner.records.locks import RunLock
from bulkrunner.records.saved_plan import PlanWriter, read_header
from bulkrunner.sending.interrupts import Interrupts
from bulkrunner.sending.pipeline import Pipeline

log = logging.getLogger("bulkrunner")


@recorded("plan")
def plan_job(
    config: RunConfig,
    out: TextIO,
    environ: Mapping[str, str] = os.environ,
    clock: Clock = REAL_CLOCK,
) -> ExitCode:
    """``bulkrunner plan``: the report and the forecast of a run, sending nothing."""
    key = read_key(environ)
    if not (key or config.simulate or config.accounts):
        raise UsageError(
            f"{API_KEY_ENV} is not set: plan reads the account's current state with your "
            "SmartLead API key (or --accounts, or --simulate to read the embedded simulator); "
            "the offline preview, which reads nothing, is `bulkrunner run --dry-run`"
        )
    started = clock.wall()
    config = replace(
        config, report=config.report or default_report_path(config.input, started, PLAN)
    )
    assert config.report is not None
    report_path = config.report
    check_paths(config)
    check_preview_path(report_path, "plan")
    drift = None
    if is_backup(config.input):  # the plan of a rollback
        config, drift, missing = of_backup(config)
        if missing:
            log.warning("%s: its drift cannot be shown", missing)
    if config.out is not None:
        _check_out(config)
    source, ids = opened(config)
    stream = Stream.of(config, source, environ, key, clock, ids=ids)
    stream.drift = drift
    found = _Found(config)
    if stream.rows.operation.identity is not None:  # leads: counted by campaign
        found.campaigns = {}
        stream.rows.on_known = found.known
    with Interrupts() as interrupts, ExitStack() as held, closing(stream.rows):
        stream.survey_and_lock(held, started)
        if config.out is not None:
            header = header_of(config, stream.sending, started)
            operation, wire = stream.rows.operation, stream.rows.wire
            custom = [name for name in source.columns if operation.custom(name, wire)]
            found.saved = held.enter_context(
                PlanWriter(config.out, header, operation, source.columns, custom)
            )
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
        if found.saved is not None:
            _save(found.saved, config, out, complete=stats.aborted is None and not stopped)
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
    code = exit_code(counts, stats.aborted is not None)
    if config.exit_code and code is ExitCode.OK and counts[Status.DRY_RUN]:
        return ExitCode.CHANGES
    return code


def _check_out(config: RunConfig) -> None:
    """Refuse, before the account is read, a --out that would overwrite the input, a backup,
    or a file that is not a saved plan (a plan saved before is replaced)."""
    out, report = config.out, config.report
    assert out is not None
    assert report is not None
    if is_backup(out) or out.resolve() in (
        config.input.resolve(),
        report.resolve(),
    ):
        raise UsageError(
            f"{out}: --out would overwrite the input, the report or a backup; choose another"
        )
    if out.exists():
        try:
            read_header(out)
        except UsageError:
            raise UsageError(
                f"{out}: exists and is not a saved plan: --out replaces only a plan"
            ) from None


def _save(saved: PlanWriter, config: RunConfig, out: TextIO, *, complete: bool) -> None:
    """The plan moved into place, and how to apply it; none when the plan did not finish."""
    assert config.out is not None
    if not complete:
        log.warning("%s: not saved: the plan did not finish (see the report)", config.out)
        return
    path = saved.commit()
    command = apply_command(config, path)
    show(
        out,
        "plan_saved",
        [f"plan saved: {path} ({count(saved.rows, 'row')} to change); to apply it: {command}"],
        plan=str(path),
        rows=saved.rows,
        command=command,
    )


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
    drifted: dict[int, str] = field(default_factory=dict)  # the first rows drifted, with why
    saved: PlanWriter | None = None  # the plan being saved (--out)
    _batch: list[Row] = field(default_factory=list)  # the batch at hand's rows to send
    _to_save: list[tuple[Row, Changes]] = field(default_factory=list)  # and all of them

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
        for number in sorted(planned.drifted)[: max(0, SHOWN_CHANGES - len(self.drifted))]:
            self.drifted[number] = planned.drifted[number]
        if self.saved is not None:
            self._to_save += [(row, planned.changes[row.number]) for row in planned.send]
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
        removing = not pipeline.operation.backed_up  # a rollback's removals
        for row in planned.send:
            campaigns.setdefault(row.campaign_id, Counter())["remove" if removing else "add"] += 1
        there = "gone" if removing else "already"
        for number, outcome in planned.known.items():
            why = "missing" if number in planned.missing else "refused"
            word = there if outcome.status is Status.UNCHANGED else why
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
        if self.saved is not None:  # the batch's rows to send, in the input's order
            self._to_save.sort(key=lambda each: each[0].number)
            rows = [row for row, _ in self._to_save]
            self.saved.add(rows, {row.number: changes for row, changes in self._to_save})
            self._to_save = []

    def forecast(self, stopped: list[Pipeline], invalid: int) -> Forecast:
        """What the plans say a run would do: the accounts that were read (a stopped account's
        rows are ``not_attempted``, with the reason, as a run would leave them), and the
        ``invalid`` rows."""
        durations = []
        for name, pipeline in self.pipelines.items():
            if pipeline in stopped:
                continue
            # a run reads first unless it needs nothing read (--no-skip-unchanged --no-backup;
            # a lead is always read: its id)
            config = self.config
            read = config.skip_unchanged or not config.no_backup or pipeline.operation.reads_leads
            reads = pipeline.stats.reads if read else 0
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
            drifted=self.counts[Status.DRIFTED],
            drift_lines=[self.drifted[n] for n in sorted(self.drifted)],
        )
