"""Helpers shared by the adapters: text cleaning, codes, dates, raw lines.

Nothing here ever puts a value from a record into an error message: errors
name fields, columns and paths only.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any, BinaryIO

BOM = b"\xef\xbb\xbf"

_SEX = {
    "f": "female",
    "female": "female",
    "girl": "female",
    "m": "male",
    "male": "male",
    "boy": "male",
    "u": "unknown",
    "unknown": "unknown",
    "not known": "unknown",
    "not specified": "unknown",
    "indeterminate": "unknown",
    "i": "unknown",
    "other": "unknown",
    "o": "unknown",
    "x": "unknown",
    # ISO/IEC 5218 codes, as some extracts use them.
    "0": "unknown",
    "1": "male",
    "2": "female",
    "9": "unknown",
}

_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_UK_DATE = re.compile(r"^(\d{1,2})/(\d{1,2})/(\d{4})$")
_RECORD_ID = re.compile(r'"source_record_id"\s*:\s*"((?:[^"\\]|\\.){1,200})"')


def clean(value: Any) -> str | None:
    """A stripped string, or None when blank or not a string."""
    if not isinstance(value, str):
        return None
    value = value.strip()
    return value or None


def sex(value: str | None) -> str | None:
    """Normalise a sex / gender code to the canonical female/male/unknown.

    A value that is not recognised is passed through unchanged, so that the
    pipeline rejects it (schema_violation on child.sex) rather than the adapter
    guessing.
    """
    if value is None:
        return None
    return _SEX.get(value.strip().lower(), value)


def date(value: str | None) -> str | None:
    """YYYY-MM-DD as given; DD/MM/YYYY rearranged to YYYY-MM-DD.

    The date is not checked here (hub.validate does that); anything else is
    passed through unchanged to be rejected as invalid_date_of_birth downstream.
    """
    if value is None:
        return None
    value = value.strip()
    if not value:
        return None
    m = _UK_DATE.match(value)
    if m:
        day, month, year = m.groups()
        return f"{year}-{int(month):02d}-{int(day):02d}"
    if "T" in value and _ISO_DATE.match(value[:10]):
        # A date-time where a date belongs: keep the date part.
        return value[:10]
    return value


def integer(value: Any) -> int | None:
    """An integer from an int or a string of ASCII digits, else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        text = value.strip()
        if text.isascii() and text.isdigit() and len(text) <= 30:
            return int(text)
    return None


def record_id_in(text: str) -> str | None:
    """Best effort: a source_record_id in unparseable JSON text."""
    m = _RECORD_ID.search(text)
    if not m:
        return None
    try:
        value = json.loads(f'"{m.group(1)}"')
    except ValueError:
        return None
    return value if isinstance(value, str) and value.strip() else None


def strip_eol(line: bytes) -> bytes:
    if line.endswith(b"\n"):
        line = line[:-1]
    if line.endswith(b"\r"):
        line = line[:-1]
    return line


def lines(stream: BinaryIO) -> Iterator[tuple[int, bytes]]:
    """(line number from 1, raw bytes without the line end), a UTF-8 BOM removed."""
    for number, line in enumerate(stream, start=1):
        if number == 1 and line.startswith(BOM):
            line = line[len(BOM) :]
        yield number, strip_eol(line)


def reject_constant(name: str) -> Any:
    """json.loads parse_constant: NaN and Infinity are not JSON."""
    raise ValueError(f"{name} is not valid JSON")


def loads(text: str) -> Any:
    """json.loads, strict about NaN/Infinity; raises ValueError/RecursionError."""
    return json.loads(text, parse_constant=reject_constant)


def dumps(value: Any) -> str:
    """Compact JSON text for a value already parsed (the raw text of a part)."""
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        # A "\ud800" escape parsed into a lone surrogate, which UTF-8 cannot carry
        # (hub publish sends the raw text): keep it escaped, as it came.
        return json.dumps(value, ensure_ascii=True, separators=(",", ":"))
    return text


def compact(d: dict[str, Any]) -> dict[str, Any] | None:
    """The dict, or None when every value in it is None, [] or ""."""
    for v in d.values():
        if v is None:
            continue
        # Strings and lists by their truth (the same test, a third of the cost of
        # mapping a CSV row when written `v not in (None, [], "")` for each).
        kind = type(v)
        if kind is str or kind is list:
            if v:
                return d
        elif v not in (None, [], ""):
            return d
    return None
