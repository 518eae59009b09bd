"""Connecting, publishing persistent messages with confirms, and counting queues."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import aio_pika
import aiormq
from aio_pika.abc import AbstractChannel, AbstractExchange, AbstractRobustConnection

from hub.broker import tolerant

# A message with properties pamqp cannot decode must not close the connection.
tolerant.install()


async def connect(url: str) -> AbstractRobustConnection:
    # Reconnect quickly after a cut: the hub's consumers and publishers resume
    # on the same robust channels.
    with _first_attempt_unlogged():
        return await aio_pika.connect_robust(url, timeout=10, reconnect_interval=1)


_LIBRARY_LOGGERS = ("aiormq", "aio_pika")
_connecting = 0
_levels: dict[str, int] = {}


@contextmanager
def _first_attempt_unlogged() -> Iterator[None]:
    """A first connection that fails is the caller's one error line ("cannot reach
    a service"); the libraries' own log lines about it would come before it on
    stderr. Once connected, their reconnection logs are kept."""
    global _connecting
    if _connecting == 0:
        _levels.update({n: logging.getLogger(n).level for n in _LIBRARY_LOGGERS})
        for name in _LIBRARY_LOGGERS:  # a level, unlike `disabled`, covers child loggers
            logging.getLogger(name).setLevel(logging.CRITICAL + 1)
    _connecting += 1
    try:
        yield
    finally:
        _connecting -= 1
        if _connecting == 0:
            for name, level in _levels.items():
                logging.getLogger(name).setLevel(level)


async def confirming_channel(conn: AbstractRobustConnection) -> AbstractChannel:
    # on_return_raises: an unroutable mandatory message is an error, not a silent drop.
    return await conn.channel(publisher_confirms=True, on_return_raises=True)


H_PUBLISHED_MS = "x-hub-published-ms"


def message_id_for(routing_key: str, body: bytes) -> str:
    """Stable id for content: the same update published twice is one update."""
    return "sha256:" + hashlib.sha256(routing_key.encode() + b"\n" + body).hexdigest()


#: Ids the hub makes itself, unique already: content ids and dead-letter retries.
_OWN_IDS = ("sha256:", "retry:")


def scoped_message_id(routing_key: str, message_id: str, body: bytes) -> str:
    """The id the hub knows a message by: a publisher's message id within its routing
    key (two sources may each number their messages 1, 2, 3: found by an independent
    probe, the second source's were dead letters as `message_id_reused`); the hub's
    own ids, and an id scoped already (a held or retried copy), as they are; without
    an id, its content's."""
    if not message_id:
        return message_id_for(routing_key, body)
    if message_id.startswith((*_OWN_IDS, routing_key + "/")):
        return message_id
    return f"{routing_key}/{message_id}"


def message(
    body: bytes,
    *,
    message_id: str | None = None,
    headers: dict[str, Any] | None = None,
    user_id: str | None = None,
) -> aio_pika.Message:
    now = datetime.now(UTC)
    return aio_pika.Message(
        body,
        content_type="application/json",
        delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
        message_id=message_id,
        # Publish time (the AMQP timestamp has whole seconds; the header, milliseconds):
        # the processing latency histogram starts here.
        headers={H_PUBLISHED_MS: int(now.timestamp() * 1000), **(headers or {})},
        user_id=user_id,
        timestamp=now,
    )


async def publish(
    exchange: AbstractExchange, routing_key: str, msg: aio_pika.Message, mandatory: bool = True
) -> None:
    """Publish and wait for the broker's confirm (raises if refused or unroutable)."""
    await exchange.publish(msg, routing_key=routing_key, mandatory=mandatory)


async def queue_depth(channel: AbstractChannel, name: str) -> tuple[int, int] | None:
    """(ready messages, consumers) of a queue, or None when it does not exist."""
    try:
        # On the AMQP channel itself: a robust channel answers a passive declaration
        # of a queue it knows with that queue as first declared, counts and all.
        res = await (await channel.get_underlay_channel()).queue_declare(name, passive=True)
    except (aiormq.exceptions.ChannelNotFoundEntity, aio_pika.exceptions.ChannelClosed):
        return None
    return res.message_count or 0, res.consumer_count or 0
