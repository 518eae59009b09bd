"""A source record that first described one child and later describes another
(a source reusing its record id): its link ties the update to the first child's
record only while nothing says it is now someone else. It wrote a shielded child's
NHS number, new refuge and carer into another child's open record and told two
councils of the "move" (found by an adversarial review)."""

from __future__ import annotations

import pytest

from hub import ingest
from hub import operations as ops
from hub.config import Thresholds
from hub.db.connect import connect
from tests.factories import incoming, moved, nhs, update

pytestmark = pytest.mark.integration
T = Thresholds()
REFUGE = {"lines": ["1 Quay Street"], "town": "Liverpool", "postcode": "L1 0AA", "la": "341"}
MOTHER = [{"name": "Rowan Quenby", "relationship": "mother", "phone": "07700 900999"}]


@pytest.mark.parametrize("nhs_number", [nhs(1), None], ids=["her_nhs_number", "no_nhs_number"])
async def test_a_reused_source_record_never_carries_a_shielded_child_into_another_record(
    database_url: str, nhs_number: str | None
) -> None:
    conn = await connect(database_url)
    try:
        out = await ingest.process(
            conn, [incoming(moved(update("la", "LA-1", nhs_number=nhs(1))))], T)
        her = out[0].child_id
        await ops.shield(conn, her, "330", "officer", "refuge")
        out = await ingest.process(conn, [incoming(update(
            "dwp", "CB-7", nhs_number=None, given_name="Tobias", family_name="Marsh",
            date_of_birth="2012-06-20", sex="male", carers=[]))], T)
        other = out[0].child_id
        assert other is not None
        await conn.execute("DELETE FROM outbox")
        # Version 2 of dwp's CB-7 is about her, at a refuge the index does not know.
        out = await ingest.process(conn, [incoming(update(
            "dwp", "CB-7", 2, nhs_number=nhs_number, address=REFUGE, carers=MOTHER))], T)
        assert (out[0].action, out[0].reason) == (
            "review", "conflicting_identity" if nhs_number else "shielded_candidate")
        record = await conn.fetchval("SELECT record FROM children WHERE child_id = $1", other)
        assert record["given_name"] == "Tobias" and "nhs_number" not in record
        assert "Quay" not in str(record)
        assert await conn.fetchval("SELECT count(*) FROM outbox") == 0
    finally:
        await conn.close()
