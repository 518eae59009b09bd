"""Every exchange and queue the hub owns, declared in code.

hub.ingest (topic)          sources publish `source.<NAME>`; alternate exchange
                            hub.unrouted catches anything no queue takes
hub.inbound (quorum)        the pipeline's queue: delivery limit for poison
                            messages, at-least-once dead-lettering to hub.dead
hub.retry.<delay> (quorum)  delayed retry for transient failures: TTL, then
                            dead-lettered back to hub.inbound
hub.dead -> hub.parking.dead  dead letters (poison, unroutable, adapter rejects)
                            waiting for the parking worker to store them
hub.held.<SOURCE> (quorum)  a paused source's updates, held until resume
hub.notifications (topic)   change notifications `la.<LA>.<event>`
council.<LA> (quorum)       a council's own queue, bound to `la.<LA>.#`
"""

from __future__ import annotations

from typing import Any

import aio_pika
from aio_pika.abc import AbstractChannel, AbstractExchange, AbstractQueue

INGEST = "hub.ingest"
NOTIFICATIONS = "hub.notifications"
UNROUTED = "hub.unrouted"
DEAD = "hub.dead"
HELD = "hub.held"
INBOUND = "hub.inbound"
PARKING_DEAD = "hub.parking.dead"
RETRY_DELAYS = {"5s": 5_000}
DELIVERY_LIMIT = 5

# Header names the hub sets on messages it moves around.
H_REASON = "x-hub-reason"
H_ERROR = "x-hub-error"
H_SOURCE = "x-hub-source"
H_RECORD = "x-hub-source-record-id"
H_ROUTING_KEY = "x-hub-routing-key"
H_RETRY_OF = "x-hub-retry-of"
H_ATTEMPT = "x-hub-attempt"
#: The file format whose adapter rejected a record: its raw content is in that
#: format (a CSV row, a FHIR resource, a CTF pupil), not a canonical update.
H_FORMAT = "x-hub-format"


def retry_queue(delay: str) -> str:
    return f"hub.retry.{delay}"


def held_queue(source: str) -> str:
    return f"{HELD}.{source}"


def council_queue(la: str) -> str:
    return f"council.{la}"


QUORUM_ARGS: dict[str, Any] = {"x-queue-type": "quorum"}


async def declare(channel: AbstractChannel) -> None:
    """Idempotent: the whole topology (hub setup calls this)."""
    dead = await channel.declare_exchange(DEAD, aio_pika.ExchangeType.FANOUT, durable=True)
    unrouted = await channel.declare_exchange(
        UNROUTED, aio_pika.ExchangeType.FANOUT, durable=True
    )
    ingest = await channel.declare_exchange(
        INGEST, aio_pika.ExchangeType.TOPIC, durable=True,
        arguments={"alternate-exchange": UNROUTED},
    )
    await channel.declare_exchange(NOTIFICATIONS, aio_pika.ExchangeType.TOPIC, durable=True)
    await channel.declare_exchange(HELD, aio_pika.ExchangeType.DIRECT, durable=True)

    parking = await channel.declare_queue(PARKING_DEAD, durable=True, arguments=QUORUM_ARGS)
    await parking.bind(dead)
    await parking.bind(unrouted)

    inbound = await channel.declare_queue(
        INBOUND,
        durable=True,
        arguments={
            **QUORUM_ARGS,
            "x-delivery-limit": DELIVERY_LIMIT,
            "x-dead-letter-exchange": DEAD,
            "x-dead-letter-strategy": "at-least-once",
            "x-overflow": "reject-publish",
        },
    )
    await inbound.bind(ingest, routing_key="source.#")
    for delay, ttl in RETRY_DELAYS.items():
        await channel.declare_queue(
            retry_queue(delay),
            durable=True,
            arguments={
                **QUORUM_ARGS,
                "x-message-ttl": ttl,
                "x-dead-letter-exchange": "",
                "x-dead-letter-routing-key": INBOUND,
                "x-dead-letter-strategy": "at-least-once",
                "x-overflow": "reject-publish",
            },
        )


async def declare_held(channel: AbstractChannel, source: str) -> AbstractQueue:
    held = await channel.get_exchange(HELD, ensure=False)
    queue = await channel.declare_queue(held_queue(source), durable=True, arguments=QUORUM_ARGS)
    await queue.bind(held, routing_key=source)
    return queue


async def declare_council(channel: AbstractChannel, la: str) -> AbstractQueue:
    notes = await channel.get_exchange(NOTIFICATIONS, ensure=False)
    queue = await channel.declare_queue(council_queue(la), durable=True, arguments=QUORUM_ARGS)
    await queue.bind(notes, routing_key=f"la.{la}.#")
    return queue


async def exchange(channel: AbstractChannel, name: str) -> AbstractExchange:
    return await channel.get_exchange(name, ensure=False)


def work_queues() -> list[str]:
    """Queues that must be empty before `hub wait` says the hub is idle."""
    return [INBOUND, PARKING_DEAD, *(retry_queue(d) for d in RETRY_DELAYS)]
