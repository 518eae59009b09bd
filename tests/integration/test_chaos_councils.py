"""The chaos suite's councils consume again after their broker restarts.

A robust connection holds its channels weakly: a channel nobody else holds can be
collected while the broker is down and is then never restored, so the councils
stopped reading and the suite waited for ever for their queues to drain (seen with
aio-pika 10). This runs a private RabbitMQ node (hub.chaos.services) so that it
can be stopped."""

from __future__ import annotations

import asyncio
import gc
import json
import logging
import time

import pytest

from hub.broker import topology as topo
from hub.broker.connection import connect, message, publish, queue_depth
from hub.chaos.councils import Councils
from hub.chaos.services import Services

pytestmark = pytest.mark.integration


async def _consumers(url: str, queue: str) -> int:
    conn = await connect(url)
    try:
        depth = await queue_depth(await conn.channel(), queue)
        return 0 if depth is None else depth[1]
    finally:
        await conn.close()


@pytest.fixture
def quiet_clients():  # type: ignore[no-untyped-def]
    """As in the suite: the clients' reconnect warnings are not logged (a log
    record's traceback would also keep the collected channel alive)."""
    loggers = [logging.getLogger(name) for name in ("aio_pika", "aiormq")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.CRITICAL)
    yield
    for lg, level in zip(loggers, levels, strict=True):
        lg.setLevel(level)


@pytest.mark.usefixtures("quiet_clients")
async def test_councils_consume_again_after_the_broker_restarts() -> None:
    services = Services.create(1)
    node = services.nodes[0]
    councils: Councils | None = None
    try:
        node.prepare()
        node.start()
        await asyncio.to_thread(node.wait_ready)
        conn = await connect(node.url)
        try:
            await topo.declare(await conn.channel())
            for la in ("383", "202"):
                await topo.declare_council(await conn.channel(), la)
        finally:
            await conn.close()
        councils = Councils(node.url, ["383", "202"])
        await councils.start()
        assert await _consumers(node.url, topo.council_queue("383")) == 1

        await asyncio.to_thread(node.stop)
        for _ in range(6):  # reconnects fail meanwhile; what nobody holds goes now
            await asyncio.sleep(0.3)
            gc.collect()
        node.start()
        await asyncio.to_thread(node.wait_ready)

        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and await _consumers(
                node.url, topo.council_queue("383")) < 1:
            await asyncio.sleep(0.3)
            gc.collect()
        assert await _consumers(node.url, topo.council_queue("383")) == 1
        conn = await connect(node.url)
        try:
            channel = await conn.channel(publisher_confirms=True)
            body = json.dumps({"event_id": "e-1", "child_id": "c-1", "version": 1}).encode()
            await publish(channel.default_exchange, topo.council_queue("383"), message(body))
        finally:
            await conn.close()
        for _ in range(100):
            if councils.received.deliveries:
                break
            await asyncio.sleep(0.1)
        assert councils.received.deliveries["e-1"] == 1
    finally:
        if councils is not None:
            await councils.close()
        services.close()
