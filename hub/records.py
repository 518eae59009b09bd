"""The child record: canonical fields and how an update merges into a record."""

from __future__ import annotations

import re
from typing import Any

from schemas.canonical import PROTECTED_FIELDS, VISIBLE_FIELDS

Record = dict[str, Any]

LIST_FIELDS = ("former_family_names", "carers", "services")

_SPACES = re.compile(r"\s+")


def _empty(value: Any) -> bool:
    if isinstance(value, dict):  # a school, a GP practice, ... with nothing in it
        return all(_empty(v) for v in value.values())
    return value is None or value == [] or value == ""


def merge(record: Record | None, update: Record,
          formers: bool = True) -> tuple[Record, list[str]]:
    """Merge an update's child into a record; return the new record and changed fields.

    A source sends what it knows: a null or empty field means "not known here",
    never "erase it". A new family name keeps the old one as a former name; not in
    a severed record (`formers` False: adopted, her birth name beside her new one
    would tie the two identities together again, as `hub sever` dropped them).
    """
    current: Record = dict(record or {})
    changed: list[str] = []
    swapped = _names_swapped(update, current)
    for field, value in update.items():
        if _empty(value) or field == "former_family_names" \
                or _says_less(field, value, current.get(field)) \
                or (swapped and field in ("given_name", "family_name")):
            continue
        if field == "address":
            value = _address(current.get("address"), value)
        if current.get(field) != value:
            if field == "family_name" and current.get("family_name") and formers:
                if _add_former(current, current["family_name"], value):
                    changed.append("former_family_names")
            current[field] = value
            changed.append(field)
    for name in (update.get("former_family_names") or []) if formers else []:
        if _add_former(current, name, current.get("family_name")):
            changed.append("former_family_names")
    if record is None:
        changed = sorted(k for k, v in current.items() if not _empty(v))
    return current, sorted(set(changed))


def _names_swapped(update: Record, known: Record) -> bool:
    """The update gives the record's given name as the family name and its family
    name as the given name (a form filled in the wrong boxes, which matching reads
    as agreement): that says nothing new, and written, her given name would become
    her family name and her family name a former one."""
    def norm(value: Any) -> str:
        return " ".join(str(value or "").split()).casefold()

    given, family = norm(update.get("given_name")), norm(update.get("family_name"))
    return bool(given and family and given != family
                and given == norm(known.get("family_name"))
                and family == norm(known.get("given_name")))


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
    if not (isinstance(incoming, dict) and isinstance(current, dict)):
        return incoming
    if not incoming.get("la") and current.get("la") and _postcode(incoming) \
            and _postcode(incoming) == _postcode(current):
        # A source that does not know local authorities (a FHIR address has none):
        # the postcode's is the record's. Dropped, the child's council heard nothing
        # more of her (an independent probe: 36% of records lost theirs to PDS).
        return {**incoming, "la": current["la"],
                **({"la_inferred": True} if current.get("la_inferred") else {})}
    if not incoming.get("la_inferred"):
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


def visible_only(record: Record) -> Record:
    """The fields a shielded record shows: names, sex, date of birth."""
    return {k: record.get(k) for k in VISIBLE_FIELDS if k in record}


#: What a shielded record hides beyond the contract's protected fields: a UPN
#: names the council and the school that issued it (an independent probe read her
#: new council and school off `hub export`); former family names join an adopted
#: child's two identities (another probe).
HIDDEN_WHEN_SHIELDED = frozenset({*PROTECTED_FIELDS, "upn", "former_family_names"})


def without_protected(record: Record) -> Record:
    return {k: v for k, v in record.items() if k not in HIDDEN_WHEN_SHIELDED}
