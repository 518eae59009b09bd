"""An update linked to a record on its details alone, without an NHS number, does
not rewrite who the record says the child is when the record's NHS number anchors
it (found by an independent probe: a nickname and a day-and-month-swapped date
replaced hers, and the next update with the swapped date kept it wrong); where she
lives is taken as ever."""

from __future__ import annotations

import pytest

from hub.config import Thresholds
from hub.db.connect import connect
from hub.ingest import process
from tests.factories import incoming, update

pytestmark = pytest.mark.integration

T = Thresholds()
SCHOOL = {"urn": "107942", "name": "Orchard Row Primary"}


async def test_a_demographic_link_keeps_an_anchored_identity(database_url: str) -> None:
    conn = await connect(database_url)
    try:
        [her] = await process(conn, [incoming(update("dwp", "X-1", middle_names="Ivy"))], T)
        # Her day and month swapped, no NHS number, and a school newly known.
        [linked] = await process(conn, [incoming(update(
            "dfe", "X-2", nhs_number=None, date_of_birth="2014-09-03",
            education_setting=SCHOOL))], T)
        assert (linked.action, linked.reason, linked.child_id) == (
            "link", "demographic_match", her.child_id)
        record = await conn.fetchval("SELECT record FROM children WHERE child_id = $1::uuid",
                                     her.child_id)
        assert (record["date_of_birth"], record["middle_names"]) == ("2014-03-09", "Ivy")
        assert record["education_setting"] == SCHOOL  # where she is: taken
        # Her own source record (its link, her NHS number) still rewrites it.
        await process(conn, [incoming(update("dwp", "X-1", 2, date_of_birth="2014-09-03"))],
                      T)
        record = await conn.fetchval("SELECT record FROM children WHERE child_id = $1::uuid",
                                     her.child_id)
        assert record["date_of_birth"] == "2014-09-03"
    finally:
        await conn.close()
