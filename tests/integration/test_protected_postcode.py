"""Rule 6 protects a shielded child's postcode, not only her address as one source
wrote it: her brother's open record moving to "3 Harbour Ln", "Flat A, 3 Harbour
Lane" or the postcode alone took the refuge and told his council of the move (an
adversarial review found it). A neighbour already in the postcode is not moving in;
a postcode with no lines is protected too (migration 0014 protects those a shielded
child's history already holds). Her carers' phone numbers likewise: his record took
their new one (the same review; migration 0015)."""

from __future__ import annotations

from typing import Any

import asyncpg
import pytest

from hub import ingest, operations
from hub.config import Thresholds
from hub.db import migrate, protected, store
from hub.db.connect import connect
from hub.db.queries import q
from hub.places import PUBLIC_CONTACT
from tests.factories import incoming, moved, nhs, update

pytestmark = pytest.mark.integration
T = Thresholds()
# He lives with their father; both records list their mother's number.
BROTHER = {"nhs_number": nhs(2), "given_name": "Oswin", "date_of_birth": "2016-08-01",
           "address": {"lines": ["8 Mill Street"], "postcode": "LS6 2BB", "la": "383"},
           "carers": [{"name": "Rowan Quenby", "relationship": "mother",
                       "phone": "07700 900111"}]}
NEIGHBOUR = {"nhs_number": nhs(3), "given_name": "Tamsin", "family_name": "Verity",
             "date_of_birth": "2013-02-11",
             "carers": [{"name": "Ines Verity", "relationship": "mother",
                         "phone": "07700 900555"}]}
NEXT_DOOR = {"lines": ["5 Harbour Lane"], "town": "Birmingham", "postcode": "B5 7QQ", "la": "330"}


async def _sheltered(conn: asyncpg.Connection) -> dict[str, str]:
    """Her record shielded by 383 at the refuge (3 Harbour Lane, B5 7QQ), her
    brother's open record at home and a neighbour's next door: their ids."""
    out = await ingest.process(conn, [
        incoming(update("la", "LA-1", nhs_number=nhs(1))),
        incoming(update("la", "LA-2", **BROTHER)),
        incoming(update("la", "LA-3", **{**NEIGHBOUR, "address": NEXT_DOOR})),
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
    {"lines": ["3 Harbour Lane"], "postcode": "B5 7QQ.", "la": "330"},
    {"lines": ["3 Harbour Lane"], "postcode": "B5-7QQ", "la": "330"},
    {"lines": ["3 Harbour Lane"], "town": "Birmingham B5 7QQ", "la": "330"},
    {"lines": ["3 Harbour Lane", "Birmingham"], "la": "330"},
    {"lines": ["3 Harbour Lane"], "postcode": "B5 7QQ UK", "la": "330"},
    {"lines": ["3 Harbour Lane"], "postcode": "B5", "la": "330"},
], ids=["abbreviated", "flat", "postcode-only", "full-stop", "hyphen", "postcode-in-town",
        "no-postcode", "postcode-and-more", "half-a-postcode"])
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
            incoming(update("la", "LA-2", 2, **{**BROTHER, "address": address})),
            incoming(update("pds", "P-2", **{**BROTHER, "address": address})),
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


@pytest.mark.parametrize(("refuge", "his"), [
    ({"lines": ["3 Harbour Lane"], "postcode": "B5 7QQ,", "la": "330"}, None),
    ({"lines": ["3 Harbour Lane"], "town": "Birmingham", "la": "330"}, None),
    ({"lines": ["3 Harbour Lane"], "postcode": "B5 7QQ UK", "la": "330"}, None),
    ({"lines": ["Harbour House", "Harbour Lane"], "postcode": "B5 7QQ", "la": "330"},
     {"lines": ["Harbour House", "Harbour Lane"], "town": "Birmingham"}),
], ids=["punctuated", "no-postcode", "postcode-and-more", "house-name"])
async def test_her_refuge_written_oddly_is_still_hers(
    database_url: str, refuge: dict[str, Any], his: dict[str, Any] | None
) -> None:
    conn = await connect(database_url)
    try:
        out = await ingest.process(conn, [
            incoming(update("la", "LA-1", nhs_number=nhs(1), address=refuge)),
            incoming(update("la", "LA-2", **BROTHER)),
        ], T)
        await operations.shield(conn, out[0].child_id, "383", "officer", "refuge")
        his = his or {"lines": ["3 Harbour Lane"], "postcode": "B5 7QQ"}
        out = await ingest.process(conn, [incoming(update(
            "la", "LA-2", 2, **{**BROTHER, "address": his}))], T)
        assert (out[0].action, out[0].reason) == ("review", "shielded_address")
    finally:
        await conn.close()


async def test_the_home_she_left_is_not_her_street_any_more(database_url: str) -> None:
    """Her former home stays protected as written (no one else's record moves into
    it without a person), but her brother, who still lives there, and the
    neighbours' children born on that street go through: her postcode is the
    refuge's now."""
    conn = await connect(database_url)
    try:
        home = {"lines": ["12 Orchard Row"], "town": "Leeds", "postcode": "LS6 1AA", "la": "383"}
        ids = await _sheltered(conn)
        out = await ingest.process(conn, [incoming(update(
            "la", "LA-2", 2, **{**BROTHER, "address": home}))], T)
        assert out[0].action == "review"  # moving into the home she left: a person
        out = await ingest.process(conn, [
            incoming(update("pds", "P-8", nhs_number=nhs(8), given_name="Wilfred",
                            family_name="Lark", date_of_birth="2024-01-30", carers=[],
                            address={**home, "lines": ["16 Orchard Row"]})),
        ], T)
        assert (out[0].action, out[0].reason) == ("create", "no_match")
        # Her brother's record, which has held the home all along.
        out = await ingest.process(conn, [incoming(update(
            "la", "LA-5", nhs_number=nhs(5), given_name="Cuthbert", date_of_birth="2019-04-04",
            address=home))], T)
        assert out[0].action == "review"  # created at the home she left: a person
        await conn.execute("UPDATE children SET record = jsonb_set(record, '{address}', $2)"
                           " WHERE child_id = $1::uuid", ids["brother"], home)
        out = await ingest.process(conn, [incoming(update(
            "la", "LA-2", 3, **{**BROTHER, "given_name": "Oswyn", "address": home}))], T)
        assert (out[0].action, out[0].child_id) == ("link", ids["brother"])
    finally:
        await conn.close()


async def test_a_neighbour_already_in_the_postcode_stays_where_he_is(database_url: str) -> None:
    conn = await connect(database_url)
    try:
        ids = await _sheltered(conn)
        out = await ingest.process(conn, [incoming(update(
            "la", "LA-3", 2, **{**NEIGHBOUR, "address": NEXT_DOOR, "given_name": "Tamsine"}))],
            T)
        assert (out[0].action, out[0].child_id) == ("link", ids["neighbour"])
        assert (await _record(conn, ids["neighbour"]))["given_name"] == "Tamsine"
        # A move within the postcode, to an address that may be hers, goes to a person.
        out = await ingest.process(conn, [incoming(update(
            "la", "LA-3", 3, **{**NEIGHBOUR, "address": {**NEXT_DOOR, "lines": ["3 Harbour Ln"]}}
        ))], T)
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
            "SELECT address_key FROM protected_addresses WHERE address_key LIKE '%|%'"
            " AND address_key NOT LIKE 'line%'")]
        assert keys == ["B57QQ|"]
        out = await ingest.process(conn, [incoming(update(
            "la", "LA-2", **{**BROTHER, "carers": [],
                             "address": {"lines": ["3 Harbour Lane"], "postcode": "B5 7QQ"}}))],
            T)
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
            incoming(update("la", "LA-2", **{**BROTHER, "address": {"postcode": "B5 7QR"}})),
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
                                " FROM protected_addresses WHERE address_key LIKE '%|%'"
                                " AND address_key NOT LIKE 'line%' ORDER BY address_key")
        assert [tuple(r) for r in rows] == [("B57QQ|", "B57QQ", her),
                                            ("B57QQ|3 harbour lane", "B57QQ", her)]
    finally:
        await conn.close()


MOTHER = {"name": "Rowan Quenby", "relationship": "mother", "phone": "07700 900111"}


async def test_her_mothers_new_number_stays_out_of_her_brothers_record(
    database_url: str,
) -> None:
    conn = await connect(database_url)
    try:
        ids = await _sheltered(conn)  # both records hold the mother's old number
        new_number = {**MOTHER, "phone": "07700 900777"}
        out = await ingest.process(conn, [incoming(update(
            "la", "LA-1", 3, nhs_number=nhs(1), carers=[new_number]))], T)
        assert (out[0].action, out[0].child_id) == ("link", ids["her"]), out[0]
        keys = {r["address_key"] for r in await conn.fetch(
            "SELECT address_key FROM protected_addresses WHERE child_id = $1::uuid", ids["her"])}
        assert {"tel:07700900111", "tel:07700900777"} <= keys
        events = await conn.fetchval("SELECT count(*) FROM outbox")
        written = {**new_number, "phone": "+44 7700 900777"}
        out = await ingest.process(conn, [
            incoming(update("la", "LA-2", 2, **{**BROTHER, "carers": [written]})),
            incoming(update("pds", "P-2", **{**BROTHER, "carers": [written]})),
        ], T)
        assert [(o.action, o.reason) for o in out] == [("review", "shielded_contact")] * 2
        assert (await _record(conn, ids["brother"]))["carers"] == [MOTHER]
        assert await conn.fetchval("SELECT count(*) FROM outbox") == events
        # The old number, which his record has held all along, is no news.
        out = await ingest.process(conn, [incoming(update(
            "la", "LA-2", 3, **{**BROTHER, "carers": [MOTHER], "given_name": "Oswyn"}))], T)
        assert (out[0].action, out[0].child_id) == ("link", ids["brother"]), out[0].reason
    finally:
        await conn.close()


@pytest.mark.parametrize("carers,services", [
    ([{"name": "Rowan Quenby", "phone": "07700 900777 ext 2"}], []),
    ([{"name": "Rowan Quenby", "phone": "07700 900777 / 0113 496 0000"}], []),
    ([{"name": "Rowan Quenby (07700 900777)"}], []),
    ([], [{"name": "Refuge key worker", "contact": "07700 900777"}]),
    ([{"name": "Rowan Quenby", "phone": "07700\u00a0900777"}], []),
    ([{"name": "Rowan Quenby", "phone": "07700/900777"}], []),
], ids=["extension", "two-numbers", "in-the-name", "service-contact", "no-break-space",
        "slash"])
async def test_her_new_number_however_written_stays_out_of_her_brothers_record(
    database_url: str, carers: list[dict[str, Any]], services: list[dict[str, Any]],
) -> None:
    conn = await connect(database_url)
    try:
        ids = await _sheltered(conn)
        out = await ingest.process(conn, [incoming(update(
            "la", "LA-1", 3, nhs_number=nhs(1),
            services=[{"name": "Refuge key worker", "contact": "07700 900777"}]))], T)
        assert (out[0].action, out[0].child_id) == ("link", ids["her"])
        out = await ingest.process(conn, [incoming(update(
            "la", "LA-2", 2, **{**BROTHER, "carers": carers, "services": services}))], T)
        assert (out[0].action, out[0].reason) == ("review", "shielded_contact")
    finally:
        await conn.close()


async def test_hub_shield_protects_her_services_contacts(database_url: str) -> None:
    """`hub shield` protects what her history holds: her services' contacts too (it
    read only her address and carers: a third adversarial review)."""
    conn = await connect(database_url)
    try:
        worker = [{"name": "Refuge key worker",
                   "contact": "07700 900777 keyworker@refuge.example"}]
        out = await ingest.process(conn, [
            incoming(update("la", "LA-1", nhs_number=nhs(1), services=worker)),
            incoming(update("la", "LA-2", **BROTHER)),
        ], T)
        await operations.shield(conn, out[0].child_id, "383", "officer", "refuge")
        keys = {r["address_key"] for r in await conn.fetch(
            "SELECT address_key FROM protected_addresses WHERE child_id = $1::uuid",
            out[0].child_id)}
        assert {"tel:07700900777", "mail:keyworker@refuge.example"} <= keys
        out = await ingest.process(conn, [incoming(update(
            "la", "LA-2", 2, **{**BROTHER, "services": worker}))], T)
        assert (out[0].action, out[0].reason) == ("review", "shielded_contact")
    finally:
        await conn.close()


async def test_a_house_without_a_postcode_in_another_town_is_not_hers(
    database_url: str,
) -> None:
    conn = await connect(database_url)
    try:
        out = await ingest.process(conn, [incoming(update(
            "la", "LA-1", nhs_number=nhs(1),
            address={"lines": ["1 High Street"], "town": "Leeds", "la": "383"}))], T)
        await operations.shield(conn, out[0].child_id, "383", "officer", "refuge")
        out = await ingest.process(conn, [
            incoming(update("dwp", f"CB-{i}", nhs_number=nhs(20 + i), given_name=name,
                            family_name="Lark", date_of_birth="2015-05-05",
                            address={"lines": ["1 High Street"], "town": town,
                                     "postcode": postcode}))
            for i, (name, town, postcode) in enumerate([
                ("Wilfred", "Bristol", "BS1 4DJ"), ("Edith", "York", "YO1 7HH"),
                ("Ada", "Leeds", "LS1 6AB")])], T)
        assert [(o.action, o.reason) for o in out] == [
            ("create", "no_match"), ("create", "no_match"), ("review", "shielded_address")]
    finally:
        await conn.close()


async def test_a_neighbour_is_placed_only_by_her_authority(database_url: str) -> None:
    """A record created in her postcode waits for a person; only her authority, which
    sees both addresses, may place it (open: a neighbour); shielding it by her
    authority would take a stranger's child from its own council."""
    conn = await connect(database_url)
    try:
        await _sheltered(conn)
        out = await ingest.process(conn, [incoming(update(
            "pds", "P-8", nhs_number=nhs(8), given_name="Wilfred", family_name="Lark",
            date_of_birth="2024-01-30", address={**NEXT_DOOR, "lines": ["9 Harbour Lane"]}))], T)
        assert (out[0].action, out[0].reason) == ("review", "shielded_address")
        item = out[0].parked_id
        with pytest.raises(operations.OperationError, match="--authority 383"):
            await operations.resolve(conn, str(item), "create", None, "op-1", None, T)
        done = await operations.resolve(conn, str(item), "create", None, "la-383", None, T,
                                        acting_for="383")
        row = await conn.fetchrow("SELECT shielded, record FROM children WHERE child_id = $1::uuid",
                                  done.child_id)
        assert row["shielded"] is False and row["record"]["given_name"] == "Wilfred"
    finally:
        await conn.close()


async def test_the_migration_protects_the_phone_numbers_already_held(database_url: str) -> None:
    conn = await connect(database_url)
    try:
        ids = await _sheltered(conn)
        await conn.execute("""
            DELETE FROM protected_addresses WHERE address_key LIKE 'tel:%';
            DELETE FROM schema_migrations WHERE name >= '0015'""")
        assert await migrate.apply(conn) == [m for m, _ in migrate.migrations() if m >= "0015"]
        rows = await conn.fetch("SELECT address_key, child_id::text AS child_id"
                                " FROM protected_addresses WHERE postcode LIKE 'tel:%'")
        assert [tuple(r) for r in rows] == [("tel:07700900111", ids["her"])]
    finally:
        await conn.close()


async def test_setup_protects_what_the_code_now_calls_her_places(database_url: str) -> None:
    """`hub setup` (hub.db.protected.refresh) protects every place of a shielded
    child's history that the code knows now, which a migration could not make."""
    conn = await connect(database_url)
    try:
        ids = await _sheltered(conn)
        before = {r["address_key"] for r in await conn.fetch(
            "SELECT address_key FROM protected_addresses WHERE child_id = $1::uuid", ids["her"])}
        await conn.execute("DELETE FROM protected_addresses WHERE address_key LIKE 'line:%'")
        assert await protected.refresh(conn) == len({k for k in before if k.startswith("line:")})
        after = {r["address_key"] for r in await conn.fetch(
            "SELECT address_key FROM protected_addresses WHERE child_id = $1::uuid", ids["her"])}
        assert after == before and "line:3 harbour lane|birmingham" in after
        assert await protected.refresh(conn) == 0
    finally:
        await conn.close()


async def test_a_neighbour_moving_next_door_is_hers_to_place_not_a_candidate(
    database_url: str,
) -> None:
    """His own record's item lists her (rule 6: near, no scores); `resolve` finds her
    again as near, not as a candidate whom he could be (it offered to link him to
    her, whom the operator cannot see: a third adversarial review)."""
    conn = await connect(database_url)
    try:
        ids = await _sheltered(conn)
        out = await ingest.process(conn, [incoming(update(
            "la", "LA-3", 2, **{**NEIGHBOUR, "address": {**NEXT_DOOR, "lines": ["7 Harbour Lane"]}}
        ))], T)
        assert (out[0].action, out[0].reason) == ("review", "shielded_address")
        item = str(out[0].parked_id)
        with pytest.raises(operations.OperationError) as refused:
            await operations.resolve(conn, item, "link", ids["neighbour"], "op-1", None, T)
        assert "only that authority, seeing both, may place it (--authority 383)" in str(
            refused.value) and "is a candidate" not in str(refused.value)
        done = await operations.resolve(conn, item, "link", ids["neighbour"], "la-383", None, T,
                                        acting_for="383")
        assert done.child_id == ids["neighbour"] and done.shielded is None
        record = await _record(conn, ids["neighbour"])
        assert record["address"]["lines"] == ["7 Harbour Lane"]
    finally:
        await conn.close()


TEAM_LINE = [{"name": "Health visiting", "contact": "0113 496 0001"}]
GIVEN = ("Aldous Briony Caspian Delphine Evander Florian Gwenllian Hartley Isolde Jory Kenna"
         " Lorcan Maelis Niamh Odhran Perrin Quilla Rosalind Seren Tobiah Ulric Verena Wystan"
         " Xanthe Yestin Zephyr Ariadne Bastian Cordelia Dashiell").split()


def _open_child(i: int, **over: Any) -> dict[str, Any]:
    """An unrelated child of her area: his own name, birthday, home and mother."""
    return update("dwp", f"CB-{i}", **{
        "nhs_number": nhs(100 + i), "given_name": GIVEN[i], "family_name": "Tregarthen",
        "date_of_birth": f"{2008 + i // 12}-{1 + i % 12:02d}-{1 + i:02d}", "sex": "male",
        "address": {"lines": [f"{i + 20} Beck Road"], "town": "Leeds", "postcode": "LS7 3DD",
                    "la": "383"},
        "carers": [{"name": "Mother", "relationship": "mother", "phone": f"07700 9004{i:02d}"}],
        **over})


@pytest.mark.parametrize("holders,expected", [
    (PUBLIC_CONTACT - 1, ("review", "shielded_contact")),
    (PUBLIC_CONTACT, ("create", "no_match")),
])
async def test_a_team_line_that_open_records_hold_is_no_secret_of_hers(
    database_url: str, holders: int, expected: tuple[str, str],
) -> None:
    """A contact of hers that many open records hold already is a shared line (a
    health visiting team's): a new child carrying it is no news of her. Every new
    child in her area went to review, her authority's queue, before. Her mother's
    own number stays hers."""
    conn = await connect(database_url)
    try:
        out = await ingest.process(conn, [
            incoming(update("la", "LA-1", nhs_number=nhs(1), services=TEAM_LINE)),
            *(incoming(_open_child(i, services=TEAM_LINE)) for i in range(holders)),
        ], T)
        her = out[0].child_id
        await operations.shield(conn, her, "383", "officer", "refuge")
        assert await conn.fetchval(  # written with each record
            "SELECT count(*) FROM children WHERE contacts @> ARRAY['tel:01134960001']"
            " AND NOT shielded") == holders
        newcomer = _open_child(len(GIVEN) - 1, services=TEAM_LINE)
        out = await ingest.process(conn, [incoming(newcomer)], T)
        assert (out[0].action, out[0].reason) == expected
        # What an operator's --create and `hub review show` count against it agree.
        held = await operations.shielded_holders(conn, newcomer["child"])
        assert len(held) == (expected[0] == "review")
        mother = [{"name": "Rowan Quenby", "relationship": "mother", "phone": "07700 900111"}]
        out = await ingest.process(conn, [incoming(_open_child(len(GIVEN) - 2,
                                                               carers=mother))], T)
        assert (out[0].action, out[0].reason) == ("review", "shielded_contact")
    finally:
        await conn.close()


COTTAGE = {"lines": ["Rose Cottage 5 Lane End"], "town": "Hull", "postcode": "HU1 1AA",
           "la": "810"}


@pytest.mark.parametrize("address", [
    {"lines": ["5 Lane End"], "postcode": "HU1 1AB", "la": "810"},
    {"lines": ["No 5 Lane End"], "town": "Hull", "postcode": "HU1 1AB", "la": "810"},
    {"lines": ["Rose Cottage"], "town": "Hull", "postcode": "HU1 1AB", "la": "810"},
    {"lines": ["Rose Cottage", "Lane End"], "town": "Hull", "postcode": "HU1 1AB"},
    {"lines": ["Rose Cottage"], "town": "5 Lane End"},
], ids=["number-and-street", "no-5", "house-name", "house-name-and-street", "street-as-town"])
async def test_her_cottage_written_another_way_stays_out_of_her_brothers_record(
    database_url: str, address: dict[str, Any],
) -> None:
    """Her refuge written with its house name before its number and no comma: the
    house inside the line is hers too, under a mistyped postcode (an independent
    probe: her brother's record took "5 Lane End", HU1 1AB, and council 810 was
    told he had moved in)."""
    conn = await connect(database_url)
    try:
        ids = await _sheltered(conn)
        out = await ingest.process(conn, [incoming(update(
            "la", "LA-1", 3, nhs_number=nhs(1), address=COTTAGE))], T)
        assert (out[0].action, out[0].child_id) == ("link", ids["her"])
        events = await conn.fetchval("SELECT count(*) FROM outbox")
        out = await ingest.process(conn, [incoming(update(
            "la", "LA-2", 2, **{**BROTHER, "address": address}))], T)
        assert (out[0].action, out[0].reason) == ("review", "shielded_address")
        assert (await _record(conn, ids["brother"]))["address"] == BROTHER["address"]
        assert await conn.fetchval("SELECT count(*) FROM outbox") == events
    finally:
        await conn.close()


async def test_a_shared_line_is_counted_only_as_far_as_it_needs(database_url: str) -> None:
    """Holders are counted up to PUBLIC_CONTACT a contact, shielded records never
    (migration 0026): counting every holder of a number a million records carry took
    half a second a batch (0.49 s at 100,000 holders; 0.02 s capped)."""
    conn = await connect(database_url)
    try:
        async def holders(n: int, shielded: bool = False) -> None:
            await conn.execute(
                "INSERT INTO children (child_id, version, record, shielded, contacts)"
                " SELECT gen_random_uuid(), 1, '{}'::jsonb, $2, ARRAY['tel:01134960001']"
                " FROM generate_series(1, $1)", n, shielded)

        asked = ["tel:01134960001", "tel:07700900111"]
        await holders(PUBLIC_CONTACT - 1)
        await holders(PUBLIC_CONTACT, shielded=True)
        rows = await conn.fetch(q("open_contact_holders"), asked, PUBLIC_CONTACT)
        assert {r["contact"]: r["holders"] for r in rows} == {
            "tel:01134960001": PUBLIC_CONTACT - 1, "tel:07700900111": 0}
        assert await store.public_among(conn, asked) == set()
        await holders(3 * PUBLIC_CONTACT)
        rows = await conn.fetch(q("open_contact_holders"), asked, PUBLIC_CONTACT)
        assert {r["contact"]: r["holders"] for r in rows} == {
            "tel:01134960001": PUBLIC_CONTACT, "tel:07700900111": 0}
        assert await store.public_among(conn, asked) == {"tel:01134960001"}
    finally:
        await conn.close()
