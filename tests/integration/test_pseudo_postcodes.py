"""The NHS's pseudo-postcodes (ZZ99 3VZ: no fixed abode; ZZ99 3WZ: address not
known) name no place. A shielded child recorded with one does not put every other
child recorded with it "in her postcode" (rule 6), and agreeing on one says nothing
of who a child is (found by an independent probe: thousands of children sharing
ZZ99 3VZ slowed the pipeline to a crawl)."""

from __future__ import annotations

import pytest

from hub import operations as ops
from hub.config import Thresholds
from hub.db.connect import connect
from hub.ingest import process
from hub.match.normalise import normalise_postcode, postcode_parts
from hub.places import key_postcode
from tests.factories import incoming, nhs, update

pytestmark = pytest.mark.integration

T = Thresholds()
NO_FIXED_ABODE = {"lines": [], "postcode": "ZZ99 3VZ", "la": "383"}


def test_a_pseudo_postcode_is_no_postcode() -> None:
    assert normalise_postcode("ZZ99 3VZ") == normalise_postcode("zz993wz") == ""
    assert postcode_parts("ZZ99 3VZ") == ("", "", "")
    assert key_postcode(NO_FIXED_ABODE) == ""
    assert key_postcode({"lines": ["No fixed abode, ZZ99 3VZ"]}) == ""
    assert key_postcode({"postcode": "LS6 1AA"}) == "LS61AA"


async def test_a_shielded_child_of_no_fixed_abode_holds_no_one_else(
    database_url: str,
) -> None:
    conn = await connect(database_url)
    try:
        [her] = await process(conn, [incoming(update("la", "LA-1", address=NO_FIXED_ABODE))], T)
        assert her.child_id is not None
        await ops.shield(conn, her.child_id, "383", "officer", "at risk")
        # Another child, nothing like her, also of no fixed abode: created as usual.
        [other] = await process(conn, [incoming(update(
            "dwp", "CB-9", nhs_number=nhs(9), given_name="Lysander", family_name="Okonkwo",
            date_of_birth="2009-11-30", sex="male", address=NO_FIXED_ABODE))], T)
        assert (other.action, other.reason) == ("create", "no_match")
    finally:
        await conn.close()
