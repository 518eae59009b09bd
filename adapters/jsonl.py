"""Canonical JSON lines (`--format jsonl`): one canonical update per line.

Each non-blank line is decoded as UTF-8 and parsed with json.loads. A JSON
object is passed through unchanged as a Record (hub.validate judges it later;
in particular "source" is NOT overwritten, so a record claiming another source
is rejected as source_mismatch). Anything else is a BadRecord:

- ``invalid_encoding``: the line is not valid UTF-8
- ``invalid_json``: the line is not JSON (NaN/Infinity count as not JSON)
- ``not_an_object``: the line is JSON but not an object

`where` is "line N", counting every physical line from 1 (blank lines are
skipped but counted). A UTF-8 byte-order mark and CRLF line ends are tolerated.
The file is read one line at a time.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import BinaryIO

from adapters import _common
from adapters.base import BadRecord, Record


def read(stream: BinaryIO, source: str) -> Iterator[Record | BadRecord]:
    for number, line in _common.lines(stream):
        where = f"line {number}"
        try:
            text = line.decode("utf-8")
        except UnicodeDecodeError:
            raw = line.decode("utf-8", errors="replace")
            yield BadRecord(
                where,
                "invalid_encoding",
                "line is not valid UTF-8",
                raw,
                _common.record_id_in(raw),
            )
            continue
        if not text.strip():
            continue
        try:
            data = _common.loads(text)
        except (ValueError, RecursionError):
            yield BadRecord(
                where, "invalid_json", "line is not valid JSON", text, _common.record_id_in(text)
            )
            continue
        if not isinstance(data, dict):
            yield BadRecord(where, "not_an_object", "line is JSON but not an object", text)
            continue
        yield Record(where, data)
