"""A postcode holding more children than a street's worth of households (a feed that
gives every child one address) finds no one by its key: each update was scored
against all of them, and 4,000 children at one postcode drained at 41 a second
(an independent probe saw 12-18 a second at 50,000). A shielded child there is
still guarded by her protected places (rule 6)."""

from __future__ import annotations

import itertools

import pytest

from hub import operations as ops
from hub.config import Thresholds
from hub.db import store
from hub.db.connect import connect
from hub.ingest import process
from hub.match.blocking import CROWDED_POSTCODE
from schemas.canonical import CanonicalUpdate
from tests.factories import incoming, nhs, update

pytestmark = pytest.mark.integration

T = Thresholds()
HOME = {"lines": ["8 Stanley Street"], "town": "Leeds", "postcode": "LS4 2AB", "la": "383"}
GIVEN = "Amara Bryn Cato Dulcie Ezra Fenna Gideon Hester Idris Juno Kit Linnea Milo Nell".split()
FAMILY = "Ashdown Brightwater Calloway Dunmore Elsworth Fairbairn Greywell Hollins".split()


async def test_a_crowded_postcode_finds_no_one_by_its_key(database_url: str) -> None:
    names = list(itertools.islice(itertools.product(GIVEN, FAMILY, range(3)),
                                  CROWDED_POSTCODE + 10))
    crowd = [update("dwp", f"CB-{i}", nhs_number=nhs(100 + i), given_name=g, family_name=f,
                    date_of_birth=f"{2008 + k * 5 + i % 5}-{1 + i % 12:02d}-{1 + i % 28:02d}",
                    address=HOME)
             for i, (g, f, k) in enumerate(names)]
    conn = await connect(database_url)
    try:
        out = await process(conn, [incoming(u) for u in crowd], T)
        assert {o.action for o in out} <= {"create", "link", "review"}
        her = out[0].child_id
        assert her is not None
        await ops.shield(conn, her, "383", "officer", "refuge")
        newcomer = update("pds", "P-1", nhs_number=None, given_name="Peregrine",
                          family_name="Quillfeather", date_of_birth="2019-06-30",
                          sex="male", address={**HOME, "lines": ["9 Stanley Street"]})
        state = await store.load(conn, [CanonicalUpdate.model_validate(newcomer)], T)
        assert await conn.fetchval("SELECT count(*) FROM children") == len(crowd)
        assert len(state.children) < 20, len(state.children)  # not everyone at LS4 2AB
        # At her very address, rule 6 still sends him to a person.
        at_hers = {**newcomer, "source_record_id": "P-2",
                   "child": {**newcomer["child"], "address": HOME}}
        [held] = await process(conn, [incoming(at_hers)], T)
        assert (held.action, held.reason) == ("review", "shielded_address")
        [created] = await process(conn, [incoming(newcomer)], T)
        assert created.action == "review"  # her postcode: a person decides
    finally:
        await conn.close()
