"""Is the hub idle? Every work queue empty, nothing unacknowledged, outbox drained."""

from __future__ import annotations

from hub.broker import topology as topo
from hub.broker.connection import connect, queue_depth
from hub.config import Settings
from hub.db.connect import connect as db_connect
from hub.db.queries import q


async def idle(s: Settings) -> tuple[bool, str]:
    conn = await db_connect(s.database_url)
    try:
        pending = await conn.fetchval(q("outbox_pending"))
        inflight = await conn.fetchval(
            "SELECT coalesce(sum(inflight), 0) FROM worker_status"
            " WHERE heartbeat > now() - interval '10 seconds'")
        resumed = [r["name"] for r in await conn.fetch(
            "SELECT name FROM sources WHERE held AND NOT paused")]
    finally:
        await conn.close()
    if pending:
        return False, f"{pending} notifications in the outbox"
    if inflight:
        return False, f"{inflight} messages being processed"
    amqp = await connect(s.amqp_url)
    try:
        names = topo.work_queues() + [topo.held_queue(n) for n in resumed]
        for name in names:
            depth = await queue_depth(await amqp.channel(), name)
            if depth is not None and depth[0]:
                return False, f"{depth[0]} messages in {name}"
    finally:
        await amqp.close()
    return True, "idle"
