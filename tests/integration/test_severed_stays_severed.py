"""A severed record placed again keeps its two identities apart: her new family
name does not keep her birth name as a former one (an independent probe saw the
birth surname come back into the adopted child's record, open to every export)."""

from __future__ import annotations

import pytest

from hub import operations as ops
from hub.config import Thresholds
from hub.db.connect import connect
from hub.ingest import process
from tests.factories import incoming, nhs, update

pytestmark = pytest.mark.integration

T = Thresholds()


async def test_a_severed_record_takes_no_former_name(database_url: str) -> None:
    conn = await connect(database_url)
    try:
        [her] = await process(conn, [incoming(update("la", "LA-1"))], T)
        assert her.child_id is not None
        await ops.sever(conn, her.child_id, "383", "la-383", "adoption")
        adopted = update("la", "LA-1", 2, nhs_number=nhs(5), family_name="Ashdown",
                         former_family_names=["Quenby"])
        [item] = await process(conn, [incoming(adopted)], T)
        assert (item.action, item.reason) == ("review", "severed_identity")
        assert item.parked_id is not None
        await ops.resolve(conn, item.parked_id, "link", her.child_id, "la-383", None, T,
                          acting_for="383")
        record = await conn.fetchval("SELECT record FROM children WHERE child_id = $1::uuid",
                                     her.child_id)
        assert record["family_name"] == "Ashdown" and record["nhs_number"] == nhs(5)
        assert "former_family_names" not in record or record["former_family_names"] == []
    finally:
        await conn.close()


async def test_the_old_identitys_update_does_not_show_the_new_one(database_url: str) -> None:
    """The birth family's update, with her old NHS number, waits as
    `severed_identity` beside the record that now carries her new identity: only
    the authority shielding that record may see it listed (a probe read her new name
    and number off it as any operator)."""
    from hub.review_view import show
    from hub.shielding import Shield

    conn = await connect(database_url)
    try:
        [her] = await process(conn, [incoming(update("la", "LA-1"))], T)
        assert her.child_id is not None
        await ops.sever(conn, her.child_id, "383", "la-383", "adoption")
        [item] = await process(conn, [incoming(update("gp", "G-1", given_name="Marigold"))], T)
        assert (item.action, item.reason) == ("review", "severed_identity")
        row = await conn.fetchrow("SELECT * FROM parked WHERE id = $1::uuid", item.parked_id)
        assert [c["child_id"] for c in row["candidates"]] == [her.child_id]
        assert ops.review_line(row, {})["candidates"] == []
        assert her.child_id not in await show(conn, str(item.parked_id), None)
        # Shielded (as an adoption placement is), her authority sees it.
        await ops.shield(conn, her.child_id, "383", "la-383", "placement")
        shields = {her.child_id: Shield(True, "383")}
        assert ops.review_line(row, shields)["candidates"] == []
        assert her.child_id in await show(conn, str(item.parked_id), "383", "la-383")
        assert her.child_id not in await show(conn, str(item.parked_id), "330", "la-330")
    finally:
        await conn.close()


async def test_no_operator_joins_the_two_identities_again(database_url: str) -> None:
    """Found by an independent probe: any operator's `review resolve --link` put the
    birth family's update, with her invalidated NHS number, back into her severed
    record (her old number in every export from then on, and every later update of
    that source linked there automatically). Such an update is rejected, whoever
    acts; only the authority that severed a record may place another update in it,
    or say that one which could be her former identity is another child."""
    conn = await connect(database_url)
    try:
        [her] = await process(conn, [incoming(update("la", "LA-1"))], T)
        assert her.child_id is not None
        await ops.sever(conn, her.child_id, "381", "la-381", "adoption")
        # Her old identity, from a source that has not heard: a person decides.
        [old] = await process(conn, [incoming(update("gp", "G-1"))], T)
        assert (old.action, old.reason) == ("review", "severed_identity")
        assert old.parked_id is not None
        for action, target, acting in (("link", her.child_id, None),
                                       ("link", her.child_id, "381"),
                                       ("create", None, "381")):
            with pytest.raises(ops.OperationError, match="invalidated"):
                await ops.resolve(conn, old.parked_id, action, target, "op-1", None, T,
                                  acting_for=acting)
        # Her former identity without the number: another child only on the word of
        # the authority that severed it.
        [alike] = await process(conn, [incoming(update("gp", "G-2", nhs_number=None))], T)
        assert (alike.action, alike.reason) == ("review", "severed_identity")
        assert alike.parked_id is not None
        with pytest.raises(ops.OperationError, match=r"severed by 381 .*--authority 381"):
            await ops.resolve(conn, alike.parked_id, "create", None, "op-1", None, T)
        with pytest.raises(ops.OperationError, match="only the authority responsible for record"):
            await ops.resolve(conn, alike.parked_id, "link", her.child_id, "op-1", None, T,
                              acting_for="383")
        record = await conn.fetchval("SELECT record FROM children WHERE child_id = $1::uuid",
                                     her.child_id)
        assert "nhs_number" not in record and await conn.fetchval(
            "SELECT count(*) FROM children") == 1
        created = await ops.resolve(conn, alike.parked_id, "create", None, "la-381", None, T,
                                    acting_for="381")
        assert created.child_id not in (None, her.child_id)
        await ops.resolve(conn, old.parked_id, "reject", None, "op-1", None, T)
    finally:
        await conn.close()


async def test_an_item_parked_before_the_sever_is_placed_in_it_by_its_authority_only(
        database_url: str) -> None:
    conn = await connect(database_url)
    try:
        [her] = await process(conn, [incoming(update("la", "LA-1", nhs_number=None))], T)
        [near] = await process(conn, [incoming(update(
            "dwp", "CB-1", nhs_number=None, given_name="Marigolde",
            address={"lines": ["4 Vale Road"], "postcode": "LS9 9ZZ", "la": "383"}))], T)
        assert (near.action, near.reason) == ("review", "possible_match")
        assert near.parked_id is not None and her.child_id is not None
        await ops.sever(conn, her.child_id, "381", "la-381", "adoption")
        with pytest.raises(ops.OperationError, match=r"--authority 381"):
            await ops.resolve(conn, near.parked_id, "link", her.child_id, "op-1", None, T)
        done = await ops.resolve(conn, near.parked_id, "link", her.child_id, "la-381", None,
                                 T, acting_for="381")
        assert done.child_id == her.child_id
    finally:
        await conn.close()


async def test_a_shielded_severed_record_beside_a_demographic_match_is_shown_to_no_one_else(
    database_url: str,
) -> None:
    """Shielded, then severed: the birth family's update without an NHS number waits
    as `severed_identity`, not `shielded_candidate`, so no operator but her
    authority reads her new identity beside it (an independent probe read "Birch |
    Oakley" side by side); a link refused says nothing of why (that she was adopted)."""
    from hub.review_view import show

    conn = await connect(database_url)
    try:
        [her] = await process(conn, [incoming(update("la", "LA-1"))], T)
        assert her.child_id is not None
        await ops.shield(conn, her.child_id, "383", "la-383", "placement")
        await ops.sever(conn, her.child_id, "383", "la-383", "adoption")
        birth = update("bfam", "B-1", nhs_number=None)
        [item] = await process(conn, [incoming(birth)], T)
        assert (item.action, item.reason) == ("review", "severed_identity")
        row = await conn.fetchrow("SELECT * FROM parked WHERE id = $1::uuid", item.parked_id)
        assert ops.review_line(row, {})["candidates"] == []
        assert her.child_id not in await show(conn, str(item.parked_id), None)
        with pytest.raises(ops.OperationError) as refused:
            await ops.resolve(conn, str(item.parked_id), "link", her.child_id, "natop", None, T)
        assert "sever" not in str(refused.value) and "adopt" not in str(refused.value)
    finally:
        await conn.close()
