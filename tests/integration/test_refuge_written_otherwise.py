"""Her refuge written another way (on one line, without its postcode, or under a
mistyped one) is still hers: another child's update there goes to a person, not
into an open record. Found by an independent black-box probe: each was created
open and told to the refuge's council."""

from __future__ import annotations

import pytest

from hub import operations as ops
from hub.config import Thresholds
from hub.db.connect import connect
from hub.ingest import process
from tests.factories import incoming, nhs, update

pytestmark = pytest.mark.integration

T = Thresholds()
REFUGE = {"lines": ["Flat 2", "14 Willow Court"], "town": "Maidstone", "postcode": "ME15 6TT",
          "la": "886"}


@pytest.mark.parametrize("written", [
    {"lines": ["Flat 2, 14 Willow Court"], "town": "Maidstone", "la": "886"},
    {"lines": ["14 Willow Court, Flat 2"], "town": "Maidstone", "postcode": None, "la": "886"},
    {"lines": ["Flat 2", "14 Willow Court"], "town": "Maidstone", "postcode": "ME15 6TU",
     "la": "886"},
], ids=["one_line", "parts_swapped", "postcode_mistyped"])
async def test_another_childs_update_at_her_refuge_written_otherwise_waits(
    database_url: str, written: dict[str, object],
) -> None:
    conn = await connect(database_url)
    try:
        [her] = await process(conn, [incoming(update("pds", "P-1", address=REFUGE))], T)
        assert her.child_id is not None
        await ops.shield(conn, her.child_id, "886", "la-886", "refuge")
        [other] = await process(conn, [incoming(update(
            "edu", "E-9", nhs_number=nhs(7), given_name="Tobias", family_name="Wren",
            date_of_birth="2012-02-02", sex="male", address=written, carers=[]))], T)
        assert (other.action, other.reason) == ("review", "shielded_address")
        assert await conn.fetchval("SELECT count(*) FROM children") == 1
        assert await conn.fetchval("SELECT count(*) FROM outbox WHERE routing_key NOT LIKE"
                                   " 'la.886.%'") == 0
    finally:
        await conn.close()
