"""The open records at a shielded child's house (a sibling's, another refuge family's)
show where she is as plainly as hers would: `hub shield` lists them, and with
--household shields them with her, by the same authority, which is told of each and
may lift their shields; a neighbour in the postcode (another house), a record
elsewhere and one another authority shields are left as they are."""

from __future__ import annotations

from typing import Any

import asyncpg
import pytest

from hub import ingest, operations
from hub.config import Thresholds
from hub.db.connect import connect
from tests.factories import incoming, nhs, update

pytestmark = pytest.mark.integration
T = Thresholds()
HOUSE = {"lines": ["3 Harbour Lane"], "town": "Birmingham", "postcode": "B5 7QQ", "la": "330"}
SAME_HOUSE = {"lines": ["3 Harbour Ln"], "postcode": "b5 7qq", "la": "330"}  # written otherwise
NEXT_DOOR = {"lines": ["5 Harbour Lane"], "town": "Birmingham", "postcode": "B5 7QQ", "la": "330"}
ELSEWHERE = {"lines": ["8 Mill Street"], "postcode": "LS6 2BB", "la": "383"}


async def _index(conn: asyncpg.Connection) -> dict[str, str]:
    out = await ingest.process(conn, [
        incoming(update("la", "LA-1", nhs_number=nhs(1), address=HOUSE)),
        incoming(update("la", "LA-2", nhs_number=nhs(2), given_name="Oswin",
                        date_of_birth="2016-08-01", address=SAME_HOUSE)),
        incoming(update("la", "LA-3", nhs_number=nhs(3), given_name="Tamsin",
                        family_name="Verity", date_of_birth="2013-02-11", address=NEXT_DOOR)),
        incoming(update("la", "LA-4", nhs_number=nhs(4), given_name="Ptolemy",
                        date_of_birth="2010-10-10", address=ELSEWHERE)),
    ], T)
    assert [o.action for o in out] == ["create"] * 4
    return dict(zip(["her", "brother", "neighbour", "cousin"], [str(o.child_id) for o in out],
                    strict=True))


async def _shields(conn: asyncpg.Connection) -> dict[str, tuple[bool, str | None]]:
    return {str(r["child_id"]): (r["shielded"], r["shielding_authority"]) for r in
            await conn.fetch("SELECT child_id, shielded, shielding_authority FROM children")}


async def test_shielding_her_shields_the_open_records_at_her_house(database_url: str) -> None:
    conn = await connect(database_url)
    try:
        ids = await _index(conn)
        before = await conn.fetchval("SELECT max(id) FROM outbox")
        done = await operations.shield_record(conn, ids["her"], "330", "officer", "refuge",
                                              household=True)
        assert done.household == (ids["brother"],) and done.open_at_house == ()
        shields = await _shields(conn)
        assert shields[ids["her"]] == shields[ids["brother"]] == (True, "330")
        assert shields[ids["neighbour"]] == shields[ids["cousin"]] == (False, None)
        # Her authority is told of each, and no one else of either.
        told = [(r["routing_key"], r["body"]) for r in await conn.fetch(
            "SELECT routing_key, body FROM outbox WHERE id > $1 ORDER BY id", before)]
        assert sorted((k, b["child_id"]) for k, b in told) == sorted(
            [("la.330.child.shielded", ids["her"]), ("la.330.child.shielded", ids["brother"])])
        assert not any("open_at_same_house" in b for _, b in told)  # none left open
        # The whole record, to the authority that hides it (a probe: her address
        # reached the authority shielding her by no notification at all).
        assert {b["child"]["address"]["lines"][0] for _, b in told} == {
            "3 Harbour Lane", "3 Harbour Ln"}
        audit: Any = await conn.fetchrow(
            "SELECT actor, detail FROM audit_log WHERE action = 'shield' AND child_id = $1::uuid",
            ids["brother"])
        assert audit["actor"] == "officer" and ids["her"] in str(audit["detail"])
        # Both houses' addresses are protected now: his update there is linked into his
        # own (shielded) record; a new record there would go to a person.
        out = await ingest.process(conn, [incoming(update(
            "la", "LA-2", 2, nhs_number=nhs(2), given_name="Oswin", date_of_birth="2016-08-01",
            address=SAME_HOUSE))], T)
        assert (out[0].action, out[0].child_id) == ("link", ids["brother"])
        # The authority decides, but not his record open at her house while she is
        # hidden there (found by an independent probe: a duplicate of her, lifted,
        # told the refuge's council where she was): both, or neither.
        with pytest.raises(operations.OperationError, match="lives at the address of record"):
            await operations.unshield(conn, ids["brother"], "330", "officer", "not at risk")
        assert (await _shields(conn))[ids["brother"]] == (True, "330")
        before = await conn.fetchval("SELECT max(id) FROM outbox")
        lifted = await operations.unshield(conn, ids["brother"], "330", "officer", "moved on",
                                           household=True)
        assert lifted.household == (ids["her"],)
        shields = await _shields(conn)
        assert shields[ids["brother"]] == shields[ids["her"]] == (False, None)
        told = [(r["routing_key"], r["body"]) for r in await conn.fetch(
            "SELECT routing_key, body FROM outbox WHERE id > $1 ORDER BY id", before)]
        lifted_told = [b for k, b in told if k.endswith("unshielded")]
        assert sorted(k for k, _ in told if k.endswith("unshielded")) == [
            "la.330.child.unshielded"] * 2
        assert [b["shielded"] for b in lifted_told] == [False, False]  # it said True
        assert await conn.fetchval("SELECT count(*) FROM audit_log WHERE action = 'unshield'"
                                   " AND detail->>'with' = $1", ids["brother"]) == 1
        # Another authority's record at her house is left shielded by it.
        await operations.shield_record(conn, ids["brother"], "341", "officer", "his own reasons",
                                       household=True)
        shields = await _shields(conn)
        assert shields[ids["brother"]] == shields[ids["her"]] == (True, "341")
        with pytest.raises(operations.OperationError, match="another authority"):
            await operations.shield(conn, ids["her"], "330", "officer", "refuge")
    finally:
        await conn.close()


async def test_without_household_the_open_records_at_her_house_are_listed_not_changed(
    database_url: str,
) -> None:
    conn = await connect(database_url)
    try:
        ids = await _index(conn)
        versions = dict(await conn.fetch("SELECT child_id::text, version FROM children"))
        done = await operations.shield_record(conn, ids["her"], "330", "officer", "refuge")
        assert done.household == () and done.open_at_house == (ids["brother"],)
        # Her authority's notification names them.
        told = await conn.fetchval("SELECT body FROM outbox WHERE routing_key ="
                                   " 'la.330.child.shielded' ORDER BY id DESC LIMIT 1")
        assert told["child_id"] == ids["her"] and told["open_at_same_house"] == [ids["brother"]]
        audit: Any = await conn.fetchval(
            "SELECT detail FROM audit_log WHERE action = 'shield' AND child_id = $1::uuid",
            ids["her"])
        assert audit["open_at_same_house"] == [ids["brother"]]
        shields = await _shields(conn)
        assert shields[ids["her"]] == (True, "330")
        assert all(shields[ids[k]] == (False, None) for k in ("brother", "neighbour", "cousin"))
        after = dict(await conn.fetch("SELECT child_id::text, version FROM children"))
        assert {k: v for k, v in after.items() if k != ids["her"]} == {
            k: v for k, v in versions.items() if k != ids["her"]}
    finally:
        await conn.close()


async def test_without_a_postcode_the_house_is_said_not_searched(database_url: str) -> None:
    conn = await connect(database_url)
    try:
        out = await ingest.process(conn, [incoming(update(
            "la", "LA-1", nhs_number=nhs(1),
            address={"lines": ["3 Harbour Lane"], "town": "Birmingham", "la": "330"}))], T)
        done = await operations.shield_record(conn, str(out[0].child_id), "330", "officer",
                                              "refuge")
        assert done.house_unsearched and done.open_at_house == ()
        out = await ingest.process(conn, [incoming(update(
            "la", "LA-2", nhs_number=nhs(2), given_name="Oswin", family_name="Verity",
            date_of_birth="2016-08-01"))], T)
        assert out[0].action == "create"
        done = await operations.shield_record(conn, str(out[0].child_id), "330", "officer",
                                              "refuge")
        assert not done.house_unsearched
    finally:
        await conn.close()


async def test_shielding_her_again_changes_nothing_but_may_bring_the_household(
        database_url: str) -> None:
    """A second `hub shield` by her authority makes no version and no second
    child.shielded (found by a probe: each one did); with --household it still
    shields the open records at her house."""
    conn = await connect(database_url)
    try:
        ids = await _index(conn)
        first = await operations.shield_record(conn, ids["her"], "330", "officer", "refuge")
        assert not first.already and first.open_at_house == (ids["brother"],)
        before = await conn.fetchval("SELECT max(id) FROM outbox")
        again = await operations.shield_record(conn, ids["her"], "330", "officer", "again")
        assert again.already and again.version == first.version
        assert await conn.fetchval("SELECT max(id) FROM outbox") == before
        assert await conn.fetchval("SELECT count(*) FROM child_versions WHERE child_id ="
                                   " $1::uuid", ids["her"]) == first.version
        audited = await conn.fetchval(
            "SELECT detail FROM audit_log WHERE action = 'shield' AND child_id = $1::uuid"
            " ORDER BY id DESC LIMIT 1", ids["her"])
        assert audited["already_shielded"] is True
        # Another authority still may not; her own, with --household, brings her brother.
        with pytest.raises(operations.OperationError, match="another authority"):
            await operations.shield_record(conn, ids["her"], "383", "officer", "mine")
        house = await operations.shield_record(conn, ids["her"], "330", "officer", "house",
                                               household=True)
        assert house.already and house.household == (ids["brother"],)
        told = [(r["routing_key"], r["body"]["child_id"]) for r in await conn.fetch(
            "SELECT routing_key, body FROM outbox WHERE id > $1 ORDER BY id", before)]
        assert told == [("la.330.child.shielded", ids["brother"])]
    finally:
        await conn.close()
