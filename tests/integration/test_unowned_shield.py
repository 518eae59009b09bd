"""A record restricted by its source with no council in charge (a FHIR Patient
marked R, no local authority known): no council may lift its shield until one
takes it on, and only a council the hub knows may, with a reason (independent
probes: any LA number could, and was sent her address, then lifted the shield)."""

from __future__ import annotations

import pytest

from hub import ingest, operations
from hub.config import Thresholds
from hub.db.connect import connect
from hub.operations import OperationError
from tests.factories import incoming, nhs, update

pytestmark = pytest.mark.integration


async def test_an_unowned_shield_is_taken_on_before_it_is_lifted(database_url: str) -> None:
    conn = await connect(database_url)
    try:
        restricted = update("pds", "P-1", nhs_number=nhs(1), address={
            "lines": ["3 Hush Lane"], "town": "Bristol", "postcode": "BS8 4QQ"})
        restricted["restricted"] = True
        [out] = await ingest.process(conn, [incoming(restricted)], Thresholds())
        row = await conn.fetchrow("SELECT shielded, shielding_authority FROM children"
                                  " WHERE child_id = $1::uuid", out.child_id)
        assert (row["shielded"], row["shielding_authority"]) == (True, None)
        with pytest.raises(OperationError, match="no authority holds this shield"):
            await operations.unshield(conn, out.child_id, "201", "op", None)
        assert await conn.fetchval("SELECT count(*) FROM outbox") == 0
        # Taken on only by a council the hub knows, with a reason: it is sent her record.
        with pytest.raises(OperationError, match="not known to the hub"):
            await operations.shield(conn, out.child_id, "000", "mallory", "mine")
        await conn.execute("INSERT INTO councils (la) VALUES ('801')")
        with pytest.raises(OperationError, match="needs --reason"):
            await operations.shield(conn, out.child_id, "801", "op", None)
        assert await conn.fetchval("SELECT count(*) FROM outbox") == 0
        await operations.shield(conn, out.child_id, "801", "op", "her council")
        await operations.unshield(conn, out.child_id, "801", "op", None)
        assert not await conn.fetchval(
            "SELECT shielded FROM children WHERE child_id = $1::uuid", out.child_id)
    finally:
        await conn.close()
