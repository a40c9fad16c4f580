"""Structured events for log shippers: ``--log-format json`` writes one JSON object per event.

Every event, the stream it goes to and its fields are declared once, in ``EVENTS`` below (the
reference docs are made from it, and a test holds every ``emit``/``show`` to it). Events go to
the ``bulkrunner.output.events`` logger; in text mode it is silent (the human-readable log says the
same things in sentences). What a run prints on stdout goes through :class:`Output`, which in
json mode makes every line one JSON object too (``summary``, ``resume_hint``, and ``output`` for
any other line); the line that ends a run in error is ``error``.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TextIO

from bulkrunner.config.environment import key_in
from bulkrunner.config.redaction import RedactingFilter, redact
from bulkrunner.operations.answers import printable
from bulkrunner.output.summary import SHOWN_FAILED

events = logging.getLogger("bulkrunner.output.events")


@dataclass(frozen=True, slots=True)
class Event:
    """One kind of JSON line: where it is written, when, and what each field holds (besides
    ``time``, ``level`` and ``event``, which every line has)."""

    stream: str  # "stderr" (the log) or "stdout" (what the command prints)
    when: str
    fields: Mapping[str, str]


COMMON_FIELDS: Mapping[str, str] = {
    "time": "UTC time, ISO 8601 with milliseconds",
    "level": "`info`, `warning`, `error`...",
    "event": "the event's name",
}
_FIGURES = {  # a run's figures: the summary's and run_end's (commands.run._figures)
    "counts": 'rows per status, e.g. `{"succeeded": 52, "failed": 2}`',
    "requests": "requests sent, reads included",
    "retries": "requests that were retries",
    "throttled": "requests answered 429",
    "seconds": "from the first request to the last answer",
    "aborted": "why the run stopped early, or null",
    "report": "the report's path, or null",
}
_MESSAGE = {"message": "the text output's lines, joined with `; `"}
EVENTS: Mapping[str, Event] = {
    "run_start": Event(
        "stderr",
        "as sending starts, once for each account the run sends with",
        {
            "rows": "rows to send",
            "unchanged": "rows already as wanted, not sent",
            "limits": 'the rate limits, e.g. `["10/2", "60/60"]`',
            "concurrency": "requests in flight at most",
            "account": "the account's name in the accounts file; null in a run without one",
        },
    ),
    "row_finished": Event(
        "stderr",
        "each time a row of a run is finished, sent or not (invalid, unchanged, missing)",
        {
            "row": "the row's number in the input file",
            "campaign_id": "its campaign (null for an invalid row without one)",
            "account": "the account it was sent with (its name in the accounts file); null in "
            "a run without one, and for a row ended before it reached an account (invalid)",
            "status": "its status (see the report's statuses)",
            "http_status": "the last HTTP status received, or null",
            "attempts": "requests sent for it",
            "error": "why it failed, or a note (as in the report)",
        },
    ),
    "retry_scheduled": Event(
        "stderr",
        "each time a row is put back to be tried again",
        {
            "row": "the row's number",
            "campaign_id": "its campaign",
            "attempt": "the number of the try to come",
            "delay": "seconds until then",
            "error": "what the last try met",
        },
    ),
    "progress": Event(
        "stderr",
        "every `--progress-interval` seconds while a run sends",
        {
            "total": "rows to send (rows found already as wanted are not counted)",
            "succeeded": "rows succeeded so far",
            "failed": "rows failed so far",
            "retrying": "rows waiting to be retried",
            "unchanged": "rows found already as wanted, not sent",
            "not_attempted": "rows not sent because the run stopped (not failures)",
            "rate": "requests per second, lately",
            "eta": "seconds left: the larger of what the limits allow and what the rate lately "
            "says",
            "next_retry": "seconds until the next retry is due, or null",
            "message": "the progress line as text",
        },
    ),
    "run_end": Event("stderr", "when a run ends, after its report is written", _FIGURES),
    "log": Event("stderr", "any other log line", {"message": "the line, key redacted"}),
    "error": Event(
        "stderr",
        "the line that ends a command in error (also a mistyped option, when `--log-format "
        "json` is on the command line)",
        {
            "message": "the error, one line",
            "exit_code": "the exit code (see the exit codes)",
            "internal": "true for an internal error (a bug); absent for a mistyped option",
        },
    ),
    "summary": Event(
        "stdout",
        "the summary at the end of a command: of a run (its figures), of an export (what it "
        "wrote), or of a rollback with nothing to restore (its `counts` empty)",
        {
            **_FIGURES,
            "exported": "export: campaigns written",
            "left_out": "export: campaigns whose state could not be read",
            "unwritable": "export: campaigns whose state no row can set",
            "differ": "export: campaigns that would not read back as they are",
            "output": "export: the file written",
            **_MESSAGE,
        },
    ),
    "failed_rows": Event(
        "stdout",
        "at the end of a run, before its summary, when rows failed or were invalid",
        {
            "rows": f"the first {SHOWN_FAILED} such rows, in the report's order: each its `row`, "
            "`campaign_id`, `status` and `error`",
            "total": "how many rows failed or were invalid (`failed`, `invalid`, `mismatch`, "
            "`unverified`; rows `not_attempted` are not listed)",
            **_MESSAGE,
        },
    ),
    "resume_hint": Event(
        "stdout",
        "after the summary of a run that stopped early",
        {
            "command": "the command that resumes it",
            "journal": "the journal recording what is done",
            **_MESSAGE,
        },
    ),
    "plan": Event(
        "stdout",
        "what `plan` found, before its summary",
        {
            "to_change": "rows the run would send",
            "unchanged": "rows already as wanted",
            "invalid": "invalid rows",
            "missing": "rows whose campaign is missing from the account",
            "refused": "rows the operation refuses given the campaign's current state",
            "drifted": "rows left as they are because their campaign changed since the run a "
            "rollback undoes (a plan of a backup, or `rollback --dry-run`)",
            "irreversible": "rows to send whose change a rollback could not undo "
            "(with `--allow-irreversible`)",
            "requests": "requests the run would make (of the slowest account)",
            "seconds": "how long the run would take at best at the limits",
            **_MESSAGE,
        },
    ),
    "doctor": Event(
        "stdout",
        "what `doctor` found: a line per account, then how many fail",
        {
            "accounts": "each account checked: `account` (its name; null for the one key), "
            "`key_env`, `base_url`, `ok`, `verdict`, `http_status`, `latency_ms`, `attempts`, "
            "`campaigns` (listed), `limit`, `remaining` and `reset` (its `X-RateLimit-*` "
            "headers, or null), `limits` (held)",
            "failing": "how many accounts failed",
            **_MESSAGE,
        },
    ),
    "plan_saved": Event(
        "stdout",
        "after the `plan` event, when `plan --out` saved the plan",
        {
            "plan": "the file saved",
            "rows": "the rows it would change",
            "command": "the command that applies it (`run --plan`)",
            **_MESSAGE,
        },
    ),
    "unrestorable": Event(
        "stdout",
        "before a rollback starts, when its backup holds campaigns it cannot restore",
        {"campaigns": "each such campaign id, with why", **_MESSAGE},
    ),
    "unrestorable_summary": Event(
        "stdout",
        "after that rollback's summary",
        {"unrestorable": "how many campaigns were not restored", **_MESSAGE},
    ),
    "output": Event("stdout", "any other line printed", {"message": "the line"}),
}


def emit(event: str, **fields: Any) -> None:
    if events.isEnabledFor(logging.INFO):
        events.info(event, extra={"event": event, "fields": fields})


class JsonFormatter(logging.Formatter):
    """One JSON object per record, key redacted: events with their fields, other log lines as
    ``{"event": "log", "message": ...}``."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        super().__init__()
        self.secrets = tuple(s for s in secrets if s)

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "event": getattr(record, "event", "log"),
        }
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            entry.update(fields)
        else:
            entry["message"] = record.getMessage()
        return redact(json.dumps(entry, default=str), self.secrets)


def json_line(event: str, level: str = "info", **fields: Any) -> str:
    """One JSON object, as the log's are (time, level, event), key redacted."""
    entry: dict[str, Any] = {
        "time": datetime.now(UTC).isoformat(timespec="milliseconds"),
        "level": level,
        "event": event,
        **fields,
    }
    return redact(json.dumps(entry, default=str))


class Output(io.TextIOBase):
    """What a run prints on stdout. In json mode every line becomes one JSON object: a record
    (the summary, a hint) with its fields, any other line as ``{"event": "output", "message"}``.
    In text mode lines pass through and a record prints its text lines. The last record of
    each event is kept (``recorded``), for the notification at the end of a run."""

    def __init__(self, stream: TextIO, json_lines: bool = False) -> None:
        super().__init__()
        self.stream = stream
        self.json_lines = json_lines
        self.recorded: dict[str, dict[str, Any]] = {}
        self._partial = ""
        self._gone = False  # the stream's reader went away

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        if not self.json_lines:
            self._put(printable(redact(text)))
            return len(text)
        *lines, self._partial = (self._partial + text).split("\n")
        for line in lines:
            self._put(json_line("output", message=line) + "\n")
        return len(text)

    def flush(self) -> None:
        if self.json_lines and self._partial:
            self._put(json_line("output", message=self._partial) + "\n")
            self._partial = ""
        self._put("", flush=True)

    def close(self) -> None:
        """Closed when collected, after the run: what is left is written if the stream still
        takes it (a stream closed by then, a pipe whose reader left, is no error of the run's:
        Python 3.13 would print it as one). The stream itself stays open."""
        with contextlib.suppress(ValueError, OSError):
            super().close()

    def record(self, event: str, lines: Sequence[str], **fields: Any) -> None:
        self.recorded[event] = {**fields, "lines": list(lines)}
        if self.json_lines:
            message = "; ".join(lines)
            self._put(json_line(event, message=message, **fields) + "\n")
        else:
            for line in lines:
                self._put(printable(redact(line)) + "\n")

    def _put(self, text: str, *, flush: bool = False) -> None:
        """``text`` on the stream, unless its reader went away (``bulkrunner runs | head -1``):
        the rest is not shown, and the command ends as it would have (its exit code is its
        own, not an internal error's). The stream's descriptor then writes to nowhere, so that
        Python's own flush as it exits does not fail again."""
        if self._gone:
            return
        try:
            self.stream.write(text)
            if flush:
                self.stream.flush()
        except BrokenPipeError:
            self._gone = True
            to_nowhere(self.stream)


def to_nowhere(stream: TextIO) -> None:
    """Point the descriptor of ``stream``, whose reader went away (a broken pipe), at the null
    device: what is left in its buffer, flushed by Python as it exits, does not fail again."""
    with contextlib.suppress(OSError, ValueError, io.UnsupportedOperation):
        nowhere = os.open(os.devnull, os.O_WRONLY)
        try:
            os.dup2(nowhere, stream.fileno())
        finally:
            os.close(nowhere)


def show(out: TextIO, event: str, lines: Sequence[str], **fields: Any) -> None:
    """Print ``lines`` on ``out``, as one ``event`` record with ``fields`` when ``out`` is an
    :class:`Output` (in json mode: one JSON object)."""
    if isinstance(out, Output):
        out.record(event, lines, **fields)
    else:
        for line in lines:
            print(printable(redact(line)), file=out)


class _TextFormatter(logging.Formatter):
    """Log lines as a terminal shows them: ``printable`` (a server's text, quoted in one, never
    moves the cursor)."""

    def format(self, record: logging.LogRecord) -> str:
        return printable(super().format(record))


class _StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever ``sys.stderr`` is at the time, so the progress bar, which redirects
    it while it is drawn, can print log lines above itself instead of through it."""

    @property
    def stream(self) -> TextIO:
        return sys.stderr

    @stream.setter
    def stream(self, value: TextIO) -> None:
        pass


def setup_logging(verbose: bool, log_format: str = "text", quiet: bool = False) -> None:
    """Log to the current stderr, key redacted; replaces the handler of an earlier call.
    Quiet: errors only (the summary is printed on stdout); verbose wins over quiet."""
    secrets = [key_in()]
    logger = logging.getLogger("bulkrunner")
    logger.setLevel(logging.DEBUG if verbose else logging.ERROR if quiet else logging.INFO)
    for old in logger.handlers[:]:
        logger.removeHandler(old)
    handler = _StderrHandler()
    if log_format == "json":
        handler.setFormatter(JsonFormatter(secrets))
    else:
        handler.setFormatter(_TextFormatter("%(asctime)s %(message)s", "%H:%M:%S"))
        handler.addFilter(RedactingFilter(secrets))
    logger.addHandler(handler)
    logger.propagate = False
    events.setLevel(logging.INFO if log_format == "json" and not quiet else logging.WARNING)
    # Python's own warnings (a library's deprecation notice) would be plain text on stderr
    logging.captureWarnings(log_format == "json")
    warnings = logging.getLogger("py.warnings")
    for old in warnings.handlers[:]:
        warnings.removeHandler(old)
    if log_format == "json":
        warnings.addHandler(handler)
        warnings.propagate = False
