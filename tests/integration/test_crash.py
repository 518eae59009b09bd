"""A worker killed with SIGKILL mid-batch loses nothing and duplicates nothing."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from hub.synth.feed import initial_load, write_jsonl
from hub.synth.population import generate_population
from tests.helpers import HubProcess, count, hub

pytestmark = pytest.mark.integration


async def test_sigkill_mid_batch_loses_and_doubles_nothing(
    hub_env: dict[str, str], settings, tmp_path: Path
) -> None:
    pop = generate_population(1500, seed=11, shielded_fraction=0.0)
    updates = initial_load(pop)
    n = len(updates)
    write_jsonl(updates, tmp_path / "la.jsonl")
    hub(hub_env, "setup")
    hub(hub_env, "publish", "--source", "la", "--format", "jsonl", "--quiet",
        str(tmp_path / "la.jsonl"))

    url = settings.database_url
    kills = 0
    for _ in range(3):  # kill it repeatedly, each time mid-stream
        proc = HubProcess(hub_env, "--workers", "2", log=tmp_path / f"hub{kills}.log")
        start = await count(url, "SELECT count(*) FROM processed_messages")
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            done = await count(url, "SELECT count(*) FROM processed_messages")
            if done >= min(n, start + 200):
                break
            await asyncio.sleep(0.05)
        proc.kill()
        kills += 1
    proc = HubProcess(hub_env, "--workers", "2", log=tmp_path / "final.log")
    try:
        assert hub(hub_env, "wait", "--timeout", "120").returncode == 0
    finally:
        assert proc.stop() == 0

    processed = await count(url, "SELECT count(*) FROM processed_messages")
    decisions = await count(url, "SELECT count(*) FROM audit_log WHERE action LIKE 'decision.%'")
    links = await count(url, "SELECT count(*) FROM source_links")
    parked = await count(url, "SELECT count(*) FROM parked")
    creates = await count(url, "SELECT count(*) FROM audit_log WHERE action = 'decision.create'")
    children = await count(url, "SELECT count(*) FROM children")
    created_events = await count(
        url, "SELECT count(*) FROM outbox WHERE body->>'event' = 'child.created'")
    unsent = await count(url, "SELECT count(*) FROM outbox WHERE sent_at IS NULL")
    assert processed == n  # nothing lost
    assert decisions == n  # each message decided exactly once
    assert links + parked == n  # each ends as exactly one effect
    assert children == creates  # no record created twice
    assert created_events == children
    assert unsent == 0
