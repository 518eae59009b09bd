"""While a version of a source record waits in review, an older or equal version of
it is a no-op (`waiting_version`), as it is beside a version already applied: the
same change sent again under another message id is not a second item for a person,
and the person's decision on the waiting one places it. A newer version is decided
on its own."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import asyncpg
import pytest

from hub.config import Thresholds
from hub.db.connect import connect
from hub.ingest import Incoming, process
from hub.publishing import canonical_body
from tests.factories import update

pytestmark = pytest.mark.integration

T = Thresholds()
HOME = {"lines": ["41 Tanner Street"], "town": "Leeds", "postcode": "LS11 8PJ", "la": "383"}
NEW = {"lines": ["Flat 2, 9 Alder Close"], "town": "Leeds", "postcode": "LS7 3QT", "la": "383"}


def _sent(message_id: str, u: dict[str, object]) -> Incoming:
    return Incoming(message_id, "source.dwp", canonical_body(u))


def _near(version: int, **over: object) -> dict[str, object]:
    """dwp's record of a child like the indexed one, her given name mistyped, no NHS
    number, at another address: a possible match, for a person."""
    return update("dwp", "CB-81", version, nhs_number=None, given_name="Otteline",
                  family_name="Bramwell", date_of_birth="2015-03-14", address=NEW, **over)


@pytest.fixture
async def conn(database_url: str) -> AsyncIterator[asyncpg.Connection]:
    """A connection to a database where the child is indexed by her council, at home."""
    conn = await connect(database_url)
    try:
        await process(conn, [Incoming("m-0", "source.la-leeds", canonical_body(update(
            "la-leeds", "LA-81", nhs_number=None, given_name="Ottoline",
            family_name="Bramwell", date_of_birth="2015-03-14", address=HOME)))], T)
        yield conn
    finally:
        await conn.close()


async def _open_items(conn: asyncpg.Connection) -> list[tuple[str, int]]:
    rows = await conn.fetch("SELECT source_record_id, source_version FROM parked"
                            " WHERE kind = 'review' AND status = 'open' ORDER BY 2")
    return [(r[0], r[1]) for r in rows]


async def test_an_equal_or_older_version_beside_a_waiting_one_is_no_second_item(
    conn: asyncpg.Connection,
) -> None:
    [parked] = await process(conn, [_sent("m-1", _near(2))], T)
    assert (parked.action, parked.reason) == ("review", "possible_match")
    # The same version sent again under other message ids (one with other key
    # order), and an older one late: no-ops, the one item waits.
    out = await process(conn, [
        _sent("m-2", _near(2)),
        Incoming("m-3", "source.dwp", json.dumps(_near(2), sort_keys=True).encode()),
        _sent("m-4", _near(1, middle_names="Ivy"))], T)
    assert [(o.action, o.reason) for o in out] == [("noop", "waiting_version")] * 3
    assert await _open_items(conn) == [("CB-81", 2)]
    assert await conn.fetchval("SELECT count(*) FROM processed_messages"
                               " WHERE outcome = 'noop:waiting_version'") == 3
    # A newer version is another change: decided on its own.
    [newer] = await process(conn, [_sent("m-5", _near(3, middle_names="Ivy"))], T)
    assert (newer.action, newer.reason) == ("review", "possible_match")
    assert await _open_items(conn) == [("CB-81", 2), ("CB-81", 3)]
    assert await conn.fetchval("SELECT count(*) FROM children") == 1


async def test_copies_in_one_batch_make_one_item(conn: asyncpg.Connection) -> None:
    out = await process(conn, [_sent("m-1", _near(2)), _sent("m-2", _near(2))], T)
    assert [(o.action, o.reason) for o in out] == [
        ("review", "possible_match"), ("noop", "waiting_version")]
    assert await _open_items(conn) == [("CB-81", 2)]


async def test_once_the_waiting_item_is_decided_its_versions_are_stale(
    conn: asyncpg.Connection,
) -> None:
    from hub import operations as ops

    [parked] = await process(conn, [_sent("m-1", _near(2))], T)
    child_id = await conn.fetchval("SELECT child_id::text FROM children")
    assert parked.parked_id is not None
    await ops.resolve(conn, parked.parked_id, "link", child_id, "op-1", None, T)
    [again] = await process(conn, [_sent("m-2", _near(2))], T)
    assert (again.action, again.reason, again.child_id) == (
        "noop", "stale_version", child_id)
    assert await _open_items(conn) == []
