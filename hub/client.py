"""A small publisher for source systems: canonical updates to hub.ingest with
confirms, stable message ids and retries.

    async with SourcePublisher(amqp_url, "dwp") as pub:
        await pub.publish(update)          # raises InvalidUpdate before sending bad data

Each publish returns once the broker has confirmed the message; transient
failures (broker restarting, connection cut) are retried with backoff.
"""

from __future__ import annotations

from types import TracebackType
from typing import Any

import aiormq
from aio_pika.abc import AbstractExchange, AbstractRobustConnection
from tenacity import AsyncRetrying, retry_if_exception_type, stop_after_delay, wait_exponential

from hub.broker import topology as topo
from hub.broker.connection import confirming_channel, connect, message, message_id_for, publish
from hub.publishing import canonical_body, user_of
from hub.validate import Rejection, check


class InvalidUpdate(ValueError):
    def __init__(self, rejection: Rejection) -> None:
        super().__init__(f"{rejection.reason}: {rejection.error}")
        self.rejection = rejection


class SourcePublisher:
    def __init__(self, amqp_url: str, source: str, retry_for: float = 60.0) -> None:
        self.url, self.source, self.retry_for = amqp_url, source, retry_for
        self.routing_key = f"source.{source}"
        self._conn: AbstractRobustConnection | None = None
        self._exchange: AbstractExchange | None = None

    async def __aenter__(self) -> SourcePublisher:
        self._conn = await connect(self.url)
        channel = await confirming_channel(self._conn)
        self._exchange = await topo.exchange(channel, topo.INGEST)
        return self

    async def __aexit__(self, t: type[BaseException] | None, e: BaseException | None,
                        tb: TracebackType | None) -> None:
        if self._conn is not None:
            await self._conn.close()

    async def publish(self, update: dict[str, Any]) -> str:
        """Validate and publish one update; return its message id."""
        result = check(update, expected_source=self.source)
        if isinstance(result, Rejection):
            raise InvalidUpdate(result)
        assert self._exchange is not None, "use SourcePublisher as an async context manager"
        body = canonical_body(update)
        mid = message_id_for(self.routing_key, body)
        msg = message(body, message_id=mid, user_id=user_of(self.url))
        async for attempt in AsyncRetrying(
            retry=retry_if_exception_type((ConnectionError, aiormq.exceptions.AMQPError)),
            wait=wait_exponential(multiplier=0.2, max=5),
            stop=stop_after_delay(self.retry_for), reraise=True,
        ):
            with attempt:
                await publish(self._exchange, self.routing_key, msg)
        return mid
