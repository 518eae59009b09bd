"""Partial facts (how the pipeline reads an update with an NHS number or a source
link: its children by id and NHS number and every shielded or severed candidate,
not the ordinary ones) never change a decision: `decide` either answers as it
would with every candidate, or asks for them (MORE)."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from hub.config import Thresholds
from hub.decide import (
    LINK,
    MORE,
    Candidate,
    Facts,
    SourceLink,
    decide,
)
from hub.places import address_key
from tests.factories import child, nhs

T = Thresholds()
REFUGE = {"lines": ["3 Harbour Lane"], "town": "Birmingham", "postcode": "B5 7QQ", "la": "330"}

# Children near the update's own (a twin, a typo, another date, another NHS number).
VARIANTS: list[dict[str, Any]] = [
    {},
    {"given_name": "Hollis", "sex": "male"},
    {"given_name": "Marigld"},
    {"date_of_birth": "2014-09-03"},
    {"date_of_birth": "2014-03-08"},
    {"family_name": "Ashdown", "former_family_names": ["Quenby"]},
    {"given_name": "Quenby", "family_name": "Marigold"},
    {"address": REFUGE},
    {"given_name": "Oswin", "family_name": "Pellow", "sex": "male"},
]
NUMBERS = [nhs(1), nhs(2), nhs(3), None]
AUTHORITIES = ["383", "383", "330", None]


@st.composite
def candidates(draw: st.DrawFn) -> Candidate:
    record = child(**draw(st.sampled_from(VARIANTS)))
    record["nhs_number"] = draw(st.sampled_from(NUMBERS))
    shielded = draw(st.booleans())
    return Candidate(
        f"c{draw(st.integers(0, 9))}", {k: v for k, v in record.items() if v is not None},
        shielded=shielded, severed=draw(st.integers(0, 4)) == 0,
        authority=draw(st.sampled_from(AUTHORITIES)) if shielded else None,
    )


@st.composite
def scenarios(draw: st.DrawFn) -> tuple[dict[str, Any], int, Facts]:
    update = child(**draw(st.sampled_from(VARIANTS)))
    update["nhs_number"] = draw(st.sampled_from(NUMBERS))
    update = {k: v for k, v in update.items() if v is not None}
    found: dict[str, Candidate] = {}
    for c in draw(st.lists(candidates(), max_size=6)):
        found.setdefault(c.child_id, c)
    cands = tuple(found[k] for k in sorted(found))
    ids = sorted(found) or ["c0"]
    link = None
    if draw(st.integers(0, 4)) == 0:
        link = SourceLink(draw(st.sampled_from(ids)), draw(st.integers(0, 3)),
                          severed=draw(st.integers(0, 4)) == 0)
    invalidated = draw(st.sampled_from([None, None, None, *ids]))
    protected = frozenset()
    if draw(st.integers(0, 3)) == 0:
        protected = frozenset(draw(st.lists(st.sampled_from(ids), min_size=1, max_size=2)))
    # The holders' shielding authorities, as far as the index knows them.
    holder_authority = {h: draw(st.sampled_from(AUTHORITIES)) for h in sorted(protected)
                        if draw(st.integers(0, 3)) != 0}
    not_a_match = frozenset(draw(st.lists(st.sampled_from(ids), max_size=1)))
    facts = Facts(link=link, candidates=cands, invalidated_for=invalidated,
                  not_a_match=not_a_match, protected_address_of=protected,
                  holder_authority=holder_authority)
    return update, draw(st.integers(1, 4)), facts


def _partial(update: dict[str, Any], facts: Facts) -> Facts:
    """What the pipeline reads of such an update: children by id (link, invalidated
    identifier, protected address), under its NHS number, and shielded or severed."""
    by_id = {facts.invalidated_for, *facts.protected_address_of}
    if facts.link is not None:
        by_id.add(facts.link.child_id)
    nhs_number = update.get("nhs_number")
    kept = tuple(c for c in facts.candidates
                 if c.shielded or c.severed or c.child_id in by_id
                 or (nhs_number and c.record.get("nhs_number") == nhs_number))
    return Facts(link=facts.link, candidates=kept, invalidated_for=facts.invalidated_for,
                 not_a_match=facts.not_a_match,
                 protected_address_of=facts.protected_address_of,
                 holder_authority=facts.holder_authority, partial=True)


def _summary(d: Any) -> tuple[Any, ...]:
    return (d.action, d.reason, d.child_id, d.model_version,
            tuple((c.child_id, c.probability) for c in d.candidates))


@settings(max_examples=400, deadline=None)
@given(scenarios())
def test_partial_facts_decide_as_all_the_facts_would_or_ask_for_them(
    scenario: tuple[dict[str, Any], int, Facts],
) -> None:
    update, version, facts = scenario
    partial = _partial(update, facts)
    full = decide(update, version, facts, T)
    got = decide(update, version, partial, T)
    assert got.action == MORE or _summary(got) == _summary(full)
    assert full.action != MORE  # only partial facts ask for more


def test_a_tie_with_an_implausible_ordinary_candidate_needs_nothing_more() -> None:
    tied = Candidate("c1", child())
    sibling = Candidate("c2", child(nhs_number=nhs(41), given_name="Oswin", sex="male"))
    partial = Facts(candidates=(tied,), partial=True)
    d = decide(child(), 1, partial, T)
    full = decide(child(), 1, Facts(candidates=(tied, sibling)), T)
    assert (d.action, d.reason, d.child_id) == (LINK, "nhs_number", "c1") == (
        full.action, full.reason, full.child_id)


def test_a_tie_beside_a_plausible_shielded_child_asks_for_every_candidate() -> None:
    tied = Candidate("c1", child())
    twin = Candidate("c3", child(nhs_number=nhs(42)), shielded=True)
    partial = Facts(candidates=(tied, twin), partial=True)
    assert decide(child(), 1, partial, T).action == MORE


def test_a_tie_to_a_protected_address_elsewhere_asks_for_every_candidate() -> None:
    tied = Candidate("c1", child())
    update = child(address=REFUGE)
    assert address_key(REFUGE)
    partial = Facts(candidates=(tied,), protected_address_of=frozenset({"c9"}), partial=True)
    assert decide(update, 1, partial, T).action == MORE


def test_no_nhs_number_and_no_link_is_never_decided_on_partial_facts() -> None:
    update = child(nhs_number=None)
    partial = Facts(candidates=(Candidate("c1", child()),), partial=True)
    assert decide(update, 1, partial, T).action == MORE


def test_a_tie_beside_an_implausible_shielded_child_is_decided_on_partial_facts() -> None:
    tied = Candidate("c1", child())
    stranger = Candidate("c4", child(nhs_number=nhs(43), given_name="Oswin", family_name="Pellow",
                                     sex="male", date_of_birth="2016-11-30"), shielded=True)
    d = decide(child(), 1, Facts(candidates=(tied, stranger), partial=True), T)
    assert (d.action, d.reason, d.child_id) == (LINK, "nhs_number", "c1")
