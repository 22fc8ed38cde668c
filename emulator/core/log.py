"""The request log: one line per exchange, on the ``emulator.requests`` logger.

The journal is for assertions; this is for people watching a terminal or a CI log. Each exchange is
logged where it is recorded (core/recording.py for calls received, core/callbacks.py for each
callback attempt), at INFO, with its fields in the record's ``exchange`` attribute::

    <time> INFO    in  <provider> <Action> account=<id> ns=- POST <path> -> 400 <ErrorCode> 1.2ms fault=<rule>
    <time> INFO    out <provider> <Action> account=<id> ns=- POST <receiver> attempt=2/17 -> 500 failed 0.8ms

The time is the exchange's on the emulator clock (a manual clock shows its own time), durations
are real. Nothing is logged unless a handler and level ask for it: ``emulator serve`` does
(:func:`configure`); in-process servers and the pytest plugin stay quiet unless the ``emulator``
logger's level is lowered (``pytest --emulator-log``, or the application's own logging set-up).
The callers test :func:`enabled` first, so a filtered-out line costs one check.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from datetime import UTC, datetime
from typing import Any, TextIO

REQUEST_LOG = logging.getLogger("emulator.requests")
#: The logger whose handler ``emulator serve`` sets: the request log and the emulator's warnings.
ROOT_LOGGER = "emulator"
LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING, "error": logging.ERROR}

# The error code in an error body: a JSON "Code" member or an XML <Code> element, the two shapes the
# providers' error bodies take. Read only when a line is written for an error status, from the first
# bytes of the body.
_CODE = re.compile(rb'"Code"\s*:\s*"([^"\\]{1,80})"|<Code>([^<]{1,80})</Code>')
_CODE_SCAN_BYTES = 4096


def enabled() -> bool:
    return REQUEST_LOG.isEnabledFor(logging.INFO)


def error_code(status: int | None, body: bytes) -> str | None:
    """The provider error code an error answer carries, if it names one."""
    if status is None or status < 400 or not body:
        return None
    match = _CODE.search(body, 0, _CODE_SCAN_BYTES)
    if match is None:
        return None
    return (match.group(1) or match.group(2)).decode("utf-8", "replace")


def exchange(
    *,
    time: float,
    direction: str,
    provider: str | None,
    action: str | None,
    account: str | None,
    namespace: str | None,
    method: str,
    target: str,
    status: int | None,
    duration: float,
    fault: str | None,
    code: str | None = None,
    error: str | None = None,
    correlation_id: str | None = None,
    attempt: int | None = None,
    max_attempts: int | None = None,
    outcome: str | None = None,
) -> None:
    """Log one exchange (callers check :func:`enabled` first)."""
    fields: dict[str, Any] = {
        "time": _iso(time),
        "direction": direction,
        "provider": provider,
        "action": action,
        "account": account,
        "namespace": namespace,
        "method": method,
        "target": target,
        "status": status,
        "durationMs": round(duration * 1000, 3),
        "fault": fault,
        "code": code,
        "error": error,
        "correlationId": correlation_id,
    }
    if attempt is not None:
        fields.update(attempt=attempt, maxAttempts=max_attempts, outcome=outcome)
    parts = [
        f"{direction:<3} {provider or '-'} {action or '-'} account={account or '-'} ns={namespace or '-'}",
        f"{method} {target}",
    ]
    if attempt is not None:
        parts.append(f"attempt={attempt}/{max_attempts}")
    parts.append(f"-> {status if status is not None else '---'}")
    if code:
        parts.append(code)
    if outcome:
        parts.append(outcome)
    parts.append(f"{duration * 1000:.1f}ms")
    if fault:
        parts.append(f"fault={fault!r}" if " " in fault else f"fault={fault}")
    if error:
        parts.append(f"error={error!r}")
    REQUEST_LOG.info(" ".join(parts), extra={"exchange": fields})


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class TextFormatter(logging.Formatter):
    """``<time> <LEVEL> <message>``; an exchange's time is its own (the emulator clock)."""

    def format(self, record: logging.LogRecord) -> str:
        fields = getattr(record, "exchange", None)
        when = fields["time"] if isinstance(fields, dict) else _iso(record.created)
        line = f"{when} {record.levelname:<7} {record.getMessage()}"
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


class JsonFormatter(logging.Formatter):
    """One JSON object a line: time, level, logger, message and, for an exchange, its fields."""

    def format(self, record: logging.LogRecord) -> str:
        doc: dict[str, Any] = {
            "time": _iso(record.created),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        fields = getattr(record, "exchange", None)
        if isinstance(fields, dict):
            doc.update(fields)
        if record.exc_info:
            doc["exception"] = self.formatException(record.exc_info)
        return json.dumps(doc, ensure_ascii=False, default=str)


def configure(level: str, fmt: str, stream: TextIO | None = None) -> logging.Handler:
    """Send the emulator's log records (the request log included) to ``stream`` (stderr) at
    ``level`` ("debug", "info", "warning", "error") as ``fmt`` ("text" or "json")."""
    handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    logger = logging.getLogger(ROOT_LOGGER)
    logger.addHandler(handler)
    logger.setLevel(LEVELS[level])
    # The emulator's own handler says it all; a root handler set up by someone else would repeat it.
    logger.propagate = False
    return handler
