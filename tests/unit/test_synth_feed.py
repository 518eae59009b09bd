"""Canonical updates from the synthetic population, with their ground truth."""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path

import pytest

from hub.synth import (
    INVALID_REASONS,
    Feed,
    central_feed,
    generate_population,
    initial_load,
    initial_truth,
    write_jsonl,
)
from hub.synth.population import Population
from hub.validate import Rejection, check
from schemas.canonical import CanonicalUpdate, Child

CHILD_KEYS = set(Child.model_fields)
TOP_KEYS = set(CanonicalUpdate.model_fields)


@pytest.fixture(scope="module")
def pop() -> Population:
    return generate_population(2000, seed=21, shielded_fraction=0.02)


@pytest.fixture(scope="module")
def feed(pop: Population) -> Feed:
    return central_feed(pop, seed=5)


def key(u: dict) -> tuple[str, str, int]:
    return (u["source"], u["source_record_id"], u["source_version"])


def test_initial_load_is_clean_full_and_valid(pop: Population) -> None:
    load = initial_load(pop)
    assert len(load) == len(pop.children)
    truth = initial_truth(pop)
    for u in load:
        assert set(u) == {"source", "source_record_id", "source_version", "kind", "child"}
        assert u["source"] == "la" and u["source_version"] == 1 and u["kind"] == "upsert"
        assert re.fullmatch(r"LA-\d{3}-\d{6}", u["source_record_id"])
        assert set(u["child"]) == CHILD_KEYS
        result = check(u, expected_source="la")
        assert isinstance(result, CanonicalUpdate), result
        person = pop.person(truth[("la", u["source_record_id"])])
        assert u["child"]["nhs_number"] == person.nhs_number
    json.dumps(load)


def test_deterministic(pop: Population) -> None:
    a = central_feed(pop, seed=9)
    b = central_feed(pop, seed=9)
    assert a.updates == b.updates
    assert a.truth == b.truth and a.kinds == b.kinds and a.invalid == b.invalid
    assert central_feed(pop, seed=10).updates != a.updates
    again = central_feed(generate_population(2000, seed=21, shielded_fraction=0.02), seed=5)
    assert json.dumps(again.updates) == json.dumps(central_feed(pop, seed=5).updates)


def test_shape(feed: Feed) -> None:
    json.dumps(feed.updates)
    for u in feed.updates:
        assert set(u) <= TOP_KEYS
        assert set(u["child"]) <= CHILD_KEYS or key(u) in feed.invalid
        assert u["kind"] == "upsert" and isinstance(u["source_version"], int)
    ids = {u["source"]: u["source_record_id"] for u in feed.updates}
    assert re.fullmatch(r"CB-\d{6}", ids["dwp"])
    assert re.fullmatch(r"PDS-\d{7}", ids["pds"])


def test_every_valid_update_passes_validation(feed: Feed) -> None:
    for u in feed.valid_updates:
        result = check(u, expected_source=u["source"])
        assert isinstance(result, CanonicalUpdate), (u, result)


def test_invalid_updates_rejected_with_expected_reason(feed: Feed) -> None:
    invalid = [u for u in feed.updates if key(u) in feed.invalid]
    assert len(invalid) >= len(INVALID_REASONS)
    assert set(feed.invalid_reasons.values()) == set(INVALID_REASONS)
    for u in invalid:
        result = check(u, expected_source=u["source"])
        assert isinstance(result, Rejection)
        assert result.reason == feed.invalid_reasons[key(u)]
        assert feed.truth[(u["source"], u["source_record_id"])] is None
        if result.reason == "invalid_nhs_number":
            assert u["child"]["nhs_number"].startswith("999")
        if result.reason == "invalid_date_of_birth":
            assert u["child"]["date_of_birth"] == "2015-02-30"


def test_truth_and_kinds_cover_every_update(feed: Feed, pop: Population) -> None:
    for u in feed.updates:
        assert key(u) in feed.kinds
        pid = feed.person_of(u)
        if key(u) in feed.invalid:
            assert pid is None
        else:
            assert pid is not None and pop.person(pid)
    kinds = Counter(k for ks in feed.kinds.values() for k in ks)
    for kind in (
        "typo",
        "nickname",
        "names_swapped",
        "dob_day_month_swapped",
        "moved",
        "missing_nhs",
        "family_name_change",
        "missing_sex",
    ):
        assert kinds[kind] > 0, kind
    clean = sum(1 for ks in feed.kinds.values() if not ks)
    assert 0.5 < clean / len(feed.kinds) < 0.85


def test_sources_know_what_they_should(feed: Feed) -> None:
    by_source: dict[str, list[dict]] = {"dwp": [], "pds": []}
    for u in feed.valid_updates:
        by_source[u["source"]].append(u["child"])
    assert all("gp_practice" not in c and "education_setting" not in c for c in by_source["dwp"])
    assert all("carers" not in c and "education_setting" not in c for c in by_source["pds"])
    dwp_nhs = sum(bool(c.get("nhs_number")) for c in by_source["dwp"]) / len(by_source["dwp"])
    assert 0.3 < dwp_nhs < 0.8  # DWP does not know every NHS number
    pds_nhs = sum(bool(c.get("nhs_number")) for c in by_source["pds"]) / len(by_source["pds"])
    assert pds_nhs > 0.85


def test_shielded_children_get_new_addresses(feed: Feed, pop: Population) -> None:
    shielded_people = {p.person_id for p in pop.shielded_children}
    seen: set[str] = set()
    with_nhs = 0
    for u in feed.updates:
        pid = feed.person_of(u)
        if pid not in shielded_people:
            continue
        assert key(u) in feed.shielded
        assert "moved" in feed.kinds[key(u)]
        person = pop.person(pid)
        fam = pop.family_of(person)
        assert u["child"]["address"] == fam.refuge_address
        assert u["child"]["address"]["postcode"] != person.address["postcode"]
        seen.add(pid)
        with_nhs += bool(u["child"].get("nhs_number"))
    assert seen == shielded_people  # every shielded child
    share = with_nhs / len(feed.shielded)
    assert 0.3 <= share <= 0.7  # about half with NHS numbers
    la_changed = sum(
        pop.family_of(pop.person(p)).refuge_address["la"] != pop.person(p).la for p in seen
    )
    assert la_changed > len(seen) / 3


def test_births_duplicates_and_order(feed: Feed, pop: Population) -> None:
    born = {p.person_id for p in pop.births}
    assert feed.births and {feed.truth[k] for k in feed.births} <= born
    assert {feed.truth[k] for k in feed.births} == born

    counts = Counter(json.dumps(u, sort_keys=True) for u in feed.updates)
    dup_keys = {key(json.loads(body)) for body, n in counts.items() if n > 1}
    assert feed.duplicates and dup_keys == feed.duplicates

    first_seen: dict[tuple[str, str], list[int]] = {}
    for u in feed.updates:
        first_seen.setdefault((u["source"], u["source_record_id"]), []).append(u["source_version"])
    assert feed.out_of_order
    for rec, versions in first_seen.items():
        distinct = list(dict.fromkeys(versions))
        if rec in feed.out_of_order:
            assert distinct == sorted(distinct, reverse=True) and len(distinct) > 1
        else:
            assert distinct == sorted(distinct)


def test_no_update_about_person_outside_population(feed: Feed, pop: Population) -> None:
    ids = {p.person_id for p in pop.everyone}
    assert {v for v in feed.truth.values() if v is not None} <= ids


def test_restricted_flag_optional(pop: Population) -> None:
    f = central_feed(pop, seed=5, restricted_rate=1.0)
    flagged = [u for u in f.updates if u.get("restricted")]
    assert flagged and all(u["source"] == "pds" and key(u) in f.shielded for u in flagged)
    assert not any("restricted" in u for u in central_feed(pop, seed=5).updates)


def test_other_sources(pop: Population) -> None:
    f = central_feed(pop, seed=1, sources=("dfe", "dwp"), update_rate=0.2)
    for u in f.valid_updates:
        assert isinstance(check(u, expected_source=u["source"]), CanonicalUpdate)
    assert any(u["source"] == "dfe" for u in f.updates)
    with pytest.raises(ValueError):
        central_feed(pop, seed=1, sources=("nope",))


def test_write_jsonl_round_trip(feed: Feed, tmp_path: Path) -> None:
    path = tmp_path / "out" / "feed.jsonl"
    assert write_jsonl(feed.updates, path) == len(feed.updates)
    lines = path.read_text(encoding="utf-8").splitlines()
    assert [json.loads(line) for line in lines] == feed.updates


def test_feed_for_10k_is_fast() -> None:
    import time

    start = time.perf_counter()
    pop = generate_population(10_000, seed=1)
    load = initial_load(pop)
    f = central_feed(pop, seed=1)
    elapsed = time.perf_counter() - start
    assert len(load) == 10_000 and len(f.updates) > 8_000
    assert elapsed < 6.0, elapsed
