"""Logging: the process's handler (plain text, or one JSON object a line with CONNBOT_LOG_FORMAT=json)
and the context every record of a run carries (run id, ticket key, step, PBX instance).

The context lives in a `ContextVar`, so each worker thread has its own: `bound()` sets it around the
advance of a run, `bind()` adds to it as the run is read. A JSON line has `time`, `level`, `logger`,
`message`, the context's fields that are set, and `exc` (the traceback) for an exception.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

FIELDS = ("run", "ticket", "step", "pbx")
_context: ContextVar[dict[str, object]] = ContextVar("connbot_log_context")
TEXT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
# What a plain-text record shows of a control character: a line break or a terminal's escape
# sequence in a message (text from a ticket or an outside system) is written as `\n`, `\x1b`.
_ESCAPES = {
    c: f"\\x{c:02x}" if c < 256 else f"\\u{c:04x}" for c in (*range(32), *range(127, 160), 0x2028, 0x2029)
} | {
    9: "\\t",
    10: "\\n",
    13: "\\r",
}
_IN_TRACEBACK = {c: e for c, e in _ESCAPES.items() if c != 10}


@contextmanager
def bound(**fields: object) -> Iterator[None]:
    """Records logged inside carry `fields` (and whatever `bind` adds); the context before is restored."""
    token = _context.set({**_context.get({}), **fields})
    try:
        yield
    finally:
        _context.reset(token)


def bind(**fields: object) -> None:
    """Add to the current context (inside `bound`, until it ends); a field given None is dropped."""
    merged = {**_context.get({}), **fields}
    _context.set({k: v for k, v in merged.items() if v is not None})


class JsonFormatter(logging.Formatter):
    """One JSON object a line: a log line is data, whatever its message holds (no forged lines)."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, object] = {
            "time": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        line.update({k: v for k, v in _context.get({}).items() if k in FIELDS})
        if record.exc_info:
            line["exc"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str)


class TextFormatter(logging.Formatter):
    """`TEXT`, one record a line whatever its message holds: the message's control characters are
    escaped, and a traceback's lines are indented under it, so no text can pass for a record."""

    def __init__(self) -> None:
        super().__init__(TEXT)

    def formatMessage(self, record: logging.LogRecord) -> str:
        return super().formatMessage(record).translate(_ESCAPES)

    def format(self, record: logging.LogRecord) -> str:
        return super().format(record).translate(_IN_TRACEBACK).replace("\n", "\n    ")


def handler(fmt: str) -> logging.Handler:
    """A stderr handler: JSON lines for "json", else plain text."""
    out = logging.StreamHandler()
    out.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    return out


def configure(level: str, fmt: str) -> None:
    """The process's logging: one handler on the root logger, at `level`, in `fmt`."""
    logging.basicConfig(level=level, handlers=[handler(fmt)])
