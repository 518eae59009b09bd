"""adapters.fhir: FHIR R4 Patient (single, Bundle, NDJSON) as NHS PDS serves it."""

from __future__ import annotations

import copy
import io
import json
import tracemalloc
from pathlib import Path

import pytest

from adapters import _jsonstream, fhir
from adapters.base import BadRecord, Record
from hub.validate import Rejection, check

BOUND = 16 * 1024 * 1024  # bytes of Python memory while reading a big file
COUNT = 5_000  # resources in the big files (each padded to make the file > 2 * BOUND)
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "adapters" / "fhir"
PERSONAL = (
    "Isla", "Fairbairn", "Dunmore", "Samuel", "Ojo", "Adebayo", "Noah", "Castellano", "Ada",
    "Quill", "Leon", "Brandt", "Tilly", "Marsh", "Ren", "Dubois", "Hal", "Price", "2017-08-09",
    "2013-04-04", "2012-02-02", "LS6 2DF", "Quarry", "0113", "07700",
)  # fmt: skip

ISLA = {
    "source": "pds",
    "source_record_id": "9990000093",
    "source_version": 2,
    "kind": "upsert",
    "restricted": False,
    "child": {
        "nhs_number": "9990000093",
        "given_name": "Isla",
        "middle_names": "Mae Rose",
        "family_name": "Fairbairn",
        "former_family_names": ["Dunmore"],
        "date_of_birth": "2017-08-09",
        "sex": "female",
        "address": {
            "lines": ["3 Quarry Close", "Headingley"],
            "town": "Leeds",
            "postcode": "LS6 2DF",
            "la": "383",
        },
        "carers": [
            {"name": None, "relationship": "Emergency Contact", "phone": "0113 496 0201"},
            {"name": "Fiona Fairbairn", "relationship": "mother", "phone": "07700 900456"},
        ],
        "gp_practice": {"ods_code": "B86002", "name": "Headingley Medical Practice"},
    },
}


def _read(name: str) -> list[Record | BadRecord]:
    with open(FIXTURES / name, "rb") as stream:
        return list(fhir.read(stream, "pds"))


def _summary(items: list[Record | BadRecord]) -> list[tuple[str, str, str | None]]:
    return [
        (i.where, i.reason, i.source_record_id)
        if isinstance(i, BadRecord)
        else (i.where, "ok", i.update["source_record_id"])
        for i in items
    ]


def _assert_no_personal_data(items: list[Record | BadRecord]) -> None:
    for item in items:
        if isinstance(item, BadRecord):
            assert "\n" not in item.error
            for personal in PERSONAL:
                assert personal not in item.error, (item.where, personal)


def _assert_valid(items: list[Record | BadRecord]) -> None:
    for item in items:
        if isinstance(item, Record):
            json.dumps(item.update)
            assert not isinstance(check(item.update, "pds"), Rejection), item.where


def test_single_patient_maps_every_field() -> None:
    items = _read("patient.json")
    assert items == [Record("line 1", ISLA)]
    _assert_valid(items)


def test_restricted_patient() -> None:
    (record,) = _read("restricted.json")
    assert isinstance(record, Record)
    assert record.update == {
        "source": "pds",
        "source_record_id": "9990000107",
        "source_version": 5,
        "kind": "upsert",
        "restricted": True,
        "child": {
            "nhs_number": "9990000107",
            "given_name": "Noah",
            "middle_names": None,
            "family_name": "Castellano",
            "former_family_names": [],
            "date_of_birth": "2015-03-01",  # partial "2015-03": unknown day is the 1st
            "sex": "male",
            "address": None,
            "carers": [],
            "gp_practice": None,
        },
    }
    _assert_valid([record])


def test_bundle_entries() -> None:
    items = _read("bundle.json")
    assert _summary(items) == [
        ("entry[0]", "ok", "9990000093"),
        ("entry[1]", "ok", "9990000107"),
        ("entry[2]", "unsupported_resource", "oo1"),
        ("entry[3]", "ok", "9990000115"),
        ("entry[4]", "invalid_source_version", "9990000131"),
        ("entry[5]", "missing_resource", None),
        ("entry[6]", "ok", "9990000123"),
    ]
    assert isinstance(items[0], Record) and items[0].update == ISLA
    assert isinstance(items[1], Record) and items[1].update["restricted"] is True
    sami = items[3]
    assert isinstance(sami, Record)
    assert sami.update["child"] == {
        "nhs_number": "9990000115",
        "given_name": "Samuel",  # official beats nickname
        "middle_names": "Ayo",
        "family_name": "Ojo",
        "former_family_names": ["Adebayo"],  # maiden
        "date_of_birth": "2011-12-24",
        "sex": "unknown",  # other
        "address": {"lines": ["9 Canal Wharf"], "town": None, "postcode": "LS11 5PS", "la": None},
        "carers": [],
        "gp_practice": {"ods_code": "B86004", "name": None},
    }
    very = items[6]
    assert isinstance(very, Record) and very.update["restricted"] is True  # code V
    bad = items[2]
    assert isinstance(bad, BadRecord)
    assert json.loads(bad.raw)["resource"]["resourceType"] == "OperationOutcome"
    assert "OperationOutcome" in bad.error
    _assert_valid(items)
    _assert_no_personal_data(items)


def test_bundle_is_read_the_same_at_any_chunk_boundary(monkeypatch: pytest.MonkeyPatch) -> None:
    expected = _summary(_read("bundle.json"))
    expected_updates = [i.update for i in _read("bundle.json") if isinstance(i, Record)]
    for size in (1, 2, 3, 5, 7, 64, 1000):
        monkeypatch.setattr(_jsonstream, "CHUNK", size)
        items = _read("bundle.json")
        assert _summary(items) == expected, size
        assert [i.update for i in items if isinstance(i, Record)] == expected_updates


def test_broken_bundle_reports_where_it_broke_and_stops() -> None:
    items = _read("broken_bundle.json")
    assert _summary(items) == [
        ("entry[0]", "ok", "9990000093"),
        ("entry[1]", "ok", "9990000115"),
        ("entry[2]", "invalid_json", None),
    ]
    bad = items[2]
    assert isinstance(bad, BadRecord)
    assert "line" in bad.error
    assert '"resourceType": "Patient",,' in bad.raw
    _assert_no_personal_data(items)


def test_ndjson() -> None:
    items = _read("patients.ndjson")
    assert _summary(items) == [
        ("line 1", "ok", "9990000093"),
        ("line 2", "ok", "9990000115"),
        ("line 3", "ok", "9990000123"),
    ]
    assert isinstance(items[0], Record) and items[0].update == ISLA
    _assert_valid(items)


def test_mixed_ndjson_reports_each_bad_line_and_goes_on() -> None:
    items = _read("mixed.ndjson")
    assert _summary(items) == [
        ("line 1", "ok", "9990000093"),
        ("line 2", "invalid_json", None),
        ("line 3", "unsupported_resource", "oo1"),
        ("line 5", "invalid_source_version", "9990000131"),
        ("line 6", "invalid_encoding", None),
        ("line 7", "invalid_resource", "9990000166"),
        ("line 8", "ok", "9990000107"),
        ("line 9", "ok", "9990000115"),
    ]
    raw_lines = (FIXTURES / "mixed.ndjson").read_bytes().split(b"\n")
    for item in items:
        if isinstance(item, BadRecord):
            number = int(item.where.split()[1])
            assert item.raw == raw_lines[number - 1].decode("utf-8", errors="replace")
    _assert_valid(items)
    _assert_no_personal_data(items)


def _patient(**changes: object) -> dict[str, object]:
    data = json.loads((FIXTURES / "patient.json").read_text(encoding="utf-8"))
    data.update(changes)
    return data


def _one(data: object) -> Record | BadRecord:
    (item,) = list(fhir.read(io.BytesIO(json.dumps(data).encode()), "pds"))
    return item


def test_layouts_detected_from_content() -> None:
    patient = _patient()
    # Minified single Patient: one line, read as NDJSON.
    assert _one(patient) == Record("line 1", ISLA)
    # Pretty with leading blank lines and a BOM.
    body = b"\xef\xbb\xbf\n\n" + json.dumps(patient, indent=1).encode()
    assert list(fhir.read(io.BytesIO(body), "pds")) == [Record("line 3", ISLA)]
    # A Bundle on one NDJSON line.
    bundle = {"resourceType": "Bundle", "entry": [{"resource": patient}, {"resource": patient}]}
    body = (json.dumps(patient) + "\n" + json.dumps(bundle) + "\n").encode()
    items = list(fhir.read(io.BytesIO(body), "pds"))
    assert [i.where for i in items] == ["line 1", "line 2 entry[0]", "line 2 entry[1]"]
    # "entry" before "resourceType": still read (held in memory).
    odd = {"entry": [{"resource": patient}], "resourceType": "Bundle"}
    items = list(fhir.read(io.BytesIO(json.dumps(odd, indent=2).encode()), "pds"))
    assert items == [Record("entry[0]", ISLA)]
    # Nothing at all.
    assert list(fhir.read(io.BytesIO(b""), "pds")) == []
    assert list(fhir.read(io.BytesIO(b"\n  \n"), "pds")) == []


def test_patient_edge_cases() -> None:
    no_version = _patient(meta={"versionId": "two"})
    bad = _one(no_version)
    assert isinstance(bad, BadRecord) and bad.reason == "invalid_source_version"
    assert bad.source_record_id == "9990000093"

    no_id = _patient()
    del no_id["id"]
    bad = _one(no_id)
    assert isinstance(bad, BadRecord) and bad.reason == "missing_source_record_id"

    weird = _one({"resourceType": "Isla Fairbairn 2017-08-09", "id": "x"})
    assert isinstance(weird, BadRecord) and weird.reason == "unsupported_resource"
    assert "Isla" not in weird.error

    wrong_type = _one(_patient(address={"line": "3 Quarry Close"}))
    assert isinstance(wrong_type, BadRecord) and wrong_type.reason == "invalid_resource"
    assert wrong_type.error == "Patient.address is not a list"

    security = _patient(meta={"versionId": "9", "security": [{"code": "V"}]})
    record = _one(security)
    assert isinstance(record, Record)
    assert record.update["restricted"] is True and record.update["source_version"] == 9

    la_on_patient = copy.deepcopy(_patient())
    del la_on_patient["address"][1]["extension"]
    la_on_patient["extension"] = [{"url": fhir.LA_EXTENSION, "valueCode": "384"}]
    record = _one(la_on_patient)
    assert isinstance(record, Record) and record.update["child"]["address"]["la"] == "384"

    nameless = _one(_patient(name=[{"use": "old", "family": "Dunmore"}], birthDate="2017"))
    assert isinstance(nameless, Record)
    child = nameless.update["child"]
    assert (child["given_name"], child["family_name"]) == (None, None)
    assert child["former_family_names"] == ["Dunmore"]
    assert child["date_of_birth"] == "2017-01-01"
    rejection = check(nameless.update, "pds")
    assert isinstance(rejection, Rejection) and rejection.reason == "missing_name"


def test_reads_ndjson_lazily() -> None:
    line = json.dumps(_patient()).encode() + b"\n"
    stream = io.BytesIO(line * 2_000)
    items = fhir.read(stream, "pds")
    assert isinstance(next(items), Record)
    assert stream.tell() < 64 * 1024


def test_reads_a_bundle_lazily() -> None:
    entry = {"resource": _patient()}
    bundle = {"resourceType": "Bundle", "type": "searchset", "entry": [entry] * 2_000}
    stream = io.BytesIO(json.dumps(bundle, indent=2).encode())
    items = fhir.read(stream, "pds")
    assert next(items) == Record("entry[0]", ISLA)
    assert stream.tell() < 256 * 1024


def _measure(path: Path) -> tuple[int, int]:
    tracemalloc.start()
    try:
        count = 0
        with open(path, "rb") as stream:
            for item in fhir.read(stream, "pds"):
                assert isinstance(item, Record)
                count += 1
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    return count, peak


def test_streams_big_ndjson_in_bounded_memory(tmp_path: Path) -> None:
    path = tmp_path / "big.ndjson"
    patient = _patient(text={"status": "generated", "div": "x" * 6000})
    with open(path, "w", encoding="utf-8") as f:
        for n in range(COUNT):
            patient["id"] = f"P{n}"
            f.write(json.dumps(patient) + "\n")
    assert path.stat().st_size > 2 * BOUND
    count, peak = _measure(path)
    assert count == COUNT and peak < BOUND


def test_streams_a_big_bundle_in_bounded_memory(tmp_path: Path) -> None:
    path = tmp_path / "big-bundle.json"
    patient = _patient(text={"status": "generated", "div": "x" * 6000})
    with open(path, "w", encoding="utf-8") as f:
        f.write('{\n  "resourceType": "Bundle",\n  "type": "searchset",\n  "entry": [\n')
        for n in range(COUNT):
            patient["id"] = f"P{n}"
            if n:
                f.write(",\n")
            f.write(json.dumps({"fullUrl": f"urn:uuid:{n}", "resource": patient}, indent=2))
        f.write("\n  ]\n}\n")
    assert path.stat().st_size > 2 * BOUND
    count, peak = _measure(path)
    assert count == COUNT and peak < BOUND


def test_two_nhs_numbers_are_a_dead_letter() -> None:
    """Which is hers? The first was kept and the other dropped unseen (an independent
    probe); the same number twice is one."""
    system = "https://fhir.nhs.uk/Id/nhs-number"
    patient = {"resourceType": "Patient", "id": "P-2", "meta": {"versionId": "1"},
               "birthDate": "2016-08-19", "name": [{"family": "Quillfeather"}],
               "identifier": [{"system": system, "value": "9990000018"},
                              {"system": system, "value": "9990000026"}]}
    bad = _one(patient)
    assert isinstance(bad, BadRecord) and bad.reason == "conflicting_nhs_numbers"
    assert "9990000018" not in bad.error
    patient["identifier"][1]["value"] = "9990000018"
    same = _one(patient)
    assert isinstance(same, Record) and same.update["child"]["nhs_number"] == "9990000018"
