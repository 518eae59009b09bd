"""Two batches at the same time decide as they would one after the other.

Two batches that read their candidates before either commits cannot see each other's
new records, so what they decided depended on whether they overlapped. Two such races
could leak a shielded child:

- an update about a new shielded child (restricted at origin) and another about the
  same child from a source that does not know (its date of birth mistyped, so no lock
  in common) both created: the second an open duplicate, although the shielded one
  came first. Now a batch that creates takes guard locks and looks again
  (hub.db.store.guard_new_keys), and is done again if a child appeared.
- a child shielded at a refuge and a sibling's update carrying the refuge's address,
  in two batches: the sibling's open record was written at the protected address.
  Now a batch locks its updates' addresses, and the second sees the address protected.

(Had the second update come first, it could not have known: the order is the
sources', but no longer the hub's timing.) The first batch runs inside a
transaction left open (as if still flushing); the second must wait for it, and
decide as if it had come after.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from hub.config import Thresholds
from hub.db.connect import connect
from hub.ingest import process
from tests.factories import incoming, update

pytestmark = pytest.mark.integration

REFUGE = {"lines": ["Flat 2, 9 Alder Close"], "town": "Leeds", "postcode": "LS7 3QT",
          "la": "383"}
OLD_HOME = {"lines": ["41 Tanner Street"], "town": "Leeds", "postcode": "LS11 8PJ",
            "la": "383"}


async def _race(database_url: str, first: dict[str, Any], second: dict[str, Any],  # type: ignore[no-untyped-def]
                before: tuple[dict[str, Any], ...] = ()):
    a, b = await connect(database_url), await connect(database_url)
    try:
        for u in before:  # the index as it stands
            await process(a, [incoming(u)], Thresholds())
        holding = a.transaction()
        await holding.start()
        [one] = await process(a, [incoming(first)], Thresholds())
        racing = asyncio.create_task(process(b, [incoming(second)], Thresholds()))
        await asyncio.sleep(0.5)
        waited = not racing.done()  # it must wait for the first to commit
        await holding.commit()
        [two] = await asyncio.wait_for(racing, 10)
        rows = await a.fetch("SELECT child_id, shielded FROM children")
        return one, two, waited, rows
    finally:
        await a.close()
        await b.close()


@pytest.mark.parametrize(("born", "second", "reason"), [
    # The school's record of her: the day of birth mistyped, the old address.
    ("2015-03-14", dict(given_name="Ottoline", date_of_birth="2015-03-17", address=OLD_HOME),
     "shielded_candidate"),
    # Her brother's: another child, at the refuge.
    ("2012-05-01", dict(given_name="Barnaby", date_of_birth="2014-07-09", address=REFUGE),
     "shielded_address"),
], ids=["mistyped_copy", "sibling_at_refuge"])
async def test_an_update_beside_a_child_being_shielded_waits_and_goes_to_review(
    database_url: str, born: str, second: dict[str, Any], reason: str,
) -> None:
    shielded = update("la-leeds", "LA-77", nhs_number=None, given_name="Ottoline",
                      family_name="Bramwell", date_of_birth=born, address=REFUGE)
    shielded["restricted"] = True
    other = update("dfe", "UPN-77", nhs_number=None, family_name="Bramwell", **second)
    one, two, waited, rows = await _race(database_url, shielded, other)
    assert (one.action, waited) == ("create", True)
    assert (two.action, two.reason) == ("review", reason)
    assert [r["shielded"] for r in rows] == [True]  # one record, shielded


@pytest.mark.parametrize("school_address", [None, OLD_HOME],
                         ids=["not_read_before", "read_before_as_she_was"])
async def test_a_child_given_new_keys_while_shielded_is_found_by_a_concurrent_create(
    database_url: str, school_address: dict[str, Any] | None,
) -> None:
    """Placed for adoption: her authority records her new surname and shields her
    (restricted at origin, at her new home) while the school's record of her, under
    the new surname with her day of birth mistyped, is decided in another batch. Under
    her old surname the school's update finds nobody (no lock in common either: other
    dates of birth, no NHS number, no address); under the new one it finds her.
    Before, it created an open record of her; now the batch giving her new keys takes
    their guard locks, and the creating batch waits, finds her as she is now, and
    goes to review. (At her old address the school's update reads her as she was,
    scores her low and would create: it is decided again with her as she is now.)"""
    known = update("la-leeds", "LA-90", nhs_number=None, given_name="Ottoline",
                   family_name="Bramwell", date_of_birth="2015-03-14", address=OLD_HOME)
    adopted = update("la-leeds", "LA-90", 2, nhs_number=None, given_name="Ottoline",
                     family_name="Ashdown", date_of_birth="2015-03-14", address=REFUGE)
    adopted["restricted"] = True
    school = update("dfe", "UPN-90", nhs_number=None, given_name="Ottoline",
                    family_name="Ashdown", date_of_birth="2015-03-17", address=school_address)
    one, two, waited, rows = await _race(database_url, adopted, school, before=(known,))
    assert (one.action, one.reason, waited) == ("link", "source_link", True)
    assert (two.action, two.reason) == ("review", "shielded_candidate")
    assert [r["shielded"] for r in rows] == [True]


async def test_a_namesake_created_meanwhile_waits_but_is_not_done_again(
    database_url: str, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Two new children who share a blocking key (surname, a given name that sounds
    alike, birth month) but are plainly two children: the second batch waits, finds
    the first's record, decides again with it and still creates, without doing the
    batch again (in an initial load through the pipeline, most batches have such a
    namesake in another)."""
    from hub import ingest

    runs = 0
    once = ingest._process

    async def counted(*args: Any) -> Any:
        nonlocal runs
        runs += 1
        return await once(*args)

    monkeypatch.setattr(ingest, "_process", counted)
    first = update("dwp", "CB-83", nhs_number=None, given_name="Rupert", sex="male",
                   family_name="Bramwell", date_of_birth="2015-03-14", address=None)
    other = update("dfe", "UPN-83", nhs_number=None, given_name="Robert", sex="male",
                   family_name="Bramwell", date_of_birth="2015-03-20", address=None)
    one, two, waited, rows = await _race(database_url, first, other)
    assert (one.action, two.action, waited) == ("create", "create", True)
    assert len(rows) == 2
    assert runs == 2  # each batch once


async def test_unrelated_creates_do_not_wait_for_each_other(database_url: str) -> None:
    first = update("dwp", "CB-79", nhs_number=None, given_name="Ottoline",
                   family_name="Bramwell", date_of_birth="2015-03-14", address=REFUGE)
    other = update("dwp", "CB-80", nhs_number=None, given_name="Hesketh",
                   family_name="Pellow", date_of_birth="2009-11-23", address=OLD_HOME)
    one, two, waited, rows = await _race(database_url, first, other)
    assert (one.action, two.action, waited) == ("create", "create", False)
    assert len(rows) == 2


async def test_an_operator_creating_is_held_to_a_shielded_child_indexed_since_parking(
    database_url: str,
) -> None:
    """An update parked beside an open record; a shielded child who could be the same
    child is indexed before an operator judges the update to be another child. The
    new record is shielded by that child's authority, as if the candidate had been
    there when parked: the operator judged on what the index held then."""
    from hub import operations as ops

    conn = await connect(database_url)
    try:
        await process(conn, [incoming(update(
            "la-leeds", "LA-81", nhs_number=None, given_name="Ottoline", family_name="Bramwell",
            date_of_birth="2015-03-14", address=OLD_HOME))], Thresholds())
        [parked] = await process(conn, [incoming(update(
            "dwp", "CB-81", nhs_number=None, given_name="Otteline", family_name="Bramwell",
            date_of_birth="2015-03-14", address=REFUGE))], Thresholds())
        assert (parked.action, parked.reason) == ("review", "possible_match")
        # Then a child restricted at origin, placed by her authority as another child.
        hidden = update("la-brad", "LA-82", nhs_number=None, given_name="Otteline",
                        family_name="Bramwell", date_of_birth="2015-03-14",
                        address={**OLD_HOME, "lines": ["6 Sorrel Walk"], "postcode": "BD3 9LS",
                                 "la": "380"})
        hidden["restricted"] = True
        [other] = await process(conn, [incoming(hidden)], Thresholds())
        assert other.action == "review"
        placed = await ops.resolve(conn, other.parked_id, "create", None, "la-officer", None,
                                   Thresholds(), acting_for="380")
        assert placed.child_id is not None
        done = await ops.resolve(conn, parked.parked_id, "create", None, "op-1", None,
                                 Thresholds())
        row = await conn.fetchrow("SELECT shielded, shielding_authority FROM children"
                                  " WHERE child_id = $1", done.child_id)
        assert (row["shielded"], row["shielding_authority"]) == (True, "380")
    finally:
        await conn.close()


async def test_a_create_deciding_while_her_authority_shields_her_waits_and_goes_to_review(
    database_url: str,
) -> None:
    """`hub shield` on a child at the moment a batch holding a mistyped copy of her
    (at her new address) is deciding: the batch read her open and scored her low.
    Before, it created the open copy after the shield committed; now it waits for the
    shield and decides with her shielded."""
    from hub import operations as ops

    a, b = await connect(database_url), await connect(database_url)
    try:
        [known] = await process(a, [incoming(update(
            "la-leeds", "LA-91", nhs_number=None, given_name="Ottoline",
            family_name="Bramwell", date_of_birth="2015-03-14", address=OLD_HOME))],
            Thresholds())
        holding = a.transaction()
        await holding.start()
        await ops.shield(a, known.child_id, "383", "la-officer", "refuge")
        # A typo and a digit of the date wrong, at her new address: open, she scores
        # about 0.001 (a create); shielded, she is plausible (review).
        racing = asyncio.create_task(process(b, [incoming(update(
            "dfe", "UPN-91", nhs_number=None, given_name="Otoline", family_name="Bramwell",
            date_of_birth="2015-03-17", address=REFUGE))], Thresholds()))
        await asyncio.sleep(0.5)
        waited = not racing.done()
        await holding.commit()
        [two] = await asyncio.wait_for(racing, 10)
        assert waited
        assert (two.action, two.reason) == ("review", "shielded_candidate")
        assert await a.fetchval("SELECT count(*) FROM children") == 1
    finally:
        await a.close()
        await b.close()


async def test_an_operators_link_takes_the_batch_locks_before_the_childs_row(
    database_url: str,
) -> None:
    """`hub review resolve --link` waits for a batch holding the update's locks
    without holding the target's row meanwhile: the batch, about to write that row,
    goes on. (The other order, row first, deadlocked with such a batch.)"""
    from hub import operations as ops
    from hub.db import store
    from schemas.canonical import CanonicalUpdate

    a, b = await connect(database_url), await connect(database_url)
    try:
        [known] = await process(a, [incoming(update(
            "la-leeds", "LA-92", nhs_number=None, given_name="Ottoline",
            family_name="Bramwell", date_of_birth="2015-03-14", address=OLD_HOME))],
            Thresholds())
        parked_update = update("dwp", "CB-92", nhs_number=None, given_name="Otteline",
                               family_name="Bramwell", date_of_birth="2015-03-14",
                               address=REFUGE)
        [parked] = await process(a, [incoming(parked_update)], Thresholds())
        assert (parked.action, parked.reason) == ("review", "possible_match")
        # A batch holding the update's locks (its date of birth), not yet flushed.
        batch = a.transaction()
        await batch.start()
        await store.lock(a, [CanonicalUpdate.model_validate(parked_update)])
        resolving = asyncio.create_task(ops.resolve(
            b, parked.parked_id, "link", known.child_id, "op-1", None, Thresholds()))
        await asyncio.sleep(0.5)
        assert not resolving.done()  # waiting for the batch
        # The batch now writes the child: its row is free.
        await a.execute("SET LOCAL lock_timeout = '2s'")
        await a.fetchval("SELECT version FROM children WHERE child_id = $1 FOR UPDATE",
                         known.child_id)
        await batch.commit()
        done = await asyncio.wait_for(resolving, 10)
        assert done.child_id == known.child_id
    finally:
        await a.close()
        await b.close()
