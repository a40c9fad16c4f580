"""The end-of-run summary: rows of each status, the requests sent and the rate reached; before
it, the first rows that failed or were invalid, with their reasons."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from bulkrunner.limits.rates import ideal_seconds
from bulkrunner.model import FINE, Outcome, Rate, Status, count

if TYPE_CHECKING:  # a type only: the engine (anyio) is not for `bulkrunner validate` to load
    from bulkrunner.model import RunStats


@dataclass(frozen=True, slots=True)
class Summary:
    counts: Mapping[Status, int]
    stats: RunStats
    rates: Sequence[Rate]  # the configured limits, to compare the achieved rate with
    report_path: Path | None

    @classmethod
    def of(
        cls,
        outcomes: Mapping[int, Outcome],
        stats: RunStats,
        rates: Sequence[Rate],
        report_path: Path | None,
    ) -> Summary:
        return cls.counted(Counter(o.status for o in outcomes.values()), stats, rates, report_path)

    @classmethod
    def counted(
        cls,
        counts: Counter[Status],
        stats: RunStats,
        rates: Sequence[Rate],
        report_path: Path | None,
    ) -> Summary:
        """From the number of rows of each status (a dry run counts, it keeps no outcomes)."""
        held = stats.limits or tuple(rates)  # with a lower limit the server announced, if any
        return cls({s: counts[s] for s in Status if counts[s]}, stats, held, report_path)

    def lines(self) -> list[str]:
        total = sum(self.counts.values())
        parts = ", ".join(f"{n} {status.value}" for status, n in self.counts.items())
        lines = [f"rows: {total} ({parts or 'none'})"]
        s = self.stats
        if s.requests:
            reads = f" ({count(s.requests - s.reads, 'write')}, {count(s.reads, 'read')})"
            # one request has a round trip, not a rate
            rate = f" ({s.requests_per_second:.2f} requests/s)" if s.requests > 1 else ""
            lines.append(
                f"requests: {s.requests} sent{reads if s.reads else ''}, "
                f"{count(s.retries, 'retry', 'retries')}, "
                f"{s.throttled} answered 429, in {s.sending_seconds:.1f}s{rate}"
            )
            # Other processes' requests on the account took their share of its windows.
            ideal = ideal_seconds(s.requests + s.others, self.rates)
            others = f", {s.others} of them other processes'," if s.others else ""
            if ideal > 0 and s.sending_seconds > 0:
                lines.append(
                    f"rate: {min(1.0, ideal / s.sending_seconds):.0%} of the ceiling "
                    f"(the limits {', '.join(map(str, self.rates))} allow "
                    f"{count(s.requests + s.others, 'request')}{others} in {ideal:.1f}s at best)"
                )
        if s.aborted:
            lines.append(s.aborted)
        if self.report_path is not None:
            lines.append(f"report: {self.report_path}")
        return lines


SHOWN_FAILED = 10  # failed or invalid rows listed at the end of a run; the rest are counted
_LONGEST_REASON = 300  # characters of a reason listed (the report has it whole)
# The rows listed at the end: those that need a look. Rows not attempted only wait for the run
# to be resumed or retried, which the summary and its hint say.
LISTED = frozenset(Status) - FINE - {Status.NOT_ATTEMPTED}


@dataclass(slots=True)
class FailedRows:
    """The first rows of a run (in the report's order) that failed, were invalid, mismatched or
    could not be verified, with their reasons, and how many there were in all."""

    first: list[tuple[int, str, Outcome]] = field(default_factory=list)  # row, campaign cell
    total: int = 0

    def add(self, number: int, campaign: str, outcome: Outcome) -> None:
        if outcome.status in LISTED:
            self.total += 1
            if len(self.first) < SHOWN_FAILED:
                self.first.append((number, campaign, outcome))

    def clear(self) -> None:
        self.first.clear()
        self.total = 0

    def lines(self, report: Path | None) -> list[str]:
        """``2 rows failed or were invalid:``, a line each, and ``... and 3 more``."""
        if not self.total:
            return []
        verb = "row failed or was" if self.total == 1 else "rows failed or were"
        lines = [f"{self.total} {verb} invalid:"]
        for number, campaign, outcome in self.first:
            of = f" (campaign {campaign})" if campaign else ""
            reason = outcome.error or "no reason given"
            if len(reason) > _LONGEST_REASON:
                reason = reason[: _LONGEST_REASON - 1] + "…"
            lines.append(f"  row {number}{of}: {outcome.status.value}: {reason}")
        if self.total > len(self.first):
            where = f" in the report {report}" if report is not None else " in the report"
            lines.append(f"  ... and {self.total - len(self.first)} more{where}")
        return lines

    def fields(self) -> dict[str, object]:
        """What the ``failed_rows`` event says, for machines."""
        return {
            "rows": [
                {
                    "row": number,
                    "campaign_id": campaign or None,
                    "status": outcome.status.value,
                    "error": outcome.error,
                }
                for number, campaign, outcome in self.first
            ],
            "total": self.total,
        }
