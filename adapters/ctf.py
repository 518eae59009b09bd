"""DfE Common Transfer File XML (`--format ctf`).

Structure read (element names as in the DfE CTF specification; a namespace,
if any, is ignored)::

    <CTfile>
      <Header>
        <DocumentName/> <CTFversion/> <DateTime>2024-03-14T10:20:30</DateTime>
        <DocumentQualifier/> <SupplierID/>
        <SourceSchool><LEA>383</LEA><Estab/><URN/><SchoolName/><AcademicYear/></SourceSchool>
        <DestSchool><LEA/><Estab/></DestSchool>
      </Header>
      <CTFpupilData>
        <Pupil>
          <UPN/> <Surname/> <Forename/> <DOB/> <Sex/> (or <Gender/>, older files)
          <BasicDetails><FormerUPN/><PreferredSurname/><FormerSurname/>
                        <PreferredForename/><MiddleNames/>...</BasicDetails>
          <Address>
            <BS7666Address><SAON/><PAON/><Street/><Locality/><Town/>
                           <AdministrativeArea/><PostTown/></BS7666Address>
            or <AddressLines><AddressLine1/>..<AddressLine5/></AddressLines>
            <PostCode/>
          </Address>
          <Contacts><Contact><Order/><Title/><Surname/><Forename/><Relationship/>
                             <Responsibility/><Phones><Phone><TelephoneNumber/>
                             </Phone></Phones></Contact></Contacts>
        </Pupil>
      </CTFpupilData>
    </CTfile>

Pupils are streamed with xml.etree.ElementTree.iterparse and each is dropped
after use, so only one Pupil is in memory at a time.

Mapping of a Pupil:

- source_record_id = upn = <UPN> (required: missing -> BadRecord ``missing_upn``)
- source_version: a CTF has no per-record version, so every pupil in a file
  gets the header <DateTime> as the integer YYYYMMDDHHMMSS (in UTC when the
  DateTime carries an offset): a later file supersedes an earlier one, and a
  file sent twice is a no-op. No usable DateTime -> every pupil is a BadRecord
  ``invalid_source_version``.
- given_name = <Forename>, family_name = <Surname>, middle_names =
  <MiddleNames>, former_family_names = every <FormerSurname>, each looked for
  directly under <Pupil> and then under <BasicDetails>. PreferredSurname /
  PreferredForename are not mapped (the canonical model has no place for them).
- date_of_birth = <DOB>; sex = <Sex> or <Gender> (M/F, as well as U).
- address: BS7666 -> lines [SAON, "PAON Street", Locality], town = <Town> or
  <PostTown>; or AddressLine1..5 -> lines; postcode = <PostCode> (under
  <Address> or <BS7666Address>). address.la = the header's SourceSchool <LEA>
  (a CTF address carries no LA of its own), used only when the pupil has an
  address and the LEA is three digits, with address.la_inferred = true: a pupil
  at a school across the border keeps the LA the hub knows for the same postcode.
- education_setting = the header's SourceSchool <URN> and <SchoolName>.
- carers: each <Contact> except those with <Responsibility> false: name =
  Forename + Surname, relationship = the DfE code as words (PAM -> mother, ...;
  an unlisted code as given), phone = the first <TelephoneNumber>.
- nhs_number, gp_practice, services: not in a CTF.

Problems: ``missing_upn``, ``invalid_source_version``, ``missing_header`` (a
Pupil before any Header), ``misplaced_pupil`` (a Pupil outside <CTFpupilData>),
``not_a_ctf`` (the root is not <CTfile>), ``invalid_xml`` (the XML breaks: reported once at
the Pupil or line where it broke, and reading stops since nothing after a
well-formedness error can be read). `where` = "Pupil[N]", N counting from 1
as in XPath.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Iterator
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any, BinaryIO

from adapters import _common
from adapters.base import BadRecord, Record

RELATIONSHIPS = {
    "PAM": "mother",
    "PAF": "father",
    "CAR": "carer",
    "FOM": "foster mother",
    "FOF": "foster father",
    "STM": "step-mother",
    "STF": "step-father",
    "GRM": "grandmother",
    "GRF": "grandfather",
    "FAM": "other family member",
    "REL": "other relative",
    "CHM": "childminder",
    "DOC": "doctor",
    "SWR": "social worker",
    "HTC": "head teacher",
    "RLG": "religious contact",
    "OTH": "other contact",
}
_FALSE = {"false", "0", "n", "no"}


@lru_cache(maxsize=1024)
def _local(tag: Any) -> str:
    """The tag without its namespace (comments and processing instructions: "")."""
    return tag.rsplit("}", 1)[-1] if isinstance(tag, str) else ""


def _child(elem: ET.Element | None, *names: str) -> ET.Element | None:
    if elem is None:
        return None
    for name in names:
        for sub in elem:
            if _local(sub.tag) == name:
                return sub
    return None


def _children(elem: ET.Element | None, name: str) -> list[ET.Element]:
    if elem is None:
        return []
    return [sub for sub in elem if _local(sub.tag) == name]


def _text(elem: ET.Element | None, *names: str) -> str | None:
    found = _child(elem, *names) if names else elem
    return _common.clean(found.text) if found is not None else None


class _Header:
    def __init__(self, elem: ET.Element) -> None:
        self.version = _version(_text(elem, "DateTime"))
        school = _child(elem, "SourceSchool")
        lea = _text(school, "LEA")
        self.la = lea if lea and lea.isascii() and lea.isdigit() and len(lea) == 3 else None
        self.school = _common.compact(
            {"urn": _text(school, "URN"), "name": _text(school, "SchoolName")}
        )


def _version(value: str | None) -> int | None:
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
        if moment.tzinfo is not None:
            moment = moment.astimezone(UTC)  # OverflowError at the calendar's edges
    except (ValueError, OverflowError):
        return None
    return int(moment.strftime("%Y%m%d%H%M%S"))


class _Unreadable(Exception):
    def __init__(self, error: str, line: int) -> None:
        super().__init__(error)
        self.error = error
        self.line = line


def _events(stream: BinaryIO) -> Iterator[tuple[str, ET.Element]]:
    """iterparse's events; whatever stops expat reading the file is _Unreadable
    (only expat's errors: those of the caller's loop body do not pass through here)."""
    try:
        yield from ET.iterparse(stream, events=("start", "end"))
    except ET.ParseError as exc:
        line, column = getattr(exc, "position", (0, 0))
        raise _Unreadable(f"XML is not well-formed at line {line} column {column}", line) from None
    except (LookupError, ValueError):
        # An encoding expat does not know (LookupError) or cannot read (UTF-7, any
        # multi-byte codec: ValueError), named in the XML declaration.
        raise _Unreadable("the XML declaration names an encoding that cannot be read", 1) from None


def read(stream: BinaryIO, source: str) -> Iterator[Record | BadRecord]:
    header: _Header | None = None
    stack: list[ET.Element] = []
    count = 0
    current: ET.Element | None = None  # the Pupil being read
    try:
        for event, elem in _events(stream):
            if event == "start":
                stack.append(elem)
                if len(stack) == 1 and _local(elem.tag) != "CTfile":
                    # Not a CTF: whatever it holds is read as nothing, so say so.
                    # (Its name not echoed: errors carry nothing read from a file.)
                    yield BadRecord("line 1", "not_a_ctf", "the root element is not <CTfile>",
                                    "")
                    return
                if _local(elem.tag) == "Pupil" and current is None:
                    # A Pupil outside <CTFpupilData> is still a pupil: read as any
                    # other, then refused (never dropped unseen; an independent probe).
                    current = elem
                    count += 1
                continue
            stack.pop()
            name = _local(elem.tag)
            if name == "Header" and len(stack) == 1:
                header = _Header(elem)
                elem.clear()
            elif current is not None and elem is current:
                where = f"Pupil[{count}]"
                if stack and _local(stack[-1].tag) == "CTFpupilData":
                    yield _pupil(where, current, header, source)
                else:
                    yield BadRecord(where, "misplaced_pupil",
                                    "Pupil is not inside <CTFpupilData>",
                                    _raw(current), _text(current, "UPN"))
                if stack:
                    stack[-1].remove(current)
                current = None  # drop it: one pupil in memory at a time
    except _Unreadable as exc:
        if current is not None:
            raw = _raw(current)
            yield BadRecord(f"Pupil[{count}]", "invalid_xml", exc.error, raw,
                            _text(current, "UPN"))
        else:
            yield BadRecord(f"line {exc.line}", "invalid_xml", exc.error, "")


def _raw(elem: ET.Element) -> str:
    return ET.tostring(elem, encoding="unicode").strip()


def _pupil(where: str, elem: ET.Element, header: _Header | None, source: str) -> Record | BadRecord:
    upn = _text(elem, "UPN")
    if upn is None:
        return BadRecord(where, "missing_upn", "Pupil has no UPN", _raw(elem))
    if header is None:
        return BadRecord(
            where, "missing_header", "Pupil comes before the file's Header", _raw(elem), upn
        )
    if header.version is None:
        return BadRecord(
            where,
            "invalid_source_version",
            "Header DateTime is missing or not a date-time",
            _raw(elem),
            upn,
        )
    basic = _child(elem, "BasicDetails")

    def field(*names: str) -> str | None:
        return _text(elem, *names) or _text(basic, *names)

    former: list[str] = []
    for holder in (elem, basic):
        for sub in _children(holder, "FormerSurname"):
            text = _text(sub)
            if text and text not in former:
                former.append(text)
    child: dict[str, Any] = {
        "nhs_number": None,
        "upn": upn,
        "given_name": field("Forename"),
        "middle_names": field("MiddleNames"),
        "family_name": field("Surname"),
        "former_family_names": former,
    }
    dob = _common.date(field("DOB"))
    if dob is not None:
        child["date_of_birth"] = dob
    child["sex"] = _common.sex(field("Sex", "Gender"))
    child["address"] = _address(_child(elem, "Address"), header.la)
    child["carers"] = _carers(_child(elem, "Contacts"))
    child["education_setting"] = dict(header.school) if header.school else None
    return Record(
        where,
        {
            "source": source,
            "source_record_id": upn,
            "source_version": header.version,
            "kind": "upsert",
            "child": child,
        },
    )


def _address(elem: ET.Element | None, la: str | None) -> dict[str, Any] | None:
    if elem is None:
        return None
    lines: list[str] = []
    town = None
    bs7666 = _child(elem, "BS7666Address")
    if bs7666 is not None:
        paon_street = " ".join(p for p in (_text(bs7666, "PAON"), _text(bs7666, "Street")) if p)
        lines = [p for p in (_text(bs7666, "SAON"), paon_street, _text(bs7666, "Locality")) if p]
        town = _text(bs7666, "Town") or _text(bs7666, "PostTown")
    else:
        block = _child(elem, "AddressLines")
        lines = [t for t in (_text(block, f"AddressLine{i}") for i in range(1, 6)) if t]
    postcode = _text(elem, "PostCode") or _text(bs7666, "PostCode")
    address = _common.compact({"lines": lines, "town": town, "postcode": postcode, "la": None})
    if address is not None and la is not None:
        # The school's LA, not necessarily the pupil's: a known LA for the same
        # postcode stays (hub.records.merge).
        address["la"], address["la_inferred"] = la, True
    return address


def _carers(elem: ET.Element | None) -> list[dict[str, Any]]:
    carers = []
    for contact in _children(elem, "Contact"):
        responsibility = _text(contact, "Responsibility")
        if responsibility is not None and responsibility.lower() in _FALSE:
            continue
        name = " ".join(p for p in (_text(contact, "Forename"), _text(contact, "Surname")) if p)
        code = _text(contact, "Relationship")
        relationship = RELATIONSHIPS.get(code.upper(), code) if code else None
        phone = None
        for number in _children(_child(contact, "Phones"), "Phone"):
            phone = _text(number, "TelephoneNumber")
            if phone:
                break
        carer = {"name": name or None, "relationship": relationship, "phone": phone}
        if _common.compact(carer):
            carers.append(carer)
    return carers
