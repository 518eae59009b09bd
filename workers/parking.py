"""Dead-letter parking: messages dead-lettered by the broker (poison, unroutable,
rejected by an adapter) are stored in the parked table, then acked."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import asyncpg
from aio_pika.abc import AbstractIncomingMessage, AbstractRobustConnection

from hub.batch import PARK_NAMESPACE
from hub.broker import topology as topo
from hub.broker.connection import message, publish, scoped_message_id
from hub.db import store
from hub.db.queries import q
from hub.ingest import Incoming, authenticated, digests_of, raw_text, source_of
from hub.log import get
from hub.text_rules import storable
from workers.pipeline import parked_id
from workers.retry import transient

log = get("parking")

# RabbitMQ 3.x counts every return of a message toward the quorum queue's delivery
# limit, a consumer's lost channel included (4.x counts only failed deliveries): a
# good update held by consumers that kept losing their connections (killed
# workers, cut connections, a broker restart) reaches the limit unprocessed. It
# goes back to the pipeline this many times before it is parked as poison; a
# message that really kills its worker costs (MAX_REDRIVES + 1) x DELIVERY_LIMIT
# worker restarts.
MAX_REDRIVES = 2
H_REDRIVEN = "x-hub-redriven"

REASON_ERRORS = {
    "poison_message": "processing failed on every delivery up to the delivery limit",
    "unroutable": "no queue takes this routing key",
    "dead_lettered": "dead-lettered by the broker",
}


def _str(value: Any) -> str | None:
    # Headers come from whoever published: any type, any text, NULs included.
    if value is None:
        return None
    if isinstance(value, bytes):
        return storable(value.decode("utf-8", "replace"))
    return storable(str(value))


def classify(msg: AbstractIncomingMessage) -> dict[str, Any]:
    """Reason, error and origin of a dead-lettered message."""
    headers = msg.headers or {}
    deaths = headers.get("x-death") or []
    original_key = _str(msg.routing_key) or ""
    if isinstance(deaths, list) and deaths and isinstance(deaths[0], dict):
        keys = deaths[0].get("routing-keys") or []
        if isinstance(keys, list) and keys:
            original_key = _str(keys[0]) or original_key
    reason = _str(headers.get(topo.H_REASON))
    if reason is None:
        first = _str(headers.get("x-first-death-reason"))
        if first == "delivery_limit":
            reason = "poison_message"
        elif msg.exchange == topo.UNROUTED or not deaths:
            reason = "unroutable"
        else:
            reason = "dead_lettered"
    source = _str(headers.get(topo.H_SOURCE)) or source_of(original_key)
    return {
        "reason": reason,
        "error": _str(headers.get(topo.H_ERROR)) or REASON_ERRORS.get(reason, reason),
        "source": source,
        "source_record_id": _str(headers.get(topo.H_RECORD)),
        "routing_key": original_key,
        "retry_of": parked_id(headers.get(topo.H_RETRY_OF)),
        "format": _str(headers.get(topo.H_FORMAT)),
    }


def _record_id(body: bytes) -> str | None:
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):
        return None
    rid = data.get("source_record_id") if isinstance(data, dict) else None
    return storable(str(rid)[:200]) if isinstance(rid, str | int) else None


async def park(pool: asyncpg.Pool, msg: AbstractIncomingMessage) -> str | None:
    """The parked id; None for a copy of a message the pipeline has processed."""
    import uuid

    info = classify(msg)
    mid = scoped_message_id(info["routing_key"], storable(msg.message_id or ""), msg.body)
    rid = info["source_record_id"] or _record_id(msg.body)
    async with pool.acquire() as conn, conn.transaction():
        # A message whose acknowledgement was lost comes back; after the delivery
        # limit the broker dead-letters it even if a worker had committed it. Its
        # effect exists, so it is no dead letter (the message's lock waits for a
        # worker still committing it). A different message under that id is one.
        await store.lock(conn, [], [mid])
        done = await store.processed(conn, [mid])
        reused: bytes | None = None
        if mid in done:
            digests = digests_of(Incoming(mid, info["routing_key"], msg.body))
            if done[mid] is None or done[mid] in digests:
                return None
            reused = digests[0]  # as the pipeline parks it: one item, whoever parks it
        name = f"dead:{mid}" + (f":{reused.hex()}" if reused else "")
        pid = str(uuid.uuid5(PARK_NAMESPACE, name))
        status = await conn.execute(
            q("insert_parked"), pid, "dead", info["reason"], info["source"], rid, None,
            info["error"], raw_text(msg.body), info["routing_key"], mid, None, [],
            info["retry_of"], reused, info["format"],
        )
        if status.endswith(" 0"):  # parked already: a redelivery, decided once
            return pid
        await conn.execute(
            q("insert_audit"), "parking", "decision.dead", None, f"{info['source']}/{rid}",
            {"reason": info["reason"], "message_id": mid, "parked_id": pid},
        )
    return pid


def _redrives(msg: AbstractIncomingMessage) -> int:
    try:
        return int(str((msg.headers or {}).get(H_REDRIVEN) or 0))
    except ValueError:
        return MAX_REDRIVES


def redrivable(msg: AbstractIncomingMessage) -> bool:
    """Dead-lettered by hub.inbound's delivery limit (its latest death), not by the
    hub's own verdict, not yet sent back MAX_REDRIVES times, from a publisher
    allowed to publish for its source (a copy loses its publisher)."""
    headers = msg.headers or {}
    deaths = headers.get("x-death")
    if topo.H_REASON in headers or not isinstance(deaths, list) or not deaths:
        return False
    last = deaths[0] if isinstance(deaths[0], dict) else {}
    if _str(last.get("reason")) != "delivery_limit" or _str(last.get("queue")) != topo.INBOUND:
        return False
    item = Incoming(msg.message_id or "", classify(msg)["routing_key"], msg.body,
                    user_id=msg.user_id)
    return _redrives(msg) < MAX_REDRIVES and authenticated(item)


async def redrive(channel: Any, msg: AbstractIncomingMessage) -> int:
    """Back into hub.inbound, same body and message id (a repeat is a no-op there),
    acked by the caller once the broker confirmed the copy."""
    headers = {k: v for k, v in (msg.headers or {}).items()
               if not k.startswith(("x-death", "x-first-death", "x-last-death"))}
    headers[topo.H_ROUTING_KEY] = classify(msg)["routing_key"]
    n = headers[H_REDRIVEN] = _redrives(msg) + 1
    await publish(channel.default_exchange, topo.INBOUND,
                  message(msg.body, message_id=msg.message_id, headers=headers))
    return n


async def run(pool: asyncpg.Pool, amqp: AbstractRobustConnection, stopping: asyncio.Event) -> None:
    channel = await amqp.channel(publisher_confirms=True)
    await channel.set_qos(prefetch_count=50)
    queue = await channel.declare_queue(topo.PARKING_DEAD, passive=True)  # restored on reconnect
    try:
        async with queue.iterator() as messages:
            async for msg in messages:
                if redrivable(msg):
                    async for attempt in transient():
                        with attempt:
                            n = await redrive(channel, msg)
                    await msg.ack()
                    log.info("redriven", message_id=msg.message_id, redrives=n)
                    continue
                async for attempt in transient():
                    with attempt:
                        pid = await park(pool, msg)
                await msg.ack()  # after commit
                if pid is None:
                    log.info("dead_letter_already_processed", message_id=msg.message_id)
                else:
                    log.info("parked", parked_id=pid, kind="dead")
                if stopping.is_set():
                    break
    finally:
        await channel.close()
