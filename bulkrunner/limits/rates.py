"""Rate limits as SmartLead states them ("N requests in any window of S seconds", a
:class:`~bulkrunner.model.Rate`): the defaults, ceilings and the schedule they allow."""

from __future__ import annotations

import bisect
import math
from collections.abc import Iterable, Sequence

from bulkrunner.model import Rate

# The least seconds added to each window against arrival jitter. Each request's own delay is
# measured (its slot is stamped when it is written, and held until its answer came less the
# fastest round trip), so this only covers what those measures may miss: 2 ms gave no 429 in the
# loopback benchmarks, quiet or beside two CPU-bound processes, and costs 0.2% of a 1-second
# window. A session without ``sending.transport.limiter_tracing`` measures nothing and stamps
# slots at the grant: give it a wider ``guard``.
DEFAULT_GUARD = 0.002


# Satisfies every published SmartLead statement: 10 per 2 s (help centre), 60 per minute (older
# reference and standard tier), 1,000 per hour (standard tier).
DEFAULT_RATES: tuple[Rate, ...] = (Rate(10, 2), Rate(60, 60), Rate(1000, 3600))


def with_published(rates: Sequence[Rate]) -> tuple[Rate, ...]:
    """``rates`` as given, and each published window (``DEFAULT_RATES``) whose seconds none of
    them names, shortest window first: a limit overrides the window of its own length only, so
    ``2/1`` still holds 10/2, 60/60 and 1000/3600, and ``20/2`` replaces 10/2 (see
    ``above_published``)."""
    named = {rate.seconds for rate in rates}
    kept = [rate for rate in DEFAULT_RATES if rate.seconds not in named]
    return tuple(sorted([*rates, *kept], key=lambda rate: rate.seconds))


def above_published(rates: Sequence[Rate]) -> str:
    """What to warn of when a limit of ``rates`` is above the published window of its length
    ("" when none is): allowed, since a plan may allow more (the pro tier: 120/60, 3000/3600),
    but a key held to the published limits will answer 429s."""
    published = {rate.seconds: rate for rate in DEFAULT_RATES}
    above = [
        f"{rate} (published {published[rate.seconds]})"
        for rate in rates
        if rate.seconds in published and rate.limit > published[rate.seconds].limit
    ]
    if not above:
        return ""
    return (
        f"{', '.join(above)} above SmartLead's published limits: allowed, for a plan that "
        "allows more; a key that does not will answer 429s"
    )


def guard_problem(guard: float, rates: Sequence[Rate]) -> str:
    """Why ``guard`` cannot be added to every window of ``rates`` ("" when it can): it must be
    shorter than the shortest, or no window would be the one stated."""
    shortest = min(rates, key=lambda rate: rate.seconds)
    if guard < shortest.seconds:
        return ""
    return (
        f"guard must be shorter than the shortest rate window ({shortest.seconds:g}s, of "
        f"{shortest}), got {guard:g}"
    )


def ceiling(rates: Iterable[Rate]) -> float:
    """The long-run requests per second the tightest of ``rates`` allows."""
    return min(rate.per_second for rate in rates)


def max_in_window(times: Sequence[float], seconds: float) -> int:
    """The largest number of ``times`` (sorted) that fall in any half-open window of ``seconds``."""
    best = 0
    for i, start in enumerate(times):
        best = max(best, bisect.bisect_left(times, start + seconds, lo=i) - i)
    return best


def send_times(rates: Sequence[Rate], at: Sequence[int]) -> list[float]:
    """The earliest send times (from 0) of the requests numbered ``at`` (from 0) when each goes
    as soon as ``rates`` allow: request k waits until, for each N/S, request k - N is S seconds
    old. The schedule is held as runs of requests sent at one time, and only as far back as the
    widest window reaches: two million requests at 1,000,000/1 are two runs, where a list of
    their times took 40 MB as a million-row run wrote its summary."""
    wanted = sorted(set(at))
    found: dict[int, float] = {}
    reach = max((rate.limit for rate in rates), default=0)
    starts: list[int] = []  # each run's first request
    times: list[float] = []  # the time of its requests
    first = 0  # the runs before it are past every window's reach
    k = 0
    for number in wanted:
        while number >= k:  # the run of request k, as far as every window lets it go
            at_k, step = 0.0, number + 1 - k
            for rate in rates:
                j = k - rate.limit  # the request this one waits for in that window
                if j < 0:
                    step = min(step, -j)
                    continue
                run = bisect.bisect_right(starts, j, lo=first) - 1
                at_k = max(at_k, times[run] + rate.seconds)
                end = starts[run + 1] if run + 1 < len(starts) else k
                step = min(step, end - j)
            if not times or at_k != times[-1]:
                starts.append(k)
                times.append(at_k)
            k += step
            while first + 1 < len(starts) and starts[first + 1] <= k - reach:
                first += 1
            if first > 1024 and 2 * first > len(starts):
                del starts[:first], times[:first]
                first = 0
        found[number] = times[bisect.bisect_right(starts, number, lo=first) - 1]
    return [found[number] for number in at]


def ideal_seconds(count: int, rates: Sequence[Rate]) -> float:
    """The shortest time from the first to the last of ``count`` requests that ``rates`` allow."""
    return send_times(rates, [count - 1])[0] if count and rates else 0.0


HANDFUL = 0.25  # of a window's limit: requests past it that make a run "cross" that window
_WORTH_SAYING = 5.0  # seconds the crossing must cost before it is mentioned


def crossing(reads: int, writes: int, rates: Sequence[Rate], guard: float = 0.0) -> str | None:
    """What to tell the user before sending when a run of ``reads`` reads (of the current
    settings, already sent) and ``writes`` requests still to come exceeds a window's limit by a
    handful, so that those few wait out most of that window: ``"61 requests at 60/60: about
    61 s (60 would take about 11 s); the read of current settings is one of them"``; None when
    no window is crossed so, or the crossing costs little. Each window is held ``guard`` seconds
    longer, as the limiter holds it."""
    total = reads + writes
    if total < 2 or not rates:
        return None
    held = [Rate(rate.limit, rate.seconds + guard) for rate in rates]
    crossed = [
        rate for rate in rates if 1 <= total - rate.limit <= max(1, int(rate.limit * HANDFUL))
    ]
    seconds, *withins = send_times(held, [total - 1, *(rate.limit - 1 for rate in crossed)])
    # within: the time of the last request the window has room for
    by_window = sorted(zip(crossed, withins, strict=True), key=lambda p: p[0].seconds, reverse=True)
    for rate, within in by_window:
        if seconds - within < max(_WORTH_SAYING, within):
            continue  # costs little, or the run is long anyway
        note = (
            f"{total} requests at {rate}: about {_about(seconds)} "
            f"({rate.limit} would take about {_about(within)})"
        )
        if reads == 1:
            note += "; the read of current settings is one of them"
        elif reads > 1:
            note += f"; {reads} reads of current settings are among them"
        return note
    return None


def _about(seconds: float) -> str:
    """``seconds`` rounded up, in the unit a person would say."""
    if seconds < 120:
        return f"{math.ceil(seconds)} s"
    if seconds < 2 * 3600:
        return f"{math.ceil(seconds / 60)} min"
    return f"{math.ceil(seconds / 360) / 10:g} h"
