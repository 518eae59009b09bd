"""The pipeline reads candidates without their records (store.load slim): it reads
the records it will likely write, and any other it turns out to write is fetched
before anything of the update is applied."""

from __future__ import annotations

from typing import Any

import pytest

from hub import ingest, operations
from hub.batch import StoredRecord
from hub.config import Thresholds
from hub.db import store
from hub.db.connect import connect
from hub.validate import check
from schemas.canonical import CanonicalUpdate
from tests.factories import incoming, moved, nhs, update

pytestmark = pytest.mark.integration
T = Thresholds()



async def _child_and_twin(conn: Any, **first: Any) -> tuple[str, str]:
    """A child (NHS number 1) and its twin brother (NHS number 3), indexed."""
    out = await ingest.process(conn, [
        incoming(update("la", "LA-1", nhs_number=nhs(1), **first)),
        incoming(update("la", "LA-2", nhs_number=nhs(3), given_name="Hollis", sex="male")),
    ], T)
    child, twin = (o.child_id for o in out)
    assert child and twin
    return child, twin


def _canonical(u: dict) -> CanonicalUpdate:
    got = check(u)
    assert isinstance(got, CanonicalUpdate)
    return got


async def test_a_link_target_read_without_its_record_is_fetched_then_applied(
    database_url: str,
) -> None:
    conn = await connect(database_url)
    try:
        child, twin = await _child_and_twin(conn, middle_names="Aurelio")
        # No NHS number: a demographic match, which reads every candidate.
        carers = [{"name": "Rowan Quenby", "relationship": "mother", "phone": "07700 900222"}]
        news = _canonical(update("pds", "P-1", nhs_number=None, carers=carers))

        state = await store.load(conn, [news], T, slim=True)
        rows = state.children
        assert isinstance(rows[twin].record, StoredRecord) and rows[twin].record.unread
        assert not rows[child].record.unread  # it scores high enough to be linked

        rows[child].record = StoredRecord(None, child)  # as if the guess had missed
        outcome = await store.handle(conn, state, news, "m-pds-1", "{}")
        assert (outcome.action, outcome.reason, outcome.child_id) == (
            "link", "demographic_match", child)
        merged = state.writes.children[child].record
        # Merged into the record as stored, not into nothing.
        assert merged["middle_names"] == "Aurelio"
        assert merged["carers"] == carers
    finally:
        await conn.close()


async def test_an_update_tied_by_nhs_number_reads_only_its_child_and_protected_ones(
    database_url: str,
) -> None:
    conn = await connect(database_url)
    try:
        child, twin = await _child_and_twin(conn)
        # Its NHS number is the child's; its names are the twin's.
        news = _canonical(moved(update("pds", "P-1", nhs_number=nhs(1), given_name="Hollis",
                                       sex="male")))
        state = await store.load(conn, [news], T, slim=True)
        assert twin not in state.children  # an ordinary candidate: not read
        assert not state.children[child].record.unread
        outcome = await store.handle(conn, state, news, "m-pds-1", "{}")
        assert (outcome.action, outcome.reason, outcome.child_id) == (
            "link", "nhs_number", child)

        # Shielded, the twin is read beside the tie, and a person decides.
        await operations.shield(conn, twin, "383", "op", "refuge")
        state = await store.load(conn, [news], T, slim=True)
        assert state.children[twin].shielded
        outcome = await store.handle(conn, state, news, "m-pds-1", "{}")
        assert (outcome.action, outcome.reason) == ("review", "shielded_candidate")
        shown = {c["child_id"] for c in state.writes.parked[0]["candidates"]}
        assert shown == {child, twin}
    finally:
        await conn.close()


async def test_a_tie_read_partially_reads_every_candidate_when_the_batch_changes_it(
    database_url: str,
) -> None:
    conn = await connect(database_url)
    try:
        out = await ingest.process(conn, [incoming(update("la", "LA-1", nhs_number=nhs(1)))], T)
        child = out[0].child_id
        # One batch: a child restricted at origin (shielded on arrival) with the same
        # date of birth and family name, then an update tied to the indexed child by
        # NHS number. The tie was read before the shielded child existed; deciding it
        # afterwards, the rules need every candidate and a person decides.
        restricted = update("pds", "P-7", nhs_number=nhs(3), given_name="Hollis", sex="male")
        restricted["restricted"] = True
        out = await ingest.process(conn, [
            incoming(restricted),
            incoming(moved(update("dwp", "CB-1", nhs_number=nhs(1), given_name="Hollis",
                                  sex="male"))),
        ], T)
        assert out[0].action == "create"
        assert (out[1].action, out[1].reason) == ("review", "shielded_candidate")
        shown = await conn.fetchval(
            "SELECT candidates FROM parked WHERE source_record_id = 'CB-1'")
        assert {c["child_id"] for c in shown} == {child, out[0].child_id}
    finally:
        await conn.close()


async def test_a_record_changed_since_the_candidates_were_read_is_taken_as_it_is_now(
    database_url: str,
) -> None:
    conn = await connect(database_url)
    try:
        _, twin = await _child_and_twin(conn)
        state = await store.load(conn, [_canonical(update("pds", "P-1", nhs_number=None))],
                                 T, slim=True)
        row = state.children[twin]
        assert (row.version, row.shielded) == (1, False)
        await operations.shield(conn, twin, "383", "op", "refuge")  # another transaction
        await store.fetch_records(conn, state, [twin])
        assert (row.version, row.shielded, row.authority) == (2, True, "383")
        assert row.normal_form.nhs == nhs(3)
    finally:
        await conn.close()


async def test_a_batch_read_in_chunks_sees_what_its_earlier_chunks_wrote(
    database_url: str, monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(ingest, "LOAD_CHUNK", 2)
    conn = await connect(database_url)
    try:
        out = await ingest.process(conn, [incoming(update("la", "LA-9", nhs_number=nhs(9),
                                                       given_name="Ottilie"))], T)
        indexed = out[0].child_id
        # One batch of three chunks: a new child, then (a chunk later) its next
        # version and another source about it, then the indexed child twice.
        batch = [
            incoming(update("dwp", "CB-1", nhs_number=nhs(1))),
            incoming(update("pds", "P-9", nhs_number=nhs(9), given_name="Ottilie")),
            incoming(update("dwp", "CB-1", version=2, nhs_number=nhs(1), middle_names="Aurelio")),
            incoming(update("dfe", "D-1", nhs_number=None)),
            incoming(moved(update("pds", "P-9", version=2, nhs_number=nhs(9),
                               given_name="Ottilie"))),
            incoming(update("dwp", "CB-1", version=2, nhs_number=nhs(1), middle_names="Aurelio")),
        ]
        out = await ingest.process(conn, batch, T)
        new = out[0].child_id
        assert [(o.action, o.reason, o.child_id) for o in out] == [
            ("create", "no_match", new), ("link", "nhs_number", indexed),
            ("link", "source_link", new), ("link", "demographic_match", new),
            ("link", "source_link", indexed), ("duplicate", "already_processed", None)]
        version, record = await conn.fetchrow(
            "SELECT version, record FROM children WHERE child_id = $1", new)
        assert version == 2 and record["middle_names"] == "Aurelio"
        assert await conn.fetchval("SELECT count(*) FROM children") == 2
        moved_to = await conn.fetchval(
            "SELECT record->'address'->>'postcode' FROM children WHERE child_id = $1", indexed)
        assert moved_to == "B5 7QQ"
    finally:
        await conn.close()


async def test_a_batch_leaves_no_prepared_updates_behind(database_url: str) -> None:
    from hub.match import compare

    conn = await connect(database_url)
    try:
        batch = [incoming(update("la", f"LA-{i}", nhs_number=nhs(i), given_name=f"Name{i}"))
                 for i in range(1, 6)]
        out = await ingest.process(conn, batch, T)
        assert [o.action for o in out] == ["create"] * 5
        # Blocking and scoring shared the cache during the batch; a worker's memory
        # must not grow with every update it has ever seen.
        assert compare._prepare_fp.cache_info().currsize == 0
    finally:
        await conn.close()

