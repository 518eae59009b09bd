"""Is the hub idle? Every work queue empty, nothing unacknowledged, outbox drained.

The broker tells a queue's ready messages and its consumers, not what those consumers
hold unacknowledged: each pipeline says that itself (worker_status: what it holds, and
a heartbeat its process refreshes every two seconds). A pipeline whose heartbeat is
older than FRESH has died (its consumer is gone and the broker has put back what it
held) or is alive but has not reported (its process starved of CPU, or stopped): the
work queue's consumers tell which. Only pipelines consume INBOUND; while it has more
consumers than pipelines reporting, one of them may hold anything, and the hub is not
idle. A paused source's held updates do not count (they wait for `hub source
resume`), but they are named."""

from __future__ import annotations

from hub.broker import topology as topo
from hub.broker.connection import connect, queue_depth
from hub.config import Settings
from hub.db.connect import connect as db_connect
from hub.db.queries import q

FRESH = 10  # seconds: a pipeline's heartbeat younger than this is reporting


async def idle(s: Settings) -> tuple[bool, str]:
    conn = await db_connect(s.database_url)
    try:
        pending = await conn.fetchval(q("outbox_pending"))
        workers = await conn.fetch(
            "SELECT inflight, heartbeat > now() - make_interval(secs => $1) AS fresh"
            " FROM worker_status", FRESH)
        held = await conn.fetch("SELECT name, paused FROM sources WHERE held")
    finally:
        await conn.close()
    if pending:
        return False, f"{pending} notifications in the outbox"
    inflight = sum(r["inflight"] for r in workers if r["fresh"])
    if inflight:
        return False, f"{inflight} messages being processed"
    reporting = sum(1 for r in workers if r["fresh"])
    resumed = [r["name"] for r in held if not r["paused"]]
    amqp = await connect(s.amqp_url)
    try:
        names = topo.work_queues() + [topo.held_queue(n) for n in resumed]
        for name in names:
            depth = await queue_depth(await amqp.channel(), name)
            if depth is not None and depth[0]:
                return False, f"{depth[0]} messages in {name}"
            if name == topo.INBOUND and depth is not None and depth[1] > reporting:
                return False, (f"a pipeline consuming {name} has not reported for {FRESH} s"
                               " (it may hold messages)")
        # A paused source's updates wait, durable, by design: idle, but said.
        waiting = []
        for name in sorted(r["name"] for r in held if r["paused"]):
            depth = await queue_depth(await amqp.channel(), topo.held_queue(name))
            if depth is not None and depth[0]:
                waiting.append(f"{depth[0]} held for paused source {name}")
    finally:
        await amqp.close()
    return True, "; ".join(waiting)  # idle: what still waits by design, if anything
