"""Training: u from random pairs, m by EM over blocked pairs, on a synthetic population."""

from __future__ import annotations

import random
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

import pytest

from hub.match import DEFAULT_MODEL, Model, TermFrequencies, index_keys, prepare, query_keys
from hub.match.model import FIELDS
from hub.match.score import score_prepared
from hub.match.train import (
    BASE_U_FIELDS,
    FIXED_FIELDS,
    TRAINED_FIELDS,
    Training,
    estimate_m,
    estimate_u,
    fit,
    pair_levels,
    train,
)
from hub.synth.feed import central_feed, initial_load
from hub.synth.population import Population, generate_population

Child = dict[str, Any]


@dataclass
class World:
    pop: Population
    records: list[Child]
    record_person: list[str]
    pairs: list[tuple[Child, Child]]
    truth: list[bool]


@pytest.fixture(scope="module")
def world() -> World:
    pop = generate_population(3000, seed=11)
    load = initial_load(pop)
    records = [u["child"] for u in load]
    record_person = [p.person_id for p in pop.children]
    feed = central_feed(pop, seed=11)
    index: dict[str, list[int]] = defaultdict(list)
    for i, rec in enumerate(records):
        for key in index_keys(rec):
            index[key].append(i)
    pairs: list[tuple[Child, Child]] = []
    truth: list[bool] = []
    for update in feed.valid_updates:
        child = update["child"]
        candidates: set[int] = set()
        for key in query_keys(child):
            candidates.update(index.get(key, ()))
        person = feed.person_of(update)
        for i in sorted(candidates):
            pairs.append((child, records[i]))  # the same child object: one group
            truth.append(person == record_person[i])
    return World(pop, records, record_person, pairs, truth)


@pytest.fixture(scope="module")
def trained(world: World) -> Training:
    return fit(world.records, world.pairs, DEFAULT_MODEL, "trained-test", rng_seed=3)


def _true_m(world: World, field: str) -> dict[str, float]:
    counts: dict[str, int] = defaultdict(int)
    for (a, b), same in zip(world.pairs, world.truth, strict=True):
        if same:
            level = pair_levels(prepare(a), prepare(b), DEFAULT_MODEL)[FIELDS.index(field)]
            if level != "missing":
                counts[level] += 1
    total = sum(counts.values())
    return {k: v / total for k, v in counts.items()}


def test_the_population_has_matches_and_twins(world: World) -> None:
    assert sum(world.truth) > 2000
    assert len(world.pairs) > sum(world.truth)  # non-matches among the blocked pairs too
    assert any(p.twin_of for p in world.pop.children)


def test_em_recovers_m_and_random_pairs_give_u(trained: Training) -> None:
    m = trained.model
    assert m.level("date_of_birth", "exact").m > 0.8
    assert m.level("date_of_birth", "exact").u < 0.01
    assert m.level("nhs_number", "agree").m > 0.95
    assert m.level("given_name", "exact").m > 0.8
    assert m.level("given_name", "disagree").m < 0.01
    assert m.level("sex", "agree").u == pytest.approx(0.5, abs=0.02)
    assert trained.converged
    assert trained.iterations < 20


def test_em_is_close_to_the_truth(world: World, trained: Training) -> None:
    share = sum(world.truth) / len(world.truth)
    assert trained.lambda_ == pytest.approx(share, rel=0.05)
    for field in ("date_of_birth", "given_name", "family_name", "postcode"):
        for level, p in _true_m(world, field).items():
            assert trained.m[field][level] == pytest.approx(p, abs=0.01), (field, level)


def test_trained_model_scores_true_pairs_high(world: World, trained: Training) -> None:
    model = trained.model
    tf = TermFrequencies.from_records(world.records)
    for use_tf in (None, tf):
        scores = []
        for (a, b), same in zip(world.pairs, world.truth, strict=True):
            pa, pb = prepare(a), prepare(b)
            if same and pa.nhs and pa.nhs == pb.nhs and pa.dob == pb.dob:
                scores.append(score_prepared(pa, pb, model, use_tf).probability)
        assert len(scores) > 1000
        assert sum(s >= 0.95 for s in scores) >= 0.95 * len(scores)


def test_trained_model_scores_twins_low(world: World, trained: Training) -> None:
    model = trained.model
    twins = [(p, world.pop.person(p.twin_of)) for p in world.pop.children if p.twin_of]
    assert twins
    for a, b in twins:
        for with_nhs in (True, False):
            ca, cb = a.to_child(), b.to_child()
            if not with_nhs:
                ca["nhs_number"] = None
            s = score_prepared(prepare(ca), prepare(cb), model)
            assert s.probability < 0.5, (a.given_name, b.given_name, s.explain())
    # Non-matching blocked pairs of the feed: hardly any above review.
    false_high = sum(
        1 for (a, b), same in zip(world.pairs, world.truth, strict=True)
        if not same and score_prepared(prepare(a), prepare(b), model).probability >= 0.85
    )
    assert false_high <= 0.001 * len(world.pairs)


def test_training_is_deterministic_for_a_seed(world: World, trained: Training) -> None:
    again = fit(world.records, world.pairs, DEFAULT_MODEL, "trained-test", rng_seed=3)
    assert again.model.to_dict() == trained.model.to_dict()
    other = fit(world.records, world.pairs, DEFAULT_MODEL, "trained-test", rng_seed=4)
    assert other.u != trained.u


def test_model_structure_prior_and_fixed_fields_kept(trained: Training) -> None:
    model = trained.model
    assert model.version == "trained-test"
    assert model.prior == DEFAULT_MODEL.prior
    assert [c.field for c in model.comparisons] == [c.field for c in DEFAULT_MODEL.comparisons]
    for c in DEFAULT_MODEL.comparisons:
        assert [lv.name for lv in model.comparison(c.field).levels] == [lv.name for lv in c.levels]
    for field in FIXED_FIELDS:
        assert model.comparison(field) == DEFAULT_MODEL.comparison(field)
    for field in TRAINED_FIELDS:
        comparison = model.comparison(field)
        present = [lv for lv in comparison.levels if lv.name != "missing"]
        assert sum(lv.m for lv in present) == pytest.approx(1.0, abs=1e-6)
        if field not in BASE_U_FIELDS:  # the address u are tuned as a group (model.py)
            assert sum(lv.u for lv in present) == pytest.approx(1.0, abs=0.01)
        assert all(lv.m > 0 and lv.u > 0 for lv in present)
        if any(lv.name == "missing" for lv in comparison.levels):
            missing = comparison.level("missing")
            assert missing.m == missing.u == 1.0
    assert Model.from_dict(model.to_dict()) == model


def test_address_u_and_unseen_identifier_u_keep_the_base(trained: Training) -> None:
    model = trained.model
    for field in ("postcode", "address_line", "la"):
        for lv in model.comparison(field).levels:
            assert lv.u == DEFAULT_MODEL.level(field, lv.name).u
    # No two random children share an NHS number: the sample cannot measure the rate.
    assert model.level("nhs_number", "agree").u == DEFAULT_MODEL.level("nhs_number", "agree").u


def test_pair_levels_are_the_scored_levels(world: World) -> None:
    rng = random.Random(5)
    for a, b in rng.sample(world.pairs, 200):
        pa, pb = prepare(a), prepare(b)
        s = score_prepared(pa, pb, DEFAULT_MODEL)
        assert pair_levels(pa, pb, DEFAULT_MODEL) == tuple(s.level(f) for f in FIELDS)


def test_estimate_u_and_m_directly(world: World) -> None:
    u = estimate_u(world.records, DEFAULT_MODEL, 20000, random.Random(1))
    assert set(u) == set(TRAINED_FIELDS)
    assert u["date_of_birth"]["exact"] < 0.01
    assert u["family_name"]["disagree"] > 0.9
    # One Prepared per update: an update's pairs are one group (at most one match).
    forms: dict[int, Any] = {}
    prepared = [(forms.setdefault(id(a), prepare(a)), prepare(b)) for a, b in world.pairs]
    m, share = estimate_m(prepared, DEFAULT_MODEL, u)
    assert m["date_of_birth"]["exact"] > 0.8
    assert 0.5 * sum(world.truth) / len(world.truth) < share < 1.0


def test_an_index_against_itself_leaves_m_near_the_base(world: World) -> None:
    """A deduplicated index blocked against itself holds no matches, twins included:
    EM must not take the twins for the matches."""
    index: dict[str, list[int]] = defaultdict(list)
    for i, rec in enumerate(world.records):
        for key in index_keys(rec):
            index[key].append(i)
    pairs: list[tuple[Child, Child]] = []
    for i, rec in enumerate(world.records[:1500]):
        partners = {j for key in index_keys(rec) for j in index[key] if j != i}
        pairs.extend((rec, world.records[j]) for j in sorted(partners))
    result = fit(world.records, pairs, DEFAULT_MODEL, "self", u_pairs=20000)
    assert result.lambda_ < 0.01
    for field in ("given_name", "nhs_number", "date_of_birth"):
        assert result.m[field]["disagree"] < 0.05, field
    model = result.model
    for p in world.pop.children:
        if p.twin_of:
            twin = world.pop.person(p.twin_of)
            assert score_prepared(prepare(p.to_child()), prepare(twin.to_child()),
                                  model).probability < 0.5


def test_labelled_pairs_anchor_em(world: World) -> None:
    same = [(a, b, True) for (a, b), t in zip(world.pairs, world.truth, strict=True) if t]
    different = [(a, b, False) for (a, b), t in zip(world.pairs, world.truth, strict=True)
                 if not t][:2000]
    result = fit(world.records, [], DEFAULT_MODEL, "labelled", labelled=same + different,
                 u_pairs=20000)
    assert result.labelled == len(same) + len(different)
    assert result.pairs == 0
    truth = _true_m(world, "date_of_birth")
    assert result.m["date_of_birth"]["exact"] == pytest.approx(truth["exact"], abs=0.01)


def test_train_returns_the_model(world: World) -> None:
    model = train(world.records[:500], world.pairs[:3000], DEFAULT_MODEL, "v-small", rng_seed=1)
    assert isinstance(model, Model)
    assert model.version == "v-small"
    assert model.prior == DEFAULT_MODEL.prior


def test_unpreparable_records_are_skipped() -> None:
    good = {"given_name": "Ava", "family_name": "Quist", "date_of_birth": "2015-01-02"}
    bad = {"given_name": "Ava", "family_name": "Quist", "date_of_birth": "not a date"}
    result = fit([good, bad, dict(good, given_name="Zoe")], [(good, bad), (good, good)],
                 DEFAULT_MODEL, "v", u_pairs=10)
    assert result.pairs == 1
