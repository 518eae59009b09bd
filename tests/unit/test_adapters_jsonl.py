"""adapters.jsonl: canonical JSON lines."""

from __future__ import annotations

import io
import json
import tracemalloc
from pathlib import Path

from adapters import jsonl
from adapters.base import BadRecord, Record
from hub.validate import Rejection, check

BOUND = 16 * 1024 * 1024  # bytes of Python memory while reading a big file
LINES = 25_000
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "adapters" / "jsonl"


def _read(name: str, source: str = "dwp") -> list[Record | BadRecord]:
    with open(FIXTURES / name, "rb") as stream:
        return list(jsonl.read(stream, source))


def test_good_file_passes_objects_through_unchanged() -> None:
    items = _read("good.jsonl")
    assert [i.where for i in items] == ["line 1", "line 2", "line 4"]  # line 3 is blank
    assert all(isinstance(i, Record) for i in items)
    records = [i for i in items if isinstance(i, Record)]
    with open(FIXTURES / "good.jsonl", encoding="utf-8") as f:
        expected = [json.loads(line) for line in f if line.strip()]
    assert [r.update for r in records] == expected
    for record in records:
        assert not isinstance(check(record.update, "dwp"), Rejection)


def test_mixed_file_reports_each_bad_line_and_goes_on() -> None:
    items = _read("mixed.jsonl")
    summary = [
        (i.where, i.reason if isinstance(i, BadRecord) else "ok", getattr(i, "source_record_id", 0))
        for i in items
    ]
    assert summary == [
        ("line 1", "ok", 0),
        ("line 2", "invalid_json", "CB-000202"),
        ("line 3", "not_an_object", None),
        ("line 4", "invalid_encoding", "CB-000204"),
        ("line 6", "invalid_json", "CB-000205"),  # NaN is not JSON
        ("line 7", "ok", 0),
        ("line 8", "ok", 0),
    ]
    raw_lines = (FIXTURES / "mixed.jsonl").read_bytes().split(b"\n")
    for item in items:
        if isinstance(item, BadRecord):
            number = int(item.where.split()[1])
            assert item.raw == raw_lines[number - 1].decode("utf-8", errors="replace")
            for personal in ("Rhiannon", "Tegid", "Jude", "Ashby", "Harcourt", "Lakhani", "2013-"):
                assert personal not in item.error


def test_source_is_not_overwritten() -> None:
    record = _read("mixed.jsonl")[5]
    assert isinstance(record, Record)
    assert record.update["source"] == "hmrc"
    rejection = check(record.update, "dwp")
    assert isinstance(rejection, Rejection) and rejection.reason == "source_mismatch"
    assert rejection.source == "dwp"  # who sent it; the claim is in the error
    assert "'hmrc'" in rejection.error


def test_bom_crlf_and_blank_lines() -> None:
    body = b'\xef\xbb\xbf{"a": 1}\r\n\r\n   \r\n{"b": 2}\r\n'
    items = list(jsonl.read(io.BytesIO(body), "dwp"))
    assert items == [Record("line 1", {"a": 1}), Record("line 4", {"b": 2})]


def test_empty_file() -> None:
    assert list(jsonl.read(io.BytesIO(b""), "dwp")) == []


def test_reads_lazily() -> None:
    stream = io.BytesIO(b'{"n": 1}\n' * 100_000)
    items = jsonl.read(stream, "dwp")
    first = next(items)
    assert isinstance(first, Record) and first.where == "line 1"
    assert stream.tell() < 64 * 1024


def test_streams_a_big_file_in_bounded_memory(tmp_path: Path) -> None:
    # The file is bigger than the memory bound, so reading it whole would fail.
    path = tmp_path / "big.jsonl"
    line = {
        "source": "dwp",
        "source_record_id": "CB-0",
        "source_version": 1,
        "child": {
            "given_name": "Test",
            "middle_names": "x" * 1500,
            "family_name": "Child",
            "date_of_birth": "2015-01-01",
        },
    }
    with open(path, "w", encoding="utf-8") as f:
        for n in range(LINES):
            line["source_record_id"] = f"CB-{n}"
            f.write(json.dumps(line) + "\n")
    assert path.stat().st_size > 2 * BOUND
    tracemalloc.start()
    try:
        count = 0
        with open(path, "rb") as stream:
            for item in jsonl.read(stream, "dwp"):
                assert isinstance(item, Record)
                count += 1
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert count == LINES
    assert peak < BOUND
