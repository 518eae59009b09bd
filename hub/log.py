"""Structured JSON logs that carry ids, source ids and reason codes, never personal data."""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import MutableMapping
from types import TracebackType
from typing import Any

import structlog

# Keys that may hold personal data: a log event carrying one is refused and
# the value replaced, so a careless call cannot leak a name or an address.
PERSONAL_KEYS = frozenset({
    "given_name", "family_name", "middle_names", "former_family_names", "name", "names",
    "date_of_birth", "dob", "address", "postcode", "lines", "town", "carers", "phone",
    "nhs_number", "upn", "child", "record", "update", "body", "raw", "payload",
    "education_setting", "gp_practice", "services", "telecom",
})
WITHHELD = "[withheld]"

# Values that look like personal data whatever their key: an NHS number, a UK
# postcode, a bare date (a date of birth; timestamps carry a time and pass).
_PERSONAL_VALUE = re.compile(
    r"^(\d{3} ?\d{3} ?\d{4}"
    r"|[A-Z]{1,2}\d[A-Z\d]? ?\d[A-Z]{2}"
    r"|\d{4}-\d{2}-\d{2})$",
    re.IGNORECASE,
)
# Keys the logging machinery itself sets.
_OWN_KEYS = frozenset({"event", "level", "timestamp", "logger"})


def _scrub(value: Any, depth: int = 0) -> Any:
    if depth > 8:
        return WITHHELD
    if isinstance(value, str):
        return WITHHELD if _PERSONAL_VALUE.match(value.strip()) else value
    if isinstance(value, dict):
        return {k: WITHHELD if str(k) in PERSONAL_KEYS else _scrub(v, depth + 1)
                for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_scrub(v, depth + 1) for v in value]
    return value


def refuse_personal(_: Any, __: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """Withhold personal keys at any depth, and values shaped like personal data."""
    for key in list(event):
        if key in PERSONAL_KEYS:
            event[key] = WITHHELD
        elif key not in _OWN_KEYS and key not in ("exc_info", "exception"):
            event[key] = _scrub(event[key])
    return event


def _frames(tb: TracebackType | None) -> list[dict[str, Any]]:
    frames = []
    while tb is not None:
        code = tb.tb_frame.f_code
        frames.append({"file": code.co_filename, "line": tb.tb_lineno, "function": code.co_name})
        tb = tb.tb_next
    return frames[-20:]


def safe_exception(_: Any, __: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """An exception as its type and where it was raised: never its message (a
    ValidationError or a database error can quote the payload) and never the
    local variables of its frames (they hold the records being processed)."""
    exc_info = event.pop("exc_info", None)
    event.pop("exception", None)
    if exc_info is True:
        exc_info = sys.exc_info()
    elif isinstance(exc_info, BaseException):
        exc_info = (type(exc_info), exc_info, exc_info.__traceback__)
    if isinstance(exc_info, tuple) and exc_info[0] is not None:
        chain: list[dict[str, Any]] = []
        exc: BaseException | None = exc_info[1]
        while exc is not None and len(chain) < 5:
            chain.append({"type": type(exc).__qualname__, "frames": _frames(exc.__traceback__)})
            exc = exc.__cause__ or exc.__context__
        event["exception"] = chain
    return event


PROCESSORS: list[Any] = [
    structlog.contextvars.merge_contextvars,
    structlog.processors.add_log_level,
    structlog.processors.TimeStamper(fmt="iso", utc=True),
    refuse_personal,
    safe_exception,
]


def _stdlib_message(_: Any, __: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    # A library's log record: keep its logger name; its text is its own.
    record = event.get("_record")
    if record is not None:
        event["logger"] = record.name
    event.pop("_record", None)
    event.pop("_from_structlog", None)
    return event


def configure(level: str = "INFO") -> None:
    # Libraries' log records (aio-pika, asyncpg, asyncio) go through the same
    # processors: JSON, personal keys withheld, exceptions without messages or locals.
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=PROCESSORS,
        processors=[_stdlib_message, structlog.processors.JSONRenderer()],
        pass_foreign_args=False,
    ))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    structlog.configure(
        processors=[*PROCESSORS, structlog.processors.JSONRenderer()],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level)),
        # One write a line, its newline in it: the processes of `hub run --processes`
        # share stderr, and print's separate newline let two lines meet on one.
        logger_factory=structlog.WriteLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=True,
    )


def get(name: str) -> Any:
    return structlog.get_logger(name)
