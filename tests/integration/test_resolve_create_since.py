"""An operator creating a record for a parked update is held to the index as it is
now, not as it was when the update was parked: two sources' updates about one new
child, both waiting beside a look-alike, are placed by creating one record and then
linking the other to it, never by creating two."""

from __future__ import annotations

import pytest

from hub import operations as ops
from hub.config import Thresholds
from hub.db.connect import connect
from hub.ingest import process
from tests.factories import incoming, update

pytestmark = pytest.mark.integration

T = Thresholds()
HOME = {"lines": ["41 Tanner Street"], "town": "Leeds", "postcode": "LS11 8PJ", "la": "383"}
NEW = {"lines": ["Flat 2, 9 Alder Close"], "town": "Leeds", "postcode": "LS7 3QT", "la": "383"}


def _about_her(source: str, record_id: str) -> dict[str, object]:
    """A new child like the indexed one, a letter of her given name apart, with no
    NHS number, at another address: a possible match of the indexed one."""
    return update(source, record_id, nhs_number=None, given_name="Otteline",
                  family_name="Bramwell", date_of_birth="2015-03-14", address=NEW)


async def test_creating_is_refused_for_a_record_written_since_parking(
    database_url: str,
) -> None:
    conn = await connect(database_url)
    try:
        [indexed] = await process(conn, [incoming(update(
            "la-leeds", "LA-1", nhs_number=None, given_name="Ottoline", family_name="Bramwell",
            date_of_birth="2015-03-14", address=HOME))], T)
        first, second = await process(conn, [incoming(_about_her("dwp", "CB-1")),
                                             incoming(_about_her("school", "SC-1"))], T)
        assert [(o.action, o.reason) for o in (first, second)] == [
            ("review", "possible_match")] * 2
        assert first.parked_id is not None and second.parked_id is not None
        # Another child: the first item's update is given a record of its own.
        created = await ops.resolve(conn, first.parked_id, "create", None, "op-1", None, T)
        assert created.child_id not in (None, indexed.child_id)
        # The second item was parked before that record was written: creating again
        # would make its duplicate. Refused, the record named; nothing written.
        with pytest.raises(ops.OperationError) as refused:
            await ops.resolve(conn, second.parked_id, "create", None, "op-2", None, T)
        assert f"record {created.child_id}, written since this item was parked" in str(
            refused.value)
        assert await conn.fetchval("SELECT count(*) FROM children") == 2
        assert await conn.fetchval("SELECT status FROM parked WHERE id = $1",
                                   second.parked_id) == "open"
        done = await ops.resolve(conn, second.parked_id, "link", created.child_id, "op-2",
                                 None, T)
        assert done.child_id == created.child_id
        assert await conn.fetchval("SELECT count(*) FROM children") == 2
    finally:
        await conn.close()
