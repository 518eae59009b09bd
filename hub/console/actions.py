"""Console actions that the CLI also performs (dead-letter retry, source pause and
resume, status), written against a connection and a broker so both can share them."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import asyncpg
from aio_pika.abc import AbstractRobustConnection

from hub import operations as ops
from hub.broker import topology as topo
from hub.broker.connection import message, queue_depth
from hub.broker.connection import publish as broker_publish
from hub.operations import OperationError

#: Dead letters a retry must not republish: the hub publishes a retry as its own
#: trusted broker user, so these would pass as the source they claim to be from.
NOT_RETRIED = {
    "unauthenticated_source": "its publisher may not publish for that source; the source"
                              " must send it itself",
    "source_mismatch": "its body names another source than it was published for; the"
                       " source must send it itself",
    # Published under no source's routing key: the source its body names is a claim
    # only, as for source_mismatch (an independent probe had it retried as dwp).
    "invalid_routing_key": "it was not published under source.<NAME>; the source must"
                           " send it itself",
}


async def retry_dead(conn: asyncpg.Connection, amqp: AbstractRobustConnection,
                     rows: Sequence[asyncpg.Record], by: str
                     ) -> tuple[int, list[tuple[str, str]]]:
    """Republish dead letters to hub.ingest as fresh messages (like `hub dlq retry`).

    Returns (retried, (id, why) of those that could not be retried)."""
    channel = await amqp.channel(publisher_confirms=True, on_return_raises=True)
    try:
        ingest = await topo.exchange(channel, topo.INGEST)
        retried, skipped = 0, []
        for r in rows:
            if r["raw"] is None or not r["source"]:
                skipped.append((str(r["id"]), "no raw content or source"))
                continue
            if r["reason"] in NOT_RETRIED:
                skipped.append((str(r["id"]), NOT_RETRIED[r["reason"]]))
                continue
            if r["format"] is not None:
                # Its raw content is a line or record of the file (a CSV row has no
                # header), and the adapter would judge it the same again.
                skipped.append((str(r["id"]), f"the {r['format']} adapter rejected it as"
                                " the file was read; correct the file and publish it again"))
                continue
            # A fresh message: no stale x-death headers, a new id, its lineage kept.
            msg = message(
                r["raw"].encode(),
                message_id=f"retry:{r['id']}:{r['attempts'] + 1}",
                headers={topo.H_RETRY_OF: str(r["id"])},
            )
            await broker_publish(ingest, f"source.{r['source']}", msg)
            async with conn.transaction():
                await ops.mark_dead(conn, [r["id"]], "retried", by, "dlq.retry")
            retried += 1
            await asyncio.sleep(0.002)  # rate limit: a re-drive must not flood the pipeline
    finally:
        await channel.close()
    return retried, skipped


async def pause(conn: asyncpg.Connection, amqp: AbstractRobustConnection, name: str,
                by: str, via: str = "console") -> None:
    channel = await amqp.channel()
    try:
        await topo.declare_held(channel, name)
    finally:
        await channel.close()
    async with conn.transaction():
        await conn.execute(
            "INSERT INTO sources (name, paused, held, changed_by) VALUES ($1, true, true, $2)"
            " ON CONFLICT (name) DO UPDATE SET paused = true, held = true, changed_by = $2,"
            " changed_at = now()", name, by)
        await ops.audit(conn, by, "source.pause", None, name, {"via": via})


async def resume(conn: asyncpg.Connection, name: str, by: str, via: str = "console") -> None:
    async with conn.transaction():
        found = await conn.fetchval(
            "UPDATE sources SET paused = false, changed_by = $2, changed_at = now()"
            " WHERE name = $1 AND paused RETURNING name", name, by)
        if not found:
            raise OperationError(f"source {name} is not paused")
        await ops.audit(conn, by, "source.resume", None, name, {"via": via})


async def source_status(conn: asyncpg.Connection | asyncpg.Pool,
                        amqp: AbstractRobustConnection | None) -> list[dict[str, Any]]:
    rows = await conn.fetch(
        "SELECT name, paused, held, changed_by, changed_at FROM sources ORDER BY name")
    seen = await conn.fetch(
        "SELECT source, count(*) AS n FROM source_links GROUP BY source ORDER BY source")
    state = {r["name"]: r for r in rows}
    linked = {r["source"]: r["n"] for r in seen}
    out = []
    for name in sorted(set(state) | set(linked)):
        r = state.get(name)
        held: int | None = None
        if r is not None and r["held"] and amqp is not None:
            channel = await amqp.channel()
            depth = await queue_depth(channel, topo.held_queue(name))
            held = depth[0] if depth else 0
            if not channel.is_closed:
                await channel.close()
        out.append({
            "name": name,
            "paused": bool(r is not None and r["paused"]),
            "held": held,
            "linked": linked.get(name, 0),
            "changed_by": r["changed_by"] if r is not None else None,
            "changed_at": r["changed_at"] if r is not None else None,
        })
    return out
