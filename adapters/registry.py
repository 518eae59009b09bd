"""Format name -> adapter: what `hub publish --format FMT` looks up."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import BinaryIO

from adapters import csv, ctf, fhir, jsonl
from adapters.base import BadRecord, Deferred, Record

Reader = Callable[[BinaryIO, str], Iterator[Record | BadRecord]]
RowReader = Callable[[BinaryIO, str], Iterator[Record | BadRecord | Deferred]]

FORMATS: dict[str, Reader] = {
    "jsonl": jsonl.read,
    "csv": csv.read,
    "fhir": fhir.read,
    "ctf": ctf.read,
}


def reader(fmt: str) -> Reader:
    """The adapter for a format name; KeyError naming the known formats otherwise."""
    try:
        return FORMATS[fmt]
    except KeyError:
        known = ", ".join(sorted(FORMATS))
        raise KeyError(f"unknown format {fmt!r}; known formats: {known}") from None


#: The formats whose adapter can leave the mapping of its records to the caller.
ROW_FORMATS: dict[str, RowReader] = {"csv": csv.rows}


def row_reader(fmt: str) -> RowReader:
    """As `reader`, but the format's records may come unmapped (adapters.base.Deferred)
    where its adapter has `rows` (ROW_FORMATS)."""
    return ROW_FORMATS.get(fmt) or reader(fmt)
