"""A pipeline whose consumer the broker no longer feeds (one a reconnect did not
restore; aio-pika once lost a council's this way) notices, while idle, that
updates wait in hub.inbound, and is started again by the runner: the hub does
not stall with work queued."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from hub.broker.connection import connect
from hub.db.connect import pool as make_pool
from hub.synth.feed import initial_load, write_jsonl
from hub.synth.population import generate_population
from tests.helpers import count, hub
from workers.pipeline import Pipeline
from workers.runner import _supervise

pytestmark = pytest.mark.integration


async def test_a_lost_consumer_is_replaced(
    hub_env: dict[str, str], settings, tmp_path: Path
) -> None:
    hub(hub_env, "setup")
    pool = await make_pool(settings.database_url, size=3)
    amqp = await connect(settings.amqp_url)
    pipeline = Pipeline(settings, pool, amqp, "test:lost")
    task = asyncio.create_task(_supervise("pipeline", pipeline.run, pipeline.stopping))
    try:
        for _ in range(100):
            if pipeline.consumer is not None:
                break
            await asyncio.sleep(0.1)
        queue, tag = pipeline.consumer  # type: ignore[misc]
        await queue.cancel(tag)  # gone, and nothing will restore it
        updates = initial_load(generate_population(20, seed=3, shielded_fraction=0.0))
        write_jsonl(updates, tmp_path / "la.jsonl")
        hub(hub_env, "publish", "--source", "la", "--format", "jsonl", "--quiet",
            str(tmp_path / "la.jsonl"))
        done = 0
        for _ in range(400):  # two idle looks 5 s apart, a restart, the batch
            done = await count(settings.database_url, "SELECT count(*) FROM processed_messages")
            if done == len(updates):
                break
            await asyncio.sleep(0.1)
        assert done == len(updates)
        assert pipeline.consumer[1] != tag  # type: ignore[index]
    finally:
        pipeline.stopping.set()
        await asyncio.wait_for(task, 30)
        await amqp.close()
        await pool.close()
