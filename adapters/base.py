"""What every adapter yields.

An adapter streams its file (never the whole file in memory) and yields, per
record, either a `Record` holding a canonical update as a plain JSON-ready dict
or a `BadRecord` saying where it was, why it is bad, and its raw content. It
does not validate canonical rules itself: `hub publish` runs every Record
through hub.validate, so every format is judged by the same rules.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol


@dataclass(frozen=True)
class Record:
    where: str  # "line 12", "entry[3]", "Pupil[7]"
    update: dict[str, Any]


@dataclass(frozen=True)
class BadRecord:
    where: str
    reason: str  # a reason code, e.g. "unparseable_record", "missing_column"
    error: str  # one line, no personal data
    raw: str  # the record's raw content, kept for the operator
    source_record_id: str | None = None


class Deferred(Protocol):
    """A record read but not yet mapped to a Record or BadRecord: `record()` does
    that, wherever it is called. An adapter's `rows` (where it has one) yields these
    beside the BadRecords only reading can find, so that a bulk load maps its rows
    in its worker processes; its `read` maps each at once."""

    def record(self) -> Record | BadRecord: ...
