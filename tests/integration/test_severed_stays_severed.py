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
