"""Format name -> adapter: what `hub publish --format FMT` looks up."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import BinaryIO

from adapters import csv, ctf, fhir, jsonl
from adapters.base import BadRecord, Record

Reader = Callable[[BinaryIO, str], Iterator[Record | BadRecord]]

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
