"""Normal forms of names, dates and postcodes for matching.

Everything here is pure and cached: the same few hundred thousand names recur
across millions of records, so each raw string is normalised once per process.

Name forms:

* ``normalise_name("  O'Brien-Smyth ")`` -> ``"obrien smyth"``: accents stripped,
  case folded, apostrophes and full stops dropped (O'Brien = OBrien), hyphens and
  other punctuation turned into spaces, spaces collapsed.
* ``name_key`` is that without spaces (``"obriensmyth"``): the form compared for
  exact agreement and Jaro-Winkler similarity, so "Smith-Jones", "Smith Jones"
  and "SMITH JONES" agree exactly.
* ``name_parts`` splits on the spaces: the parts of a double-barrelled or
  hyphenated surname (``("obrien", "smyth")``), without particles ("de", "van",
  "al") and single letters, which would make unrelated names agree.
"""

from __future__ import annotations

import csv
import re
import unicodedata
from collections.abc import Iterable
from contextlib import suppress
from datetime import date, datetime, timedelta
from functools import lru_cache
from importlib import resources
from typing import Any

import jellyfish

# Letters that NFKD does not decompose into a base letter plus accents.
_SPECIAL = str.maketrans(
    {
        "ø": "o", "Ø": "o", "æ": "ae", "Æ": "ae", "œ": "oe", "Œ": "oe", "ß": "ss",
        "đ": "d", "Đ": "d", "ð": "d", "Ð": "d", "þ": "th", "Þ": "th", "ł": "l",
        "Ł": "l", "ı": "i", "ħ": "h", "ŋ": "n",
    }
)
# Dropped without a gap: O'Brien -> obrien, St. -> st
_JOINERS = re.compile(r"[\u0027\u2018\u2019\u02bc\u0060\u00b4.]")
# Anything else that is not a letter or digit separates words (hyphens included).
_SEPARATORS = re.compile(r"[^\w]+|_+")

PARTICLES = frozenset(
    {
        "al", "el", "ul", "bin", "bint", "ben", "ibn", "abu", "da", "de", "del", "della",
        "der", "den", "di", "do", "dos", "du", "la", "le", "lo", "mac", "mc", "st",
        "ste", "van", "von", "ter", "ten", "y", "o", "ap", "ni", "nic", "ui",
    }
)

# Given "names" that record that the name is not known.
PLACEHOLDER_NAMES = frozenset(
    {
        "baby", "babyboy", "babygirl", "boy", "girl", "infant", "unknown", "unnamed",
        "notknown", "nk", "na", "nfa", "tbc", "tba", "none", "null", "xxx", "x",
        "twin1", "twin2", "twina", "twinb", "babyof",
    }
)


@lru_cache(maxsize=200_000)
def normalise_name(raw: str | None) -> str:
    """Accent-free, case-folded name with words separated by single spaces ('' if none)."""
    if not raw:
        return ""
    if raw.isascii():  # most names: nothing to decompose, strip or map
        text = raw.lower()
    else:
        text = unicodedata.normalize("NFKD", raw.translate(_SPECIAL))
        text = "".join(ch for ch in text if not unicodedata.combining(ch))
        text = text.casefold().translate(_SPECIAL)
    text = _JOINERS.sub("", text)
    return " ".join(_SEPARATORS.sub(" ", text).split())


@lru_cache(maxsize=200_000)
def name_key(raw: str | None) -> str:
    """The compact form compared for agreement: normalised, without spaces.

    Placeholder names ("Baby", "Unknown") give '' so they count as missing.
    """
    key = normalise_name(raw).replace(" ", "")
    return "" if key in PLACEHOLDER_NAMES else key


@lru_cache(maxsize=200_000)
def name_parts(raw: str | None) -> tuple[str, ...]:
    """The meaningful words of a name: hyphenated or double-barrelled parts."""
    parts = []
    for word in normalise_name(raw).split():
        if len(word) > 1 and word not in PARTICLES and word not in parts:
            parts.append(word)
    return tuple(parts)


@lru_cache(maxsize=200_000)
def soundex(key: str) -> str:
    """Soundex of a compact name key; '' when it has no Latin letters to code."""
    if not key or not key.isascii() or not key[0].isalpha():
        return ""
    letters = "".join(ch for ch in key if ch.isalpha())
    return jellyfish.soundex(letters) if letters else ""


@lru_cache(maxsize=200_000)
def metaphone(key: str) -> str:
    """Metaphone of a compact name key; '' when it has no Latin letters to code."""
    if not key or not key.isascii():
        return ""
    letters = "".join(ch for ch in key if ch.isalpha())
    return jellyfish.metaphone(letters) if letters else ""


# --- postcodes --------------------------------------------------------------

_POSTCODE = re.compile(r"^[A-Z]{1,2}[0-9][A-Z0-9]?[0-9][A-Z]{2}$")


# What is not a letter or digit (re's \w is exactly str.isalnum() plus "_").
_NOT_ALNUM = re.compile(r"[\W_]+")


#: The NHS's pseudo-postcodes (ZZ99 3VZ no fixed abode, ZZ99 3WZ address not known,
#: ZZ99 3CZ England not otherwise specified, ...) name no place: thousands of
#: children share each, so agreeing on one says nothing of who a child is, and a
#: shielded child's would put every other child "in her postcode" (rule 6).
PSEUDO_POSTCODE = "ZZ99"


@lru_cache(maxsize=100_000)
def normalise_postcode(raw: str | None) -> str:
    """Upper case without spaces ('' if none, or a pseudo-postcode): 'ls4 2ab' ->
    'LS42AB'."""
    if not raw:
        return ""
    pc = _NOT_ALNUM.sub("", raw.upper())
    return "" if pc.startswith(PSEUDO_POSTCODE) else pc


@lru_cache(maxsize=100_000)
def postcode_parts(raw: str | None) -> tuple[str, str, str]:
    """(postcode, sector, district), e.g. ('LS42AB', 'LS42', 'LS4').

    Sector is the outward code plus the first digit of the inward code; district
    is the outward code. Sector and district are '' for a string that is not a
    well-formed UK postcode (it can then only agree exactly).
    """
    pc = normalise_postcode(raw)
    if not _POSTCODE.match(pc):
        return pc, "", ""
    outward = pc[:-3]
    return pc, outward + pc[-3], outward


# --- address lines ----------------------------------------------------------

_STREET_WORDS = {
    "rd": "road", "ave": "avenue", "av": "avenue", "ln": "lane", "dr": "drive",
    "cl": "close", "ct": "court", "cres": "crescent", "cresc": "crescent", "gdns": "gardens",
    "gdn": "garden", "pl": "place", "sq": "square", "tce": "terrace", "terr": "terrace",
    "gr": "grove", "gro": "grove", "pk": "park", "hse": "house", "wy": "way", "mws": "mews",
}


@lru_cache(maxsize=200_000)
def normalise_address_line(raw: str | None) -> str:
    """A first address line in a comparable form: '8, Stanley Rd.' -> '8 stanley road'.

    Common street-type abbreviations are expanded; "St" is read as "street" only
    as the last word (elsewhere it is usually "Saint").
    """
    words = normalise_name(raw).split()
    if not words:
        return ""
    out = [_STREET_WORDS.get(w, w) for w in words]
    if out[-1] == "st" and len(out) > 1:
        out[-1] = "street"
    return " ".join(out)


def first_line(address: Any) -> str:
    if not isinstance(address, dict):
        return ""
    lines = address.get("lines") or []
    for line in lines:
        if isinstance(line, str) and line.strip():
            return normalise_address_line(line)
    return ""


# --- dates ------------------------------------------------------------------


def parse_date(value: Any) -> date:
    """A date of birth from 'YYYY-MM-DD' or a date (a datetime counts as its date)."""
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    if isinstance(value, str):
        return _parse_iso(value.strip())
    raise ValueError(f"not a date of birth: {value!r}")


@lru_cache(maxsize=50_000)
def _parse_iso(text: str) -> date:
    try:
        return date.fromisoformat(text[:10])
    except ValueError:
        raise ValueError(f"not a date of birth: {text!r}") from None


def swapped_date(dob: date) -> date | None:
    """The date with day and month swapped, when that is another valid date."""
    if dob.day == dob.month or dob.day > 12:
        return None
    try:
        return dob.replace(month=dob.day, day=dob.month)
    except ValueError:  # pragma: no cover - day <= 12 always fits
        return None


# --- nickname / variant groups ----------------------------------------------


def _parse_groups(rows: Iterable[list[str]]) -> dict[str, frozenset[int]]:
    groups: dict[str, set[int]] = {}
    gid = 0
    for row in rows:
        if not row or row[0].lstrip().startswith("#"):
            continue
        keys = {name_key(name) for name in row}
        keys.discard("")
        if len(keys) < 2:
            continue
        gid += 1
        for key in keys:
            groups.setdefault(key, set()).add(gid)
    return {k: frozenset(v) for k, v in groups.items()}


@lru_cache(maxsize=1)
def variant_groups() -> dict[str, frozenset[int]]:
    """Name key -> ids of the variant groups it belongs to (from data/nicknames.csv)."""
    text = resources.files("hub.match").joinpath("data/nicknames.csv").read_text("utf-8")
    return _parse_groups(csv.reader(text.splitlines()))


_NO_GROUPS: frozenset[int] = frozenset()


def groups_of(key: str) -> frozenset[int]:
    return variant_groups().get(key, _NO_GROUPS)


def are_variants(a: str | None, b: str | None) -> bool:
    """True when two given names share a variant group (Bill and William)."""
    ka, kb = name_key(a), name_key(b)
    return bool(ka and kb and not groups_of(ka).isdisjoint(groups_of(kb)))


@lru_cache(maxsize=20_000)
def date_slips(dob_s: str) -> frozenset[str]:
    """Dates (YYYYMMDD) one slip of a clerk's from this one that a single mistyped
    digit does not reach: a day or a month either side (the 9th typed as the 10th,
    September as October), and the two digits of the day, or of the month,
    transposed (the 12th as the 21st)."""
    try:
        day = date(int(dob_s[:4]), int(dob_s[4:6]), int(dob_s[6:8]))
        out = {(day + timedelta(days=d)).strftime("%Y%m%d") for d in (-1, 1)}
    except (ValueError, OverflowError):
        return frozenset()
    for m in (day.month - 1, day.month + 1):
        if 1 <= m <= 12:
            with suppress(ValueError):
                out.add(day.replace(month=m).strftime("%Y%m%d"))
    for i in (4, 6):  # the month's digits, the day's
        swapped = dob_s[:i] + dob_s[i + 1] + dob_s[i] + dob_s[i + 2:]
        try:
            date(int(swapped[:4]), int(swapped[4:6]), int(swapped[6:8]))
        except ValueError:
            continue
        out.add(swapped)
    out.discard(dob_s)
    return frozenset(out)
