"""A message id says "this message": a second delivery of the same message is a
no-op, but a different message that reuses an id already processed (a publisher
numbering per record instead of per message, a constant id) is kept as a dead
letter (`message_id_reused`), never dropped as a duplicate."""

from __future__ import annotations

import json

import pytest

from hub.config import Thresholds
from hub.db.connect import connect
from hub.ingest import Incoming, process
from hub.publishing import canonical_body
from tests.factories import update

pytestmark = pytest.mark.integration

T = Thresholds()


def _incoming(message_id: str, body: bytes) -> Incoming:
    return Incoming(message_id, "source.dwp", body)


async def test_a_reused_message_id_is_dead_lettered_not_dropped(database_url: str) -> None:
    first = update("dwp", "CB-1")
    later = update("dwp", "CB-1", 2, middle_names="Ivy")
    conn = await connect(database_url)
    try:
        [one] = await process(conn, [_incoming("m-1", canonical_body(first))], T)
        assert one.action == "create"
        # The same update again: the exact bytes, then other whitespace and key order.
        again = json.dumps(first, indent=2, sort_keys=True).encode()
        out = await process(conn, [_incoming("m-1", canonical_body(first)),
                                   _incoming("m-1", again)], T)
        assert [(o.action, o.reason) for o in out] == [("duplicate", "already_processed")] * 2
        assert await conn.fetchval("SELECT count(*) FROM parked") == 0

        # Another update, and an invalid body, under the same id: both kept for a person.
        invalid = b'{"source": "dwp", "source_record_id": "CB-9"}'
        out = await process(conn, [_incoming("m-1", canonical_body(later)),
                                   _incoming("m-1", invalid)], T)
        assert [(o.action, o.reason) for o in out] == [("dead", "message_id_reused")] * 2
        rows = await conn.fetch(
            "SELECT reason, source, source_record_id, message_id, raw FROM parked"
            " WHERE kind = 'dead' ORDER BY raw")
        assert [(r["reason"], r["message_id"]) for r in rows] == [
            ("message_id_reused", "m-1")] * 2
        assert {r["raw"] for r in rows} == {canonical_body(later).decode(), invalid.decode()}
        assert {r["source_record_id"] for r in rows} == {"CB-1", "CB-9"}
        # The record is still what the first message made of it.
        assert await conn.fetchval("SELECT version FROM children") == 1
        # Delivered again, each is the same dead letter, not a second one.
        out = await process(conn, [_incoming("m-1", canonical_body(later))], T)
        assert [(o.action, o.reason) for o in out] == [("dead", "message_id_reused")]
        assert await conn.fetchval("SELECT count(*) FROM parked") == 2
    finally:
        await conn.close()


async def test_two_messages_under_one_id_in_one_batch(database_url: str) -> None:
    conn = await connect(database_url)
    try:
        out = await process(conn, [
            _incoming("m-2", canonical_body(update("dwp", "CB-2"))),
            _incoming("m-2", canonical_body(update("dwp", "CB-3", given_name="Wren"))),
        ], T)
        assert [(o.action, o.reason) for o in out] == [
            ("create", "no_match"), ("dead", "message_id_reused")]
    finally:
        await conn.close()


async def test_ids_processed_before_digests_were_kept_stay_duplicates(database_url: str) -> None:
    conn = await connect(database_url)
    try:
        await conn.execute("INSERT INTO processed_messages (message_id, outcome)"
                           " VALUES ('m-old', 'create:no_match')")
        [out] = await process(conn, [_incoming("m-old", canonical_body(update("dwp", "X")))], T)
        assert (out.action, out.reason) == ("duplicate", "already_processed")
    finally:
        await conn.close()
