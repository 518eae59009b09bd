"""Twins: born the same day at one address under one family name. An update that
brings an NHS number the record lacks, with a given name only like the record's or
none, may be her twin's: a person decides (hub.decide._twin). An independent probe
loaded such twins one after the other, and every pair became one record carrying
the second twin's NHS number."""

from __future__ import annotations

from typing import Any

import pytest

from hub import ingest, operations
from hub.config import Thresholds
from hub.db.connect import connect
from tests.factories import incoming, nhs, update

pytestmark = pytest.mark.integration
T = Thresholds()
HOME = {"lines": ["3 Oak Avenue"], "town": "Leeds", "postcode": "LS6 9BX", "la": "383"}
MOTHER = [{"name": "Jo Thomas", "relationship": "mother", "phone": "07700 900123"}]


def _twin(rid: str, **over: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"given_name": "Amelia", "family_name": "Thomas",
                            "date_of_birth": "2020-08-19", "sex": "female", "address": HOME,
                            "carers": MOTHER, "nhs_number": None}
    return update("dwp", rid, **{**base, **over})


@pytest.mark.parametrize("second,expected", [
    ({"given_name": "Emilia", "nhs_number": nhs(52)}, ("review", "possible_match")),
    ({"given_name": "Amelie", "nhs_number": nhs(52)}, ("review", "possible_match")),
    ({"given_name": None, "nhs_number": nhs(52)}, ("review", "possible_match")),
    # Her own name as the record has it: hers, and her number fills the record's gap.
    ({"given_name": "Amelia", "nhs_number": nhs(52)}, ("link", "demographic_match")),
    # No number brought: nothing of her twin's goes in (as before).
    ({"given_name": "Amelie"}, ("link", "demographic_match")),
], ids=["variant", "a-letter-out", "no-given-name", "her-own-name", "no-number"])
async def test_a_twin_bringing_a_number_goes_to_a_person(
    database_url: str, second: dict[str, Any], expected: tuple[str, str],
) -> None:
    conn = await connect(database_url)
    try:
        first = (await ingest.process(conn, [incoming(_twin("CB-1"))], T))[0]
        assert first.action == "create"
        out = (await ingest.process(conn, [incoming(_twin("CB-2", **second))], T))[0]
        assert (out.action, out.reason) == expected
        numbers = await conn.fetchval(
            "SELECT count(*) FROM children WHERE record->>'nhs_number' IS NOT NULL")
        assert numbers == (expected[0] == "link" and second.get("nhs_number") is not None)
    finally:
        await conn.close()


async def test_while_a_twin_waits_for_a_person_her_next_update_waits_too(
    database_url: str,
) -> None:
    """Sophie's record has no NHS number; Sofia's load brings one and waits for a
    person (above). Her PDS update then, without a number, is a twin's of Sophie's
    record too: it waits as well, instead of going into her sister's record (probe
    I: 3 of 6). Once the item is decided, nothing waits there (migration 0029)."""
    conn = await connect(database_url)
    try:
        home = {"given_name": "Sophie", "date_of_birth": "2010-08-30"}
        [sophie] = await ingest.process(conn, [incoming(_twin("CB-1", **home))], T)
        [waits] = await ingest.process(conn, [incoming(_twin(
            "CB-2", **{**home, "given_name": "Sofia", "nhs_number": nhs(52)}))], T)
        assert (waits.action, waits.reason) == ("review", "possible_match")
        pds = update("pds", "P-2", **{**_twin("x")["child"], **home, "given_name": "Sofia"})
        [out] = await ingest.process(conn, [incoming(pds)], T)
        assert (out.action, out.reason) == ("review", "possible_match")
        # Sophie's own update still finds her.
        mine = update("pds", "P-1", **{**_twin("x")["child"], **home})
        [out] = await ingest.process(conn, [incoming(mine)], T)
        assert (out.action, out.child_id) == ("link", sophie.child_id)
        await operations.resolve(conn, str(waits.parked_id), "create", None, "op-1", None, T)
        assert await conn.fetchval("SELECT count(*) FROM pending_births WHERE parked_id = $1",
                                   waits.parked_id) == 0
    finally:
        await conn.close()


async def test_an_update_with_no_given_name_beside_twins_goes_to_a_person(
    database_url: str,
) -> None:
    """Charles and Noah, twins with their own NHS numbers; Noah's record has moved
    on (a later source's address), the school's has not. Its update with no given name
    nor NHS number scored Charles well above Noah and went into Charles's record
    (probe I). Nothing in it tells them apart: a person decides."""
    conn = await connect(database_url)
    try:
        boys = {"sex": "male", "family_name": "Hughes", "date_of_birth": "2015-06-25"}
        await ingest.process(conn, [
            incoming(_twin("CB-1", **boys, given_name="Charles", nhs_number=nhs(61))),
            incoming(_twin("CB-2", **boys, given_name="Noah", nhs_number=nhs(62),
                           address={"lines": ["7 Mill Lane"], "town": "York",
                                    "postcode": "YO1 7HH", "la": "816"}))], T)
        school = update("dfe", "Y1", **{**_twin("x")["child"], **boys, "given_name": None})
        [out] = await ingest.process(conn, [incoming(school)], T)
        assert (out.action, out.reason) == ("review", "ambiguous_match")
        york = {"lines": ["7 Mill Lane"], "town": "York", "postcode": "YO1 7HH", "la": "816"}
        named = update("dfe", "Y2", **{**_twin("x")["child"], **boys, "given_name": "Noah",
                                       "address": york})
        [out] = await ingest.process(conn, [incoming(named)], T)
        assert out.action == "link"
    finally:
        await conn.close()


async def test_a_twin_under_a_mistyped_family_name_waits_too(database_url: str) -> None:
    """As above, with her family name a letter out on the school's update (Kur for
    Kaur): still her sister's twin pattern, and she still waits (probe I)."""
    conn = await connect(database_url)
    try:
        home = {"given_name": "Sophie", "family_name": "Kaur", "date_of_birth": "2019-06-21"}
        await ingest.process(conn, [incoming(_twin("CB-1", **home))], T)
        [waits] = await ingest.process(conn, [incoming(_twin(
            "CB-2", **{**home, "given_name": "Sofia", "nhs_number": nhs(52)}))], T)
        assert (waits.action, waits.reason) == ("review", "possible_match")
        school = update("dfe", "L1", **{**_twin("x")["child"], **home, "given_name": "Sofia",
                                        "family_name": "Kur"})
        [out] = await ingest.process(conn, [incoming(school)], T)
        assert (out.action, out.reason) == ("review", "possible_match")
    finally:
        await conn.close()
