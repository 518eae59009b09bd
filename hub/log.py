"""Structured JSON logs that carry ids, source ids and reason codes, never personal data."""

from __future__ import annotations

import logging
import sys
from collections.abc import MutableMapping
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


def refuse_personal(_: Any, __: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    for key in list(event):
        if key in PERSONAL_KEYS:
            event[key] = "[withheld]"
    return event


def configure(level: str = "INFO") -> None:
    logging.basicConfig(stream=sys.stderr, level=level, format="%(message)s")
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            refuse_personal,
            # Exception type and place only: tracebacks with locals could carry payloads.
            structlog.processors.dict_tracebacks,
            structlog.processors.JSONRenderer(),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level)),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=True,
    )


def get(name: str) -> Any:
    return structlog.get_logger(name)
