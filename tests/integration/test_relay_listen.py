"""The outbox relay wakes on LISTEN hub_outbox; when its listening connection is
cut, it starts again and nothing waits in the outbox."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import asyncpg
import pytest

from tests.factories import nhs, update
from tests.helpers import count, hub, jsonl, write_jsonl

pytestmark = pytest.mark.integration
LISTENING = ("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
             " AND query LIKE 'LISTEN %hub_outbox%'")


async def test_the_relay_survives_losing_its_listener(
    running: dict[str, str], settings, tmp_path: Path
) -> None:
    hub(running, "council", "add", "383")
    write_jsonl(tmp_path / "a.jsonl", [update("la", "LA-1", nhs_number=nhs(1))])
    hub(running, "publish", "--source", "la", "--format", "jsonl", str(tmp_path / "a.jsonl"))
    hub(running, "wait", "--timeout", "60")

    conn = await asyncpg.connect(settings.database_url)
    try:
        cut = await conn.fetchval(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
            " WHERE datname = current_database() AND query LIKE 'LISTEN %hub_outbox%'"
            " AND pid <> pg_backend_pid()")
    finally:
        await conn.close()
    assert cut == 1  # the relay was listening

    write_jsonl(tmp_path / "b.jsonl", [update("la", "LA-2", nhs_number=nhs(2),
                                              given_name="Perpétua")])
    hub(running, "publish", "--source", "la", "--format", "jsonl", str(tmp_path / "b.jsonl"))
    hub(running, "wait", "--timeout", "60")
    assert await count(settings.database_url,
                       "SELECT count(*) FROM outbox WHERE sent_at IS NULL") == 0
    notes = jsonl(hub(running, "notifications", "consume", "--council", "383").stdout)
    assert sorted(n["event"] for n in notes) == ["child.created", "child.created"]
    # Published as the outbox holds it (the body's text, not decoded and encoded again).
    conn = await asyncpg.connect(settings.database_url)
    try:
        held = {str(r["event_id"]): json.loads(r["body"]) for r in await conn.fetch(
            "SELECT event_id, body::text AS body FROM outbox")}
    finally:
        await conn.close()
    assert {n["event_id"]: n for n in notes} == held
    assert "Perpétua" in {n["child"]["given_name"] for n in notes}
    # It listens again (restarted by the runner), rather than polling from now on.
    deadline = time.monotonic() + 20
    while await count(settings.database_url, LISTENING) != 1:
        assert time.monotonic() < deadline, "the relay did not listen again"
        await asyncio.sleep(0.2)
