"""Named corruptions of a canonical `child` dict: the errors and changes sources make.

`corrupt(child, kind, rng)` returns a new dict (the input is never modified).
A kind that cannot apply to a child (a day/month swap when the day is over 12,
a hyphen_part without a hyphenated name, ...) raises `NotApplicable`; use
`applicable(child, kind)` or `applicable_kinds(child)` to choose first. Every
corruption keeps the record valid under the canonical schema.
"""

from __future__ import annotations

import random
import string
from collections.abc import Callable
from datetime import date
from functools import lru_cache
from typing import Any

from hub.synth import geography
from hub.synth.data import DEFAULT_AS_OF, family_picker, nickname_variants, tree_copy

KINDS: tuple[str, ...] = (
    "typo",
    "nickname",
    "names_swapped",
    "dob_day_month_swapped",
    "dob_digit",
    "hyphen_part",
    "missing_nhs",
    "missing_given",
    "missing_family",
    "moved",
    "family_name_change",
    "missing_sex",
)

#: Relative frequency of each kind in generated feeds.
KIND_WEIGHTS: dict[str, int] = {
    "typo": 25,
    "nickname": 12,
    "names_swapped": 5,
    "dob_day_month_swapped": 8,
    "dob_digit": 6,
    "hyphen_part": 10,
    "missing_nhs": 8,
    "missing_given": 3,
    "missing_family": 3,
    "moved": 12,
    "family_name_change": 5,
    "missing_sex": 6,
}


class NotApplicable(ValueError):
    """The corruption cannot apply to this child."""


_KEYBOARD_ROWS = ("qwertyuiop", "asdfghjkl", "zxcvbnm")
_NEIGHBOURS: dict[str, str] = {}
for _r, _row in enumerate(_KEYBOARD_ROWS):
    for _i, _ch in enumerate(_row):
        near = _row[max(0, _i - 1) : _i] + _row[_i + 1 : _i + 2]
        for _other in (_r - 1, _r + 1):
            if 0 <= _other < len(_KEYBOARD_ROWS):
                near += _KEYBOARD_ROWS[_other][max(0, _i - 1) : _i + 1]
        _NEIGHBOURS[_ch] = near


def _parse(dob: str) -> date | None:
    try:
        return date.fromisoformat(dob)
    except (TypeError, ValueError):
        return None


def _name_fields(child: dict[str, Any]) -> list[str]:
    return [f for f in ("given_name", "family_name") if child.get(f)]


def applicable(child: dict[str, Any], kind: str, as_of: date = DEFAULT_AS_OF) -> bool:
    if kind not in _APPLY:
        raise KeyError(f"unknown corruption {kind!r}")
    given, family = child.get("given_name"), child.get("family_name")
    dob = _parse(child.get("date_of_birth") or "")
    if kind == "typo":
        return any(len(child[f]) >= 3 for f in _name_fields(child))
    if kind == "nickname":
        return bool(given) and given in nickname_variants()
    if kind == "names_swapped":
        return bool(given) and bool(family) and given != family
    if kind == "dob_day_month_swapped":
        return (
            dob is not None
            and dob.day <= 12
            and dob.day != dob.month
            and (date(dob.year, dob.day, dob.month) <= as_of)
        )
    if kind == "dob_digit":
        return dob is not None and bool(_dob_digit_candidates(dob, as_of))
    if kind == "hyphen_part":
        return isinstance(family, str) and "-" in family.strip("-")
    if kind == "missing_nhs":
        return bool(child.get("nhs_number"))
    if kind == "missing_given":
        return bool(given) and bool(family)
    if kind == "missing_family":
        return bool(given) and bool(family)
    if kind == "moved":
        return True
    if kind == "family_name_change":
        return bool(family)
    if kind == "missing_sex":
        return child.get("sex") is not None
    return False


def applicable_kinds(child: dict[str, Any], as_of: date = DEFAULT_AS_OF) -> list[str]:
    return [k for k in KINDS if applicable(child, k, as_of)]


def corrupt(
    child: dict[str, Any], kind: str, rng: random.Random, *, as_of: date = DEFAULT_AS_OF
) -> dict[str, Any]:
    """A copy of `child` with the corruption `kind` applied."""
    if not applicable(child, kind, as_of):
        raise NotApplicable(f"{kind} does not apply to this child")
    out = tree_copy(child)
    _APPLY[kind](out, rng, as_of)
    return out


# -- the corruptions ---------------------------------------------------------


def _typo(child: dict[str, Any], rng: random.Random, as_of: date) -> None:
    fields = [f for f in _name_fields(child) if len(child[f]) >= 3]
    field = rng.choice(fields)
    name: str = child[field]
    for _ in range(50):
        new = _one_typo(name, rng)
        if new != name and new.strip():
            child[field] = new
            return
    child[field] = name[:-1]  # fall back: drop the last letter


def _one_typo(name: str, rng: random.Random) -> str:
    letters = [i for i, c in enumerate(name) if c.isalpha()]
    op = rng.choice(("substitute", "transpose", "delete"))
    i = rng.choice(letters)
    if op == "transpose":
        if i + 1 >= len(name) or not name[i + 1].isalpha():
            i = max(0, i - 1)
        if i + 1 < len(name):
            swapped = name[i + 1] + name[i]
            if i == 0:
                swapped = swapped[0].upper() + swapped[1].lower()
            return name[:i] + swapped + name[i + 2 :]
        return name
    if op == "delete" and len(name) > 3:
        new = name[:i] + name[i + 1 :]
        return new[0].upper() + new[1:] if new else name
    ch = name[i]
    choices = _NEIGHBOURS.get(ch.lower()) or string.ascii_lowercase
    repl = rng.choice(choices)
    repl = repl.upper() if ch.isupper() else repl
    return name[:i] + repl + name[i + 1 :]


def _nickname(child: dict[str, Any], rng: random.Random, as_of: date) -> None:
    child["given_name"] = rng.choice(nickname_variants()[child["given_name"]])


def _names_swapped(child: dict[str, Any], rng: random.Random, as_of: date) -> None:
    child["given_name"], child["family_name"] = child["family_name"], child["given_name"]


def _dob_day_month_swapped(child: dict[str, Any], rng: random.Random, as_of: date) -> None:
    dob = date.fromisoformat(child["date_of_birth"])
    child["date_of_birth"] = date(dob.year, dob.day, dob.month).isoformat()


@lru_cache(maxsize=65536)
def _dob_digit_candidates(dob: date, as_of: date) -> tuple[str, ...]:
    text = dob.isoformat()
    out: list[str] = []
    for pos in (2, 3, 5, 6, 8, 9):  # decade, year, month and day digits
        for digit in "0123456789":
            if digit == text[pos]:
                continue
            cand = text[:pos] + digit + text[pos + 1 :]
            parsed = _parse(cand)
            if parsed is not None and parsed <= as_of and as_of.year - parsed.year <= 25:
                out.append(cand)
    return tuple(out)


def _dob_digit(child: dict[str, Any], rng: random.Random, as_of: date) -> None:
    dob = date.fromisoformat(child["date_of_birth"])
    child["date_of_birth"] = rng.choice(_dob_digit_candidates(dob, as_of))


def _hyphen_part(child: dict[str, Any], rng: random.Random, as_of: date) -> None:
    parts = [p for p in child["family_name"].split("-") if p]
    child["family_name"] = rng.choice(parts)


def _missing_nhs(child: dict[str, Any], rng: random.Random, as_of: date) -> None:
    child["nhs_number"] = None


def _missing_given(child: dict[str, Any], rng: random.Random, as_of: date) -> None:
    child["given_name"] = None


def _missing_family(child: dict[str, Any], rng: random.Random, as_of: date) -> None:
    child["family_name"] = None


def _moved(child: dict[str, Any], rng: random.Random, as_of: date) -> None:
    old = child.get("address") or {}
    old_la = old.get("la")
    if old_la and rng.random() < 0.65:
        la = old_la
    else:
        la = geography.other_la(rng, old_la) if old_la else None
    new = geography.address(rng, la)
    while new.get("postcode") == old.get("postcode"):
        new = geography.address(rng, la)
    child["address"] = new


def _family_name_change(child: dict[str, Any], rng: random.Random, as_of: date) -> None:
    old = child["family_name"]
    child["family_name"] = family_picker().pick_other(rng, old)
    former = [n for n in (child.get("former_family_names") or []) if n != old]
    child["former_family_names"] = [old, *former]


def _missing_sex(child: dict[str, Any], rng: random.Random, as_of: date) -> None:
    child["sex"] = None


_APPLY: dict[str, Callable[[dict[str, Any], random.Random, date], None]] = {
    "typo": _typo,
    "nickname": _nickname,
    "names_swapped": _names_swapped,
    "dob_day_month_swapped": _dob_day_month_swapped,
    "dob_digit": _dob_digit,
    "hyphen_part": _hyphen_part,
    "missing_nhs": _missing_nhs,
    "missing_given": _missing_given,
    "missing_family": _missing_family,
    "moved": _moved,
    "family_name_change": _family_name_change,
    "missing_sex": _missing_sex,
}
