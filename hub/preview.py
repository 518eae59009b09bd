"""`hub source preview NAME`: what resuming a paused source would do, without doing it.

The held messages are read from the broker and returned to it untouched; they
go through the very code the pipeline runs (hub.ingest.process), inside a
transaction that is rolled back, so the report is exactly what resuming would
decide against the index as it stands, and nothing is written.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from aio_pika.abc import AbstractIncomingMessage

from hub.broker import topology as topo
from hub.broker.connection import connect, message_id_for
from hub.config import Settings
from hub.db.connect import connect as db_connect
from hub.decide import DEFAULT_MATCHER, Matcher
from hub.ingest import Incoming, process
from hub.operations import OperationError


@dataclass
class Preview:
    held: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)
    reasons: Counter[str] = field(default_factory=Counter)
    touching_shielded: int = 0


class _Rollback(Exception):
    pass


async def preview(s: Settings, source: str, limit: int = 100_000) -> Preview:
    conn = await db_connect(s.database_url)
    amqp = await connect(s.amqp_url)
    result = Preview()
    try:
        paused = await conn.fetchval("SELECT paused FROM sources WHERE name = $1", source)
        if not paused:
            raise OperationError(f"source {source} is not paused: nothing is held to preview")
        try:
            from hub.match_store import active_model, term_frequencies

            model = await active_model(conn)
            matcher = Matcher(model, await term_frequencies(conn, model))
        except Exception:  # noqa: BLE001 - an index without a trained model
            matcher = DEFAULT_MATCHER
        channel = await amqp.channel()
        queue = await topo.declare_held(channel, source)
        messages: list[AbstractIncomingMessage] = []
        while len(messages) < limit:
            msg = await queue.get(no_ack=False, fail=False)
            if msg is None:
                break
            messages.append(msg)
        items = []
        for msg in messages:
            headers = msg.headers or {}
            key = str(headers.get(topo.H_ROUTING_KEY) or f"source.{source}")
            items.append(Incoming(msg.message_id or message_id_for(key, msg.body), key,
                                  msg.body, msg.user_id))
        result.held = len(items)
        try:
            async with conn.transaction():
                for start in range(0, len(items), s.batch_size):
                    # No advisory locks: held to the end of this one transaction, a
                    # large backlog's would fill PostgreSQL's lock table.
                    outcomes = await process(conn, items[start:start + s.batch_size],
                                             s.thresholds, matcher, locks=False)
                    for o in outcomes:
                        result.outcomes[o.action] += 1
                        result.reasons[f"{o.action}:{o.reason}"] += 1
                        result.touching_shielded += int(o.touches_shielded)
                raise _Rollback  # preview writes nothing
        except _Rollback:
            pass
        finally:
            for msg in messages:  # back to the held queue, untouched
                await msg.nack(requeue=True)
    finally:
        await amqp.close()
        await conn.close()
    return result
