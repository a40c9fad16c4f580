"""Structured events for log shippers: ``--log-format json`` writes one JSON object per event.

    run_start        rows to send, limits, concurrency
    row_finished     row, campaign_id, status, http_status, attempts, error
    retry_scheduled  row, campaign_id, attempt, delay, error
    run_end          counts per status, requests, retries, 429s, seconds, report

Events go to the ``bulkrunner.events`` logger; in text mode it is silent (the human-readable log
says the same things in sentences).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from bulkrunner.redaction import redact

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
