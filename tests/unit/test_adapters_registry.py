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


def test_publish_help_describes_every_format_and_csv_column() -> None:
    """`hub publish --help` is where a source learns the formats (an independent
    probe found none there and guessed the CSV columns from errors)."""
    import re

    from adapters import csv
    from adapters.registry import FORMATS
    from hub.cli.main import FORMATS_HELP

    described = set(re.findall(r"^  (\w+)  ", FORMATS_HELP, re.M))
    assert described == set(FORMATS)
    words = set(re.findall(r"[a-z_0-9]+", FORMATS_HELP))
    assert set(csv.COLUMNS) - {"address_line1", "address_line2", "address_line3"} <= words
