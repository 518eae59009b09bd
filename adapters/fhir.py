"""FHIR R4 Patient as NHS PDS serves it (`--format fhir`).

Three layouts, told apart from the content:

- NDJSON (bulk): one resource per line; chosen when the first non-blank line
  is a complete JSON value on its own. Read line by line; a bad line is one
  BadRecord and reading goes on. `where` = "line N". A line holding a Bundle
  has its entries read with `where` = "line N entry[i]".
- A single Patient document (pretty-printed or not). `where` = "line N", the
  line the resource starts on.
- A Bundle (e.g. a PDS searchset) of Patients under entry[].resource.
  `where` = "entry[i]", i counting from 0 as in FHIRPath (Bundle.entry[0]).
  Bundles are streamed with the standard library (adapters._jsonstream): only
  one entry is in memory at a time provided "resourceType": "Bundle" comes
  before "entry" in the document, as FHIR servers write it; otherwise the
  entries are held in memory. If the document's JSON breaks, nothing after the
  break can be read: one BadRecord ("invalid_json" / "invalid_encoding") is
  yielded at the line of the break and reading stops. For bulk loads prefer
  NDJSON, which recovers line by line.

Mapping of a Patient:

- source_record_id = Patient.id (missing -> ``missing_source_record_id``)
- source_version = int(Patient.meta.versionId) (missing or not an integer ->
  ``invalid_source_version``)
- restricted = True when meta.security has code "R" or "V" (PDS restricted /
  very restricted; any code system: erring on the safe side)
- nhs_number = identifier[system = https://fhir.nhs.uk/Id/nhs-number].value
- name: the "official" name, else "usual", else the first name that is not
  "old"/"maiden"; given[0] -> given_name, given[1:] joined by spaces ->
  middle_names, family -> family_name. The family of every "old" or "maiden"
  name goes to former_family_names.
- birthDate -> date_of_birth; a partial date is completed with 1 January as
  PDS records unknown days/months ("2015" -> 2015-01-01, "2015-06" -> 2015-06-01)
- gender: male/female/unknown as given; "other" -> "unknown"
- address: use "home" (else the first address): line -> lines, city -> town,
  postalCode -> postcode, and the local authority from the hub's extension
  ``LA_EXTENSION`` (valueString / valueCode, a three-digit DfE LA number) on
  the address or, failing that, on the Patient; else None.
- generalPractitioner[0]: identifier.value (ODS code) -> gp_practice.ods_code,
  display -> gp_practice.name
- carers: each Patient.contact that has a relationship (name.text or given +
  family; relationship display/text/code; first phone in telecom). The
  Patient's own telecom goes nowhere.

Other problems: ``unsupported_resource`` (resourceType is not Patient, e.g. an
OperationOutcome in a searchset), ``missing_resource`` (entry without a
resource), ``invalid_resource`` (a part of the Patient has the wrong JSON
type), ``invalid_json``, ``invalid_encoding``, ``not_an_object``, ``too_large``
(one JSON value over 64M characters).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any, BinaryIO

from adapters import _common
from adapters._jsonstream import Document, Entry, StreamError, documents
from adapters.base import BadRecord, Record

NHS_NUMBER_SYSTEM = "https://fhir.nhs.uk/Id/nhs-number"
LA_EXTENSION = "https://fhir.child-index-hub.example/StructureDefinition/local-authority"
RESTRICTED_CODES = frozenset({"R", "V"})
_FIRST_LINE_LIMIT = 1 << 20
_PARTIAL_DATE = re.compile(r"^(\d{4})(?:-(\d{2}))?$")
_SAFE_TYPE = re.compile(r"^[A-Za-z]{1,64}$")


class _Bad(Exception):
    def __init__(self, reason: str, error: str) -> None:
        super().__init__(error)
        self.reason = reason
        self.error = error


def read(stream: BinaryIO, source: str) -> Iterator[Record | BadRecord]:
    # Look at the first non-blank line (at most 1 MiB of it) to choose the layout.
    prefix = b""
    line = b""
    number = 0
    while True:
        line = stream.readline(_FIRST_LINE_LIMIT)
        if not line:
            return  # nothing but blank lines
        number += 1
        if number == 1 and line.startswith(_common.BOM):
            line = line[len(_common.BOM) :]
        prefix += line
        if line.strip():
            break
    if line.endswith(b"\n") or len(line) < _FIRST_LINE_LIMIT:
        first = _common.strip_eol(line)
        if _is_ndjson(first):
            yield from _ndjson(stream, source, number, first)
            return
    yield from _document(stream, source, prefix)


def _is_ndjson(first: bytes) -> bool:
    """A whole JSON value on the first line (or a line that looks meant to be one)."""
    text = first.strip()
    if text.startswith(b"{") and text.endswith(b"}"):
        return True
    try:
        _common.loads(text.decode("utf-8"))
    except (ValueError, RecursionError):
        return False
    return True


# -- layouts -------------------------------------------------------------------


def _ndjson(
    stream: BinaryIO, source: str, first_number: int, first_line: bytes
) -> Iterator[Record | BadRecord]:
    yield from _ndjson_line(first_number, first_line, source)
    for offset, line in enumerate(stream, start=1):
        yield from _ndjson_line(first_number + offset, _common.strip_eol(line), source)


def _ndjson_line(number: int, line: bytes, source: str) -> Iterator[Record | BadRecord]:
    where = f"line {number}"
    try:
        text = line.decode("utf-8")
    except UnicodeDecodeError:
        yield BadRecord(
            where, "invalid_encoding", "line is not valid UTF-8", line.decode("utf-8", "replace")
        )
        return
    if not text.strip():
        return
    try:
        data = _common.loads(text)
    except (ValueError, RecursionError):
        yield BadRecord(where, "invalid_json", "line is not valid JSON", text)
        return
    if isinstance(data, dict) and data.get("resourceType") == "Bundle":
        entries = data.get("entry", [])
        if not isinstance(entries, list):
            yield BadRecord(where, "invalid_resource", "Bundle.entry is not a list", text)
            return
        for index, entry in enumerate(entries):
            yield _entry(f"{where} entry[{index}]", entry, None, source)
        return
    yield _resource(where, data, text, source)


def _document(stream: BinaryIO, source: str, prefix: bytes) -> Iterator[Record | BadRecord]:
    def is_bundle_entry(members: dict[str, Any], key: str) -> bool:
        return key == "entry" and members.get("resourceType") == "Bundle"

    count = 0
    try:
        for item in documents(stream, is_bundle_entry, prefix):
            if isinstance(item, Entry):
                label = f"entry[{item.index}]"
                if count:
                    label = f"document[{count + 1}].{label}"
                yield _entry(label, item.value, item.raw, source)
                continue
            assert isinstance(item, Document)
            count += 1
            yield from _whole_document(item, count, source)
    except StreamError as exc:
        where = f"line {exc.line}"
        if exc.index is not None:
            where = (
                f"entry[{exc.index}]" if count == 0 else f"document[{count + 1}].entry[{exc.index}]"
            )
        error = f"{exc.error} (from line {exc.line}); nothing after it can be read"
        yield BadRecord(where, exc.reason, error, exc.raw)


def _whole_document(doc: Document, count: int, source: str) -> Iterator[Record | BadRecord]:
    data = doc.members
    if doc.streamed:
        return  # a Bundle whose entries have been yielded already
    if data.get("resourceType") == "Bundle":
        entries = data.get("entry", [])
        if not isinstance(entries, list):
            yield BadRecord(
                f"line {doc.line}",
                "invalid_resource",
                "Bundle.entry is not a list",
                _common.dumps(data),
            )
            return
        for index, entry in enumerate(entries):
            label = f"entry[{index}]" if count == 1 else f"document[{count}].entry[{index}]"
            yield _entry(label, entry, None, source)
        return
    yield _resource(f"line {doc.line}", data, None, source)


def _entry(where: str, entry: Any, raw: str | None, source: str) -> Record | BadRecord:
    text = raw if raw is not None else _common.dumps(entry)
    if not isinstance(entry, dict) or not isinstance(entry.get("resource"), dict):
        return BadRecord(where, "missing_resource", "Bundle entry has no resource", text)
    return _resource(where, entry["resource"], text, source)


def _resource(where: str, data: Any, raw: str | None, source: str) -> Record | BadRecord:
    text = raw if raw is not None else _common.dumps(data)
    if not isinstance(data, dict):
        return BadRecord(where, "not_an_object", "resource is not a JSON object", text)
    record_id = data.get("id") if isinstance(data.get("id"), str) else None
    record_id = _common.clean(record_id)
    kind = data.get("resourceType")
    if kind != "Patient":
        shown = kind if isinstance(kind, str) and _SAFE_TYPE.match(kind) else "(missing)"
        return BadRecord(
            where, "unsupported_resource", f"resourceType {shown} is not Patient", text, record_id
        )
    try:
        return Record(where, patient(data, source))
    except _Bad as bad:
        return BadRecord(where, bad.reason, bad.error, text, record_id)


# -- Patient -> canonical update -----------------------------------------------


def patient(data: dict[str, Any], source: str) -> dict[str, Any]:
    """Map one Patient resource to a canonical update; raises _Bad."""
    record_id = _common.clean(data.get("id"))
    if record_id is None:
        raise _Bad("missing_source_record_id", "Patient.id is missing")
    meta = _dict(data, "meta", "Patient.meta")
    version = _common.integer(meta.get("versionId"))
    if version is None:
        raise _Bad("invalid_source_version", "Patient.meta.versionId is missing or not an integer")
    restricted = any(
        isinstance(s, dict) and s.get("code") in RESTRICTED_CODES
        for s in _list(meta, "security", "Patient.meta.security")
    )
    child: dict[str, Any] = {"nhs_number": _nhs_number(data)}
    child.update(_names(data))
    birth = data.get("birthDate")
    if birth is not None:
        if not isinstance(birth, str):
            raise _Bad("invalid_resource", "Patient.birthDate is not a string")
        child["date_of_birth"] = _birth_date(birth)
    gender = data.get("gender")
    if gender is not None and not isinstance(gender, str):
        raise _Bad("invalid_resource", "Patient.gender is not a string")
    child["sex"] = _common.sex(_common.clean(gender))
    child["address"] = _address(data)
    child["carers"] = _carers(data)
    child["gp_practice"] = _gp(data)
    return {
        "source": source,
        "source_record_id": record_id,
        "source_version": version,
        "kind": "upsert",
        "restricted": restricted,
        "child": child,
    }


def _dict(parent: dict[str, Any], key: str, path: str) -> dict[str, Any]:
    value = parent.get(key)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise _Bad("invalid_resource", f"{path} is not an object")
    return value


def _list(parent: dict[str, Any], key: str, path: str) -> list[Any]:
    value = parent.get(key)
    if value is None:
        return []
    if not isinstance(value, list):
        raise _Bad("invalid_resource", f"{path} is not a list")
    return value


def _dicts(parent: dict[str, Any], key: str, path: str) -> list[dict[str, Any]]:
    items = _list(parent, key, path)
    for index, item in enumerate(items):
        if not isinstance(item, dict):
            raise _Bad("invalid_resource", f"{path}[{index}] is not an object")
    return items


def _strings(parent: dict[str, Any], key: str, path: str) -> list[str]:
    items = _list(parent, key, path)
    out = []
    for index, item in enumerate(items):
        if not isinstance(item, str):
            raise _Bad("invalid_resource", f"{path}[{index}] is not a string")
        if item.strip():
            out.append(item.strip())
    return out


def _text(parent: dict[str, Any], key: str, path: str) -> str | None:
    value = parent.get(key)
    if value is not None and not isinstance(value, str):
        raise _Bad("invalid_resource", f"{path} is not a string")
    return _common.clean(value)


def _nhs_number(data: dict[str, Any]) -> str | None:
    numbers = {number for index, ident in enumerate(
                   _dicts(data, "identifier", "Patient.identifier"))
               if ident.get("system") == NHS_NUMBER_SYSTEM
               and (number := _text(ident, "value", f"Patient.identifier[{index}].value"))}
    if len(numbers) > 1:
        # Which is hers? The first was kept, the other dropped unseen (an independent
        # probe); one may be a number invalidated on adoption.
        raise _Bad("conflicting_nhs_numbers", "Patient has more than one NHS number")
    return next(iter(numbers), None)


def _names(data: dict[str, Any]) -> dict[str, Any]:
    names = _dicts(data, "name", "Patient.name")
    former: list[str] = []
    current: tuple[int, dict[str, Any]] | None = None
    for use in ("official", "usual"):
        current = next(((i, n) for i, n in enumerate(names) if n.get("use") == use), None)
        if current:
            break
    if current is None:
        current = next(
            ((i, n) for i, n in enumerate(names) if n.get("use") not in ("old", "maiden")), None
        )
    for index, name in enumerate(names):
        if name.get("use") in ("old", "maiden"):
            family = _text(name, "family", f"Patient.name[{index}].family")
            if family and family not in former:
                former.append(family)
    out: dict[str, Any] = {
        "given_name": None,
        "middle_names": None,
        "family_name": None,
        "former_family_names": former,
    }
    if current is not None:
        index, name = current
        given = _strings(name, "given", f"Patient.name[{index}].given")
        out["given_name"] = given[0] if given else None
        out["middle_names"] = " ".join(given[1:]) or None
        out["family_name"] = _text(name, "family", f"Patient.name[{index}].family")
    return out


def _birth_date(value: str) -> str:
    value = value.strip()
    m = _PARTIAL_DATE.match(value)
    if m:
        return f"{m.group(1)}-{m.group(2) or '01'}-01"
    return _common.date(value) or value


def _la(extensions: list[dict[str, Any]]) -> str | None:
    for ext in extensions:
        if ext.get("url") == LA_EXTENSION:
            value = ext.get("valueString", ext.get("valueCode"))
            if value is not None and not isinstance(value, str):
                raise _Bad("invalid_resource", "the local authority extension is not a string")
            return _common.clean(value)
    return None


def _address(data: dict[str, Any]) -> dict[str, Any] | None:
    addresses = _dicts(data, "address", "Patient.address")
    chosen = next(((i, a) for i, a in enumerate(addresses) if a.get("use") == "home"), None)
    if chosen is None and addresses:
        chosen = (0, addresses[0])
    patient_la = _la(_dicts(data, "extension", "Patient.extension"))
    if chosen is None:
        if patient_la is None:
            return None
        return {"lines": [], "town": None, "postcode": None, "la": patient_la}
    index, address = chosen
    path = f"Patient.address[{index}]"
    la = _la(_dicts(address, "extension", f"{path}.extension")) or patient_la
    return _common.compact(
        {
            "lines": _strings(address, "line", f"{path}.line"),
            "town": _text(address, "city", f"{path}.city"),
            "postcode": _text(address, "postalCode", f"{path}.postalCode"),
            "la": la,
        }
    )


def _gp(data: dict[str, Any]) -> dict[str, Any] | None:
    gps = _dicts(data, "generalPractitioner", "Patient.generalPractitioner")
    if not gps:
        return None
    path = "Patient.generalPractitioner[0]"
    ident = _dict(gps[0], "identifier", f"{path}.identifier")
    return _common.compact(
        {
            "ods_code": _text(ident, "value", f"{path}.identifier.value"),
            "name": _text(gps[0], "display", f"{path}.display"),
        }
    )


def _relationship(contact: dict[str, Any], path: str) -> str | None:
    for index, concept in enumerate(_dicts(contact, "relationship", f"{path}.relationship")):
        cpath = f"{path}.relationship[{index}]"
        text = _text(concept, "text", f"{cpath}.text")
        if text:
            return text
        for cindex, coding in enumerate(_dicts(concept, "coding", f"{cpath}.coding")):
            found = _text(coding, "display", f"{cpath}.coding[{cindex}].display") or _text(
                coding, "code", f"{cpath}.coding[{cindex}].code"
            )
            if found:
                return found
    return None


def _carers(data: dict[str, Any]) -> list[dict[str, Any]]:
    carers = []
    for index, contact in enumerate(_dicts(data, "contact", "Patient.contact")):
        path = f"Patient.contact[{index}]"
        relationship = _relationship(contact, path)
        if relationship is None:
            continue
        name = _dict(contact, "name", f"{path}.name")
        full = _text(name, "text", f"{path}.name.text")
        if full is None:
            parts = _strings(name, "given", f"{path}.name.given")
            family = _text(name, "family", f"{path}.name.family")
            full = " ".join([*parts, *([family] if family else [])]) or None
        phone = None
        for tindex, telecom in enumerate(_dicts(contact, "telecom", f"{path}.telecom")):
            if telecom.get("system") == "phone":
                phone = _text(telecom, "value", f"{path}.telecom[{tindex}].value")
                if phone:
                    break
        carers.append({"name": full, "relationship": relationship, "phone": phone})
    return carers
