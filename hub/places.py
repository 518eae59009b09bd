"""What rule 6 protects of a shielded child, and what an update's address comes near.

A shielded record's places are kept in `protected_addresses` as keys:
- an address key, "POSTCODE|first line" (`address_key`), its postcode the part
  before "|": the postcode protects the street, however the dwelling is written;
- "line:" and a house (its first line, or another holding a number), normalised,
  with its town after "|"; and "line0:" as well when the address has no postcode:
  an address known by its lines alone is still a place;
- "tel:" and a phone number's digits (`phone_key`), "mail:" and an email address,
  written anywhere in her carers or services (`contact_keys`).
The table's `postcode` column is a key's part before "|" (the whole key for the
others), which is what an update looks up (`lookup_places`). Pure: no database.

A contact that PUBLIC_CONTACT or more open records hold already (`children.contacts`,
migration 0024) is a shared line, a health visiting team's or a switchboard's, not
a secret of hers: rule 6 does not count it. Her carers' own numbers and a refuge's
are in no open record, and rule 6 keeps them out of new ones, so the count cannot
be raised by updates while a number is hers alone.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping
from typing import Any

from hub.match.normalise import PSEUDO_POSTCODE, normalise_address_line, normalise_postcode

PHONE = "tel:"
MAIL = "mail:"
LINE = "line:"
LINE_NO_POSTCODE = "line0:"
#: Open records holding a contact that make it a shared line (see above): more
#: than a refuge's residents (a health visiting team's number: thousands).
PUBLIC_CONTACT = 25

_NOT_ALNUM = re.compile(r"[^a-z0-9]+")
_NOT_DIGIT = re.compile(r"[^0-9]+")
_POSTCODE = re.compile(r"^[A-Z]{1,2}[0-9][A-Z0-9]?[0-9][A-Z]{2}$")
_POSTCODE_IN_TEXT = re.compile(r"\b([A-Z]{1,2}[0-9][A-Z0-9]?) ?([0-9][A-Z]{2})\b")


def key_postcode(address: Any) -> str:
    """The postcode rule 6 knows an address by: a UK postcode in its postcode field
    however written ("B5 7QQ.", "b5-7qq", "B5 7QQ UK" are B57QQ), else one written
    into its lines or town; '' if none (a field holding "B5" or "unknown" names no
    dwelling: the address is then known by its lines)."""
    if not isinstance(address, Mapping):
        return ""
    field = str(address.get("postcode") or "").upper()
    postcode = normalise_postcode(field)
    if _POSTCODE.match(postcode):
        return postcode
    for text in [field, *(address.get("lines") or []), address.get("town")]:
        found = _POSTCODE_IN_TEXT.search(str(text or "").upper())
        if found and not found.group(1).startswith(PSEUDO_POSTCODE):
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


def _houses(address: Any) -> set[str]:
    """Its lines that name a house: the first (a number, or a name: "Harbour House")
    and any other holding a number; and the comma-separated parts of a line that
    hold a number and a word ("Flat 2, 14 Willow Court" is the house of "Flat 2" /
    "14 Willow Court" written on two lines: an independent probe's refuge address
    on one line, without its postcode, was created open)."""
    lines = _lines(address)
    houses = {n for i, n in enumerate(lines) if i == 0 or any(ch.isdigit() for ch in n)} \
        | _parts(address)
    town = _town_field(address)
    if any(ch.isdigit() for ch in town):  # the street written into the town field
        houses.add(town)
    return houses | {h for n in houses for h in _within(n)}


#: Words before a house number that name no house ("No 3 Lane End").
_NOT_A_NAME = frozenset({"no", "number", "nr", "house", "the"})


def _within(line: str) -> set[str]:
    """The houses inside a line that names more than one ("rose cottage 5 lane end":
    "5 lane end" and "rose cottage"; "no 3 lane end": "3 lane end"): an
    independent probe's refuge, written with its house name and no comma, was
    written open as "5 Lane End" under a mistyped postcode."""
    words = line.split()
    found: set[str] = set()
    for i in range(1, len(words) - 1):
        if words[i][0].isdigit() and words[i + 1].isalpha():
            found.add(" ".join(words[i:]))
            name = words[:i]
            if all(w.isalpha() and w not in _UNIT_WORDS and w not in _NOT_A_NAME
                   for w in name) and sum(map(len, name)) >= 4:
                found.add(" ".join(name))
            break
    return found


def _parts(address: Any) -> set[str]:
    raw = address.get("lines") if isinstance(address, Mapping) else None
    parts = (normalise_address_line(p) for line in raw or [] if "," in str(line)
             for p in str(line).split(","))
    return {p for p in parts if any(c.isdigit() for c in p) and any(c.isalpha() for c in p)}


#: Words that name a part of a building, not a street ("Flat 2").
_UNIT_WORDS = frozenset({"flat", "apartment", "apt", "unit", "room", "floor", "suite",
                         "block", "studio", "maisonette"})


def _street_houses(houses: set[str]) -> set[str]:
    """Of an address's houses, those that name a number in a street ("14 willow
    court", not "flat 2" or "harbour house"): another postcode with the same one in
    the same town is most likely the same house, its postcode mistyped."""
    return {h for h in houses if any(c.isdigit() for c in h)
            and any(len(w) >= 3 and w.isalpha() and w not in _UNIT_WORDS
                    for w in h.split())}


def _town_field(address: Any) -> str:
    town = address.get("town") if isinstance(address, Mapping) else None
    return normalise_address_line(str(town)) if town else ""


def _town(address: Any) -> str:
    """Its town; none when the field holds a house number (a street written there)."""
    town = _town_field(address)
    return "" if any(ch.isdigit() for ch in town) else town


def _line_keys(address: Any, prefix: str) -> set[str]:
    """Its houses as keys, "line:3 harbour lane|birmingham": looked up by the part
    before "|", the town (if any) told apart by `near`."""
    town = _town(address)
    return {f"{prefix}{n}|{town}" for n in _houses(address)}


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


# Digits with up to three separators between them (spaces of any kind, "-", "/",
# ".", brackets...), but not letters or "@": "07700 900111", "07700/900111",
# "+44 (0)7700 900111"; "07700 900111 ext 2" ends at "ext".
_PHONE_RUN = re.compile(r"\+?\d(?:[^\w@]{0,3}\d){8,}")
_DIGIT_OR_AT = re.compile(r"[0-9@]")
_DIGIT_GROUP = re.compile(r"\+?\d+")
_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")


def _contacts_in(text: str) -> set[str]:
    """Every phone number and email address written in a piece of text ("07700 900999
    ext 2", two numbers in one field, a number in a name)."""
    if not text.isascii():  # a no-break space, full-width digits: as plain ones
        text = unicodedata.normalize("NFKC", text)
    if not _DIGIT_OR_AT.search(text):  # most names and relationships
        return set()
    runs = [n for run in _PHONE_RUN.findall(text) for n in _numbers(run)]
    keys = {k for k in (phone_key(n) for n in runs) if k}
    return keys | {MAIL + m.lower() for m in _EMAIL.findall(text)}


def _numbers(run: str) -> list[str]:
    """A run of digits holding more than one number ("0113 496 0000 / 0113 496
    0001"), cut into numbers: its digit groups gathered until ten digits or more."""
    if sum(ch.isdigit() for ch in run) <= 13:  # +44 (0)7700 900111 is 13
        return [run]
    numbers, current = [], ""
    for group in _DIGIT_GROUP.findall(run):
        current += group
        if sum(ch.isdigit() for ch in current) >= 10:
            numbers.append(current)
            current = ""
    return numbers + ([current] if current else [])


def contact_keys(record: Any) -> set[str]:
    """The phone numbers and email addresses in the record's carers and services,
    whatever field holds them, as protected places."""
    if not isinstance(record, Mapping):
        return set()
    keys: set[str] = set()
    for kind in ("carers", "services"):
        for item in record.get(kind) or []:
            if isinstance(item, Mapping):
                for value in item.values():
                    if isinstance(value, str):
                        keys |= _contacts_in(value)
    return keys


def is_contact(key: str) -> bool:
    """Whether a protected place's key is a phone number or email address."""
    return key.startswith((PHONE, MAIL))


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
    return address_places(address) | contact_keys(record)


def lookup_places(address: Any) -> set[str]:
    """What an update's address looks up among protected places (their `postcode`
    column): its postcode, the houses of protected addresses known without one, and
    its street houses and, in a town, its named houses among any protected
    address's (her house under a mistyped postcode: an independent probe's was
    created open); without a postcode, the houses of any protected address."""
    postcode = key_postcode(address)
    if postcode:
        houses = _houses(address)
        # A house known by its name in a town ("Rose Cottage, Hull"): hers under a
        # mistyped postcode as surely as a numbered one (an independent probe).
        named = {n for n in houses if not any(ch.isdigit() for ch in n)} \
            if _town(address) else set()
        return {postcode} | {LINE_NO_POSTCODE + n for n in houses} \
            | {LINE + n for n in _street_houses(houses) | named}
    return {LINE + n for n in _houses(address)}


def lock_places(address: Any) -> set[str]:
    """What a writer of this address locks (hub.db.store.lock_ids): its postcode, or
    without one its houses, so that a batch protecting a child's address and one
    writing an address in its postcode take a lock in common and run one after the
    other. (Not its houses as well: two or three more locks an update, for the
    rare race of a record moving near her, written without a postcode on one side
    only, in the very moment she is shielded: README, Known gaps.)"""
    postcode = key_postcode(address)
    return {postcode} if postcode else _houses(address)


def same_house(current: Any, address: Any) -> bool:
    """Whether an address is written as one a child lives at: the same postcode (or
    none on both) and a house in common, or no house on either (a postcode alone);
    normalised, so "3 Harbour Ln" is 3 Harbour Lane."""
    postcode = key_postcode(address)
    if key_postcode(current) != postcode:
        return False
    mine, hers = _houses(address), _houses(current)
    if mine or hers:
        return bool(mine & hers)
    return bool(postcode)


def _is_address_key(place: str) -> bool:
    return "|" in place and not place.startswith((LINE, LINE_NO_POSTCODE))


def _towns_agree(place: str, address: Any) -> bool:
    """A house key's town beside the update's: told apart only when both are known."""
    theirs, mine = place.partition("|")[2], _town(address)
    return not theirs or not mine or theirs == mine


def near(address: Any, held: Iterable[tuple[str, str, Any]]) -> tuple[set[str], set[str]]:
    """Of shielded children's protected places that an update's address looked up
    (`held`: place key, child id, her current address, None when not known), the
    children rule 6 counts: (at, near). `at`, those who live at it now, however it
    is written (or may: her address not known and the place is its very key);
    `near`, the rest it counts: a former address of hers it is, her current
    address's postcode it shares (the same dwelling is written many ways; a former
    address's street is not hers any more), or a house of hers it names where one
    side has no postcode (in another town: not hers)."""
    key, postcode = address_key(address), key_postcode(address)
    lookups = lookup_places(address)
    at: set[str] = set()
    close: set[str] = set()
    for place, child_id, current in held:
        in_postcode = bool(postcode) and _is_address_key(place) \
            and postcode_of_key(place) == postcode
        house = not _is_address_key(place) and postcode_of_key(place) in lookups \
            and _towns_agree(place, address)
        if current is None:
            if key is not None and place == key:
                at.add(child_id)
            elif in_postcode or house:
                close.add(child_id)
        elif same_house(current, address):
            at.add(child_id)
        elif (key is not None and place == key) or house or (
                in_postcode and key_postcode(current) == postcode):
            close.add(child_id)
    return at, close - at
