"""adapters.csv: child-benefit style CSV extract."""

from __future__ import annotations

import io
import tracemalloc
from pathlib import Path

from adapters import csv as csv_adapter
from adapters.base import BadRecord, Record
from hub.validate import Rejection, check

BOUND = 16 * 1024 * 1024  # bytes of Python memory while reading a big file
ROWS = 15_000
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "adapters" / "csv"

PERSONAL = (
    "Amara", "Okafor", "Rhiannon", "Tegid", "Jude", "Ashby", "Callum", "Reid", "Maisie",
    "Thorne", "Oskar", "Harcourt", "Zo", "2013-07-19", "2016-03-08", "2011-12-01",
    "2016-04-30", "9990000050", "9990000069", "LS8 1AA", "LS1 1AA", "LS2 9JT", "Ellis",
    "Marwood", "2015-02-11",
)  # fmt: skip


def _read(name: str, source: str = "dwp") -> list[Record | BadRecord]:
    with open(FIXTURES / name, "rb") as stream:
        return list(csv_adapter.read(stream, source))


def _records(items: list[Record | BadRecord]) -> list[Record]:
    assert all(isinstance(i, Record) for i in items), items
    return [i for i in items if isinstance(i, Record)]


def test_module_uses_the_standard_library_csv() -> None:
    import csv

    assert csv_adapter.csv is csv
    assert hasattr(csv_adapter.csv, "reader")


def test_good_file_maps_every_column() -> None:
    records = _records(_read("good.csv"))
    assert [r.where for r in records] == ["line 2", "line 3", "line 4", "line 5"]
    assert records[0].update == {
        "source": "dwp",
        "source_record_id": "CB-0001",
        "source_version": 3,
        "kind": "upsert",
        "child": {
            "nhs_number": "9990000018",
            "upn": None,
            "given_name": "Amara",
            "middle_names": "Grace Olu",
            "family_name": "Okafor",
            "former_family_names": ["Adeyemi", "Bello"],
            "date_of_birth": "2014-05-17",
            "sex": "female",
            "address": {
                "lines": ["12 Larch Road"],
                "town": "Leeds",
                "postcode": "LS6 3QT",
                "la": "383",
            },
            "carers": [
                {"name": "Ngozi Okafor", "relationship": "mother", "phone": "0113 496 0101"}
            ],
            "education_setting": {"urn": "107942", "name": "Larch Primary School"},
            "gp_practice": {"ods_code": "B86001", "name": "Hyde Park Surgery"},
            "services": [],
        },
    }
    second = records[1].update["child"]
    assert second["nhs_number"] == "9990000026"  # spaces removed
    assert second["date_of_birth"] == "2016-11-03"  # DD/MM/YYYY
    assert second["sex"] == "male"
    assert second["address"]["lines"] == ["Flat 2", "40 Birch Lane, Moortown"]
    assert second["carers"] == [
        {"name": "Agata Wiśniewska", "relationship": "mother", "phone": "0113 496 0102"},
        {"name": "Piotr Wiśniewski", "relationship": "father", "phone": "0113 496 0103"},
    ]
    assert second["education_setting"] is None and second["gp_practice"] is None
    third = records[2].update["child"]
    assert (third["given_name"], third["family_name"], third["sex"]) == (
        None,
        "Pennington",
        "unknown",
    )
    assert third["address"] is None and third["carers"] == []
    fourth = records[3].update["child"]
    assert fourth["upn"] == "F383200112345"
    assert fourth["address"]["postcode"] == "LS7 4PQ"  # stripped
    assert fourth["carers"] == [
        {"name": "Esi Mensah", "relationship": "grandmother", "phone": "07700 900123"}
    ]
    for record in records:
        assert not isinstance(check(record.update, "dwp"), Rejection), record.where


def test_bom_crlf_quoted_fields_and_any_column_order() -> None:
    records = _records(_read("bom_crlf_quoted.csv"))
    assert [r.where for r in records] == ["line 2", "line 4"]  # row 2 spans lines 2-3
    first = records[0]
    assert first.update["source_record_id"] == "CB-0301"
    assert first.update["source_version"] == 12
    assert first.update["restricted"] is False
    child = first.update["child"]
    assert child["given_name"] == 'Aoife "Effie"'
    assert child["family_name"] == "O'Neill-Sharpe"
    assert child["date_of_birth"] == "2013-06-21"
    assert child["sex"] == "female"
    assert child["address"]["lines"] == ["Flat 3, Kirkstall House", "Line two\r\nstill line two"]
    assert child["carers"] == [
        {"name": "Siobhan O'Neill, Ms", "relationship": "mother", "phone": "0113 496 0301"}
    ]
    assert child["services"] == [{"name": "Health visiting", "contact": "0113 496 0001"}]
    assert records[1].update["restricted"] is True
    assert records[1].update["child"]["address"] is None
    for record in records:
        assert not isinstance(check(record.update, "dwp"), Rejection)


def test_mixed_file_reports_bad_rows_and_goes_on() -> None:
    items = _read("mixed.csv")
    summary = [
        (i.where, i.reason if isinstance(i, BadRecord) else "ok", i.source_record_id)
        if isinstance(i, BadRecord)
        else (i.where, "ok", i.update["source_record_id"])
        for i in items
    ]
    assert summary == [
        ("line 2", "ok", "CB-0101"),
        ("line 3", "wrong_field_count", "CB-0102"),
        ("line 4", "invalid_source_version", "CB-0103"),
        ("line 5", "ok", "CB-0104"),
        ("line 6", "unparseable_record", None),
        ("line 7", "missing_source_record_id", None),
        ("line 8", "ok", "CB-0107"),  # bad NHS number: the pipeline's business
        ("line 9", "ok", "CB-0108"),
        ("line 10", "invalid_encoding", "CB-0109"),
        ("line 12", "ok", "CB-0110"),
    ]
    raw_lines = (FIXTURES / "mixed.csv").read_bytes().split(b"\n")
    for item in items:
        if isinstance(item, BadRecord):
            number = int(item.where.split()[1])
            assert item.raw == raw_lines[number - 1].decode("utf-8", errors="replace")
            assert "\n" not in item.error
            for personal in PERSONAL:
                assert personal not in item.error, (item.where, personal)
    verdicts = [check(i.update, "dwp") for i in items if isinstance(i, Record)]
    reasons = [v.reason if isinstance(v, Rejection) else "ok" for v in verdicts]
    assert reasons == ["ok", "ok", "invalid_nhs_number", "ok", "ok"]


def _all_bad(items: list[Record | BadRecord]) -> list[BadRecord]:
    assert all(isinstance(i, BadRecord) for i in items), items
    return [i for i in items if isinstance(i, BadRecord)]


def test_missing_required_column_dead_letters_the_header_and_every_row() -> None:
    items = _all_bad(_read("missing_column.csv"))
    raw_lines = (FIXTURES / "missing_column.csv").read_text(encoding="utf-8").splitlines()
    assert len(items) == 1 + (len(raw_lines) - 1)  # the header + one per row
    header, *rows = items
    assert (header.where, header.reason) == ("line 1", "missing_column")
    assert "date_of_birth" in header.error
    assert header.raw == "source_record_id,source_version,given_name,family_name,dob,sex"
    assert header.source_record_id is None
    assert [(r.where, r.reason, r.source_record_id, r.raw) for r in rows] == [
        ("line 2", "missing_column", "CB-0201", raw_lines[1]),
        ("line 3", "missing_column", "CB-0202", raw_lines[2]),
    ]
    for row in rows:
        assert row.error == (
            "row not read because of the header: required column date_of_birth is missing"
        )
    for item in items:
        assert "\n" not in item.error
        for personal in PERSONAL:
            assert personal not in item.error, (item.where, personal)


def _one(body: bytes) -> list[Record | BadRecord]:
    return list(csv_adapter.read(io.BytesIO(body), "dwp"))


def test_header_problems() -> None:
    no_name = _one(b"source_record_id,source_version,date_of_birth\nA,1,2015-01-01\n")
    assert [(i.where, getattr(i, "reason", None)) for i in no_name] == [
        ("line 1", "missing_column"),
        ("line 2", "missing_column"),
    ]
    unknown = _one(b"source_record_id,source_version,given_name,date_of_birth,surname\n")
    assert isinstance(unknown[0], BadRecord) and unknown[0].reason == "unknown_column"
    assert "column 5" in unknown[0].error
    duplicate = _one(b"source_record_id,source_version,given_name,given_name,date_of_birth\n")
    assert isinstance(duplicate[0], BadRecord) and duplicate[0].reason == "duplicate_column"
    bad_numbered = _one(
        b"source_record_id,source_version,given_name,date_of_birth,carer1_contact\n"
    )
    assert isinstance(bad_numbered[0], BadRecord) and bad_numbered[0].reason == "unknown_column"
    empty = _one(b"")
    assert isinstance(empty[0], BadRecord) and empty[0].reason == "empty_file"


def test_headerless_file_does_not_leak_the_first_row() -> None:
    items = _all_bad(_one(b"CB-1,1,Amara,Okafor,2014-05-17\nCB-2,1,Jude,Ashby,2016-03-08\n"))
    assert [(i.where, i.reason, i.source_record_id) for i in items] == [
        ("line 1", "missing_column", None),  # the first row, taken for the header
        ("line 2", "missing_column", None),  # no source_record_id column to read
    ]
    assert [i.raw for i in items] == [
        "CB-1,1,Amara,Okafor,2014-05-17",
        "CB-2,1,Jude,Ashby,2016-03-08",
    ]
    for item in items:
        for personal in ("Amara", "Okafor", "2014-05-17", "CB-1", "Jude", "Ashby", "CB-2"):
            assert personal not in item.error


def test_every_row_after_a_bad_header_is_its_own_bad_record() -> None:
    # Unknown and duplicate columns too; blank lines are skipped as usual, and a
    # row that is also malformed keeps the header's reason and its raw text.
    for header, reason in (
        (b"source_record_id,source_version,given_name,date_of_birth,surname", "unknown_column"),
        (
            b"source_record_id,source_version,given_name,given_name,date_of_birth",
            "duplicate_column",
        ),
    ):
        rows = [
            b"A1,1,Ann,Ann,2015-01-01",
            b"",
            b"A2,1,Bo",  # wrong field count
            b"A3,1,Caf\xe9,Cy,2015-01-01",  # invalid UTF-8
            b'A4,1,"Di,Di,2015-01-01',  # unterminated quote: its line alone
            b"A5,1,Ed,Ed,2015-01-01",
        ]
        items = _all_bad(_one(header + b"\r\n" + b"\r\n".join(rows) + b"\r\n"))
        assert [(i.where, i.reason, i.source_record_id) for i in items] == [
            ("line 1", reason, None),
            ("line 2", reason, "A1"),
            ("line 4", reason, "A2"),
            ("line 5", reason, "A3"),
            ("line 6", reason, "A4"),
            ("line 7", reason, "A5"),
        ]
        assert items[0].raw == header.decode()
        assert [i.raw for i in items[1:4]] == [
            "A1,1,Ann,Ann,2015-01-01",
            "A2,1,Bo",
            "A3,1,Caf\ufffd,Cy,2015-01-01",
        ]
        assert [i.raw for i in items[4:]] == ['A4,1,"Di,Di,2015-01-01', "A5,1,Ed,Ed,2015-01-01"]
        for item in items[1:]:
            assert item.error == f"row not read because of the header: {items[0].error}"


def test_rows_after_a_bad_header_are_read_lazily() -> None:
    header = b"source_record_id,source_version,given_name,dob\n"
    stream = io.BytesIO(header + b"A,1,Ann,2015-01-01\n" * 100_000)
    items = csv_adapter.read(stream, "dwp")
    assert [getattr(next(items), "where", None) for _ in range(2)] == ["line 1", "line 2"]
    assert stream.tell() < 64 * 1024


def test_values_are_normalised_but_not_invented() -> None:
    header = (
        b"source_record_id,source_version,given_name,family_name,date_of_birth,sex,restricted\n"
    )
    items = _one(
        header
        + b" A1 , 2 , Ann ,,2015-01-01T00:00:00,Unknown,yes\n"
        + b"A2,3,Bo,,,X,\n"
        + b"A3,4,Cy,,2015-01-01,robot,N\n"
        + b"A4,5,Di,,2015-01-01,F,maybe\n"
        + b"A5,,Ed,,2015-01-01,F,\n"
    )
    first, second, third, fourth, fifth = items
    assert isinstance(first, Record)
    assert first.update["source_record_id"] == "A1"
    assert first.update["source_version"] == 2
    assert first.update["restricted"] is True
    assert first.update["child"]["date_of_birth"] == "2015-01-01"
    assert first.update["child"]["sex"] == "unknown"
    assert first.update["child"]["family_name"] is None
    assert isinstance(second, Record)
    assert "date_of_birth" not in second.update["child"]  # blank: left out, not invented
    rejection = check(second.update, "dwp")
    assert isinstance(rejection, Rejection) and rejection.reason == "missing_date_of_birth"
    assert isinstance(third, Record) and third.update["child"]["sex"] == "robot"
    assert isinstance(check(third.update, "dwp"), Rejection)
    assert isinstance(fourth, BadRecord) and fourth.reason == "invalid_restricted"
    assert isinstance(fifth, BadRecord) and fifth.reason == "invalid_source_version"
    assert fifth.source_record_id == "A5"


def test_an_open_quote_is_its_own_line_and_the_rows_after_it_are_read() -> None:
    # Probe F: one stray quote swallowed the next row (or, with no quote after it,
    # the rest of the file) into a single dead letter.
    header = b"source_record_id,source_version,given_name,date_of_birth\n"
    items = _one(header + b'A1,1,"Ann,2015-01-01\nA2,1,Bo,2015-01-01\nA3,1,Cy,2015-02-02\n')
    bad, *good = items
    assert isinstance(bad, BadRecord) and bad.reason == "unparseable_record"
    assert (bad.where, bad.source_record_id, bad.raw) == ("line 2", "A1", 'A1,1,"Ann,2015-01-01')
    assert "Ann" not in bad.error
    assert [(r.where, r.update["source_record_id"]) for r in good
            if isinstance(r, Record)] == [("line 3", "A2"), ("line 4", "A3")]
    # A quote closed lines later, leaving the row the wrong size: the same.
    items = _one(header + b'A1,1,"Ann,2015-01-01\nA2,1,Bo",x,2015-01-01\nA3,1,Cy,2015-02-02\n')
    assert [(i.where, i.reason if isinstance(i, BadRecord) else "ok") for i in items] == [
        ("line 2", "unparseable_record"), ("line 3", "wrong_field_count"), ("line 4", "ok")]
    # An id after an open quote may be another cell's text ("Marie" here): none is
    # taken (ids go into logs).
    items = _one(b"given_name,source_record_id,source_version,date_of_birth\n"
                 b'"Ann, Marie,A1,1,2015-01-01\nBo,A2,1,2015-01-01\n')
    assert (items[0].reason, items[0].source_record_id) == ("unparseable_record", None)
    # A quoted line break in a row of the right size is still one row.
    items = _one(header + b'A1,1,"Ann\nMarie",2015-01-01\nA2,1,Bo,2015-01-01\n')
    assert [(i.where, i.update["child"]["given_name"]) for i in items
            if isinstance(i, Record)] == [("line 2", "Ann\nMarie"), ("line 4", "Bo")]


def test_reads_lazily() -> None:
    header = b"source_record_id,source_version,given_name,date_of_birth\n"
    stream = io.BytesIO(header + b"A,1,Ann,2015-01-01\n" * 100_000)
    items = csv_adapter.read(stream, "dwp")
    assert isinstance(next(items), Record)
    assert stream.tell() < 64 * 1024


def test_streams_a_big_file_in_bounded_memory(tmp_path: Path) -> None:
    # The file is bigger than the memory bound, so reading it whole would fail.
    path = tmp_path / "big.csv"
    padding = "x" * 2500
    with open(path, "w", encoding="utf-8", newline="") as f:
        f.write(csv_adapter.HEADER + "\r\n")
        for n in range(ROWS):
            f.write(
                f"CB-{n},1,,,Test,,Child,,2015-01-01,F,1 Street,,,Leeds,LS1 1AA,383,"
                f'"Carer, One",mother,0113 496 0000,,,,100000,School {padding},B86001,Surgery\r\n'
            )
    assert path.stat().st_size > 2 * BOUND
    tracemalloc.start()
    try:
        count = 0
        with open(path, "rb") as stream:
            for item in csv_adapter.read(stream, "dwp"):
                assert isinstance(item, Record)
                count += 1
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert count == ROWS
    assert peak < BOUND


def test_a_part_is_left_out_only_when_every_value_is_none_or_empty() -> None:
    """adapters._common.compact keeps a dict unless each value is None, [] or "",
    whatever the values' kinds (the rule the adapters always had)."""
    from adapters._common import compact

    values = [None, "", [], "x", " ", ["a"], [""], 0, False, True, {}, 1.5]
    for a in values:
        for b in values:
            d = {"a": a, "b": b}
            expected = d if any(v not in (None, [], "") for v in d.values()) else None
            assert compact(d) is expected, d
    assert compact({}) is None
