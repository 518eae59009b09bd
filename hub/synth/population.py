"""A seeded synthetic population of children living in families.

Pure: no database, no broker, no clock (ages are relative to `as_of`, which is
fixed by default so the same seed always gives the same people). Every person
has a stable `person_id`, the ground truth a matcher is judged against.
"""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from hub.nhs import check_digit
from hub.synth import geography
from hub.synth.data import (
    DEFAULT_AS_OF,
    areas,
    family_picker,
    given_picker,
    simple_family_picker,
    tree_copy,
)
from hub.synth.geography import Directory

MAX_AGE_DAYS = 18 * 365  # children are 0-17 on `as_of`
UPN_LETTERS = "ABCDEFGHJKLMNPQRTUVWXYZ"
CHILDREN_PER_FAMILY = ((1, 40), (2, 37), (3, 16), (4, 7))


@dataclass(slots=True)
class Family:
    family_id: str
    family_name: str
    address: dict[str, Any]
    carers: list[dict[str, Any]]
    gp_practice: dict[str, Any]
    child_ids: list[str] = field(default_factory=list)
    shielded: bool = False
    #: Where a shielded family went (a refuge): new address, often in another LA,
    #: and the GP practice they registered with there. None unless shielded.
    refuge_address: dict[str, Any] | None = None
    refuge_gp_practice: dict[str, Any] | None = None

    @property
    def la(self) -> str:
        return str(self.address["la"])


@dataclass(slots=True)
class Person:
    person_id: str
    family_id: str
    given_name: str
    middle_names: str | None
    family_name: str
    former_family_names: list[str]
    date_of_birth: date
    sex: str
    nhs_number: str
    upn: str | None
    #: The record id in the local authority's own system (None for new births,
    #: which the local authority does not know about yet).
    la_record_id: str | None
    address: dict[str, Any]
    carers: list[dict[str, Any]]
    education_setting: dict[str, Any] | None
    gp_practice: dict[str, Any] | None
    services: list[dict[str, Any]]
    shielded: bool = False
    shielding_authority: str | None = None
    newborn: bool = False
    twin_of: str | None = None

    @property
    def la(self) -> str:
        return str(self.address["la"])

    def age(self, as_of: date) -> int:
        dob = self.date_of_birth
        return as_of.year - dob.year - ((as_of.month, as_of.day) < (dob.month, dob.day))

    def to_child(self) -> dict[str, Any]:
        """The full canonical `child` dict (a deep copy: safe to corrupt)."""
        return {
            "nhs_number": self.nhs_number,
            "upn": self.upn,
            "given_name": self.given_name,
            "middle_names": self.middle_names,
            "family_name": self.family_name,
            "former_family_names": list(self.former_family_names),
            "date_of_birth": self.date_of_birth.isoformat(),
            "sex": self.sex,
            "address": tree_copy(self.address),
            "carers": tree_copy(self.carers),
            "education_setting": tree_copy(self.education_setting),
            "gp_practice": tree_copy(self.gp_practice),
            "services": tree_copy(self.services),
        }


@dataclass(slots=True)
class Population:
    seed: int
    as_of: date
    #: Children known to the local authorities (the initial load).
    children: list[Person]
    #: Children born since: only the central feeds know them (they become creates).
    births: list[Person]
    families: dict[str, Family]
    directory: Directory
    _index: dict[str, Person] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        self._index = {p.person_id: p for p in self.everyone}

    @property
    def everyone(self) -> list[Person]:
        return self.children + self.births

    @property
    def shielded_children(self) -> list[Person]:
        return [p for p in self.children if p.shielded]

    def person(self, person_id: str) -> Person:
        return self._index[person_id]

    def family_of(self, person: Person) -> Family:
        return self.families[person.family_id]


class _NhsNumbers:
    """Unique NHS numbers starting 999 with valid modulus-11 check digits."""

    CAPACITY = 800_000  # of about 909,000 valid 999 numbers; beyond this draws get slow

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.used: set[str] = set()

    def next(self) -> str:
        if len(self.used) >= self.CAPACITY:
            raise ValueError("too many people for the 999 NHS number test range")
        while True:
            nine = f"999{self.rng.randrange(1_000_000):06d}"
            check = check_digit(nine)
            if check is None:
                continue
            number = f"{nine}{check}"
            if number not in self.used:
                self.used.add(number)
                return number


class _Builder:
    def __init__(self, rng: random.Random, as_of: date, n: int) -> None:
        self.rng = rng
        self.as_of = as_of
        total_weight = sum(a.weight for a in areas())
        per_la: Counter[str] = Counter()
        for a in areas():
            per_la[a.la] += round(n * a.weight / total_weight)
        self.directory = Directory(rng, dict(per_la))
        self.nhs = _NhsNumbers(rng)
        self.families: dict[str, Family] = {}
        self.upn_serial: Counter[tuple[str, int, int]] = Counter()
        self.la_serial: Counter[str] = Counter()
        self.person_count = 0
        self.people: dict[str, Person] = {}
        self.by_urn: dict[str, geography.School] = {
            s.urn: s
            for phases in self.directory.schools.values()
            for schools in phases.values()
            for s in schools
        }

    # -- families -------------------------------------------------------------

    def family(self) -> Family:
        rng = self.rng
        fid = f"F{len(self.families) + 1:06d}"
        address = geography.address(rng)
        la = str(address["la"])
        surnames = family_picker()
        father_present = rng.random() < 0.72
        father_surname = surnames.pick(rng)
        mother_surname = father_surname if rng.random() < 0.65 else surnames.pick(rng)
        if father_present:
            roll = rng.random()
            if roll < 0.82:
                family_name = father_surname
            elif roll < 0.9 or "-" in father_surname or "-" in mother_surname:
                family_name = mother_surname
            else:
                family_name = self._double_barrel(father_surname, mother_surname)
        else:
            family_name = mother_surname
        carers: list[dict[str, Any]] = []
        relationship = "mother" if rng.random() < 0.96 else "grandmother"
        carers.append(
            {
                "name": f"{given_picker('female').pick(rng)} {mother_surname}",
                "relationship": relationship,
                "phone": geography.mobile(rng),
            }
        )
        if father_present:
            carers.append(
                {
                    "name": f"{given_picker('male').pick(rng)} {father_surname}",
                    "relationship": "father" if rng.random() < 0.93 else "step-father",
                    "phone": geography.mobile(rng)
                    if rng.random() < 0.85
                    else geography.landline_for_la(rng, la),
                }
            )
        gp = self.directory.gp_practice(rng, la).canonical()
        fam = Family(fid, family_name, address, carers, gp)
        self.families[fid] = fam
        return fam

    def _double_barrel(self, a: str, b: str) -> str:
        if a == b:
            b = simple_family_picker().pick_other(self.rng, a)
        return f"{a}-{b}"

    # -- children -------------------------------------------------------------

    def birth_dates(self, count: int, youngest_only: bool = False) -> list[date]:
        """Dates of birth of `count` siblings (fewer if they do not fit 0-17)."""
        rng = self.rng
        if youngest_only:
            return [self.as_of - timedelta(days=rng.randint(0, 60))]
        eldest_age = rng.randint(0, MAX_AGE_DAYS - 1)
        dobs = [self.as_of - timedelta(days=eldest_age)]
        age = eldest_age
        while len(dobs) < count:
            if rng.random() < 0.04:
                gap = 0  # twins
            else:
                gap = rng.randint(330, 2200)
            age -= gap
            if age < 0:
                break
            dobs.append(self.as_of - timedelta(days=age))
        return dobs

    def child(self, fam: Family, dob: date, newborn: bool, twin_of: Person | None) -> Person:
        rng = self.rng
        self.person_count += 1
        pid = f"P{self.person_count:07d}"
        roll = rng.random()
        sex = "female" if roll < 0.488 else "male" if roll < 0.998 else "unknown"
        picker = given_picker(sex)
        siblings = {sib.given_name for sib in self._siblings(fam)}
        given = picker.pick(rng)
        for _ in range(10):
            if given not in siblings:
                break
            given = picker.pick(rng)
        middle: str | None = None
        roll = rng.random()
        if roll < 0.55:
            middle = picker.pick_other(rng, given)
        elif roll < 0.62:
            middle = f"{picker.pick_other(rng, given)} {picker.pick_other(rng, given)}"
        former: list[str] = []
        if rng.random() < 0.02:
            former.append(family_picker().pick_other(rng, fam.family_name))
        age = self._age(dob)
        education, upn = self._education(fam, age, twin_of)
        services = self._services(fam, age)
        la_record_id = None
        if not newborn:
            self.la_serial[fam.la] += 1
            la_record_id = f"LA-{fam.la}-{self.la_serial[fam.la]:06d}"
        person = Person(
            person_id=pid,
            family_id=fam.family_id,
            given_name=given,
            middle_names=middle,
            family_name=fam.family_name,
            former_family_names=former,
            date_of_birth=dob,
            sex=sex,
            nhs_number=self.nhs.next(),
            upn=upn,
            la_record_id=la_record_id,
            address=tree_copy(fam.address),
            carers=tree_copy(fam.carers),
            education_setting=education,
            gp_practice=tree_copy(fam.gp_practice),
            services=services,
            newborn=newborn,
            twin_of=twin_of.person_id if twin_of else None,
        )
        fam.child_ids.append(pid)
        self.people[pid] = person
        return person

    def _siblings(self, fam: Family) -> list[Person]:
        return [self.people[c] for c in fam.child_ids]

    def _age(self, dob: date) -> int:
        a = self.as_of
        return a.year - dob.year - ((a.month, a.day) < (dob.month, dob.day))

    def _education(
        self, fam: Family, age: int, twin_of: Person | None
    ) -> tuple[dict[str, Any] | None, str | None]:
        rng = self.rng
        if age < 4 or (age >= 16 and rng.random() < 0.2):
            return None, None
        phase = "primary" if age <= 10 else "secondary"
        school = None
        for sib in reversed(self._siblings(fam)):  # siblings usually share a school
            es = sib.education_setting
            if es and self._phase_of(es["urn"]) == phase and rng.random() < 0.85:
                school = self.by_urn[es["urn"]]
                break
        if school is None:
            school = self.directory.school(rng, fam.la, phase)
        start_year = (self.as_of.year - age + 4) % 100
        key = (school.la, school.estab, start_year)
        self.upn_serial[key] += 1
        serial = self.upn_serial[key]
        letter = rng.choice(UPN_LETTERS)
        upn = f"{letter}{school.la}{school.estab:04d}{start_year:02d}{serial % 1000:03d}"
        return school.canonical(), upn

    def _phase_of(self, urn: str) -> str | None:
        school = self.by_urn.get(urn)
        return school.phase if school else None

    def _services(self, fam: Family, age: int) -> list[dict[str, Any]]:
        rng = self.rng
        services: list[dict[str, Any]] = []
        if age < 5 and rng.random() < 0.6:
            services.append({"name": "Health visiting", "contact": self._la_phone(fam)})
        if 5 <= age and rng.random() < 0.08:
            services.append({"name": "School nursing", "contact": self._la_phone(fam)})
        if rng.random() < 0.04:
            services.append({"name": "Early help", "contact": self._la_phone(fam)})
        if age >= 8 and rng.random() < 0.015:
            services.append(
                {"name": "Child and adolescent mental health", "contact": self._la_phone(fam)}
            )
        return services

    def _la_phone(self, fam: Family) -> str:
        return geography.landline_for_la(self.rng, fam.la)


def generate_population(
    n: int,
    seed: int,
    shielded_fraction: float = 0.01,
    *,
    birth_fraction: float = 0.02,
    as_of: date = DEFAULT_AS_OF,
) -> Population:
    """`n` children (the local authorities' initial load) plus about
    `birth_fraction * n` newborns only the central feeds know about.

    `shielded_fraction` of the `n` children, chosen as whole families, are to be
    shielded by their own local authority; each such family has a refuge address
    (a new postcode, usually in another local authority) and a new GP practice.
    """
    if n < 0:
        raise ValueError("n must not be negative")
    if not 0.0 <= shielded_fraction <= 1.0:
        raise ValueError("shielded_fraction must be between 0 and 1")
    rng = random.Random(seed)
    b = _Builder(rng, as_of, n)
    sizes = [k for k, _ in CHILDREN_PER_FAMILY]
    size_weights = [w for _, w in CHILDREN_PER_FAMILY]
    children: list[Person] = []
    while len(children) < n:
        fam = b.family()
        want = min(rng.choices(sizes, weights=size_weights)[0], n - len(children))
        dobs = b.birth_dates(want)
        previous: Person | None = None
        for dob in dobs:
            twin = previous if previous is not None and previous.date_of_birth == dob else None
            previous = b.child(fam, dob, newborn=False, twin_of=twin)
            children.append(previous)

    # Shield whole families until the target is reached (as a refuge would).
    target = round(n * shielded_fraction)
    if shielded_fraction > 0 and n > 0 and target == 0:
        target = 1
    family_ids = list(b.families)
    rng.shuffle(family_ids)
    shielded = 0
    for fid in family_ids:
        if shielded >= target:
            break
        fam = b.families[fid]
        if shielded + len(fam.child_ids) > target + 1 and shielded > 0:
            continue
        fam.shielded = True
        new_la = fam.la if rng.random() < 0.3 else geography.other_la(rng, fam.la)
        refuge = geography.address(rng, new_la)
        while refuge["postcode"] == fam.address["postcode"]:
            refuge = geography.address(rng, new_la)
        fam.refuge_address = refuge
        fam.refuge_gp_practice = b.directory.gp_practice(rng, new_la).canonical()
        for cid in fam.child_ids:
            person = b.people[cid]
            person.shielded = True
            person.shielding_authority = fam.la
            shielded += 1

    # New births: mostly into existing (unshielded) families, some first children.
    births: list[Person] = []
    n_births = round(n * birth_fraction)
    open_families = [f for f in b.families.values() if not f.shielded]
    for _ in range(n_births):
        if open_families and rng.random() < 0.6:
            fam = rng.choice(open_families)
        else:
            fam = b.family()
        dob = b.birth_dates(1, youngest_only=True)[0]
        births.append(b.child(fam, dob, newborn=True, twin_of=None))

    return Population(
        seed=seed,
        as_of=as_of,
        children=children,
        births=births,
        families=b.families,
        directory=b.directory,
    )
