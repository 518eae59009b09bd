"""The outbox relay: committed notifications out to hub.notifications, with confirms.

A row is marked sent only after the broker confirmed it; a crash in between
publishes it again (at-least-once), and councils drop repeats by event_id.
"""

from __future__ import annotations

import asyncio
import contextlib

import asyncpg
from aio_pika.abc import AbstractRobustConnection

from hub.broker import topology as topo
from hub.broker.connection import message, publish
from hub.db.queries import q
from hub.log import get
from workers.retry import transient

log = get("relay")


async def relay_once(pool: asyncpg.Pool, exchange: object, limit: int = 500) -> int:
    async with pool.acquire() as conn, conn.transaction():
        batch = await conn.fetch(q("outbox_batch"), limit)
        if not batch:
            return 0
        # Written before its child was shielded, for a council that is not her
        # authority (the relay was behind): it may hold her new address. Never sent.
        withheld = [r for r in batch if r["withheld"]]
        if withheld:
            await conn.execute(q("outbox_mark_withheld"), [r["id"] for r in withheld])
            log.warning("withheld", count=len(withheld), reason="shielded_since_written",
                        child_ids=sorted({r["child_id"] for r in withheld}))
        rows = [r for r in batch if not r["withheld"]]
        await asyncio.gather(*(
            publish(
                exchange,  # type: ignore[arg-type]
                r["routing_key"],
                message(r["body"].encode(), message_id=r["event_id"]),
                mandatory=False,  # a council with no queue yet simply is not listening
            )
            for r in rows
        ))
        await conn.execute(q("outbox_mark_sent"), [r["id"] for r in rows])
    return len(batch)


#: The pipeline's flush notifies this channel as it commits outbox rows.
CHANNEL = "hub_outbox"
#: Without a notification (other writers, a lost listener), look this often anyway.
POLL = 0.25


async def run(pool: asyncpg.Pool, amqp: AbstractRobustConnection, stopping: asyncio.Event) -> None:
    channel = await amqp.channel(publisher_confirms=True)
    exchange = await topo.exchange(channel, topo.NOTIFICATIONS)
    wake = asyncio.Event()

    def notified(*_: object) -> None:
        wake.set()

    listener = None
    try:
        listener = await pool.acquire()
        await listener.add_listener(CHANNEL, notified)
        while not stopping.is_set():
            if listener.is_closed():  # the database went away: start again (runner)
                raise ConnectionError("the relay's listening connection was closed")
            wake.clear()  # before looking: a commit from now on wakes the next wait
            async for attempt in transient():
                with attempt:
                    sent = await relay_once(pool, exchange)
            if sent:
                log.info("relayed", count=sent)
                continue
            waits = [asyncio.ensure_future(wake.wait()), asyncio.ensure_future(stopping.wait())]
            await asyncio.wait(waits, timeout=POLL, return_when=asyncio.FIRST_COMPLETED)
            for w in waits:
                w.cancel()
    finally:
        if listener is not None:
            with contextlib.suppress(Exception):
                await listener.remove_listener(CHANNEL, notified)
            with contextlib.suppress(Exception):
                await pool.release(listener)
        await channel.close()
