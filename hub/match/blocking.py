"""Blocking keys: which stored records an update is scored against.

A stored record is indexed under a few short keys (``index_keys``); an update
looks up a few more (``query_keys``); the candidates are the records sharing at
least one key. Every key but the identifiers and the postcode pairs two facts, so
that a key holds a handful of children even with eleven million indexed (a date
of birth alone holds about 1,600 children in England; with a name code, a few; a
postcode is a street's worth of households already):

    n:<nhs number>
    u:<unique pupil number>
    d:<YYYY-MM-DD>:<soundex(name)>  date of birth with the family name, each part of
                                    a hyphenated or double-barrelled one, each former
                                    family name, and the given name (which finds the
                                    child after a change of surname)
    y:<soundex(surname)>:<given code>:<YYYY-MM>
    y:<soundex(surname)>:<given code>:<YYYY>-<DD>
                                    both names with the year and the month (a wrong
                                    day) or the year and the day (a wrong month)
    m:<soundex(surname)>:<MMDD>:<given code>
                                    birthday without the year (a wrong year)

A given name's codes are its soundex and its nickname groups (Bill, William and
Liam share one).
    p:<postcode>                    the children at one postcode (4.5 on average
                                    in the bench's million, about six in England),
                                    whatever their names and dates of birth; one
                                    holding more than CROWDED_POSTCODE finds no one

The update additionally looks up its day/month-swapped date of birth and the
keys it would have with given and family names transposed. Recall argument
(tested in tests/unit/test_match_blocking.py): any one of the corruptions that
occur in practice (a typo in a name, day and month swapped, names transposed, a
nickname, one part of a double-barrelled surname, a change of surname with or
without the former one recorded, a missing name, a move) leaves the date of
birth (or its swap) with one name code intact; a wrong day leaves both names, the
year and the month; a wrong month leaves both names, the year and the day; a wrong
year leaves the surname, the birthday and the given name's code. Two corruptions
at once (a missing given name and a mistyped surname or date of birth, say) leave
the postcode, if the child has not moved: with the postcode and a given initial,
as the key was until form p3, such children were created again (a third of the
duplicates `hub eval` counted). (One key of both names and the year alone held ten
times more children, for the same recall against one wrong date part.)
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache
from typing import Any

from hub.match.compare import Prepared, prepared
from hub.match.normalise import date_slips, groups_of, soundex

#: A postcode holding more children than this is no street's worth of households (a
#: feed that gives every child one address, an institution): scoring each update
#: against all of them made a batch quadratic (4,000 children at one postcode drained
#: at 41 a second). Its p: key finds no one (hub.db queries children_for_keys,
#: keys_under); names and dates still do, and rule 6 still guards a shielded child
#: there by her protected places.
CROWDED_POSTCODE = 250


@lru_cache(maxsize=50_000)
def _code(key: str) -> str:
    # Soundex, or for names with no Latin letters the name itself.
    return soundex(key) or "=" + key[:12]


@lru_cache(maxsize=20_000)
def _given_codes(given: str) -> frozenset[str]:
    # Soundex, and the nickname groups the name belongs to, so that Bill and
    # William (or Liam) share a code.
    return frozenset({_code(given)} | {f"v{g}" for g in sorted(groups_of(given))[:3]})


def _keys(p: Prepared, transposed: bool = False) -> set[str]:
    family_names: set[str] = set(p.family_all | p.formers)
    given = p.given
    if transposed:  # the keys the record would have with given and family swapped
        family_names, given = ({p.given} if p.given else set()), p.family
    keys: set[str] = set()
    if p.nhs:
        keys.add(f"n:{p.nhs}")
    if p.upn:
        keys.add(f"u:{p.upn}")
    dob, birthday = p.dob.isoformat(), p.dob_s[4:]
    year_month, year_day = dob[:7], f"{dob[:4]}-{dob[8:]}"
    for name in family_names:
        keys.add(f"d:{dob}:{_code(name)}")
    # With a date of birth also wrong, the full surname must be right (a part or a
    # former surname alone is one corruption already).
    full = p.given if transposed else p.family
    if full and given:
        for g in _given_codes(given):
            keys.add(f"y:{_code(full)}:{g}:{year_month}")
            keys.add(f"y:{_code(full)}:{g}:{year_day}")
            keys.add(f"m:{_code(full)}:{birthday}:{g}")
    if given:
        keys.add(f"d:{dob}:{_code(given)}")
    if p.postcode:
        keys.add(f"p:{p.postcode}")
    return keys


def _year_keys(p: Prepared, transposed: bool = False) -> set[str]:
    full, given = (p.given, p.family) if transposed else (p.family, p.given)
    if not (full and given):
        return set()
    return {f"Y:{_code(full)}:{g}:{p.year}" for g in _given_codes(given)}


def _masked_dates(dob_s: str) -> tuple[str, ...]:
    """The date of birth (YYYYMMDD) with each digit of its year's last two, its
    month and its day in turn unknown: a date with one of those digits mistyped
    shares one of them."""
    return tuple(dob_s[:i] + "?" + dob_s[i + 1:] for i in (2, 3, 4, 5, 6, 7))


def _typo_variants(name: str) -> set[str]:
    """The name and the name with each letter dropped in turn: two names one typo
    apart (a letter wrong, missing, added, or two swapped) share one of them."""
    return {name} | {name[:i] + name[i + 1:] for i in range(len(name))}


def _given_keys(given: str, dob_s: str) -> set[str]:
    """The given name as written (its key, hub.match.normalise.name_key) with the date
    of birth and with each masked date of birth, and each of its nickname groups with
    the date of birth (form p5); and its typo variants with the date of birth (form
    p6: a new surname with the given name mistyped, "Olvia" or "Oliwia" for Olivia,
    which no other key survives once the Soundex changes)."""
    if not given:
        return set()
    name = given[:24]
    keys = {f"G:{name}:{d}" for d in (dob_s, *_masked_dates(dob_s))}
    keys.update(f"G:v{g}:{dob_s}" for g in sorted(groups_of(given))[:3])
    keys.update(f"T:{v}:{dob_s}" for v in _typo_variants(name))
    return keys


def _given_slip_keys(given: str, dob_s: str) -> set[str]:
    """What an update looks up besides its own given-name keys: the given name with
    each date a clerk's slip from its own (normalise.date_slips: a day or a month
    either side, the day's or the month's digits transposed), which one masked digit
    misses."""
    if not given:
        return set()
    name = given[:24]
    return {f"G:{name}:{d}" for d in date_slips(dob_s)}


def _other_given_keys(p: Prepared) -> set[str]:
    """Her middle names (and a double given name's parts) as written with the date of
    birth: a child known by her middle name, under a new surname (form p7)."""
    return {f"G:{o[:24]}:{p.dob_s}" for o in p.given_others}


#: The kinds of key only shielded records carry (_shield_keys): a lookup of one finds
#: nothing but a shielded record, so it may go to their PROTECTED copies alone.
SHIELDED_ONLY = ("Y:", "G:", "T:", "J:")


def _shield_keys(p: Prepared) -> set[str]:
    keys = _year_keys(p) | _given_keys(p.given, p.dob_s) | _other_given_keys(p)
    # A source that knew only her birth year records 1 January (form p7; her middle
    # names too, p9).
    keys.update(_unknown_date_key(name, p.year) for name in _given_and_others(p))
    return keys


def _given_and_others(p: Prepared) -> set[str]:
    return ({p.given} if p.given else set()) | set(p.given_others)


def _unknown_date_key(given: str, year: int) -> str:
    """A given (or middle) name and birth year: what an update dated 1 January of that
    year or one either side (a source that did not know the day and month) looks up
    (forms p7, p9)."""
    return f"J:{given[:24]}:{year}"


def shielded_keys(child: Mapping[str, Any] | Prepared) -> set[str]:
    """The extra keys of a shielded record: both names with the birth year alone; the
    given name as written with the date of birth, and with it one digit of its year,
    month or day unknown (six keys); the given name's nickname groups with the
    date; its typo variants (the name with each letter dropped) with the date (form
    p6); each middle name with the date (form p7); and the given and middle names
    with the birth year alone (`J:`, forms p7 and p9), which only an update dated 1
    January looks up. (A shielded record dated 1 January itself is found by every
    update's given name with 1 January of its year and the years either side: forms
    p8, p9.)

    They find it again when an update has two things wrong at once, which the
    ordinary keys do not promise to survive: a date of birth wrong in both day and
    month; or a new surname the record does not know yet with one digit of the date
    mistyped (or a day or month either side, or two digits transposed: an
    update looks up those dates too), or with a nickname (Bill for William), at a new address
    and without an NHS number (before form p4, an open record of her was created). For a
    shielded child a miss is a duplicate, the failure the hub exists to prevent.
    Only shielded records carry them, so looking them up costs little. (Form p4
    keyed the given name's Soundex and nickname groups with the year and month, and
    with the year and day: at a million children each update found a shielded child
    through them more than one time in five, most of them born weeks from its date
    or named otherwise, and each scored, often sent to a person; README, "Shielded
    candidates at scale".)
    """
    return _shield_keys(prepared(child))


def index_keys(child: Mapping[str, Any] | Prepared) -> set[str]:
    """The keys a stored record is indexed under."""
    return _keys(prepared(child))


#: Begins the copy of each key of a shielded or severed record ("!d:2014-03-07:Q540"):
#: an update tied to its record by NHS number looks up its keys with this prefix only
#: (partial index block_keys_protected), finding every shielded or severed candidate
#: without reading the ordinary ones, which cannot change its decision.
PROTECTED = "!"


def stored_keys(child: Mapping[str, Any] | Prepared, shielded: bool, severed: bool) -> set[str]:
    """Every key a stored child is indexed under: its index keys; a shielded child's
    extra keys; and for a shielded or severed child, a PROTECTED copy of each."""
    p = prepared(child)
    keys = _keys(p)
    if shielded:
        keys |= _shield_keys(p)
    return with_copies(keys, shielded, severed)


def with_copies(keys: set[str], shielded: bool, severed: bool) -> set[str]:
    """A stored child's keys with the PROTECTED copies it carries if shielded or severed."""
    return keys | {PROTECTED + k for k in keys} if shielded or severed else keys


def query_keys(child: Mapping[str, Any] | Prepared) -> set[str]:
    """The keys an incoming update looks up (a superset of its own index keys): its
    index keys, the keys it would have with given and family names transposed, the
    shielded records' year keys both ways round, and its date-of-birth keys with day
    and month swapped. (Made in one pass: every update makes them.)"""
    p = prepared(child)
    keys: set[str] = set()
    if p.nhs:
        keys.add("n:" + p.nhs)
    if p.upn:
        keys.add("u:" + p.upn)
    given, family, s = p.given, p.family, p.dob_s
    iso = f"{s[:4]}-{s[4:6]}-{s[6:]}"
    codes = {_code(name) for name in p.family_all}
    codes.update(_code(name) for name in p.formers)
    if given:
        codes.add(_code(given))  # as a given name, and as the family name transposed
    dates = [iso]
    if p.day != p.month and p.day <= 12:
        dates.append(f"{s[:4]}-{s[6:]}-{s[4:6]}")  # day and month swapped
    for d in dates:
        for code in codes:
            keys.add(f"d:{d}:{code}")
    if p.postcode:
        keys.add(f"p:{p.postcode}")
    if given and family:
        year_month, year_day, birthday = iso[:7], f"{s[:4]}-{s[6:]}", s[4:]
        for full, other in ((family, given), (given, family)):
            full_code = _code(full)
            for g in _given_codes(other):
                keys.add(f"y:{full_code}:{g}:{year_month}")
                keys.add(f"y:{full_code}:{g}:{year_day}")
                keys.add(f"m:{full_code}:{birthday}:{g}")
                keys.add(f"Y:{full_code}:{g}:{p.year}")
    keys |= _given_keys(given, s)  # the shielded records' given-name keys
    keys |= _other_given_keys(p)
    keys |= _given_slip_keys(given, s)
    years = (p.year - 1, p.year, p.year + 1)  # an age assessed a year out (p9)
    if s[4:] == "0101":  # its date not known: any shielded child of its year (p7, p9)
        keys.update(_unknown_date_key(name, y) for name in _given_and_others(p)
                    for y in years)
    elif given:  # a shielded record whose date was not known: 1 January (p8, p9)
        keys.update(f"G:{given[:24]}:{y}0101" for y in years)
    return keys
