"""Property tests of the adapters against hostile files.

Whatever the bytes, each adapter yields Records and BadRecords and never
raises; a BadRecord has a documented snake_case reason, a one-line error
without the file's values, and a raw text that `hub publish` can send; every
Record goes through hub.validate.check without raising. Files are arbitrary
bytes, byte-level mutations of the fixture files (what a fuzzer does), and
structured hostile content (CSV cells, FHIR parts of the wrong type, CTF text).
"""

from __future__ import annotations

import io
import json
import random
import re
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adapters.base import BadRecord, Record
from adapters.registry import FORMATS
from hub.publishing import canonical_body
from hub.validate import Rejection, check
from schemas.canonical import CanonicalUpdate

FIXTURES = Path(__file__).parent.parent / "fixtures" / "adapters"
ADAPTER_REASONS = frozenset({
    "invalid_encoding", "invalid_json", "not_an_object", "missing_column", "unknown_column",
    "duplicate_column", "unparseable_record", "empty_file", "wrong_field_count",
    "missing_source_record_id", "invalid_source_version", "invalid_restricted",
    "unsupported_resource", "missing_resource", "invalid_resource", "too_large",
    "missing_upn", "missing_header", "invalid_xml", "misplaced_pupil", "not_a_ctf",
    "conflicting_nhs_numbers",
})
CANARY = "Kqzcanaryxv"
FUZZ = settings(max_examples=200, deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def read_all(fmt: str, data: bytes) -> list[Record | BadRecord]:
    """Every item of a file, with the properties each must have."""
    items = list(FORMATS[fmt](io.BytesIO(data), "dwp"))
    for item in items:
        if isinstance(item, BadRecord):
            assert item.reason in ADAPTER_REASONS, (fmt, item)
            assert item.error and "\n" not in item.error, (fmt, item)
            # (a FHIR resourceType of letters only is named, by design: "Observation")
            if item.reason != "unsupported_resource":
                assert CANARY not in item.error, (fmt, item)
            item.raw.encode("utf-8")  # hub publish sends it as the dead letter's body
            assert item.source_record_id is None or isinstance(item.source_record_id, str)
        else:
            assert isinstance(item, Record) and isinstance(item.update, dict)
            result = check(item.update, expected_source="dwp")
            assert isinstance(result, CanonicalUpdate | Rejection)
            # hub publish sends it either way: as the update, or as the dead letter's raw
            canonical_body(item.update).decode("utf-8")
            if isinstance(result, Rejection):
                assert CANARY not in result.error
    return items


def fixtures(fmt: str) -> list[bytes]:
    return [p.read_bytes() for p in sorted((FIXTURES / fmt).iterdir())]


def mutate(data: bytes, rng: random.Random, n: int) -> bytes:
    """What a fuzzer does to a file: flip, insert, delete, repeat and cut bytes."""
    buf = bytearray(data)
    tokens = [b"\x00", b"\xff", b"\xc3", b'"', b",", b"{", b"}", b"[", b"]", b"<", b">",
              b"\n", b"\r\n", b"\\", b"\\ud800", b"NaN", b"-1", b"9" * 40, b"&amp;", b"]]>",
              b"<![CDATA[", b"<!--", CANARY.encode()]
    for _ in range(n):
        if not buf:
            buf += rng.choice(tokens)
            continue
        at = rng.randrange(len(buf))
        op = rng.randrange(6)
        if op == 0:
            buf[at] ^= 1 << rng.randrange(8)
        elif op == 1:
            buf[at:at] = rng.choice(tokens)
        elif op == 2:
            del buf[at : at + rng.randrange(1, 40)]
        elif op == 3:
            end = min(len(buf), at + rng.randrange(1, 200))
            buf[at:at] = buf[at:end] * rng.randrange(1, 4)
        elif op == 4:
            del buf[at:]
        else:
            buf[at] = rng.randrange(256)
    return bytes(buf)


@pytest.mark.parametrize("fmt", sorted(FORMATS))
@FUZZ
@given(data=st.binary(max_size=3000))
def test_arbitrary_bytes(fmt: str, data: bytes) -> None:
    read_all(fmt, data)


@pytest.mark.parametrize("fmt", sorted(FORMATS))
@FUZZ
@given(seed=st.integers(0, 2**32), n=st.integers(1, 12), which=st.integers(0, 10))
def test_mutated_fixture_files(fmt: str, seed: int, n: int, which: int) -> None:
    files = fixtures(fmt)
    read_all(fmt, mutate(files[which % len(files)], random.Random(seed), n))


any_text = st.text(st.characters(codec=None), max_size=30)
hostile_text = st.one_of(any_text, st.sampled_from([
    "\x00", "\ud800", "\u202e", "'); DROP TABLE children;--", "${jndi:ldap://x/a}", "Оrchard",
    "ＬＳ６", "x" * 5000, "\r\n", '"', ",", "<![CDATA[x]]>", "&lt;", CANARY, " ", "",
]))
json_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False),
              hostile_text),
    lambda inner: st.one_of(st.lists(inner, max_size=4),
                            st.dictionaries(hostile_text, inner, max_size=4)),
    max_leaves=20,
)


@FUZZ
@given(cells=st.lists(st.lists(hostile_text, min_size=0, max_size=8), max_size=6),
       header=st.lists(st.sampled_from(["source_record_id", "source_version", "given_name",
                                        "family_name", "date_of_birth", "nhs_number", "sex",
                                        "restricted", "carer1_name", "carer999_name", "la",
                                        "postcode", CANARY]), max_size=9))
def test_csv_with_hostile_cells(cells: list[list[str]], header: list[str]) -> None:
    import csv

    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(header)
    for row in cells:
        writer.writerow(row)
    read_all("csv", out.getvalue().encode("utf-8", "surrogatepass"))


PATIENT_PATHS = ["id", "meta", "meta.versionId", "meta.security", "identifier", "name",
                 "birthDate", "gender", "address", "contact", "generalPractitioner",
                 "extension", "resourceType"]


@FUZZ
@given(st.lists(st.tuples(st.sampled_from(PATIENT_PATHS), json_values), max_size=4),
       st.sampled_from(["patient", "bundle", "ndjson", "ndjson_bundle"]))
def test_fhir_with_parts_of_any_type(changes: list[tuple[str, Any]], layout: str) -> None:
    patient = json.loads((FIXTURES / "fhir" / "patient.json").read_text())
    for path, value in changes:
        node = patient
        *parents, last = path.split(".")
        for p in parents:
            node = node.setdefault(p, {}) if isinstance(node, dict) else {}
        if isinstance(node, dict):
            node[last] = value
    bundle = {"resourceType": "Bundle", "type": "searchset",
              "entry": [{"resource": patient}, {"resource": patient}, patient, None]}
    doc = {"patient": patient, "bundle": bundle, "ndjson": patient,
           "ndjson_bundle": bundle}[layout]
    text = json.dumps(doc, indent=None if layout.startswith("ndjson") else 2)
    if layout.startswith("ndjson"):
        text = text + "\n" + text + "\n"
    read_all("fhir", text.encode("utf-8", "surrogatepass"))


def _xml_text(value: str) -> str:
    # XML 1.0 cannot carry most control characters even escaped: keep them (and
    # surrogates) out, the rest escaped as XML requires.
    value = re.sub(r"[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]", "", value)
    return value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


@FUZZ
@given(st.dictionaries(st.sampled_from(["UPN", "Surname", "Forename", "DOB", "Sex",
                                        "MiddleNames", "FormerSurname", "PostCode"]),
                       hostile_text, max_size=8),
       st.sampled_from(["2024-03-14T10:20:30", "0001-01-01T00:00:00+01:00",
                        "9999-12-31T23:59:59-01:00", "not a date", "", "2024-03-14T10:20:30Z"]),
       st.sampled_from(["383", "", "x" * 300, "\u0663\u0668\u0663"]))
def test_ctf_with_hostile_text(fields: dict[str, str], when: str, lea: str) -> None:
    pupil = "".join(f"<{k}>{_xml_text(v)}</{k}>" for k, v in fields.items())
    doc = (f"<CTfile><Header><DateTime>{when}</DateTime><SourceSchool><LEA>{_xml_text(lea)}"
           f"</LEA></SourceSchool></Header><CTFpupilData><Pupil>{pupil}</Pupil>"
           f"<Pupil>{pupil}<Contacts><Contact><Surname>{CANARY}</Surname></Contact></Contacts>"
           "</Pupil></CTFpupilData></CTfile>")
    read_all("ctf", doc.encode())


@pytest.mark.parametrize("encoding", [b"UVF-8", b"UTF-7", b"Shift_JIS", b"UTF-16"])
def test_ctf_with_an_encoding_expat_cannot_read_is_invalid_xml(encoding: bytes) -> None:
    """Found by mutating the fixtures (hypothesis: an unknown encoding, LookupError)
    and by atheris (UTF-7, "multi-byte encodings are not supported", ValueError):
    both came out of the adapter."""
    doc = (FIXTURES / "ctf" / "good.xml").read_bytes()
    doc = re.sub(rb'encoding="[^"]*"', b'encoding="' + encoding + b'"', doc, count=1)
    assert encoding in doc
    items = read_all("ctf", doc)
    assert isinstance(items[-1], BadRecord) and items[-1].reason == "invalid_xml"


def test_a_rejected_jsonl_record_with_a_lone_surrogate_can_still_be_sent() -> None:
    """canonical_body could not encode the rejected record for its dead letter."""
    line = json.dumps({"source": "dwp", "source_record_id": "A", "source_version": 1,
                       "child": {"given_name": "\ud800", "date_of_birth": "2015-01-01"}})
    [item] = read_all("jsonl", line.encode())
    assert isinstance(item, Record)
    result = check(item.update, "dwp")
    assert isinstance(result, Rejection) and result.reason == "invalid_character"
    assert b"\\ud800" in canonical_body(item.update)


def test_ctf_header_date_at_the_edge_of_the_calendar_is_an_invalid_version() -> None:
    """Found by the property above: 0001-01-01T00:00:00+01:00 is before year 1 in
    UTC, and converting it raised OverflowError out of the adapter."""
    for when in ("0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00"):
        doc = (f"<CTfile><Header><DateTime>{when}</DateTime></Header><CTFpupilData>"
               "<Pupil><UPN>A1</UPN><Surname>Oak</Surname><DOB>2015-01-01</DOB></Pupil>"
               "</CTFpupilData></CTfile>").encode()
        [item] = read_all("ctf", doc)
        assert isinstance(item, BadRecord) and item.reason == "invalid_source_version"


def test_ctf_entity_expansion_and_external_entities_stay_out() -> None:
    """A billion laughs is refused by expat; an external entity is never fetched."""
    laughs = ('<?xml version="1.0"?><!DOCTYPE l [<!ENTITY a "' + CANARY + '">'
              + "".join(f'<!ENTITY {chr(98 + i)} "{("&" + chr(97 + i) + ";") * 10}">'
                        for i in range(9))
              + ']><CTfile><Header><DateTime>2024-03-14T10:20:30</DateTime></Header>'
              '<CTFpupilData><Pupil><UPN>A1</UPN><Surname>&j;</Surname>'
              '<DOB>2015-01-01</DOB></Pupil></CTFpupilData></CTfile>')
    items = read_all("ctf", laughs.encode())
    assert len(items) == 1 and isinstance(items[0], BadRecord)
    assert items[0].reason == "invalid_xml" and len(items[0].raw) < 10_000
    external = ('<?xml version="1.0"?><!DOCTYPE c [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
                '<CTfile><Header><DateTime>2024-03-14T10:20:30</DateTime></Header>'
                '<CTFpupilData><Pupil><UPN>A1</UPN><Surname>&x;</Surname>'
                '<DOB>2015-01-01</DOB></Pupil></CTFpupilData></CTfile>')
    items = read_all("ctf", external.encode())
    assert all("root:" not in (i.raw if isinstance(i, BadRecord) else json.dumps(i.update))
               for i in items)


def test_fhir_lone_surrogate_in_a_held_bundle_entry_can_still_be_sent() -> None:
    """An entry held in memory (a Bundle whose "entry" comes before "resourceType")
    is re-serialised for its raw text, where a \\ud800 escape became a lone
    surrogate that UTF-8 cannot encode: hub publish failed on it."""
    doc = ('{"entry": [{"resource": {"resourceType": "Observation", "id": "\\ud800"}}],'
           ' "resourceType": "Bundle"}')
    [item] = read_all("fhir", doc.encode())
    assert isinstance(item, BadRecord) and item.reason == "unsupported_resource"
