"""An operator's decision never makes a second record holding an NHS number: on a
`conflicting_identity` item (a source's record now carries another record's NHS
number), creating a record, or linking to any record but the one holding the
number, is refused with that record named."""

from __future__ import annotations

import pytest

from hub import operations as ops
from hub.config import Thresholds
from hub.db.connect import connect
from hub.ingest import process
from tests.factories import incoming, nhs, update

pytestmark = pytest.mark.integration

T = Thresholds()


async def test_no_decision_gives_a_second_record_the_same_nhs_number(
    database_url: str,
) -> None:
    conn = await connect(database_url)
    try:
        [holder] = await process(conn, [incoming(update("la-leeds", "LA-1"))], T)
        [linked] = await process(conn, [incoming(update(
            "dwp", "CB-1", nhs_number=nhs(2), given_name="Peregrine", family_name="Astley",
            date_of_birth="2012-06-01"))], T)
        assert (holder.action, linked.action) == ("create", "create")
        # dwp's record CB-1 now carries the first child's NHS number and details.
        [item] = await process(conn, [incoming(update("dwp", "CB-1", 2))], T)
        assert (item.action, item.reason) == ("review", "conflicting_identity")
        assert item.parked_id is not None
        for action, target in (("create", None), ("link", linked.child_id)):
            with pytest.raises(ops.OperationError) as refused:
                await ops.resolve(conn, item.parked_id, action, target, "op-1", None, T)
            assert f"record {holder.child_id} holds the update's NHS number" in str(
                refused.value)
        assert await conn.fetchval("SELECT count(*) FROM children") == 2
        assert await conn.fetchval("SELECT status FROM parked") == "open"
        # Linked to the record holding it, it is placed.
        done = await ops.resolve(conn, item.parked_id, "link", holder.child_id, "op-1", None, T)
        assert done.child_id == holder.child_id
        assert await conn.fetchval(
            "SELECT count(*) FROM children WHERE record->>'nhs_number' = $1", nhs(1)) == 1
    finally:
        await conn.close()
