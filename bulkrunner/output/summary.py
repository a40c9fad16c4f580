"""The end-of-run summary: rows of each status, the requests sent and the rate reached."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from bulkrunner.limits.rates import ideal_seconds
from bulkrunner.model import Outcome, Rate, Status, count

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
            ideal = ideal_seconds(s.requests, self.rates)
            if ideal > 0 and s.sending_seconds > 0:
                lines.append(
                    f"rate: {min(1.0, ideal / s.sending_seconds):.0%} of the ceiling "
                    f"(the limits {', '.join(map(str, self.rates))} allow "
                    f"{count(s.requests, 'request')} in {ideal:.1f}s at best)"
                )
        if s.aborted:
            lines.append(s.aborted)
        if self.report_path is not None:
            lines.append(f"report: {self.report_path}")
        return lines
