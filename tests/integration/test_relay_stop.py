"""A clean stop lets the relay finish the batch in hand: every notification it
published is marked sent, so a restart sends none again (an independent probe saw
about 200 repeats after a SIGTERM)."""

from __future__ import annotations

import asyncio
import json
import signal
import time
import uuid
from pathlib import Path

import asyncpg
import pytest

from hub.broker.connection import connect, queue_depth
from hub.broker.topology import council_queue
from tests.helpers import HubProcess, count, hub

pytestmark = pytest.mark.integration
ROWS = 20_000
SENT = "SELECT count(*) FROM outbox WHERE sent_at IS NOT NULL"


async def test_sigterm_mid_stream_leaves_no_published_row_unmarked(
    hub_env: dict[str, str], settings, tmp_path: Path
) -> None:
    hub(hub_env, "setup")
    hub(hub_env, "council", "add", "383")
    conn = await asyncpg.connect(settings.database_url)
    try:
        bodies = []
        for _ in range(ROWS):
            event = str(uuid.uuid4())
            bodies.append((event, "la.383.child.updated", json.dumps(
                {"event_id": event, "event": "child.updated", "child_id": str(uuid.uuid4()),
                 "version": 2, "occurred_at": "2026-12-07T10:00:00Z", "child": {}})))
        await conn.executemany(
            "INSERT INTO outbox (event_id, routing_key, body) VALUES ($1::uuid, $2, $3::jsonb)",
            bodies)
    finally:
        await conn.close()

    amqp = await connect(settings.amqp_url)
    try:
        channel = await amqp.channel()

        async def queued() -> int:
            depth = await queue_depth(channel, council_queue("383"))
            assert depth is not None
            return depth[0]

        proc = HubProcess(hub_env, "--only", "relay", log=tmp_path / "hub.log")
        try:
            # Stop in the middle of a batch: published, not yet marked sent.
            deadline = time.monotonic() + 60
            while (sent := await count(settings.database_url, SENT)) < 1_000 or (
                    await queued() <= sent):
                assert time.monotonic() < deadline, (tmp_path / "hub.log").read_text()
                await asyncio.sleep(0.005)
        finally:
            assert proc.stop(signal.SIGTERM) == 0, (tmp_path / "hub.log").read_text()
        sent = await count(settings.database_url, SENT)
        assert sent < ROWS, "stopped after the end: the test proves nothing"
        # Published exactly the rows marked sent: a restart repeats none.
        print("END", await queued(), sent, (tmp_path / "hub.log").read_text()[-600:])
        assert await queued() == sent
    finally:
        await amqp.close()
