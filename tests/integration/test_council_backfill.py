"""A council that joins late (`hub council add LA --backfill`) is sent a
`child.snapshot` of every child it would be told of now: the open records in its
area, whole, and the children it shields, whole; nothing of a child another
authority shields, wherever she lives (found by an independent probe: a council
added after changes got nothing about the children already in its area)."""

from __future__ import annotations

import pytest

from hub import operations as ops
from hub.config import Thresholds
from hub.db.connect import connect
from hub.ingest import process
from schemas.notification import Notification
from tests.factories import incoming, nhs, update
from tests.helpers import hub

pytestmark = pytest.mark.integration

T = Thresholds()


def _at(la: str, n: int) -> dict[str, object]:
    return {"lines": [f"{n} Mill Street"], "town": "Leeds", "postcode": f"LS{n} 1AA", "la": la}


async def test_a_late_council_is_sent_what_it_would_be_told_now(
    hub_env: dict[str, str], database_url: str,
) -> None:
    hub(hub_env, "setup")
    conn = await connect(database_url)
    try:
        names = ["Ada", "Bryn", "Cai", "Dilys"]
        out = await process(conn, [incoming(update(
            "la", f"LA-{i}", nhs_number=nhs(i + 1), given_name=name,
            date_of_birth=f"201{i}-02-03", address=_at(la, i + 1)))
            for i, (name, la) in enumerate(zip(names, ["383", "380", "380", "383"],
                                               strict=True))], T)
        ids = dict(zip(names, [str(o.child_id) for o in out], strict=True))
        await ops.shield(conn, ids["Cai"], "383", "officer", "refuge")  # lives in 380
        await ops.shield(conn, ids["Dilys"], "380", "officer", "refuge")  # lives in 383
        before = await conn.fetchval("SELECT max(id) FROM outbox")
        assert await ops.backfill(conn, "383", "officer") == 2
        sent = {r["body"]["child_id"]: r for r in await conn.fetch(
            "SELECT routing_key, body FROM outbox WHERE id > $1", before)}
        assert set(sent) == {ids["Ada"], ids["Cai"]}
        for cid in sent:
            Notification.model_validate(sent[cid]["body"])  # the published shape
            assert sent[cid]["routing_key"] == "la.383.child.snapshot"
            assert sent[cid]["body"]["child"]["address"]["postcode"]  # whole, to it
        assert sent[ids["Cai"]]["body"]["shielded"] is True
        assert await conn.fetchval("SELECT count(*) FROM audit_log WHERE action ="
                                   " 'council.backfill' AND subject = '383'") == 1
    finally:
        await conn.close()
    # From the command line, after the queue exists (again: a new run, new ids).
    done = hub(hub_env, "council", "add", "383", "--backfill", "--by", "officer")
    assert "383: 2 child.snapshot notifications written" in done.stdout
