"""The child record: canonical fields and how an update merges into a record."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from schemas.canonical import PROTECTED_FIELDS, VISIBLE_FIELDS

Record = dict[str, Any]

LIST_FIELDS = ("former_family_names", "carers", "services")

_SPACES = re.compile(r"\s+")
_NOT_ALNUM = re.compile(r"[^a-z0-9]+")


def _empty(value: Any) -> bool:
    if isinstance(value, dict):  # a school, a GP practice, ... with nothing in it
        return all(_empty(v) for v in value.values())
    return value is None or value == [] or value == ""


def merge(record: Record | None, update: Record) -> tuple[Record, list[str]]:
    """Merge an update's child into a record; return the new record and changed fields.

    A source sends what it knows: a null or empty field means "not known here",
    never "erase it". A new family name keeps the old one as a former name.
    """
    current: Record = dict(record or {})
    changed: list[str] = []
    for field, value in update.items():
        if _empty(value) or field == "former_family_names" \
                or _says_less(field, value, current.get(field)):
            continue
        if field == "address":
            value = _address(current.get("address"), value)
        if current.get(field) != value:
            if field == "family_name" and current.get("family_name"):
                if _add_former(current, current["family_name"], value):
                    changed.append("former_family_names")
            current[field] = value
            changed.append(field)
    for name in update.get("former_family_names") or []:
        if _add_former(current, name, current.get("family_name")):
            changed.append("former_family_names")
    if record is None:
        changed = sorted(k for k, v in current.items() if not _empty(v))
    return current, sorted(set(changed))


def _says_less(field: str, value: Any, known: Any) -> bool:
    """A value that only says what is not known, beside one that is known: sex
    "unknown", and a date of birth of 1 January (how an unknown day and month is
    recorded) beside another date in the same year."""
    if field == "sex":
        return value == "unknown" and known not in (None, "unknown")
    if field == "date_of_birth" and isinstance(value, str) and isinstance(known, str):
        return value.endswith("-01-01") and known[:4] == value[:4] and known != value
    return False


def _add_former(record: Record, name: str, current_family: Any) -> bool:
    former = list(record.get("former_family_names") or [])
    if name == current_family or name in former:
        return False
    former.append(name)
    record["former_family_names"] = former
    return True


def _postcode(address: dict[str, Any]) -> str:
    return _SPACES.sub("", str(address.get("postcode") or "")).upper()


def _address(current: Any, incoming: Any) -> Any:
    """The address after an update's: a source sends what it knows, so an address
    naming no dwelling (no lines, no postcode) erases none, unless it puts the child
    in another local authority (a move to an address not known yet)."""
    if isinstance(incoming, dict) and isinstance(current, dict) \
            and not incoming.get("lines") and not _postcode(incoming):
        la = incoming.get("la")
        if not la or la == current.get("la") or incoming.get("la_inferred"):
            return current
        return incoming
    return _keep_known_la(current, incoming)


def _keep_known_la(current: Any, incoming: Any) -> Any:
    """An LA a source only guessed (la_inferred: a CTF names its school's LA) does not
    replace one the record holds from a source that knew it, for the same postcode:
    a postcode lies in one local authority. Otherwise the pupil of a school across
    the border would move to the school's LA and back with every transfer file,
    and each move would send the full record to a council not responsible."""
    if not (isinstance(incoming, dict) and incoming.get("la_inferred")
            and isinstance(current, dict)):
        return incoming
    known = current.get("la")
    if not known or current.get("la_inferred") or not _postcode(incoming) \
            or _postcode(incoming) != _postcode(current):
        return incoming
    kept = {k: v for k, v in incoming.items() if k != "la_inferred"}
    kept["la"] = known
    return kept


def la_of(record: Record | None) -> str | None:
    address = (record or {}).get("address") or {}
    la = address.get("la") if isinstance(address, dict) else None
    return la if isinstance(la, str) else None


def address_key(address: Any) -> str | None:
    """A normalised key for "the same dwelling": postcode plus first line (empty when
    the address has none: a postcode alone is still a place). None without a postcode.
    The postcode is the key's part before "|" (postcode_of_key)."""
    if not isinstance(address, dict):
        return None
    postcode = _postcode(address)
    if not postcode:
        return None
    lines = address.get("lines") or []
    first = _NOT_ALNUM.sub(" ", str(lines[0]).lower()).strip() if lines else ""
    return f"{postcode}|{first}"


def postcode_of_key(key: str) -> str:
    """The postcode of an address key (what protects a shielded child's street)."""
    return key.partition("|")[0]


_NOT_DIGIT = re.compile(r"[^0-9]+")
#: What a carer's phone number is kept as among protected places: "tel:" and its
#: digits, as dialled in the UK (hub.records.phone_key).
PHONE = "tel:"


def phone_key(phone: Any) -> str | None:
    """A phone number as a protected place: its digits with the UK's +44 (or 0044)
    dialled as 0, so "+44 (0)7700 900111" and "07700 900111" are one number. None
    for anything too short to be a number."""
    digits = _NOT_DIGIT.sub("", str(phone or ""))
    if digits.startswith("0044"):
        digits = digits[4:]
    elif digits.startswith("44") and len(digits) >= 12:
        digits = digits[2:]
    digits = digits.lstrip("0")
    return f"{PHONE}0{digits}" if len(digits) >= 9 else None


def phone_keys(record: Any) -> set[str]:
    """The record's carers' phone numbers, as protected places."""
    carers = record.get("carers") if isinstance(record, Mapping) else None
    return {k for k in (phone_key(c.get("phone")) for c in carers or []
                        if isinstance(c, dict)) if k}


def protected_places(record: Any) -> set[str]:
    """What a shielded record protects (rule 6): its address key and its carers'
    phone numbers (a refuge's new number reaches her as surely as its address)."""
    key = address_key(record.get("address")) if isinstance(record, Mapping) else None
    return phone_keys(record) | ({key} if key else set())


def visible_only(record: Record) -> Record:
    """The fields a shielded record shows: names, sex, date of birth."""
    return {k: record.get(k) for k in VISIBLE_FIELDS if k in record}


def without_protected(record: Record) -> Record:
    return {k: v for k, v in record.items() if k not in PROTECTED_FIELDS}
