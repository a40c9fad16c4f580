"""Structured events for log shippers: ``--log-format json`` writes one JSON object per event.

    run_start        rows to send, limits, concurrency
    row_finished     row, campaign_id, status, http_status, attempts, error
    retry_scheduled  row, campaign_id, attempt, delay, error
    progress         total, succeeded, failed, retrying, rate, eta, next_retry (every few seconds)
    run_end          counts per status, requests, retries, 429s, seconds, report

Events go to the ``bulkrunner.events`` logger; in text mode it is silent (the human-readable log
says the same things in sentences). What a run prints on stdout goes through :class:`Output`,
which in json mode makes every line one JSON object too (``summary``, ``resume_hint``, and
``output`` for any other line); the line that ends a run in error is ``error``.
"""

from __future__ import annotations

import io
import json
import logging
import os
import sys
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any, TextIO

from bulkrunner.environment import API_KEY_ENV
from bulkrunner.redaction import RedactingFilter, redact

events = logging.getLogger("bulkrunner.events")


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

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        if not self.json_lines:
            return self.stream.write(redact(text))
        *lines, self._partial = (self._partial + text).split("\n")
        for line in lines:
            self.stream.write(json_line("output", message=line) + "\n")
        return len(text)

    def flush(self) -> None:
        if self.json_lines and self._partial:
            self.stream.write(json_line("output", message=self._partial) + "\n")
            self._partial = ""
        self.stream.flush()

    def record(self, event: str, lines: Sequence[str], **fields: Any) -> None:
        self.recorded[event] = {**fields, "lines": list(lines)}
        if self.json_lines:
            message = "; ".join(lines)
            self.stream.write(json_line(event, message=message, **fields) + "\n")
        else:
            for line in lines:
                self.stream.write(redact(line) + "\n")


def show(out: TextIO, event: str, lines: Sequence[str], **fields: Any) -> None:
    """Print ``lines`` on ``out``, as one ``event`` record with ``fields`` when ``out`` is an
    :class:`Output` (in json mode: one JSON object)."""
    if isinstance(out, Output):
        out.record(event, lines, **fields)
    else:
        for line in lines:
            print(redact(line), file=out)


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
    secrets = [os.environ.get(API_KEY_ENV, "")]
    logger = logging.getLogger("bulkrunner")
    logger.setLevel(logging.DEBUG if verbose else logging.ERROR if quiet else logging.INFO)
    for old in logger.handlers[:]:
        logger.removeHandler(old)
    handler = _StderrHandler()
    if log_format == "json":
        handler.setFormatter(JsonFormatter(secrets))
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(message)s", "%H:%M:%S"))
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
