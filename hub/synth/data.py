"""Name and place data for the synthetic population (package data in hub/data).

Everything here is loaded once and cached; the files are small. Weights are
relative frequencies with a realistic skew: a few very common names and a long
tail of rare ones.
"""

from __future__ import annotations

import bisect
import csv
import io
import random
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from functools import lru_cache
from importlib import resources
from typing import Any, Generic, TypeVar

T = TypeVar("T")

#: The day the synthetic world is generated "as of": ages are counted to it and no
#: date of birth is later. Fixed, so that a seed always gives the same output.
DEFAULT_AS_OF = date(2026, 11, 1)


def tree_copy(value: Any) -> Any:
    """A deep copy of JSON-like data (dicts, lists, scalars); much faster than deepcopy."""
    if isinstance(value, dict):
        return {k: tree_copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [tree_copy(v) for v in value]
    return value


def _read_text(name: str) -> str:
    return resources.files("hub").joinpath("data", name).read_text(encoding="utf-8")


def _read_csv(name: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(_read_text(name))))


class Weighted(Generic[T]):
    """Items with relative weights, drawn with a caller's random.Random."""

    __slots__ = ("items", "cum_weights", "total")

    def __init__(self, items: Sequence[T], weights: Sequence[float]) -> None:
        if not items or len(items) != len(weights):
            raise ValueError("need as many weights as items, and at least one item")
        self.items: tuple[T, ...] = tuple(items)
        cum: list[float] = []
        running = 0.0
        for w in weights:
            running += float(w)
            cum.append(running)
        self.cum_weights: tuple[float, ...] = tuple(cum)
        self.total = running

    def pick(self, rng: random.Random) -> T:
        i = bisect.bisect_right(self.cum_weights, rng.random() * self.total)
        return self.items[min(i, len(self.items) - 1)]

    def pick_other(self, rng: random.Random, avoid: T, tries: int = 20) -> T:
        """A draw that differs from `avoid` (when the items allow it)."""
        for _ in range(tries):
            item = self.pick(rng)
            if item != avoid:
                return item
        for item in self.items:
            if item != avoid:
                return item
        return avoid

    def __len__(self) -> int:
        return len(self.items)


@dataclass(frozen=True, slots=True)
class GivenName:
    name: str
    sex: str
    weight: int
    variants: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Area:
    """A town within a local authority, with its postcode districts."""

    la: str
    la_name: str
    town: str
    outward_codes: tuple[str, ...]
    landline_prefix: str
    weight: int


@lru_cache(maxsize=1)
def given_names() -> tuple[GivenName, ...]:
    rows = _read_csv("given_names.csv")
    return tuple(
        GivenName(
            name=r["name"],
            sex=r["sex"],
            weight=int(r["weight"]),
            variants=tuple(v for v in (r.get("variants") or "").split(";") if v),
        )
        for r in rows
    )


@lru_cache(maxsize=4)
def given_picker(sex: str) -> Weighted[str]:
    """Given names for `sex` ("female" or "male"; anything else draws from both)."""
    names = [g for g in given_names() if g.sex == sex] or list(given_names())
    return Weighted([g.name for g in names], [g.weight for g in names])


@lru_cache(maxsize=1)
def nickname_variants() -> dict[str, tuple[str, ...]]:
    """Formal given name -> the variants people and systems use for it."""
    return {g.name: g.variants for g in given_names() if g.variants}


@lru_cache(maxsize=1)
def family_names() -> tuple[tuple[str, int], ...]:
    return tuple((r["name"], int(r["weight"])) for r in _read_csv("family_names.csv"))


@lru_cache(maxsize=1)
def family_picker() -> Weighted[str]:
    rows = family_names()
    return Weighted([n for n, _ in rows], [w for _, w in rows])


@lru_cache(maxsize=1)
def simple_family_picker() -> Weighted[str]:
    """Single-part surnames only (for building double-barrelled names)."""
    rows = [(n, w) for n, w in family_names() if "-" not in n and " " not in n]
    return Weighted([n for n, _ in rows], [w for _, w in rows])


@lru_cache(maxsize=1)
def areas() -> tuple[Area, ...]:
    return tuple(
        Area(
            la=r["la"],
            la_name=r["la_name"],
            town=r["town"],
            outward_codes=tuple(r["outward_codes"].split()),
            landline_prefix=r["landline_prefix"],
            weight=int(r["weight"]),
        )
        for r in _read_csv("local_authorities.csv")
    )


@lru_cache(maxsize=1)
def area_picker() -> Weighted[Area]:
    return Weighted(areas(), [a.weight for a in areas()])


@lru_cache(maxsize=1)
def la_codes() -> tuple[str, ...]:
    seen: dict[str, None] = {}
    for a in areas():
        seen.setdefault(a.la, None)
    return tuple(seen)


@lru_cache(maxsize=16)
def area_picker_for(la: str) -> Weighted[Area]:
    mine = [a for a in areas() if a.la == la]
    if not mine:
        raise ValueError(f"unknown local authority {la!r}")
    return Weighted(mine, [a.weight for a in mine])


@lru_cache(maxsize=1)
def street_stems() -> tuple[str, ...]:
    lines = (line.strip() for line in _read_text("street_names.txt").splitlines())
    return tuple(line for line in lines if line and not line.startswith("#"))
