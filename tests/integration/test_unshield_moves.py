"""A child unshielded away from where she was open: the council that held her as an
open record when she was shielded is told she moved out (migration 0027), without
her address. Only her authority hears anything while she is shielded, so nothing
else told it she left (an independent probe: four such councils in a chaos run kept
her on their books at the old address)."""

from __future__ import annotations

import pytest

from hub import ingest, operations
from hub.config import Thresholds
from hub.db.connect import connect
from tests.factories import incoming, update

pytestmark = pytest.mark.integration
T = Thresholds()


def _at(la: str, line: str, postcode: str, version: int) -> dict[str, object]:
    return update("dwp", "K-1", version, address={"lines": [line], "town": "Leeds",
                                                  "postcode": postcode, "la": la})


async def _told(conn, since: int) -> list[tuple[str, dict[str, object]]]:
    return [(r["routing_key"], r["body"]) for r in await conn.fetch(
        "SELECT routing_key, body FROM outbox WHERE id > $1 ORDER BY id", since)]


@pytest.mark.parametrize("authority", ["205", "201"], ids=["another-council", "her-own"])
async def test_the_council_she_was_open_in_is_told_she_moved_out(
    database_url: str, authority: str,
) -> None:
    conn = await connect(database_url)
    try:
        [out] = await ingest.process(conn, [incoming(_at("201", "12 Orchard Row", "LS6 1AA",
                                                         1))], T)
        cid = out.child_id
        await operations.shield(conn, cid, authority, "officer", "refuge")
        await ingest.process(conn, [incoming(_at("203", "4 Mill Lane", "LS9 2BB", 2))], T)
        since = await conn.fetchval("SELECT max(id) FROM outbox")
        await operations.unshield(conn, cid, authority, "officer", "safe now")
        told = await _told(conn, since)
        events = {(key, body["event"]) for key, body in told}
        assert ("la.201.child.moved_out", "child.moved_out") in events
        assert ("la.203.child.moved_in", "child.moved_in") in events
        [moved_out] = [b for k, b in told if k == "la.201.child.moved_out"]
        assert "address" not in moved_out["child"] and "carers" not in moved_out["child"]
        # Shielded and unshielded where she lives: her council held her all along.
        await operations.shield(conn, cid, authority, "officer", "again")
        since = await conn.fetchval("SELECT max(id) FROM outbox")
        await operations.unshield(conn, cid, authority, "officer", "safe again")
        assert not [k for k, _ in await _told(conn, since) if k.endswith("moved_out")]
    finally:
        await conn.close()
