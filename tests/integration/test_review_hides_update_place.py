"""A review item's update hidden from a viewer (it may be a shielded child's) is not
given away by its open candidates: beside her brother's open record at the refuge,
"postcode: exact" would say where she is. Found by an independent probe: `hub
review show`, for any operator, listed him with his address and the update's
address levels against it, and `review list --json` his full score."""

from __future__ import annotations

import pytest

from hub import operations as ops
from hub.config import Thresholds
from hub.db.connect import connect
from hub.ingest import process
from hub.review_view import show
from hub.shielding import Shield
from tests.factories import incoming, nhs, update

pytestmark = pytest.mark.integration

T = Thresholds()
REFUGE = {"lines": ["5 Sanctuary Row"], "town": "Harrogate", "postcode": "HG1 2AB", "la": "886"}


def _section(text: str, child_id: str) -> str:
    """The lines of one candidate in `review show`'s output."""
    part = text.split(f"candidate {child_id}", 1)[1]
    return part.split("\ncandidate ", 1)[0]


async def test_open_candidates_do_not_tell_where_a_hidden_update_is(database_url: str) -> None:
    conn = await connect(database_url)
    try:
        # Her, and (open, made before she was shielded) a girl like her at the refuge.
        [her] = await process(conn, [incoming(update("la", "LA-1"))], T)
        [twin] = await process(conn, [incoming(update(
            "la", "LA-3", nhs_number=nhs(3), given_name="Marigolda", address=REFUGE))], T)
        assert (her.action, twin.action) == ("create", "create")
        assert her.child_id is not None
        await ops.shield(conn, her.child_id, "383", "la-383", "refuge")
        [brother] = await process(conn, [incoming(update(
            "la", "LA-2", nhs_number=nhs(2), given_name="Oswin", date_of_birth="2016-08-01",
            sex="male", address=REFUGE))], T)
        [item] = await process(conn, [incoming(update(
            "dwp", "CB-1", nhs_number=None, given_name="Marigolde", address=REFUGE))], T)
        assert (item.action, item.reason) == ("review", "shielded_candidate")
        assert item.parked_id is not None
        row = await conn.fetchrow("SELECT * FROM parked WHERE id = $1::uuid", item.parked_id)
        stored = {c["child_id"] for c in row["candidates"]}
        assert {her.child_id, brother.child_id, twin.child_id} <= stored

        # Any operator: the brother (nothing like her but his address) is not listed;
        # an open record that could be her by identity is, without its address levels.
        seen = await show(conn, item.parked_id, None)
        assert brother.child_id not in seen and "Sanctuary Row" not in seen.split(
            f"candidate {twin.child_id}")[0]
        mine = _section(seen, twin.child_id)
        assert "how the address compares is withheld" in mine
        assert not any(line.split()[0] in ("postcode", "address_line", "la", "household")
                       for line in mine.splitlines() if line.strip())
        # Her protected fields hidden, those she lacks too ("-" said she has none).
        for line in _section(seen, her.child_id).splitlines():
            if line.split()[:1] and line.split()[0] in ("address", "carers",
                                                        "education_setting", "gp_practice",
                                                        "services"):
                assert line.count("[hidden: shielded]") == 2, line
        listed = ops.review_line(row, {her.child_id: Shield(True, "383")})
        # The same identity score each: in the order of their ids, not of how their
        # addresses compared.
        assert [c["child_id"] for c in listed["candidates"]] == sorted(
            [her.child_id, twin.child_id])
        assert len({c["score"] for c in listed["candidates"]}) == 1
        assert all(c["address_withheld"] for c in listed["candidates"])

        # Her authority sees it all, the brother and how the addresses compare.
        theirs = await show(conn, item.parked_id, "383", "la-383")
        assert brother.child_id in theirs
        assert any(line.split()[0] == "postcode" and "exact" in line
                   for line in _section(theirs, brother.child_id).splitlines() if line.strip())
    finally:
        await conn.close()


async def test_a_neighbour_is_not_listed_beside_an_update_at_her_house(database_url: str) -> None:
    """A `shielded_address` item lists no shielded child (she could not be the
    update's child), so nothing in the list said its update was hidden: her open
    neighbour, a candidate by postcode at 0.0, was listed, and `hub show` on him
    gave any operator her postcode (an independent probe)."""
    conn = await connect(database_url)
    try:
        next_door = {**REFUGE, "lines": ["7 Sanctuary Row"]}
        [her] = await process(conn, [incoming(update("la", "LA-1", address=REFUGE))], T)
        [neighbour] = await process(conn, [incoming(update(
            "la", "LA-2", nhs_number=nhs(2), given_name="Poppy", family_name="Ashby",
            date_of_birth="2012-07-07", address=next_door))], T)
        assert her.child_id is not None and neighbour.action == "create"
        await ops.shield(conn, her.child_id, "383", "la-383", "refuge")
        [item] = await process(conn, [incoming(update(
            "edu", "E-1", nhs_number=nhs(3), given_name="Tobias", family_name="Wren",
            date_of_birth="2011-01-11", sex="male", address=REFUGE, carers=[]))], T)
        assert (item.action, item.reason) == ("review", "shielded_address")
        row = await conn.fetchrow("SELECT * FROM parked WHERE id = $1::uuid", item.parked_id)
        assert neighbour.child_id in {c["child_id"] for c in row["candidates"]}
        assert ops.review_line(row, {})["candidates"] == []
        assert neighbour.child_id not in await show(conn, str(item.parked_id), None)
    finally:
        await conn.close()
