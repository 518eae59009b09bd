"""Blocking keys: which stored records an update is scored against.

A stored record is indexed under a few short keys (``index_keys``); an update
looks up a few more (``query_keys``); the candidates are the records sharing at
least one key. Keys:

    n:<nhs number>
    u:<unique pupil number>
    d:<YYYY-MM-DD>                  date of birth
    s:<soundex(surname)>:<year>     the family name, each part of a hyphenated or
                                    double-barrelled one, and each former family name
    g:<soundex(given)>:<year>       the given name (finds the child after a change
                                    of surname, or with a typo in the surname)
    m:<soundex(surname)>:<MMDD>     birthday without the year (a wrong digit in the
                                    year, with a move, still finds the child)
    p:<postcode>:<given initial>

A typical record has 6-8 keys. The update additionally looks up its day/month
swapped date of birth and the keys it would have with given and family names
transposed. Recall argument (tested in tests/unit/test_match_blocking.py): any
one of the corruptions that occur in practice (a typo in a name, day and month
swapped, names transposed, a nickname, one part of a double-barrelled surname,
a change of surname with the former one recorded, a move) leaves either the date
of birth or its swap intact, and those are keys; with the day or month also
mistyped, the surname or the given name and the year still find the record; with
the year mistyped, the surname and the birthday do.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from hub.match.compare import Prepared, prepared
from hub.match.normalise import soundex, swapped_date


def _code(key: str) -> str:
    # Soundex, or for names with no Latin letters the name itself.
    return soundex(key) or "=" + key[:12]


def _keys(p: Prepared) -> set[str]:
    year = p.year
    keys = {f"d:{p.dob.isoformat()}"}
    if p.nhs:
        keys.add(f"n:{p.nhs}")
    if p.upn:
        keys.add(f"u:{p.upn}")
    for name in p.family_all | p.formers:
        keys.add(f"s:{_code(name)}:{year}")
    if p.family:
        keys.add(f"m:{_code(p.family)}:{p.dob_s[4:]}")
    if p.given:
        keys.add(f"g:{_code(p.given)}:{year}")
        if p.postcode:
            keys.add(f"p:{p.postcode}:{p.given[0]}")
    return keys


def index_keys(child: Mapping[str, Any] | Prepared) -> set[str]:
    """The keys a stored record is indexed under."""
    return _keys(prepared(child))


def query_keys(child: Mapping[str, Any] | Prepared) -> set[str]:
    """The keys an incoming update looks up (a superset of its own index keys)."""
    p = prepared(child)
    keys = _keys(p)
    swapped = swapped_date(p.dob)
    if swapped is not None:
        keys.add(f"d:{swapped.isoformat()}")
    # Given and family names transposed.
    year = p.year
    if p.given:
        keys.add(f"s:{_code(p.given)}:{year}")
        keys.add(f"m:{_code(p.given)}:{p.dob_s[4:]}")
    if p.family:
        keys.add(f"g:{_code(p.family)}:{year}")
        if p.postcode:
            keys.add(f"p:{p.postcode}:{p.family[0]}")
    return keys
