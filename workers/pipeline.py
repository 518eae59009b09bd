"""The pipeline worker: batches from hub.inbound through hub.ingest, ack after commit.

Acknowledgement, explicitly:
- a batch is acked only after its transaction has committed;
- a paused source's message is acked only after the broker confirmed it in the
  source's held queue;
- a message whose processing fails for a reason that is not transient is
  rejected with requeue, so the queue's delivery limit dead-letters a poison
  message after a few attempts without holding up the rest;
- transient failures (database down) are retried in place; the messages stay
  unacknowledged and come back if this process dies.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from datetime import UTC, datetime
from typing import Any

import aio_pika
import asyncpg
from aio_pika.abc import AbstractIncomingMessage, AbstractRobustConnection

from hub import ingest
from hub.broker import topology as topo
from hub.broker.connection import (
    H_PUBLISHED_MS,
    message,
    publish,
    queue_depth,
    scoped_message_id,
)
from hub.config import Settings
from hub.decide import DEFAULT_MATCHER
from hub.log import get
from hub.publishing import user_of
from hub.text_rules import storable
from workers.retry import is_transient, transient

log = get("pipeline")
MAX_ATTEMPTS = 3  # a message failing this often is poison
STATUS_EVERY = 2.0  # seconds between an idle pipeline's status writes
STALL_LOOK = 5.0  # seconds between an idle pipeline's looks for updates it is not given


def incoming(msg: AbstractIncomingMessage) -> ingest.Incoming:
    # Properties and headers come from the publisher, so any of them may be
    # missing, of the wrong type or unstorable: each is read defensively.
    headers = msg.headers or {}
    # The routing-key header is the hub's own (retry and held copies); on a
    # message straight from hub.ingest it is the publisher's claim and ignored.
    moved_key = headers.get(topo.H_ROUTING_KEY) if msg.exchange != topo.INGEST else None
    routing_key = storable(str(moved_key or msg.routing_key or ""))
    body = msg.body
    return ingest.Incoming(
        message_id=scoped_message_id(routing_key, storable(msg.message_id or ""), body),
        routing_key=routing_key,
        body=body,
        user_id=msg.user_id,
        retry_of=parked_id(headers.get(topo.H_RETRY_OF)),
        published_at=_published(headers, msg.timestamp),
    )


def parked_id(value: Any) -> str | None:
    """A dead letter's id from a header, or None when it is not one (a uuid)."""
    try:
        return str(uuid.UUID(str(value))) if value is not None else None
    except ValueError:
        return None


def _published(headers: Any, ts: Any) -> datetime | None:
    ms = headers.get(H_PUBLISHED_MS)
    try:
        if isinstance(ms, int | float) and not isinstance(ms, bool):
            return datetime.fromtimestamp(ms / 1000, UTC)
    except (ValueError, OverflowError, OSError):
        pass  # not a time: fall back to the AMQP timestamp
    if not isinstance(ts, datetime):
        return None
    return ts if ts.tzinfo else ts.replace(tzinfo=UTC)


def _deliverable(msg: AbstractIncomingMessage) -> bool:
    try:
        return not msg.channel.is_closed
    except aio_pika.exceptions.ChannelInvalidStateError:
        return False


class ConsumerLost(Exception):
    """Updates wait in the queue while this pipeline, idle, is given none."""


async def _ready(channel: Any) -> int:
    """Messages ready in hub.inbound (0 when it cannot tell: the channel is down)."""
    try:
        async with asyncio.timeout(5):  # not waiting out a reconnect: a stop may come
            depth = await queue_depth(channel, topo.INBOUND)
    except Exception:  # noqa: BLE001 - a reconnect under way is not a stall
        return 0
    return depth[0] if depth else 0


class Pipeline:
    def __init__(
        self, settings: Settings, pool: asyncpg.Pool, amqp: AbstractRobustConnection,
        worker_id: str,
    ) -> None:
        self.settings = settings
        self.pool = pool
        self.amqp = amqp
        self.worker_id = worker_id
        self.buffer: asyncio.Queue[AbstractIncomingMessage] = asyncio.Queue()
        self.stopping = asyncio.Event()
        self.held_declared: set[str] = set()
        # The hub's own broker user may publish for any source (hub publish, re-drives).
        self.trusted = ingest.TRUSTED_USERS | {user_of(settings.amqp_url)}
        self.matcher = DEFAULT_MATCHER  # replaced by the runner with the active model
        self.stats: dict[str, int] = {}
        self.status_at = 0.0  # monotonic time of the last status write that landed
        self.consumer: tuple[Any, str] | None = None  # (queue, consumer tag) while running

    async def run(self) -> None:
        channel = await self.amqp.channel(publisher_confirms=True, on_return_raises=True)
        await channel.set_qos(prefetch_count=self.settings.batch_size * 2)
        # Declared (passively), not merely looked up: a robust channel restores
        # the consumers of the queues it declared after a reconnect.
        queue = await channel.declare_queue(topo.INBOUND, passive=True)
        held_exchange = await topo.exchange(channel, topo.HELD)
        tag = await queue.consume(self.buffer.put)
        self.consumer = (queue, tag)
        await self._status(0)
        looked_at, unfed = time.monotonic(), 0
        try:
            while not self.stopping.is_set():
                batch = await self._take()
                if batch:
                    looked_at, unfed = time.monotonic(), 0
                    try:
                        await self._handle(channel, held_exchange, batch)
                    except Exception as exc:  # noqa: BLE001 - the worker must go on
                        # Unacknowledged messages come back; nothing is lost.
                        log.error("batch_aborted", worker=self.worker_id, size=len(batch),
                                  error=type(exc).__name__)
                        for m in batch:
                            with contextlib.suppress(Exception):
                                await m.nack(requeue=True)
                        await asyncio.sleep(1)
                    if self.buffer.empty():
                        # Otherwise the next batch says how much is in hand.
                        await self._status(0)
                    continue
                if time.monotonic() - self.status_at >= STATUS_EVERY:
                    # Idle: say so again now and then. The runner's heartbeat keeps
                    # this row fresh, so a status write lost to a cut connection would
                    # otherwise leave `hub wait` counting messages no longer held.
                    await self._status(self.buffer.qsize())
                if time.monotonic() - looked_at >= STALL_LOOK:
                    looked_at = time.monotonic()
                    unfed = unfed + 1 if await _ready(channel) else 0
                    if unfed >= 2:
                        # Idle, with room to take more, while updates wait: the broker
                        # is not delivering to this consumer (one not restored after a
                        # reconnect). The runner starts the pipeline again.
                        raise ConsumerLost(topo.INBOUND)
        finally:
            with contextlib.suppress(Exception):
                await queue.cancel(tag)
            await self._status(0)
            with contextlib.suppress(Exception):
                await channel.close()

    async def _take(self) -> list[AbstractIncomingMessage]:
        try:
            first = await asyncio.wait_for(self.buffer.get(), timeout=0.5)
        except TimeoutError:
            return []
        batch = [first]
        size, buffer = self.settings.batch_size, self.buffer
        deadline = time.monotonic() + self.settings.batch_wait
        while len(batch) < size:
            while not buffer.empty() and len(batch) < size:  # what is here already
                batch.append(buffer.get_nowait())
            remaining = deadline - time.monotonic()
            if len(batch) >= size or remaining <= 0:
                break
            try:
                batch.append(await asyncio.wait_for(buffer.get(), timeout=remaining))
            except TimeoutError:
                break
        return batch

    async def _paused(self, inflight: int) -> set[str]:
        """Paused sources, and this worker's status (`hub wait` counts what it holds
        unacknowledged): one round trip a batch."""
        async for attempt in transient():
            with attempt:
                async with self.pool.acquire() as conn:
                    rows = await conn.fetch(
                        "WITH status AS (INSERT INTO worker_status (worker_id, inflight)"
                        " VALUES ($1, $2) ON CONFLICT (worker_id) DO UPDATE"
                        " SET inflight = $2, heartbeat = now())"
                        " SELECT name FROM sources WHERE paused", self.worker_id, inflight)
                    self.status_at = time.monotonic()
                    return {r["name"] for r in rows}
        return set()  # pragma: no cover - reraise=True

    async def _handle(self, channel: Any, held_exchange: Any,
                      batch: list[AbstractIncomingMessage]) -> None:
        # Deliveries from a channel that has since closed (a cut connection) can no
        # longer be acked: the broker delivers them again, so skip the work now.
        batch = [m for m in batch if _deliverable(m)]
        if not batch:
            return
        items = [incoming(m) for m in batch]
        paused = await self._paused(len(batch) + self.buffer.qsize())
        work: list[tuple[AbstractIncomingMessage, ingest.Incoming]] = []
        for msg, item in zip(batch, items, strict=True):
            source = ingest.source_of(item.routing_key)
            # Held messages come back without their publisher: judge it now.
            if source in paused and ingest.authenticated(item, self.trusted):
                await self._hold(channel, held_exchange, msg, item, source)
            else:
                work.append((msg, item))
        if not work:
            return
        try:
            outcomes = await self._process([i for _, i in work])
        except Exception as exc:  # noqa: BLE001 - classified below
            if is_transient(exc):
                log.error("batch_failed", worker=self.worker_id, size=len(work),
                          error=type(exc).__name__)
                for msg, _ in work:
                    await msg.nack(requeue=True)
                return
            # Find the poison message: one at a time; only it is set aside.
            for msg, item in work:
                try:
                    outcomes = await self._process([item])
                except Exception as one:  # noqa: BLE001
                    log.error("message_failed", worker=self.worker_id,
                              message_id=item.message_id, error=type(one).__name__)
                    await self._retry_later(channel, msg, item, type(one).__name__)
                else:
                    self._count(outcomes)
                    await msg.ack()
            return
        self._count(outcomes)
        await ack_batch([msg for msg, _ in work])

    async def _process(self, items: list[ingest.Incoming]) -> list[Any]:
        async for attempt in transient():
            with attempt:
                async with self.pool.acquire() as conn:
                    outcomes = await ingest.process(conn, items, self.settings.thresholds,
                                                    self.matcher, self.trusted)
        for o in outcomes:
            log.info("decision", worker=self.worker_id, message_id=o.message_id,
                     action=o.action, reason=o.reason, child_id=o.child_id,
                     parked_id=o.parked_id)
        return outcomes

    async def _hold(self, channel: Any, exchange: Any, msg: AbstractIncomingMessage,
                    item: ingest.Incoming, source: str) -> None:
        if source not in self.held_declared:
            await topo.declare_held(channel, source)
            self.held_declared.add(source)
        held = message(item.body, message_id=item.message_id,
                       headers={topo.H_ROUTING_KEY: item.routing_key})
        await publish(exchange, source, held)
        await msg.ack()
        log.info("held", worker=self.worker_id, message_id=item.message_id, source=source)

    async def _retry_later(self, channel: Any, msg: AbstractIncomingMessage,
                           item: ingest.Incoming, error: str) -> None:
        """A failing message goes to the delay queue, and after MAX_ATTEMPTS to the
        dead letters as poison; acked only once the broker confirmed the copy."""
        seen = (msg.headers or {}).get(topo.H_ATTEMPT)
        attempt = (seen if isinstance(seen, int) and 0 <= seen < MAX_ATTEMPTS else 0) + 1
        headers = {topo.H_ROUTING_KEY: item.routing_key, topo.H_ATTEMPT: attempt}
        if item.retry_of:
            headers[topo.H_RETRY_OF] = item.retry_of
        if attempt < MAX_ATTEMPTS:
            copy = message(item.body, message_id=item.message_id, headers=headers)
            await publish(channel.default_exchange, topo.retry_queue("5s"), copy)
        else:
            headers.update({topo.H_REASON: "poison_message",
                            topo.H_ERROR: f"processing failed {attempt} times ({error})"})
            dead = await topo.exchange(channel, topo.DEAD)
            copy = message(item.body, message_id=item.message_id, headers=headers)
            await publish(dead, item.routing_key, copy)
        await msg.ack()

    def _count(self, outcomes: list[Any]) -> None:
        for o in outcomes:
            self.stats[o.action] = self.stats.get(o.action, 0) + 1

    async def _status(self, inflight: int) -> None:
        try:
            async with self.pool.acquire() as conn:
                await conn.execute(
                    "INSERT INTO worker_status (worker_id, inflight) VALUES ($1, $2) "
                    "ON CONFLICT (worker_id) DO UPDATE SET inflight = $2, heartbeat = now()",
                    self.worker_id, inflight,
                )
            self.status_at = time.monotonic()
        except Exception as exc:  # noqa: BLE001 - status is advisory
            log.warning("status_failed", worker=self.worker_id, error=type(exc).__name__)


async def ack_batch(messages: list[AbstractIncomingMessage]) -> None:
    """Acknowledge a committed batch with one basic.ack(multiple) per channel, not
    one frame (and one socket write) per message.

    Safe because a batch holds the oldest unsettled deliveries of its channel:
    the buffer is first in, first out, one batch at a time is in hand per
    pipeline (and channel), and every earlier delivery was settled with its own
    batch (acked, nacked, held or sent to retry) before this one was taken.
    """
    newest: dict[int, AbstractIncomingMessage] = {}
    for m in messages:
        held = newest.get(id(m.channel))
        if held is None or m.delivery_tag > held.delivery_tag:  # type: ignore[operator]
            newest[id(m.channel)] = m
    for m in newest.values():
        await m.ack(multiple=True)


async def release_held(pool: asyncpg.Pool, amqp: AbstractRobustConnection) -> int:
    """Move the held updates of resumed sources back into the inbound queue."""
    async with pool.acquire() as conn:
        sources = [r["name"] for r in await conn.fetch(
            "SELECT name FROM sources WHERE held AND NOT paused")]
    moved = 0
    if not sources:
        return 0
    channel = await amqp.channel(publisher_confirms=True, on_return_raises=True)
    try:
        ingest_exchange = await topo.exchange(channel, topo.INGEST)
        for source in sources:
            queue = await topo.declare_held(channel, source)
            while True:
                msg = await queue.get(no_ack=False, fail=False)
                if msg is None:
                    break
                headers = dict(msg.headers or {})
                routing_key = str(headers.pop(topo.H_ROUTING_KEY, f"source.{source}"))
                await publish(ingest_exchange, routing_key,
                              message(msg.body, message_id=msg.message_id, headers=headers,
                                      user_id=None))
                await msg.ack()
                moved += 1
    finally:
        await channel.close()
    if moved:
        log.info("released_held", count=moved)
    return moved


__all__ = ["Pipeline", "release_held", "aio_pika"]
