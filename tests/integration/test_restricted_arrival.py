"""A child shielded by a restricted-at-origin update (FHIR meta.security R or V):
the address she leaves is protected too, as `hub shield` protects every address of a
record's history (found by an adversarial review: only the new one was)."""

from __future__ import annotations

import pytest

from hub import ingest
from hub.config import Thresholds
from hub.db.connect import connect
from hub.records import address_key
from tests.factories import incoming, moved, nhs, update

pytestmark = pytest.mark.integration
T = Thresholds()


async def test_a_restricted_move_protects_the_address_she_left(database_url: str) -> None:
    conn = await connect(database_url)
    try:
        home = update("la", "LA-1", nhs_number=nhs(1))
        out = await ingest.process(conn, [incoming(home)], T)
        her = out[0].child_id
        restricted = moved(update("pds", "P-1", nhs_number=nhs(1)))
        restricted["restricted"] = True
        out = await ingest.process(conn, [incoming(restricted)], T)
        assert (out[0].action, out[0].child_id) == ("link", her)
        keys = {r["address_key"] for r in await conn.fetch(
            "SELECT address_key FROM protected_addresses WHERE child_id = $1::uuid", her)}
        assert keys == {address_key(home["child"]["address"]),
                        address_key(restricted["child"]["address"])}
    finally:
        await conn.close()
