"""A duplicate of her made before she was shielded (registered at the refuge under a new
surname, with an NHS number not hers) holds what it was given open, the refuge
included. Shielding her asks her authority about it once: `hub shield` names the open
records that could be her (rule 1's test, mirrored) in its child.shielded notification,
in the audit and on the command line, and changes none of them."""

from __future__ import annotations

from typing import Any

import asyncpg
import pytest

from hub import ingest, operations
from hub.config import Thresholds
from hub.db.connect import connect
from tests.factories import incoming, nhs, update
from tests.helpers import hub

pytestmark = pytest.mark.integration
T = Thresholds()
REFUGE = {"lines": ["3 Harbour Lane"], "town": "Birmingham", "postcode": "B5 7QQ", "la": "330"}
# Her street in Leeds, another house: found by her postcode's key, nothing like her.
HER_STREET = {"lines": ["40 Orchard Row"], "town": "Leeds", "postcode": "LS6 1AA", "la": "383"}


async def _index(conn: asyncpg.Connection) -> dict[str, str]:
    out = await ingest.process(conn, [
        incoming(update("la", "LA-1")),  # her: Marigold Quenby, 2014-03-09, her NHS number
        # Her, at the refuge under her mother's new partner's surname, a sibling's NHS
        # number copied by a clerk: nothing ties it to her, so it was created open.
        incoming(update("dwp", "CB-1", nhs_number=nhs(7), family_name="Stanway",
                        address=REFUGE)),
        incoming(update("la", "LA-2", nhs_number=nhs(8), given_name="Ptolemy",
                        family_name="Abara", sex="male", address=HER_STREET)),
        # Her name, born years apart: not her by rule 1.
        incoming(update("la", "LA-3", nhs_number=nhs(9), date_of_birth="2009-11-20",
                        address=HER_STREET)),
    ], T)
    assert [o.action for o in out] == ["create"] * 4, out
    return dict(zip(["her", "duplicate", "neighbour", "namesake"],
                    [str(o.child_id) for o in out], strict=True))


async def _versions(conn: asyncpg.Connection) -> dict[str, tuple[int, bool]]:
    return {r["child_id"]: (r["version"], r["shielded"]) for r in await conn.fetch(
        "SELECT child_id::text, version, shielded FROM children")}


async def test_shielding_her_names_the_open_records_that_could_be_her(database_url: str) -> None:
    conn = await connect(database_url)
    try:
        ids = await _index(conn)
        found = await conn.fetchval(
            "SELECT count(DISTINCT child_id) FROM block_keys WHERE child_id <> $1::uuid AND key"
            " = ANY(SELECT key FROM block_keys WHERE child_id = $1::uuid)", ids["her"])
        assert found >= 2  # the neighbour shares a key with her, and is still not named
        before = await _versions(conn)
        last = await conn.fetchval("SELECT max(id) FROM outbox")
        done = await operations.shield_record(conn, ids["her"], "330", "officer", "refuge",
                                              thresholds=T)
        assert done.could_be_her == (ids["duplicate"],) and done.could_be_her_count == 1
        # Nothing in them is changed: her authority decides (shield it, or not her).
        after = await _versions(conn)
        assert after[ids["her"]] == (before[ids["her"]][0] + 1, True)
        assert {k: v for k, v in after.items() if k != ids["her"]} == {
            k: v for k, v in before.items() if k != ids["her"]}
        # Her authority alone is told, by ids only.
        told = [(r["routing_key"], r["body"]) for r in await conn.fetch(
            "SELECT routing_key, body FROM outbox WHERE id > $1 ORDER BY id", last)]
        assert [k for k, _ in told] == ["la.330.child.shielded"]
        body = told[0][1]
        assert body["open_could_be_her"] == [ids["duplicate"]]
        assert body["open_could_be_her_count"] == 1
        audit: Any = await conn.fetchval(
            "SELECT detail FROM audit_log WHERE action = 'shield' AND child_id = $1::uuid",
            ids["her"])
        assert audit["open_could_be_her"] == [ids["duplicate"]]
    finally:
        await conn.close()


async def test_the_duplicate_shielded_with_her_is_no_longer_named(database_url: str) -> None:
    conn = await connect(database_url)
    try:
        ids = await _index(conn)
        await operations.shield_record(conn, ids["duplicate"], "330", "officer", "refuge",
                                       thresholds=T)
        done = await operations.shield_record(conn, ids["her"], "330", "officer", "refuge",
                                              thresholds=T)
        assert done.could_be_her == () and done.could_be_her_count == 0
        body = await conn.fetchval("SELECT body FROM outbox WHERE routing_key ="
                                   " 'la.330.child.shielded' ORDER BY id DESC LIMIT 1")
        assert body["child_id"] == ids["her"] and "open_could_be_her" not in body
    finally:
        await conn.close()


async def test_hub_shield_prints_them(database_url: str, hub_env: dict[str, str]) -> None:
    conn = await connect(database_url)
    try:
        ids = await _index(conn)
    finally:
        await conn.close()
    proc = hub(hub_env, "shield", ids["her"], "--authority", "330", "--by", "officer")
    assert ids["duplicate"] in proc.stderr and "could be this child" in proc.stderr
    assert ids["neighbour"] not in proc.stderr + proc.stdout
    assert ids["namesake"] not in proc.stderr + proc.stdout
    # Ids only: none of her details, nor the duplicate's, on the command line.
    for detail in ("Marigold", "Quenby", "Stanway", "2014-03-09", "B5 7QQ", nhs(1), nhs(7)):
        assert detail not in proc.stderr + proc.stdout
