"""A batch keeps the facts it made for an update only while nothing they were made
from has changed: a child written, read or forgotten makes them again."""

from __future__ import annotations

from datetime import UTC, datetime

from hub.batch import BatchState, ChildRow
from hub.config import Thresholds
from hub.match.blocking import index_keys
from hub.validate import check
from schemas.canonical import CanonicalUpdate
from tests.factories import child, nhs, update


def _update(rid: str, **over: object) -> CanonicalUpdate:
    got = check(update("dwp", rid, **over))
    assert isinstance(got, CanonicalUpdate)
    return got


def _state() -> BatchState:
    state = BatchState(thresholds=Thresholds(), now=datetime.now(UTC))
    record = child(nhs_number=nhs(7))
    state.children["c1"] = ChildRow("c1", 1, record)
    for k in index_keys(record):
        state.key_index.setdefault(k, set()).add("c1")
    return state


def _ids(state: BatchState, u: CanonicalUpdate) -> set[str]:
    return {c.child_id for c in state.facts(u, state.view(u)[0]).candidates}


def test_facts_are_kept_until_the_batch_changes() -> None:
    state = _state()
    u = _update("CB-1", nhs_number=None)
    first = state.facts(u, state.view(u)[0])
    assert {c.child_id for c in first.candidates} == {"c1"}
    assert state.facts(u, state.view(u)[0]) is first  # nothing changed: the same facts

    # An earlier update of the batch creates a child that shares its keys.
    other = _update("CB-2", nhs_number=nhs(8), given_name="Hollis", sex="male")
    created = state.apply(other, state.view(other)[0], None, "m-2", "pipeline", "no_match")
    assert _ids(state, u) == {"c1", created}

    # Forgetting the children read but not written drops c1 from the facts.
    state.forget_unwritten()
    assert _ids(state, u) == {created}


def test_a_partial_read_and_a_changed_row_are_seen() -> None:
    state = _state()
    u = _update("CB-1", nhs_number=nhs(7))
    assert not state.facts(u, state.view(u)[0]).partial
    state.partial.add(id(u))
    state.changed()
    assert state.facts(u, state.view(u)[0]).partial
    state.children["c9"] = ChildRow("c9", 1, child(nhs_number=nhs(9)), shielded=True)
    state.key_index.setdefault(f"n:{nhs(7)}", set()).add("c9")
    state.changed()
    assert _ids(state, u) == {"c1", "c9"}
