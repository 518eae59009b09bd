"""Watching the hub under test from outside: its database and its broker.

Every observation tolerates the services being down (it answers None and
reconnects next time): the suite keeps watching while it breaks them.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any

import aio_pika
import asyncpg

from hub.broker import topology as topo

DB_ERRORS = (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError)


class Monitor:
    def __init__(self, database_url: str, broker_urls: Callable[[], list[str]]) -> None:
        self.database_url = database_url
        self.broker_urls = broker_urls  # the nodes running now
        self.db: asyncpg.Connection | None = None
        self.amqp: Any = None

    async def value(self, sql: str, *args: Any) -> Any:
        try:
            if self.db is None or self.db.is_closed():
                self.db = await asyncpg.connect(self.database_url, timeout=3)
            return await self.db.fetchval(sql, *args, timeout=10)
        except DB_ERRORS:
            await self._drop_db()
            return None

    async def _drop_db(self) -> None:
        if self.db is not None:
            with contextlib.suppress(Exception):
                self.db.terminate()
        self.db = None

    async def last_commit(self) -> float | None:
        """When the latest committed update's transaction started (epoch seconds)."""
        return await self.value(
            "SELECT extract(epoch FROM max(processed_at))::float8 FROM processed_messages")

    async def last_relayed(self) -> float | None:
        return await self.value("SELECT extract(epoch FROM max(sent_at))::float8 FROM outbox")

    async def committed(self) -> int | None:
        return await self.value("SELECT count(*) FROM processed_messages")

    async def outbox_pending(self) -> int | None:
        return await self.value("SELECT count(*) FROM outbox WHERE sent_at IS NULL")

    async def inflight(self, pid: int) -> int | None:
        """Messages a worker process holds in a batch now (its pipelines' status rows)."""
        return await self.value(
            "SELECT coalesce(sum(inflight), 0) FROM worker_status WHERE worker_id LIKE $1",
            f"%:{pid}:%")

    async def pipelines_of(self, pid: int) -> int | None:
        return await self.value(
            "SELECT count(*) FROM worker_status WHERE worker_id LIKE $1", f"%:{pid}:%")

    async def queue(self, name: str) -> tuple[int, int] | None:
        """(ready messages, consumers) of a queue, from any running node."""
        for url in self.broker_urls():
            try:
                if self.amqp is None or self.amqp.is_closed:
                    self.amqp = await aio_pika.connect(url, timeout=3)
                channel = await self.amqp.channel()
                try:
                    q = await channel.declare_queue(name, passive=True, timeout=5)
                    res = q.declaration_result
                    return res.message_count or 0, res.consumer_count or 0
                finally:
                    with contextlib.suppress(Exception):
                        await channel.close()
            except Exception:  # noqa: BLE001 - that node is down or busy: try another
                with contextlib.suppress(Exception):
                    await self.amqp.close()
                self.amqp = None
        return None

    async def consumers(self) -> int | None:
        found = await self.queue(topo.INBOUND)
        return None if found is None else found[1]

    async def close(self) -> None:
        await self._drop_db()
        if self.amqp is not None:
            with contextlib.suppress(Exception):
                await self.amqp.close()
