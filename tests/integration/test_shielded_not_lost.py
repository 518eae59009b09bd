"""Shielded children the pipeline must not lose: one shielded by a restricted-at-
origin update (FHIR meta.security R or V) protects the address she leaves too, as
`hub shield` protects every address of a record's history; and one whose update has
two things wrong at once is still found (both found by an adversarial review)."""

from __future__ import annotations

from typing import Any

import pytest

from hub import ingest, operations
from hub.config import Thresholds
from hub.db.connect import connect
from hub.places import address_key
from tests.factories import incoming, moved, nhs, update

pytestmark = pytest.mark.integration
T = Thresholds()
REFUGE = {"lines": ["1 Quay Street"], "town": "Liverpool", "postcode": "L1 0AA", "la": "341"}


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
            "SELECT address_key FROM protected_addresses WHERE child_id = $1::uuid"
            " AND address_key LIKE '%|%' AND address_key NOT LIKE 'line%'", her)}
        assert keys == {address_key(home["child"]["address"]),
                        address_key(restricted["child"]["address"])}
    finally:
        await conn.close()


async def _renamed_at_a_refuge_is_held(database_url: str, her: dict[str, Any],
                                       written: dict[str, Any]) -> None:
    """Index her (`her`: her record's differences from the factory child) and shield
    her; an update about her under a new surname at a refuge, no NHS number, with
    `written` unlike her record: held for a person, nothing created."""
    conn = await connect(database_url)
    try:
        out = await ingest.process(
            conn, [incoming(moved(update("la", "LA-1", nhs_number=nhs(1), **her)))], T)
        await operations.shield(conn, out[0].child_id, "330", "officer", "refuge")
        out = await ingest.process(conn, [incoming(update(
            "dwp", "CB-1", **{"nhs_number": None, "family_name": "Ashdown",
                              "address": REFUGE, **written}))], T)
        assert (out[0].action, out[0].reason) == ("review", "shielded_candidate")
        assert await conn.fetchval("SELECT count(*) FROM children") == 1
    finally:
        await conn.close()


@pytest.mark.parametrize("date_of_birth", ["2014-03-08", "2014-04-09", "2014-03-10",
                                           "2015-03-09"],
                         ids=["day", "month", "day-either-side", "year"])
async def test_a_shielded_child_is_found_with_a_new_surname_and_a_date_typo(
    database_url: str, date_of_birth: str
) -> None:
    """Two things wrong at once (a new surname the index does not know, a digit of the
    date, or the day before or after: the 9th as the 10th), at a new refuge,
    no NHS number: no ordinary key is shared, and an open record of her was created
    (adversarial reviews). A shielded record's given-name keys (forms p4, p5) find
    her, and a person decides."""
    await _renamed_at_a_refuge_is_held(database_url, {}, {"date_of_birth": date_of_birth})


async def test_a_shielded_child_is_found_with_a_new_surname_and_a_nickname(
    database_url: str,
) -> None:
    """A new surname and a nickname (Betty for Elizabeth), at a new refuge, no NHS
    number: no ordinary key is shared; the shielded record's nickname keys (form p5)
    find her, and a person decides."""
    await _renamed_at_a_refuge_is_held(database_url, {"given_name": "Elizabeth"},
                                       {"given_name": "Betty"})


@pytest.mark.parametrize("over", [
    {"given_name": "Marigld"}, {"given_name": "Mraigold"}, {"given_name": "Marigoldd"},
    {"given_name": "Narigold"}, {"given_name": "Mariwold"},
    {"given_name": "Tamsin", "middle_names": None}, {"sex": "male"},
    {"date_of_birth": "2014-01-01"},
], ids=["letter-missing", "letters-swapped", "letter-added", "first-letter",
        "soundex-changed", "middle-name", "sex-miscoded", "date-unknown"])
async def test_a_shielded_child_is_found_with_a_new_surname_and_one_more_thing_unlike_her(
    database_url: str, over: dict[str, str | None]
) -> None:
    """A new surname (a parent's new partner), at a new refuge, no NHS number, and one
    more thing unlike her record: a typo in her given name, her middle name used, her
    sex miscoded, or 1 January for a date of birth the source did not know. Before
    forms p6 and p7 no key was shared (a typo that changed the given name's Soundex,
    a middle name, 1 January), or where one was she scored below the identity floor
    and was not plausible by the generous test: an open record of her was created
    with the refuge in it. Now the keys find her, the generous test holds her
    plausible, and a person decides."""
    await _renamed_at_a_refuge_is_held(database_url, {"middle_names": "Tamsin"},
                                       {"carers": [], **over})


async def test_a_shielded_child_of_unknown_date_is_found_renamed_with_her_true_date(
    database_url: str,
) -> None:
    """Indexed with 1 January of her year (her date not known: an age assessed), then
    shielded; an update under a new surname at a new refuge, no NHS number, with her
    true date: found (form p8) and held for a person, not created."""
    await _renamed_at_a_refuge_is_held(database_url, {"date_of_birth": "2014-01-01"},
                                       {"carers": [], "date_of_birth": "2014-07-23"})
