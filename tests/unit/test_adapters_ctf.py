"""adapters.ctf: DfE Common Transfer File XML."""

from __future__ import annotations

import io
import json
import tracemalloc
from pathlib import Path

from adapters import ctf
from adapters.base import BadRecord, Record
from hub.validate import Rejection, check

BOUND = 16 * 1024 * 1024  # bytes of Python memory while reading a big file
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "adapters" / "ctf"
PERSONAL = (
    "Okafor", "Amara", "Wiśniewski", "Tomasz", "Ashby", "Jude", "Lakhani", "Priya", "Reid",
    "Callum", "2016-03-08", "2011-12-01", "WF1", "Mill Street",
)  # fmt: skip


def _read(name: str) -> list[Record | BadRecord]:
    with open(FIXTURES / name, "rb") as stream:
        return list(ctf.read(stream, "dfe-ctf"))


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


def test_good_file_maps_every_field() -> None:
    items = _read("good.xml")
    assert _summary(items) == [
        ("Pupil[1]", "ok", "F383200112345"),
        ("Pupil[2]", "ok", "V383200112346"),
        ("Pupil[3]", "ok", "J383200112347"),
    ]
    school = {"urn": "107942", "name": "Larch Primary School"}
    assert isinstance(items[0], Record)
    assert items[0].update == {
        "source": "dfe-ctf",
        "source_record_id": "F383200112345",
        "source_version": 20260718140509,  # header DateTime
        "kind": "upsert",
        "child": {
            "nhs_number": None,
            "upn": "F383200112345",
            "given_name": "Amara",
            "middle_names": "Grace Olu",
            "family_name": "Okafor",
            "former_family_names": ["Adeyemi"],
            "date_of_birth": "2014-05-17",
            "sex": "female",
            "address": {
                "lines": ["Flat 4", "12 Larch Road", "Headingley"],
                "town": "Leeds",
                "postcode": "LS6 3QT",
                "la": "383",  # the source school's LEA: a guess, and said to be one
                "la_inferred": True,
            },
            # The childminder has <Responsibility>false</Responsibility>: not a carer.
            "carers": [
                {"name": "Ngozi Okafor", "relationship": "mother", "phone": "0113 496 0101"}
            ],
            "education_setting": school,
        },
    }
    assert isinstance(items[1], Record)
    second = items[1].update["child"]
    assert second["sex"] == "male"  # <Gender>, older files
    assert second["middle_names"] is None
    assert second["address"] == {
        "lines": ["Flat 2", "40 Birch Lane", "Moortown"],
        "town": None,
        "postcode": "LS17 6AB",
        "la": "383",
        "la_inferred": True,
    }
    assert second["carers"] == [
        {"name": "Agata Wiśniewska", "relationship": "mother", "phone": "0113 496 0102"},
        {"name": "Ewa Kowal", "relationship": "XYZ", "phone": None},  # unknown code as given
    ]
    assert isinstance(items[2], Record)
    third = items[2].update["child"]
    assert (third["given_name"], third["family_name"], third["sex"]) == (None, "Pennington", None)
    assert third["address"] is None  # no address: no LA invented either
    assert third["education_setting"] == school
    for item in items:
        assert isinstance(item, Record)
        json.dumps(item.update)
        assert not isinstance(check(item.update, "dfe-ctf"), Rejection), item.where


def test_mixed_file_reports_bad_pupils_and_goes_on() -> None:
    items = _read("mixed.xml")
    assert _summary(items) == [
        ("Pupil[1]", "ok", "Y383200112348"),
        ("Pupil[2]", "missing_upn", None),
        ("Pupil[3]", "ok", "M383200112349"),  # no DOB: the pipeline's business
        ("Pupil[4]", "missing_upn", None),  # blank UPN
        ("Pupil[5]", "ok", "H383200112350"),
    ]
    first = items[0]
    assert isinstance(first, Record)
    assert first.update["source_version"] == 20260718130509  # +01:00 -> UTC
    assert first.update["child"]["education_setting"] == {
        "urn": "108500",
        "name": "Moor Lane Academy",
    }
    missing = items[1]
    assert isinstance(missing, BadRecord)
    assert missing.raw.startswith("<Pupil>") and "<Surname>Ashby</Surname>" in missing.raw
    last = items[4]
    assert isinstance(last, Record)
    assert last.update["child"]["date_of_birth"] == "2016-04-30"
    assert last.update["child"]["address"] == {
        "lines": ["2 Kirkgate"],
        "town": "Wakefield",  # PostTown
        "postcode": "WF1 1HB",  # inside BS7666Address
        "la": "384",
        "la_inferred": True,
    }
    verdicts = [check(i.update, "dfe-ctf") for i in items if isinstance(i, Record)]
    reasons = [v.reason if isinstance(v, Rejection) else "ok" for v in verdicts]
    assert reasons == ["ok", "missing_date_of_birth", "ok"]
    _assert_no_personal_data(items)


def test_broken_xml_reports_once_and_stops() -> None:
    items = _read("broken.xml")
    assert _summary(items) == [
        ("Pupil[1]", "ok", "F383200112345"),
        ("Pupil[2]", "invalid_xml", "V383200112346"),
    ]
    bad = items[1]
    assert isinstance(bad, BadRecord)
    assert bad.error.startswith("XML is not well-formed at line 17")
    assert "<UPN>V383200112346</UPN>" in bad.raw
    _assert_no_personal_data(items)


def test_header_without_usable_datetime() -> None:
    items = _read("no_datetime.xml")
    assert _summary(items) == [("Pupil[1]", "invalid_source_version", "F383200112345")]


def _one(body: str) -> list[Record | BadRecord]:
    return list(ctf.read(io.BytesIO(body.encode()), "dfe-ctf"))


def test_namespaces_and_odd_headers() -> None:
    body = (
        '<CTfile xmlns="urn:example:ctf"><Header><DateTime>2026-01-02T03:04:05Z</DateTime>'
        "<SourceSchool><LEA>MMM</LEA><URN>100001</URN></SourceSchool></Header>"
        "<CTFpupilData><Pupil><UPN>A1</UPN><Surname>Smith</Surname><DOB>2015-01-01</DOB>"
        "<Address><AddressLines><AddressLine1>1 Road</AddressLine1></AddressLines></Address>"
        "</Pupil></CTFpupilData></CTfile>"
    )
    (record,) = _one(body)
    assert isinstance(record, Record)
    assert record.update["source_version"] == 20260102030405
    child = record.update["child"]
    assert child["address"] == {"lines": ["1 Road"], "town": None, "postcode": None, "la": None}
    assert child["education_setting"] == {"urn": "100001", "name": None}


def test_pupil_before_header() -> None:
    body = (
        "<CTfile><CTFpupilData><Pupil><UPN>A1</UPN><Surname>Smith</Surname></Pupil>"
        "</CTFpupilData></CTfile>"
    )
    (bad,) = _one(body)
    assert isinstance(bad, BadRecord) and bad.reason == "missing_header"


def test_pupils_outside_their_container_and_other_xml_are_never_dropped_unseen() -> None:
    """An independent probe: pupils under <PupilData>, or a file that is not a CTF,
    read as "published 0, rejected 0"."""
    header = "<Header><DateTime>2026-07-18T14:05:09</DateTime></Header>"
    items = _one(f"<CTfile>{header}<PupilData><Pupil><UPN>A1</UPN></Pupil>"
                 "<Pupil><UPN>A2</UPN></Pupil></PupilData>"
                 "<CTFpupilData><Pupil><UPN>A3</UPN><Surname>Smith</Surname>"
                 "<Forename>Ann</Forename><DOB>2015-01-01</DOB></Pupil></CTFpupilData></CTfile>")
    assert _summary(items) == [("Pupil[1]", "misplaced_pupil", "A1"),
                               ("Pupil[2]", "misplaced_pupil", "A2"), ("Pupil[3]", "ok", "A3")]
    assert "<CTFpupilData>" in items[0].error and "<UPN>A1</UPN>" in items[0].raw
    (bad,) = _one("<Foo><Bar/></Foo>")
    assert isinstance(bad, BadRecord) and bad.reason == "not_a_ctf" and "Foo" not in bad.error


def test_not_xml_at_all() -> None:
    (bad,) = _one("source_record_id,given_name\n")
    assert isinstance(bad, BadRecord)
    assert (bad.where, bad.reason) == ("line 1", "invalid_xml")


def _big_ctf(path: Path, pupils: int) -> None:
    padding = "x" * 6000
    with open(path, "w", encoding="utf-8") as f:
        f.write(
            '<?xml version="1.0" encoding="UTF-8"?>\n<CTfile><Header>'
            "<DateTime>2026-07-18T14:05:09</DateTime><SourceSchool><LEA>383</LEA>"
            "<URN>107942</URN><SchoolName>Larch Primary School</SchoolName></SourceSchool>"
            "</Header>\n<CTFpupilData>\n"
        )
        for n in range(pupils):
            f.write(
                f"<Pupil><UPN>A{n:012d}</UPN><Surname>Test</Surname><Forename>Child</Forename>"
                "<DOB>2015-01-01</DOB><Sex>F</Sex><BasicDetails><MiddleNames>Ann</MiddleNames>"
                f"<Ethnicity>{padding}</Ethnicity></BasicDetails><Address><BS7666Address>"
                "<PAON>1</PAON><Street>Road</Street><Town>Leeds</Town></BS7666Address>"
                "<PostCode>LS1 1AA</PostCode></Address><Contacts><Contact><Surname>Test"
                "</Surname><Forename>Carer</Forename><Relationship>PAM</Relationship>"
                "</Contact></Contacts></Pupil>\n"
            )
        f.write("</CTFpupilData></CTfile>\n")


def test_reads_lazily(tmp_path: Path) -> None:
    path = tmp_path / "big.xml"
    _big_ctf(path, 2_000)
    with open(path, "rb") as stream:
        items = ctf.read(stream, "dfe-ctf")
        assert isinstance(next(items), Record)
        assert stream.tell() < 1024 * 1024


def test_streams_a_big_file_in_bounded_memory(tmp_path: Path) -> None:
    path = tmp_path / "big.xml"
    _big_ctf(path, 6_000)
    assert path.stat().st_size > 2 * BOUND
    tracemalloc.start()
    try:
        count = 0
        with open(path, "rb") as stream:
            for item in ctf.read(stream, "dfe-ctf"):
                assert isinstance(item, Record)
                count += 1
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert count == 6_000
    assert peak < BOUND
