"""The synthetic population: deterministic, realistic enough, and fast."""

from __future__ import annotations

import re
import statistics
import time
from collections import Counter

import pytest

from hub.nhs import is_valid
from hub.synth import generate_population
from hub.synth.data import family_names, given_names, la_codes, nickname_variants
from hub.synth.population import Population

POSTCODE = re.compile(r"^[A-Z]{1,2}[0-9]{1,2} [0-9][A-Z]{2}$")
PHONE = re.compile(r"^(07700 900\d{3}|0\d{2,3} \d{3,4} \d{4}|01632 960\d{3})$")


@pytest.fixture(scope="module")
def pop() -> Population:
    return generate_population(3000, seed=11, shielded_fraction=0.02)


def _fingerprint(p: Population) -> list[dict]:
    return [person.to_child() | {"id": person.person_id} for person in p.everyone]


def test_same_seed_same_population() -> None:
    a = generate_population(500, seed=3)
    b = generate_population(500, seed=3)
    assert _fingerprint(a) == _fingerprint(b)
    assert [p.shielded for p in a.children] == [p.shielded for p in b.children]
    assert a.families.keys() == b.families.keys()


def test_different_seed_different_population() -> None:
    assert _fingerprint(generate_population(200, seed=1)) != _fingerprint(
        generate_population(200, seed=2)
    )


def test_counts(pop: Population) -> None:
    assert len(pop.children) == 3000
    assert len(pop.births) == 60
    assert all(p.la_record_id for p in pop.children)
    assert all(p.newborn and p.la_record_id is None for p in pop.births)
    assert len({p.person_id for p in pop.everyone}) == len(pop.everyone)
    assert len({p.la_record_id for p in pop.children}) == len(pop.children)


def test_nhs_numbers_valid_unique_and_999(pop: Population) -> None:
    numbers = [p.nhs_number for p in pop.everyone]
    assert len(set(numbers)) == len(numbers)
    for number in numbers:
        assert number.startswith("999")
        assert is_valid(number), number


def test_ages_and_school(pop: Population) -> None:
    for p in pop.children:
        age = p.age(pop.as_of)
        assert 0 <= age <= 17
        assert p.date_of_birth <= pop.as_of
        if age < 4:
            assert p.education_setting is None and p.upn is None
        if p.education_setting is not None:
            assert re.fullmatch(r"\d{6}", p.education_setting["urn"])
            assert p.education_setting["name"]
            assert p.upn is not None and re.fullmatch(r"[A-Z]\d{12}", p.upn)
    upns = [p.upn for p in pop.children if p.upn]
    assert len(set(upns)) == len(upns)
    school_age = [p for p in pop.children if 5 <= p.age(pop.as_of) <= 15]
    assert sum(p.education_setting is not None for p in school_age) / len(school_age) > 0.95


def test_families_share_name_address_and_carers(pop: Population) -> None:
    sizes = Counter()
    for fam in pop.families.values():
        members = [pop.person(pid) for pid in fam.child_ids if not pop.person(pid).newborn]
        if members:
            sizes[len(members)] += 1
        for m in members:
            assert m.family_name == fam.family_name
            assert m.address == fam.address
            assert m.carers == fam.carers
        assert 1 <= len(fam.carers) <= 2
    assert set(sizes) <= {1, 2, 3, 4}
    assert sizes[1] and sizes[2] and sizes[3]


def test_twins_exist(pop: Population) -> None:
    twins = [p for p in pop.children if p.twin_of]
    assert twins
    for t in twins:
        other = pop.person(t.twin_of or "")
        assert other.date_of_birth == t.date_of_birth and other.family_id == t.family_id


def test_addresses_phones_and_gp(pop: Population) -> None:
    las = set(la_codes())
    assert 6 <= len(las) <= 10
    for p in pop.children:
        assert POSTCODE.match(p.address["postcode"]), p.address
        assert p.address["la"] in las
        assert p.address["lines"] and p.address["town"]
        for carer in p.carers:
            assert PHONE.match(carer["phone"]), carer
            assert carer["name"] and carer["relationship"]
        assert p.gp_practice and re.fullmatch(r"[A-Z]\d{5}", p.gp_practice["ods_code"])
    assert len({p.la for p in pop.children}) == len(las)


def test_hyphenated_names_present(pop: Population) -> None:
    assert sum("-" in p.family_name for p in pop.children) > 30


def test_shielded_whole_families_by_their_la(pop: Population) -> None:
    shielded = pop.shielded_children
    assert abs(len(shielded) - 60) <= 5
    for fam in pop.families.values():
        kids = [pop.person(pid) for pid in fam.child_ids]
        if fam.shielded:
            assert all(k.shielded for k in kids if not k.newborn)
            assert fam.refuge_address and fam.refuge_gp_practice
            assert fam.refuge_address["postcode"] != fam.address["postcode"]
        else:
            assert not any(k.shielded for k in kids)
    for p in shielded:
        assert p.shielding_authority == p.la
    moved_la = [p for p in shielded if pop.family_of(p).refuge_address["la"] != p.la]
    assert moved_la  # often a different local authority


def test_small_population_still_has_a_shielded_child() -> None:
    assert generate_population(20, seed=5).shielded_children
    assert not generate_population(200, seed=5, shielded_fraction=0).shielded_children


def test_surname_frequency_skew() -> None:
    weights = [w for _, w in family_names()]
    assert len(weights) >= 200
    assert max(weights) >= 20 * statistics.median(weights)
    pop = generate_population(5000, seed=8)
    counts = Counter(p.family_name for p in pop.children)
    assert counts.most_common(1)[0][1] >= 20 * statistics.median(counts.values())


def test_name_data() -> None:
    names = given_names()
    assert len(names) >= 200
    assert {g.sex for g in names} == {"female", "male"}
    variants = nickname_variants()
    for formal, nick in [
        ("William", "Bill"),
        ("William", "Liam"),
        ("Elizabeth", "Beth"),
        ("Elizabeth", "Liz"),
        ("Robert", "Bob"),
        ("Katherine", "Kate"),
        ("James", "Jim"),
        ("Alexander", "Alex"),
        ("Thomas", "Tom"),
        ("Margaret", "Maggie"),
    ]:
        assert nick in variants[formal]
    assert any("-" in n for n, _ in family_names())


def test_generation_is_fast() -> None:
    generate_population(100, seed=0)  # warm the data caches
    start = time.perf_counter()
    pop = generate_population(10_000, seed=1)
    elapsed = time.perf_counter() - start
    assert len(pop.children) == 10_000
    assert elapsed < 3.0, elapsed
