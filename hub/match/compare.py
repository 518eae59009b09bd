"""Per-field comparison levels between an update and a stored record.

Records are prepared once (`prepare`), which does all the normalisation, so
comparing a pair is a handful of string equality tests plus at most a few
Jaro-Winkler calls (rapidfuzz, with a score cut-off so dissimilar names stop early).

Each ``compare_*`` function returns the name of a level of the model (model.py).
Name levels are tried strongest first: exact, (nickname | part, former), known by
a middle name, Jaro-Winkler >= 0.94, one edit (insertion, deletion, substitution
or adjacent transposition: catches "Zva"/"Ava", where Jaro-Winkler punishes a
wrong first letter in a short name), Jaro-Winkler >= 0.88, phonetic (Soundex or
Metaphone), disagree.
All comparisons are symmetric: compare(a, b) == compare(b, a).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from functools import lru_cache
from typing import Any, ClassVar

from rapidfuzz.distance import OSA, JaroWinkler

from hub.match.normalise import (
    first_line,
    groups_of,
    metaphone,
    name_key,
    name_parts,
    parse_date,
    postcode_parts,
    soundex,
)

_jw = JaroWinkler.similarity
_osa = OSA.distance

# Level names (shared with model.py).
EXACT = "exact"
SWAPPED = "swapped"
MISSING = "missing"
DISAGREE = "disagree"


class Prepared:
    """A record's normal forms, computed once and reused for every pair it is in."""

    __slots__ = (
        "given", "given_sdx", "given_mph", "given_groups", "given_others",
        "family", "family_all", "family_sdx", "family_mph", "formers",
        "dob_s", "year", "month", "day",
        "sex", "postcode", "sector", "district", "_line1", "_address", "nhs", "upn", "la",
    )

    given: str
    given_sdx: str
    given_mph: str
    given_groups: frozenset[int]
    given_others: frozenset[str]
    family: str
    family_all: frozenset[str]
    family_sdx: str
    family_mph: str
    formers: frozenset[str]
    dob_s: str
    year: int
    month: int
    day: int
    sex: str
    postcode: str
    sector: str
    district: str
    _line1: str | None  # None: not made yet, from _address
    _address: Any
    nhs: str
    upn: str
    la: str

    #: What it holds (the slots, with the address line as made).
    FIELDS: ClassVar[tuple[str, ...]] = (
        "given", "given_sdx", "given_mph", "given_groups", "given_others",
        "family", "family_all", "family_sdx", "family_mph", "formers",
        "dob_s", "year", "month", "day",
        "sex", "postcode", "sector", "district", "line1", "nhs", "upn", "la",
    )

    @property
    def line1(self) -> str:
        # Made when first compared (most updates are tied by NHS number and never
        # scored against an ordinary candidate), then kept.
        if self._line1 is None:
            self._line1 = first_line(self._address)
        return self._line1

    @line1.setter
    def line1(self, value: str) -> None:
        self._line1 = value

    @property
    def dob(self) -> date:
        # Made when asked (blocking keys): scoring reads the parts, and decoding a
        # stored form need not build a date for every candidate.
        return date(self.year, self.month, self.day)

    def __repr__(self) -> str:
        return f"Prepared({self.given!r}, {self.family!r}, {self.dob.isoformat()})"


def unpacked(t: tuple[Any, ...]) -> Prepared:
    """The Prepared whose FIELDS, in order, are `t` (a bulk load sends them between
    processes as a tuple: hub.bulk.work.pack). Here, compiled: set one by one by the
    loader, 5% of its deciding time went on it (py-spy, 324,182 records)."""
    p = Prepared()
    (p.given, p.given_sdx, p.given_mph, p.given_groups, p.given_others,
     p.family, p.family_all, p.family_sdx, p.family_mph, p.formers,
     p.dob_s, p.year, p.month, p.day,
     p.sex, p.postcode, p.sector, p.district, p._line1, p.nhs, p.upn, p.la) = t
    p._address = None
    return p


def _text(value: Any) -> str:
    return value.strip() if isinstance(value, str) else ""


@lru_cache(maxsize=50_000)
def _given_forms(raw: str | None) -> tuple[str, str, str, frozenset[int], frozenset[str]]:
    """A given name's key, Soundex, Metaphone, variant groups and other parts (the
    same few thousand names recur: made once each)."""
    g = name_key(raw)
    return g, soundex(g), metaphone(g), groups_of(g), frozenset(name_parts(raw)) - {g}


@lru_cache(maxsize=50_000)
def _family_forms(raw: str | None) -> tuple[str, frozenset[str], str, str]:
    """A family name's key, all its parts (with the key), Soundex and Metaphone."""
    f = name_key(raw)
    return f, frozenset(name_parts(raw)) | ({f} if f else frozenset()), soundex(f), metaphone(f)


def prepare(child: Mapping[str, Any] | Prepared) -> Prepared:
    """Normalise a canonical child dict for matching (a Prepared is returned as is).

    Raises ValueError when the date of birth is missing or not a date.
    """
    if isinstance(child, Prepared):
        return child
    p = Prepared()
    given_raw = child.get("given_name")
    p.given, p.given_sdx, p.given_mph, p.given_groups, parts = _given_forms(given_raw)
    g = p.given
    middle = child.get("middle_names")
    if isinstance(middle, str):
        others = set(parts)
        others.update(name_parts(middle))
        mk = name_key(middle)
        if mk:
            others.add(mk)
        others.discard(g)
        p.given_others = frozenset(others)
    else:
        p.given_others = parts

    p.family, p.family_all, p.family_sdx, p.family_mph = _family_forms(child.get("family_name"))
    formers: set[str] = set()
    for former in child.get("former_family_names") or ():
        if isinstance(former, str):
            fk = name_key(former)
            if fk:
                formers.add(fk)
                formers.update(name_parts(former))
    formers.difference_update(p.family_all)
    p.formers = frozenset(formers)

    dob = parse_date(child.get("date_of_birth"))
    p.dob_s = f"{dob.year:04d}{dob.month:02d}{dob.day:02d}"
    p.year, p.month, p.day = dob.year, dob.month, dob.day

    sex = child.get("sex")
    p.sex = sex if sex in ("female", "male") else ""
    address = child.get("address")
    if type(address) is dict or isinstance(address, Mapping):
        p.postcode, p.sector, p.district = postcode_parts(_text(address.get("postcode")))
        p._line1, p._address = None, address
        p.la = _text(address.get("la"))
    else:
        p.postcode = p.sector = p.district = p._line1 = p.la = ""
    p.nhs = _text(child.get("nhs_number")).replace(" ", "")
    p.upn = _text(child.get("upn")).upper()
    return p


def _fingerprint(child: Mapping[str, Any]) -> tuple[Any, ...]:
    address = child.get("address")
    if isinstance(address, Mapping):
        lines = address.get("lines")
        addr: tuple[Any, ...] = (
            address.get("postcode"),
            tuple(lines) if isinstance(lines, list) else (),
            address.get("la"),
        )
    else:
        addr = ()
    formers = child.get("former_family_names")
    dob = child.get("date_of_birth")
    return (
        child.get("given_name"),
        child.get("middle_names"),
        child.get("family_name"),
        tuple(formers) if isinstance(formers, list) else formers,
        dob if isinstance(dob, str) else str(dob),
        child.get("sex"),
        child.get("nhs_number"),
        child.get("upn"),
        addr,
    )


@lru_cache(maxsize=100_000)
def _prepare_fp(fp: tuple[Any, ...]) -> Prepared:
    given, middle, family, formers, dob, sex, nhs, upn, addr = fp
    address = {"postcode": addr[0], "lines": list(addr[1]), "la": addr[2]} if addr else None
    return prepare(
        {
            "given_name": given, "middle_names": middle, "family_name": family,
            "former_family_names": list(formers or ()), "date_of_birth": dob, "sex": sex,
            "nhs_number": nhs, "upn": upn, "address": address,
        }
    )


def prepared(child: Mapping[str, Any] | Prepared) -> Prepared:
    """Like `prepare`, but remembers recently prepared dicts (by their matching fields).

    Lets callers that hold plain dicts score many pairs without re-normalising.
    """
    if isinstance(child, Prepared):
        return child
    try:
        return _prepare_fp(_fingerprint(child))
    except TypeError:  # something unhashable in an odd record: no caching
        return prepare(child)


# --- the comparisons ----------------------------------------------------------


def _close(x: str, y: str) -> bool:
    """Near enough for the other half of a transposition: a typo or a nickname.

    Symmetric in x and y.
    """
    if not x or not y:
        return False
    if x == y or _jw(x, y, score_cutoff=0.94) >= 0.94 or _osa(x, y, score_cutoff=1) <= 1:
        return True
    return not groups_of(x).isdisjoint(groups_of(y))


def swap_levels(a: Prepared, b: Prepared) -> tuple[str, str] | None:
    """(given level, family level) when the names are transposed, else None.

    One transposed name must agree exactly; the other may carry a typo or be a
    nickname ("Smith Bill" for "William Smith"). When a name is missing on either
    side, the one name that crossed over is enough.
    """
    gf = bool(a.given) and a.given == b.family
    fg = bool(a.family) and a.family == b.given
    if not (gf or fg):
        return None
    if a.given and a.family and b.given and b.family:
        if a.given == a.family or b.given == b.family:
            return None
        # The pair that does not agree exactly may be a typo or a nickname. Either
        # side may be the transposed one, so it may hold given names either way
        # round: judging it the same whichever record is a keeps the score symmetric.
        if (gf and fg) or (gf and _close(a.family, b.given)) or (
            fg and _close(a.given, b.family)
        ):
            return SWAPPED, SWAPPED
        return None
    # A name is missing somewhere: the name that crossed over is the evidence.
    if gf and fg:
        return SWAPPED, SWAPPED
    given_level = compare_given(a, b)
    family_level = compare_family(a, b)
    if given_level == MISSING and family_level == MISSING:
        return None
    if given_level in (EXACT, "nickname") or family_level in (EXACT, "part", "former"):
        return None  # the names agree the ordinary way
    if given_level != MISSING:
        given_level = SWAPPED
    else:
        family_level = SWAPPED
    return given_level, family_level


def names_swapped(a: Prepared, b: Prepared) -> bool:
    """Given and family names transposed between the two records."""
    return swap_levels(a, b) == (SWAPPED, SWAPPED)


def _known_by_other_name(a: Prepared, b: Prepared) -> bool:
    """a's given name is one of b's other given names (a middle name, or one part of
    "Mary Jane"), and a shows no different name of its own: "Rose" vs "Wilhelmina
    Rose" is one child, "Isla Hannah" vs "Olivia Isla" is two (twins)."""
    return a.given in b.given_others and (not a.given_others or b.given in a.given_others)


def compare_given(a: Prepared, b: Prepared) -> str:
    x, y = a.given, b.given
    if not x or not y:
        return MISSING
    if x == y:
        return EXACT
    if not a.given_groups.isdisjoint(b.given_groups):
        return "nickname"
    if (x in b.given_others or y in a.given_others) and (
        _known_by_other_name(a, b) or _known_by_other_name(b, a)
    ):
        return "middle"
    return _fuzzy(x, y, a.given_sdx, a.given_mph, b.given_sdx, b.given_mph)


def _fuzzy(x: str, y: str, sdx_x: str, mph_x: str, sdx_y: str, mph_y: str) -> str:
    """The similarity bands shared by given and family names, strongest first
    (phonetic: Soundex or Metaphone codes agree)."""
    sim = _jw(x, y, score_cutoff=0.88)
    if sim >= 0.94:
        return "jw94"
    if _osa(x, y, score_cutoff=1) <= 1:
        return "edit1"
    if sim >= 0.88:
        return "jw88"
    if (sdx_x and sdx_x == sdx_y) or (mph_x and mph_x == mph_y):
        return "phonetic"
    return DISAGREE


def compare_family(a: Prepared, b: Prepared) -> str:
    x, y = a.family, b.family
    if not x or not y:
        return MISSING
    if x == y:
        return EXACT
    if not a.family_all.isdisjoint(b.family_all):
        return "part"
    if not a.family_all.isdisjoint(b.formers) or not b.family_all.isdisjoint(a.formers):
        return "former"
    return _fuzzy(x, y, a.family_sdx, a.family_mph, b.family_sdx, b.family_mph)


def _one_digit(s: str, t: str) -> bool:
    """One digit different, or two adjacent digits transposed (8-character dates)."""
    if s == t:
        return False
    i = 0
    while s[i] == t[i]:
        i += 1
    if s[i + 1:] == t[i + 1:]:
        return True  # only position i differs
    j = i + 1
    return j < 8 and s[i] == t[j] and s[j] == t[i] and s[j + 1:] == t[j + 1:]


def compare_dob(a: Prepared, b: Prepared) -> str:
    if a.dob_s == b.dob_s:
        return EXACT
    if a.year == b.year and a.day == b.month and a.month == b.day:
        return SWAPPED
    if _one_digit(a.dob_s, b.dob_s):
        return "one_digit"
    if a.year == b.year:
        # An unknown day and month is recorded as 1 January.
        if (a.month == 1 and a.day == 1) or (b.month == 1 and b.day == 1):
            return "jan1"
        if a.month == b.month:
            return "year_month"
    return DISAGREE


def compare_sex(a: Prepared, b: Prepared) -> str:
    if not a.sex or not b.sex:
        return MISSING
    return "agree" if a.sex == b.sex else DISAGREE


def compare_postcode(a: Prepared, b: Prepared) -> str:
    if not a.postcode or not b.postcode:
        return MISSING
    if a.postcode == b.postcode:
        return EXACT
    if a.sector and a.sector == b.sector:
        return "sector"
    if a.district and a.district == b.district:
        return "district"
    return DISAGREE


def compare_address_line(a: Prepared, b: Prepared) -> str:
    x, y = a.line1, b.line1
    if not x or not y:
        return MISSING
    if x == y:
        return EXACT
    if _jw(x, y, score_cutoff=0.9) >= 0.9:
        return "jw90"
    return DISAGREE


def identifier_level(x: str, y: str) -> str:
    """An identifier's level: agree, disagree, or missing on either side."""
    if not x or not y:
        return MISSING
    return "agree" if x == y else DISAGREE


def compare_nhs(a: Prepared, b: Prepared) -> str:
    return identifier_level(a.nhs, b.nhs)


def compare_upn(a: Prepared, b: Prepared) -> str:
    return identifier_level(a.upn, b.upn)


def compare_la(a: Prepared, b: Prepared) -> str:
    return identifier_level(a.la, b.la)
