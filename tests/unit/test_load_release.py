"""Once a chunk is committed, a bulk load keeps only what the chunk still being written
holds (hub.bulk.state.LoadState.release): memory grows with a chunk, not the load."""

from __future__ import annotations

from datetime import UTC, datetime

from hub.batch import ChildRow, Writes
from hub.bulk.state import LoadState
from hub.bulk.write import snapshot
from hub.config import Thresholds
from hub.decide import SourceLink


def _row(cid: str) -> ChildRow:
    return ChildRow(cid, 1, {"given_name": "Odessa", "family_name": "Quillby"})


def test_only_the_chunk_being_written_is_kept() -> None:
    state = LoadState(thresholds=Thresholds(), now=datetime.now(UTC))
    # "a" was made by the committed chunk, "r" read from the index and not written,
    # "b" made by the chunk being written and "a2" changed by it.
    for cid in ("a", "r", "b", "a2"):
        state.children[cid] = _row(cid)
        state.key_index.add(f"S:{cid}", cid)
        state.key_index.add("P:LS42AB", cid)  # everyone at one postcode
        state.links[("la", f"LA-{cid}")] = SourceLink(cid, 1)
    writing = Writes()
    for cid in ("b", "a2"):
        writing.children[cid] = state.children[cid]
        writing.links[("la", f"LA-{cid}")] = ("la", f"LA-{cid}", cid, 1, "load")

    state.release(snapshot(writing, {}, state.thresholds))

    assert set(state.children) == {"b", "a2"}
    assert set(state.key_index.ids("P:LS42AB")) == {"b", "a2"}
    assert "S:a" not in state.key_index and "S:r" not in state.key_index
    assert set(state.key_index.ids("S:a2")) == {"a2"}
    assert set(state.links) == {("la", "LA-b"), ("la", "LA-a2")}
