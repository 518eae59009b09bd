"""Every selector of `hub dlq purge` and `retry` narrows the others (found by a
probe: `purge --reason invalid_json --older-than-days 0` purged letters of every
reason, and an id with another reason than `--reason` was purged anyway)."""

from __future__ import annotations

import pytest

from hub import metrics
from hub import operations as ops
from hub.config import Thresholds
from hub.db.connect import connect
from hub.ingest import Incoming, process
from tests.factories import canonical_body, update

pytestmark = pytest.mark.integration


async def test_selectors_narrow_one_another(database_url: str) -> None:
    conn = await connect(database_url)
    try:
        bad_number = canonical_body(update("dwp", "CB-1", nhs_number="9990000001"))
        out = await process(conn, [Incoming("m-1", "source.dwp", b"{not json"),
                                   Incoming("m-2", "source.dwp", b"[1, 2"),
                                   Incoming("m-3", "source.dwp", bad_number)], Thresholds())
        assert [o.reason for o in out] == ["invalid_json", "invalid_json", "invalid_nhs_number"]
        ids = {o.reason: str(o.parked_id) for o in out}
        # An age and a reason: both.
        rows = await ops.select_dead(conn, None, "invalid_json", False, 0)
        assert sorted(r["reason"] for r in rows) == ["invalid_json", "invalid_json"]
        assert await ops.select_dead(conn, None, "invalid_json", False, 30) == []
        assert len(await ops.select_dead(conn, None, None, False, 0)) == 3
        # An id that does not answer the reason, or the age: refused, nothing selected.
        with pytest.raises(ops.OperationError, match="has reason invalid_nhs_number"):
            await ops.select_dead(conn, [ids["invalid_json"], ids["invalid_nhs_number"]],
                                  "invalid_json", False)
        with pytest.raises(ops.OperationError, match="not older than 30 days"):
            await ops.select_dead(conn, [ids["invalid_nhs_number"]], None, False, 30)
        [row] = await ops.select_dead(conn, [ids["invalid_nhs_number"]], "invalid_nhs_number",
                                      False, 0)
        assert row["reason"] == "invalid_nhs_number"
    finally:
        await conn.close()


async def test_a_letter_whose_retry_was_parked_again_is_listed_once(database_url: str) -> None:
    """`hub dlq retry` stopped after the broker confirmed the retry but before it
    marked the letter retried (probe H ended its database session): the retry fails
    again and is parked beside the letter it retried. The later one stands for both."""
    conn = await connect(database_url)
    try:
        bad_number = canonical_body(update("dwp", "CB-1", nhs_number="9990000001"))
        [first] = await process(conn, [Incoming("m-1", "source.dwp", bad_number)],
                                Thresholds())
        old = str(first.parked_id)
        [again] = await process(conn, [Incoming(f"retry:{old}:1", "source.dwp", bad_number,
                                                retry_of=old)], Thresholds())
        assert again.reason == "invalid_nhs_number" and str(again.parked_id) != old
        listed = [str(r["id"]) for r in await ops.list_parked(conn, "dead", None)]
        assert listed == [str(again.parked_id)]
        assert [str(r["id"]) for r in await ops.select_dead(conn, None, None, True)] == listed
        with pytest.raises(ops.OperationError, match="was retried already"):
            await ops.select_dead(conn, [old], None, False)
        snap = metrics.Snapshot()
        await metrics.gather_db(conn, snap)
        assert snap.dead_letters == {"invalid_nhs_number": 1}
    finally:
        await conn.close()
