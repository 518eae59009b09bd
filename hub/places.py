"""What rule 6 protects of a shielded child, and what an update's address comes near.

A shielded record's places are kept in `protected_addresses` as keys:
- an address key, "POSTCODE|first line" (`address_key`), its postcode the part
  before "|": the postcode protects the street, however the dwelling is written;
- "line:" and a normalised address line holding a number (a house), and "line0:"
  as well when the address has no postcode: an address known by its lines alone
  is still a place;
- "tel:" and a carer's phone number's digits (`phone_key`).
The table's `postcode` column is a key's part before "|" (the whole key for the
others), which is what an update looks up (`lookup_places`). Pure: no database.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from hub.match.normalise import normalise_address_line, normalise_postcode

PHONE = "tel:"
LINE = "line:"
LINE_NO_POSTCODE = "line0:"

_NOT_ALNUM = re.compile(r"[^a-z0-9]+")
_NOT_DIGIT = re.compile(r"[^0-9]+")
_POSTCODE_IN_TEXT = re.compile(r"\b([A-Z]{1,2}[0-9][A-Z0-9]?) ?([0-9][A-Z]{2})\b")


def key_postcode(address: Any) -> str:
    """The postcode rule 6 knows an address by: the letters and digits of its
    postcode ("B5 7QQ.", "b5-7qq" are B57QQ), else a postcode written into its lines
    or town; '' if none."""
    if not isinstance(address, Mapping):
        return ""
    postcode = normalise_postcode(str(address.get("postcode") or ""))
    if postcode:
        return postcode
    for text in [*(address.get("lines") or []), address.get("town")]:
        found = _POSTCODE_IN_TEXT.search(str(text or "").upper())
        if found:
            return found.group(1) + found.group(2)
    return ""


def address_key(address: Any) -> str | None:
    """A normalised key for "the same dwelling": postcode plus first line (empty when
    the address has none: a postcode alone is still a place). None without a postcode.
    The postcode is the key's part before "|" (postcode_of_key)."""
    postcode = key_postcode(address)
    if not postcode:
        return None
    lines = address.get("lines") or []
    first = _NOT_ALNUM.sub(" ", str(lines[0]).lower()).strip() if lines else ""
    return f"{postcode}|{first}"


def postcode_of_key(key: str) -> str:
    """The postcode of an address key (any other key: itself)."""
    return key.partition("|")[0]


def _lines(address: Any) -> list[str]:
    lines = address.get("lines") if isinstance(address, Mapping) else None
    return [n for n in (normalise_address_line(str(x)) for x in lines or []) if n]


def _line_keys(address: Any, prefix: str) -> set[str]:
    """Its lines that name a house (hold a number), as keys."""
    return {prefix + n for n in _lines(address) if any(ch.isdigit() for ch in n)}


def same_dwelling(a: Any, b: Any) -> bool:
    """Whether two addresses are written alike: the same postcode and lines, each
    normalised (an update that writes its record's own address again)."""
    return (isinstance(a, Mapping) and isinstance(b, Mapping)
            and key_postcode(a) == key_postcode(b) and _lines(a) == _lines(b))


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
                        if isinstance(c, Mapping)) if k}


def address_places(address: Any) -> set[str]:
    """The places a shielded child's address protects."""
    key = address_key(address)
    places = _line_keys(address, LINE)
    if key:
        places.add(key)
    else:
        places |= _line_keys(address, LINE_NO_POSTCODE)
    return places


def protected_places(record: Any) -> set[str]:
    """What a shielded record protects: its address's places and its carers' phone
    numbers (a refuge's new number reaches her as surely as its address)."""
    address = record.get("address") if isinstance(record, Mapping) else None
    return address_places(address) | phone_keys(record)


def lookup_places(address: Any) -> set[str]:
    """What an update's address looks up among protected places: its postcode and
    the lines of protected addresses known without one; without a postcode, the
    lines of any protected address."""
    postcode = key_postcode(address)
    if postcode:
        return {postcode} | _line_keys(address, LINE_NO_POSTCODE)
    return _line_keys(address, LINE)


def lock_places(address: Any) -> set[str]:
    """What a writer of this address locks (hub.db.store.lock_ids): its postcode and
    the lines that name a house, so that a batch protecting a child's address and
    one writing an address near it (as `lookup_places` finds it) take a lock in
    common and run one after the other."""
    postcode = key_postcode(address)
    return _line_keys(address, LINE) | ({postcode} if postcode else set())


def _same_house(current: Any, address: Any) -> bool:
    """Whether an address is written as one a child lives at: the same postcode (or
    none on both) and a house line in common, or no house line on either (a
    postcode alone, a "Flat A"); normalised, so "3 Harbour Ln" is 3 Harbour Lane."""
    postcode = key_postcode(address)
    if key_postcode(current) != postcode:
        return False
    mine, hers = _line_keys(address, ""), _line_keys(current, "")
    if mine or hers:
        return bool(mine & hers)
    return bool(postcode)


def near(address: Any, held: Iterable[tuple[str, str, Any]]) -> tuple[set[str], set[str]]:
    """Of shielded children's protected places that an update's address looked up
    (`held`: place key, child id, her current address, None when not known), the
    children rule 6 counts: (at, near). `at`, those who live at it now, however it
    is written (or may: her address not known and the place is its very key);
    `near`, the rest it counts: a former address of hers it is, her current
    address's postcode it shares (the same dwelling is written many ways; a former
    address's street is not hers any more), or an address known by its lines alone
    that its lines name."""
    key, postcode = address_key(address), key_postcode(address)
    lines = lookup_places(address)
    at: set[str] = set()
    close: set[str] = set()
    for place, child_id, current in held:
        in_postcode = bool(postcode) and "|" in place and postcode_of_key(place) == postcode
        if current is None:
            if key is not None and place == key:
                at.add(child_id)
            elif in_postcode or place in lines:
                close.add(child_id)
        elif _same_house(current, address):
            at.add(child_id)
        elif (key is not None and place == key) or place in lines or (
                in_postcode and key_postcode(current) == postcode):
            close.add(child_id)
    return at, close - at
