"""The chaos suite's exactly-once check finds what it is there to find: a loss, a
double, an effect nobody sent, a second child, a missing notification."""

from __future__ import annotations

import copy
import json
from collections import Counter

from hub.chaos.check import Facts, evaluate
from hub.chaos.councils import Received
from hub.chaos.stream import Ledger, Plan, Planned, build
from hub.synth.population import generate_population
from hub.validate import Rejection, check

POP = generate_population(3, seed=1)


def _m(mid: str, role: str, rid: str, version: int, person: str | None) -> Planned:
    return Planned("dwp", b"{}", mid, role, ("dwp", rid), version, person)


MESSAGES = [
    _m("m1", "update", "A", 1, "P1"),
    _m("m2", "update", "A", 2, "P1"),
    _m("m3", "invalid", "X", 1, None),
    _m("m4", "poison", "Y", 1, None),
    _m("m5", "update", "B", 1, "P1"),
]
PLAN = Plan(MESSAGES, POP, {("dwp", "A"): "P1", ("dwp", "B"): "P1"}, ["383"])


def _ledger() -> Ledger:
    ledger = Ledger()
    for m in MESSAGES:
        ledger.attempts[m.message_id] += 1
        ledger.confirmed.add(m.message_id)
    return ledger


def _facts() -> Facts:
    """What a hub that did everything exactly once leaves behind."""
    return Facts(
        processed={"m1": ("create:no_match", 1.0), "m2": ("link:source_link", 2.0),
                   "m3": ("dead:invalid_json", 2.0), "m5": ("link:nhs_number", 3.0)},
        versions=[("m1", "c1", 1, "383"), ("m2", "c1", 2, "383")],
        parked=[("dead", "invalid_json", "m3"), ("dead", "poison_message", "m4")],
        decisions=Counter({"m1": 1, "m2": 1, "m3": 1, "m4": 1, "m5": 1}),
        links={("dwp", "A"): ("c1", 2), ("dwp", "B"): ("c1", 1)},
        children={"c1"},
        outbox={"e1": ("383", "c1", 1, True), "e2": ("383", "c1", 2, True)},
    )


def _received(*events: str) -> Received:
    r = Received()
    for e in events:
        version = int(e[1:])
        r.record("383", json.dumps({"event_id": e, "child_id": "c1", "version": version}).encode())
    return r


def test_exactly_once_passes_and_counts_redeliveries() -> None:
    g = evaluate(PLAN, _ledger(), _facts(), _received("e1", "e2", "e2"), ["383"])
    assert g.ok, g.failures
    assert (g.sent, g.confirmed, g.effects) == (5, 5, 5)
    assert (g.changes, g.unchanged, g.dead_invalid, g.dead_poison) == (2, 1, 1, 1)
    assert (g.notes_committed, g.notes_delivered, g.notes_redelivered) == (2, 2, 1)


def test_a_lost_update_is_found() -> None:
    facts = _facts()
    del facts.processed["m2"]
    facts.versions = facts.versions[:1]
    facts.links[("dwp", "A")] = ("c1", 1)
    facts.outbox.pop("e2")
    g = evaluate(PLAN, _ledger(), facts, _received("e1"), ["383"])
    assert (g.lost, g.stale_links) == (1, 1)
    assert not g.ok


def test_a_newer_version_waiting_in_review_is_not_a_stale_link() -> None:
    # v2 arrived first and went to a person; v1 then linked the record.
    facts = _facts()
    facts.processed["m2"] = ("review:possible_match", 0.5)
    facts.versions = facts.versions[:1]
    facts.parked.append(("review", "possible_match", "m2"))
    facts.links[("dwp", "A")] = ("c1", 1)
    facts.outbox.pop("e2")
    g = evaluate(PLAN, _ledger(), facts, _received("e1"), ["383"])
    assert g.ok, g.failures
    assert (g.stale_links, g.reviews) == (0, 1)
    # Had it been applied and its link not moved, the link would be stale.
    facts.parked.pop()
    facts.processed["m2"] = ("link:source_link", 2.0)
    facts.versions.append(("m2", "c1", 2, "383"))
    facts.outbox["e2"] = ("383", "c1", 2, True)
    assert evaluate(PLAN, _ledger(), facts, _received("e1", "e2"), ["383"]).stale_links == 1


def test_an_unconfirmed_message_may_be_missing() -> None:
    facts = _facts()
    facts.parked = facts.parked[:1]  # the poison message never arrived
    del facts.decisions["m4"]
    ledger = _ledger()
    ledger.confirmed.discard("m4")
    g = evaluate(PLAN, ledger, facts, _received("e1", "e2"), ["383"])
    assert g.ok, g.failures
    assert g.unconfirmed == 1


def test_doubles_are_found() -> None:
    facts = _facts()
    facts.decisions["m1"] = 2  # decided twice
    assert evaluate(PLAN, _ledger(), facts, _received("e1", "e2"), ["383"]).doubled == 1
    facts = _facts()
    facts.versions.append(("m5", "c1", 3, "383"))  # a review and a change for one message
    facts.parked.append(("review", "possible_match", "m5"))
    facts.outbox["e3"] = ("383", "c1", 3, True)
    g = evaluate(PLAN, _ledger(), facts, _received("e1", "e2", "e3"), ["383"])
    assert g.doubled == 1


def test_one_version_written_under_two_message_ids_is_a_double() -> None:
    plan = copy.deepcopy(PLAN)
    plan.messages.append(_m("m6", "resend", "A", 2, "P1"))
    ledger = _ledger()
    ledger.attempts["m6"] += 1
    ledger.confirmed.add("m6")
    facts = _facts()
    facts.processed["m6"] = ("link:source_link", 4.0)
    facts.decisions["m6"] = 1
    facts.versions.append(("m6", "c1", 3, "383"))
    facts.outbox["e3"] = ("383", "c1", 3, True)
    g = evaluate(plan, ledger, facts, _received("e1", "e2", "e3"), ["383"])
    assert g.doubled == 1


def test_effects_nobody_sent_are_unexpected() -> None:
    facts = _facts()
    facts.processed["sha256:nobody"] = ("create:no_match", 5.0)
    facts.children.add("c9")  # made by no message
    g = evaluate(PLAN, _ledger(), facts, _received("e1", "e2", "e9"), ["383"])
    assert g.unexpected == 2
    assert g.notes_unexpected == 1  # e9 was never committed


def test_a_second_child_for_one_person_is_found() -> None:
    facts = _facts()
    facts.links[("dwp", "B")] = ("c2", 1)
    facts.children.add("c2")
    facts.versions.append(("m5", "c2", 1, None))
    g = evaluate(PLAN, _ledger(), facts, _received("e1", "e2"), ["383"])
    assert g.duplicate_children == 1


def test_notifications_missing_or_never_raised_are_found() -> None:
    g = evaluate(PLAN, _ledger(), _facts(), _received("e1"), ["383"])
    assert g.notes_missing == 1
    facts = _facts()
    facts.outbox.pop("e2")
    g = evaluate(PLAN, _ledger(), facts, _received("e1"), ["383"])
    assert g.changes_unnotified == 1


def test_a_poison_message_processed_is_misplaced() -> None:
    facts = _facts()
    facts.parked = facts.parked[:1]
    facts.processed["m4"] = ("link:source_link", 4.0)
    g = evaluate(PLAN, _ledger(), facts, _received("e1", "e2"), ["383"])
    assert g.misplaced == 1 and not g.ok


def test_a_valid_update_in_the_dead_letters_is_counted_apart() -> None:
    facts = _facts()
    facts.parked.append(("dead", "poison_message", "m5"))
    del facts.processed["m5"]
    g = evaluate(PLAN, _ledger(), facts, _received("e1", "e2"), ["383"])
    assert (g.dead_valid, g.dead_poison, g.misplaced, g.lost) == (1, 1, 0, 0)


def test_the_stream_holds_every_kind_of_message() -> None:
    plan = build(300, seed=3, poison=2)
    roles = {m.role for m in plan.messages}
    assert roles == {"update", "resend", "ambiguous", "invalid", "poison"}
    assert len(plan.messages) > 700
    for m in plan.messages:
        result = check(json.loads(m.body), expected_source=m.source)
        assert isinstance(result, Rejection) == (m.role == "invalid"), m
    # Every race group is one person's updates, back to back.
    positions = {id(m): i for i, m in enumerate(plan.messages)}
    for group in plan.groups.values():
        assert len({m.person for m in group}) == 1
        at = [positions[id(m)] for m in group]
        assert at == list(range(at[0], at[0] + len(at)))
    # A resend repeats an earlier version of its record with other content.
    firsts: dict[tuple[tuple[str, str], int], str] = {}
    for m in plan.messages:
        if m.role == "update":
            firsts.setdefault((m.record, m.version), m.message_id)
        if m.role == "resend":
            assert firsts[(m.record, m.version)] != m.message_id
