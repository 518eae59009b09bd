"""A notification written before its child was shielded, for a council other than
the shielding authority, and still unsent when the shield took effect (the relay
behind: a broker outage, a backlog), is withheld, not sent: it may carry her new
address (found by an independent probe: `child.moved_in` with the refuge reached the
refuge's council after `hub shield` had returned)."""

from __future__ import annotations

import json

import aio_pika
import asyncpg
import pytest

from hub import operations as ops
from hub.broker import topology as topo
from hub.config import Thresholds
from hub.db.connect import connect
from hub.ingest import process
from tests.factories import incoming, update
from workers.relay import relay_once

pytestmark = pytest.mark.integration

T = Thresholds()
REFUGE = {"lines": ["9 Refuge Gardens"], "town": "Bradford", "postcode": "BD4 4RG", "la": "380"}


async def test_notifications_written_before_a_shield_go_to_her_authority_only(
    database_url: str, amqp_url: str,
) -> None:
    conn = await connect(database_url)
    amqp = await aio_pika.connect_robust(amqp_url)
    try:
        channel = await amqp.channel(publisher_confirms=True)
        await topo.declare(channel)
        queues = {la: await topo.declare_council(channel, la) for la in ("380", "383")}
        [her] = await process(conn, [incoming(update("dwp", "TT-1"))], T)
        await process(conn, [incoming(update("dwp", "TT-1", 2, address=REFUGE))], T)
        assert her.child_id is not None
        # Shielded by her home council before the relay sent any of it.
        await ops.shield(conn, her.child_id, "383", "officer", "refuge")
        pool = await asyncpg.create_pool(database_url, min_size=1, max_size=2)
        try:
            exchange = await topo.exchange(channel, topo.NOTIFICATIONS)
            while await relay_once(pool, exchange):
                pass
        finally:
            await pool.close()
        got: dict[str, list[dict[str, object]]] = {}
        for la, queue in queues.items():
            got[la] = []
            while (msg := await queue.get(no_ack=True, fail=False)) is not None:
                got[la].append(json.loads(msg.body))
        # The refuge's council hears nothing of her, her authority all of it.
        assert got["380"] == []
        assert [(m["event"], m["version"]) for m in got["383"]] == [
            ("child.created", 1), ("child.moved_out", 2), ("child.shielded", 3)]
        withheld = await conn.fetch(
            "SELECT routing_key FROM outbox WHERE withheld ORDER BY id")
        assert [r[0] for r in withheld] == ["la.380.child.moved_in"]
        assert await conn.fetchval("SELECT count(*) FROM outbox WHERE sent_at IS NULL") == 0
    finally:
        await amqp.close()
        await conn.close()
