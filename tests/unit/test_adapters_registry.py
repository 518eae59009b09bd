"""adapters.registry: format name -> adapter."""

from __future__ import annotations

import io

import pytest

from adapters import csv, ctf, fhir, jsonl
from adapters.registry import FORMATS, reader


def test_every_contract_format_is_registered() -> None:
    assert FORMATS == {"jsonl": jsonl.read, "csv": csv.read, "fhir": fhir.read, "ctf": ctf.read}
    for name, read in FORMATS.items():
        assert reader(name) is read


def test_unknown_format_names_the_known_ones() -> None:
    with pytest.raises(KeyError) as info:
        reader("xlsx")
    message = str(info.value)
    assert "xlsx" in message
    for name in ("csv", "ctf", "fhir", "jsonl"):
        assert name in message


def test_every_adapter_is_a_lazy_generator() -> None:
    for read in FORMATS.values():
        stream = io.BytesIO(b"")
        items = read(stream, "dwp")
        assert iter(items) is items
        list(items)
