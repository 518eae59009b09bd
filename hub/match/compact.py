"""A stored record's Prepared form as one short string (column children.prepared).

Normalising a record (names, postcode, address line) costs far more than scoring
a pair, and a candidate query returns thousands of records a batch. The writer
prepares a record once, when it changes; readers rebuild the Prepared form from
this string with a split and a few constructors.

The string begins with a tag that changes whenever the normalisation or the
blocking keys could come out otherwise (FORM_VERSION, or the nickname table;
hub.db.prepared then renews forms and keys), and the record version it was made
from. A form of another tag or version is never used (a writer that
changed the record without writing its form, an upgrade): `decode` returns None
and the caller prepares the record itself.
"""

from __future__ import annotations

import zlib
from functools import lru_cache
from importlib import resources

from hub.match.compare import Prepared

_SEP = "\x1f"  # between fields
_SET = "\x1e"  # between members of a set


# Bump when prepare(), this form or the blocking keys give other output for any
# record: every stored form and key is then renewed by `hub setup`. A test
# (tests/unit/test_form_version.py) fails when their output on a fixed sample
# changes while this stays the same. (It was a checksum of the source files, which
# renewed a national index for an edited comment.)
FORM_VERSION = "p11"


def _tag() -> str:
    nick = resources.files("hub.match").joinpath("data/nicknames.csv").read_bytes()
    return f"{FORM_VERSION}.{zlib.crc32(nick):08x}"


TAG = _tag()
_PARTS = 21


def encode(p: Prepared, version: int) -> str | None:
    """The stored form of version `version` of a record, or None when a value would
    not survive the separators."""
    parts = [
        TAG, str(version),
        p.given, p.given_sdx, p.given_mph,
        _SET.join(str(g) for g in sorted(p.given_groups)),
        _SET.join(sorted(p.given_others)),
        p.family, _SET.join(sorted(p.family_all)), p.family_sdx, p.family_mph,
        _SET.join(sorted(p.formers)),
        p.dob_s, p.sex, p.postcode, p.sector, p.district, p.line1, p.nhs, p.upn, p.la,
    ]
    text = _SEP.join(parts)
    if text.count(_SEP) != len(parts) - 1 or any(_SEP in s or _SET in s for s in (
        *p.given_others, *p.family_all, *p.formers
    )):
        return None
    return text


_EMPTY: frozenset[str] = frozenset()


# The sets and dates of birth that forms hold recur (a surname's parts, a name's
# variant groups, a birthday): each is made once and shared (frozensets and tuples
# cannot change), not made again for every candidate a batch decodes.
@lru_cache(maxsize=100_000)
def _set(text: str) -> frozenset[str]:
    return frozenset(text.split(_SET)) if text else _EMPTY


@lru_cache(maxsize=20_000)
def _groups(text: str) -> frozenset[int]:
    return frozenset(map(int, text.split(_SET))) if text else frozenset()


@lru_cache(maxsize=20_000)
def _date(s: str) -> tuple[int, int, int]:
    return int(s[:4]), int(s[4:6]), int(s[6:])


def decode(text: str | None, version: int) -> Prepared | None:
    """The Prepared form of version `version` of a record, or None when absent, made
    from another version or by other normalisation code."""
    if not text or not text.startswith(TAG):
        return None
    f = text.split(_SEP)
    if len(f) != _PARTS or f[1] != str(version):
        return None
    p = Prepared()
    p.given, p.given_sdx, p.given_mph = f[2], f[3], f[4]
    p.given_groups, p.given_others = _groups(f[5]), _set(f[6])
    p.family, p.family_all, p.family_sdx, p.family_mph = f[7], _set(f[8]), f[9], f[10]
    p.formers = _set(f[11])
    p.dob_s = f[12]
    p.year, p.month, p.day = _date(f[12])
    p.sex, p.postcode, p.sector, p.district, p._line1 = f[13], f[14], f[15], f[16], f[17]
    p.nhs, p.upn, p.la = f[18], f[19], f[20]
    return p


def identifiers(text: str, version: int) -> tuple[str, str] | None:
    """(NHS number, date of birth as YYYYMMDD) of a stored form without decoding the
    rest (an NHS number tie needs no more), or None as `decode` would give None."""
    f = text.split(_SEP)
    if len(f) != _PARTS or f[0] != TAG or f[1] != str(version):
        return None
    return f[18], f[12]
