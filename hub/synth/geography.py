"""Invented addresses, postcodes, phone numbers, schools and GP practices.

Postcodes use real-looking outward codes of each local authority with invented
inward codes. Phone numbers come from Ofcom's ranges reserved for drama
(07700 900000-900999 for mobiles, 0113 496 0xxx, 01632 960xxx etc. for
landlines), so none of them can ring anyone. `landline_prefix` in
local_authorities.csv stops just before the last three digits.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

from hub.synth.data import Area, area_picker, area_picker_for, la_codes, street_stems

INWARD_LETTERS = "ABDEFGHJLNPQRSTUWXYZ"
STREET_SUFFIXES = (
    ("Road", 30),
    ("Street", 25),
    ("Avenue", 10),
    ("Lane", 8),
    ("Close", 8),
    ("Drive", 6),
    ("Grove", 5),
    ("Crescent", 4),
    ("Terrace", 4),
    ("Way", 4),
    ("Gardens", 3),
    ("Place", 3),
    ("Court", 2),
    ("Mews", 1),
    ("Walk", 1),
)
_SUFFIX_NAMES = tuple(s for s, _ in STREET_SUFFIXES)
_SUFFIX_WEIGHTS = tuple(w for _, w in STREET_SUFFIXES)


def pick_area(rng: random.Random, la: str | None = None) -> Area:
    return (area_picker_for(la) if la else area_picker()).pick(rng)


def other_la(rng: random.Random, la: str) -> str:
    """A local authority other than `la`, weighted by size."""
    for _ in range(50):
        area = area_picker().pick(rng)
        if area.la != la:
            return area.la
    return next(code for code in la_codes() if code != la)


def postcode(rng: random.Random, area: Area) -> str:
    outward = rng.choice(area.outward_codes)
    inward = f"{rng.randint(1, 9)}{rng.choice(INWARD_LETTERS)}{rng.choice(INWARD_LETTERS)}"
    return f"{outward} {inward}"


def street(rng: random.Random) -> str:
    suffix = rng.choices(_SUFFIX_NAMES, weights=_SUFFIX_WEIGHTS)[0]
    return f"{rng.choice(street_stems())} {suffix}"


def address(rng: random.Random, la: str | None = None) -> dict[str, Any]:
    """A canonical address dict in `la` (or anywhere, weighted by size)."""
    area = pick_area(rng, la)
    roll = rng.random()
    if roll < 0.12:
        lines = [f"Flat {rng.randint(1, 24)}", f"{rng.randint(1, 120)} {street(rng)}"]
    elif roll < 0.16:
        lines = [f"{rng.choice(street_stems())} House", street(rng)]
    else:
        lines = [f"{rng.randint(1, 180)} {street(rng)}"]
    return {"lines": lines, "town": area.town, "postcode": postcode(rng, area), "la": area.la}


def mobile(rng: random.Random) -> str:
    return f"07700 900{rng.randint(0, 999):03d}"


def landline(rng: random.Random, area: Area) -> str:
    return f"{area.landline_prefix}{rng.randint(0, 999):03d}"


def landline_for_la(rng: random.Random, la: str) -> str:
    return landline(rng, pick_area(rng, la))


@dataclass(frozen=True, slots=True)
class School:
    urn: str
    name: str
    la: str
    estab: int  # four-digit DfE establishment number (used in UPNs)
    phase: str  # "primary" or "secondary"

    def canonical(self) -> dict[str, Any]:
        return {"urn": self.urn, "name": self.name}


@dataclass(frozen=True, slots=True)
class GpPractice:
    ods_code: str
    name: str
    la: str

    def canonical(self) -> dict[str, Any]:
        return {"ods_code": self.ods_code, "name": self.name}


_PRIMARY = (
    "Primary School",
    "Primary Academy",
    "Church of England Primary School",
    "Catholic Primary School",
    "Junior and Infant School",
    "Community Primary School",
)
_SECONDARY = (
    "High School",
    "Academy",
    "School",
    "Community College",
    "Grammar School",
    "Catholic High School",
)
_GP = (
    "Medical Centre",
    "Surgery",
    "Health Centre",
    "Medical Practice",
    "Family Practice",
    "Group Practice",
)
# Invented ODS-style prefixes (letter + two digits) per local authority.
_ODS_LETTER = "BMNPYCDEFGHJKL"


class Directory:
    """Schools and GP practices of every local authority, made once per population."""

    def __init__(self, rng: random.Random, children_per_la: dict[str, int]) -> None:
        self.schools: dict[str, dict[str, list[School]]] = {}
        self.gp_practices: dict[str, list[GpPractice]] = {}
        used_urns: set[int] = set()
        used_ods: set[str] = set()
        used_estab: set[tuple[str, int]] = set()
        for idx, la in enumerate(la_codes()):
            kids = max(children_per_la.get(la, 0), 1)
            n_primary = max(3, min(400, kids // 150))
            n_secondary = max(2, min(120, kids // 700))
            n_gp = max(3, min(300, kids // 250))
            self.schools[la] = {
                "primary": [
                    self._school(rng, la, "primary", used_urns, used_estab)
                    for _ in range(n_primary)
                ],
                "secondary": [
                    self._school(rng, la, "secondary", used_urns, used_estab)
                    for _ in range(n_secondary)
                ],
            }
            letter = _ODS_LETTER[idx % len(_ODS_LETTER)]
            self.gp_practices[la] = [self._gp(rng, la, letter, used_ods) for _ in range(n_gp)]

    @staticmethod
    def _school(
        rng: random.Random,
        la: str,
        phase: str,
        used_urns: set[int],
        used_estab: set[tuple[str, int]],
    ) -> School:
        while True:
            urn = rng.randint(100000, 149999)
            if urn not in used_urns:
                used_urns.add(urn)
                break
        while True:
            estab = rng.randint(2000, 4999) if phase == "primary" else rng.randint(4000, 6999)
            if (la, estab) not in used_estab:
                used_estab.add((la, estab))
                break
        stem = rng.choice(street_stems())
        kind = rng.choice(_PRIMARY if phase == "primary" else _SECONDARY)
        return School(urn=str(urn), name=f"{stem} {kind}", la=la, estab=estab, phase=phase)

    @staticmethod
    def _gp(rng: random.Random, la: str, letter: str, used: set[str]) -> GpPractice:
        while True:
            code = f"{letter}{rng.randint(10, 99)}{rng.randint(0, 999):03d}"
            if code not in used:
                used.add(code)
                break
        name = f"{rng.choice(street_stems())} {rng.choice(_GP)}"
        return GpPractice(ods_code=code, name=name, la=la)

    def school(self, rng: random.Random, la: str, phase: str) -> School:
        return rng.choice(self.schools[la][phase])

    def gp_practice(self, rng: random.Random, la: str) -> GpPractice:
        return rng.choice(self.gp_practices[la])
