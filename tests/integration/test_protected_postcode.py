"""Rule 6 protects a shielded child's postcode, not only her address as one source
wrote it: her brother's open record moving to "3 Harbour Ln", "Flat A, 3 Harbour
Lane" or the postcode alone took the refuge and told his council of the move (an
adversarial review found it). A neighbour already in the postcode is not moving in;
a postcode with no lines is protected too (migration 0014 protects those a shielded
child's history already holds)."""

from __future__ import annotations

from typing import Any

import asyncpg
import pytest

from hub import ingest, operations
from hub.config import Thresholds
from hub.db import migrate
from hub.db.connect import connect
from tests.factories import incoming, moved, nhs, update

pytestmark = pytest.mark.integration
T = Thresholds()
BROTHER = {"nhs_number": nhs(2), "given_name": "Oswin", "date_of_birth": "2016-08-01"}
NEIGHBOUR = {"nhs_number": nhs(3), "given_name": "Tamsin", "family_name": "Verity",
             "date_of_birth": "2013-02-11"}
NEXT_DOOR = {"lines": ["5 Harbour Lane"], "town": "Birmingham", "postcode": "B5 7QQ", "la": "330"}


async def _sheltered(conn: asyncpg.Connection) -> dict[str, str]:
    """Her record shielded by 383 at the refuge (3 Harbour Lane, B5 7QQ), her
    brother's open record at home and a neighbour's next door: their ids."""
    out = await ingest.process(conn, [
        incoming(update("la", "LA-1", nhs_number=nhs(1))),
        incoming(update("la", "LA-2", **BROTHER)),
        incoming(update("la", "LA-3", address=NEXT_DOOR, **NEIGHBOUR)),
    ], T)
    ids = {"her": out[0].child_id, "brother": out[1].child_id, "neighbour": out[2].child_id}
    await operations.shield(conn, ids["her"], "383", "officer", "refuge")
    out = await ingest.process(conn, [incoming(moved(update("la", "LA-1", 2,
                                                            nhs_number=nhs(1))))], T)
    assert (out[0].action, out[0].child_id) == ("link", ids["her"])
    return ids


async def _record(conn: asyncpg.Connection, child_id: str | None) -> dict[str, Any]:
    row = await conn.fetchrow("SELECT record FROM children WHERE child_id = $1::uuid", child_id)
    assert row is not None
    return dict(row["record"])


@pytest.mark.parametrize("address", [
    {"lines": ["3 Harbour Ln"], "postcode": "B5 7QQ", "la": "330"},
    {"lines": ["Flat A", "3 Harbour Lane"], "postcode": "b57qq", "la": "330"},
    {"postcode": "B5 7QQ", "la": "330"},
], ids=["abbreviated", "flat", "postcode-only"])
async def test_the_refuge_written_another_way_stays_out_of_open_records(
    database_url: str, address: dict[str, Any]
) -> None:
    conn = await connect(database_url)
    try:
        ids = await _sheltered(conn)
        home = (await _record(conn, ids["brother"]))["address"]
        events = await conn.fetchval("SELECT count(*) FROM outbox")
        # By his source link, by his NHS number from another source, and as a record
        # no one has (a create there).
        out = await ingest.process(conn, [
            incoming(update("la", "LA-2", 2, address=address, **BROTHER)),
            incoming(update("pds", "P-2", address=address, **BROTHER)),
            incoming(update("dwp", "CB-9", nhs_number=None, given_name="Ptolemy",
                            family_name="Quarrie", date_of_birth="2010-10-10",
                            address=address)),
        ], T)
        assert [(o.action, o.reason) for o in out] == [("review", "shielded_address")] * 3
        assert (await _record(conn, ids["brother"]))["address"] == home
        assert await conn.fetchval("SELECT count(*) FROM children") == 3
        assert await conn.fetchval("SELECT count(*) FROM outbox") == events  # no one told
    finally:
        await conn.close()


async def test_a_neighbour_already_in_the_postcode_stays_where_he_is(database_url: str) -> None:
    conn = await connect(database_url)
    try:
        ids = await _sheltered(conn)
        out = await ingest.process(conn, [incoming(update(
            "la", "LA-3", 2, address=NEXT_DOOR, **{**NEIGHBOUR, "given_name": "Tamsine"}))], T)
        assert (out[0].action, out[0].child_id) == ("link", ids["neighbour"])
        assert (await _record(conn, ids["neighbour"]))["given_name"] == "Tamsine"
        # A move within the postcode, to an address that may be hers, goes to a person.
        out = await ingest.process(conn, [incoming(update(
            "la", "LA-3", 3, address={**NEXT_DOOR, "lines": ["3 Harbour Ln"]}, **NEIGHBOUR))], T)
        assert (out[0].action, out[0].reason) == ("review", "shielded_address")
    finally:
        await conn.close()


async def test_a_postcode_without_lines_is_protected(database_url: str) -> None:
    conn = await connect(database_url)
    try:
        out = await ingest.process(conn, [incoming(update(
            "la", "LA-1", nhs_number=nhs(1), address={"postcode": "b5 7qq", "la": "330"}))], T)
        await operations.shield(conn, out[0].child_id, "383", "officer", "refuge")
        keys = [r["address_key"] for r in await conn.fetch(
            "SELECT address_key FROM protected_addresses")]
        assert keys == ["B57QQ|"]
        out = await ingest.process(conn, [incoming(update(
            "la", "LA-2", address={"lines": ["3 Harbour Lane"], "postcode": "B5 7QQ"},
            **BROTHER))], T)
        assert (out[0].action, out[0].reason) == ("review", "shielded_address")
    finally:
        await conn.close()


async def test_the_migration_protects_postcodes_without_lines_already_held(
    database_url: str,
) -> None:
    conn = await connect(database_url)
    try:
        out = await ingest.process(conn, [
            incoming(update("la", "LA-1", nhs_number=nhs(1),
                            address={"postcode": "b5 7qq", "lines": [" - "]})),
            incoming(update("la", "LA-2", address={"postcode": "B5 7QR"}, **BROTHER)),
        ], T)
        her = out[0].child_id
        await ingest.process(conn, [incoming(moved(update("la", "LA-1", 2, nhs_number=nhs(1))))], T)
        await operations.shield(conn, her, "383", "officer", "refuge")
        # As the index stood before 0014: only the addresses with a first line.
        await conn.execute("""
            DELETE FROM protected_addresses WHERE address_key LIKE '%|';
            ALTER TABLE protected_addresses DROP COLUMN postcode;
            DELETE FROM schema_migrations WHERE name >= '0014'""")
        assert await migrate.apply(conn) == [m for m, _ in migrate.migrations() if m >= "0014"]
        rows = await conn.fetch("SELECT address_key, postcode, child_id::text AS child_id"
                                " FROM protected_addresses ORDER BY address_key")
        assert [tuple(r) for r in rows] == [("B57QQ|", "B57QQ", her),
                                            ("B57QQ|3 harbour lane", "B57QQ", her)]
    finally:
        await conn.close()
