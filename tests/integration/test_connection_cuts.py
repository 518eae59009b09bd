"""Connections cut without a close, repeatedly, mid-stream: nothing lost, nothing doubled."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from hub.chaos.proxy import Proxies
from hub.synth.feed import initial_load, write_jsonl
from hub.synth.population import generate_population
from tests.helpers import HubProcess, count, hub, via_proxy

pytestmark = pytest.mark.integration



async def test_cut_connections_lose_and_double_nothing(
    hub_env: dict[str, str], settings, tmp_path: Path
) -> None:
    pop = generate_population(1200, seed=21, shielded_fraction=0.0)
    updates = initial_load(pop)
    write_jsonl(updates, tmp_path / "la.jsonl")
    hub(hub_env, "setup")
    hub(hub_env, "council", "add", "383")
    hub(hub_env, "publish", "--source", "la", "--format", "jsonl", "--quiet",
        str(tmp_path / "la.jsonl"))
    proxies = Proxies()  # the chaos suite's (hub/chaos/proxy.py)
    amqp_port = proxies.add("amqp", [("127.0.0.1", urlsplit(settings.amqp_url).port or 5672)])
    db_port = proxies.add("db", [("127.0.0.1", urlsplit(settings.database_url).port or 5432)])
    env = dict(hub_env, HUB_AMQP_URL=via_proxy(settings.amqp_url, amqp_port),
               HUB_DATABASE_URL=via_proxy(settings.database_url, db_port))
    proc = HubProcess(env, "--workers", "2", log=tmp_path / "hub.log")
    url = settings.database_url
    cuts = 0
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            done = await count(url, "SELECT count(*) FROM processed_messages")
            if done >= len(updates):
                break
            if done >= 150 * (cuts + 1) and cuts < 6:
                proxies.cut(("amqp", "db")[cuts % 2])  # broker, then database, ...
                cuts += 1
            await asyncio.sleep(0.05)
        # Its own timeout first, so that a failure says what the hub was still busy with.
        waited = hub(hub_env, "wait", "--timeout", "120", check=False, timeout=180)
        assert waited.returncode == 0, waited.stderr
    finally:
        assert proc.stop() == 0, (tmp_path / "hub.log").read_text()[-3000:]
        proxies.close()
    assert cuts >= 4
    n = len(updates)
    assert await count(url, "SELECT count(*) FROM processed_messages") == n
    assert await count(
        url, "SELECT count(*) FROM audit_log WHERE action LIKE 'decision.%'") == n
    children = await count(url, "SELECT count(*) FROM children")
    assert children == await count(
        url, "SELECT count(*) FROM audit_log WHERE action = 'decision.create'")
    assert await count(url, "SELECT count(*) FROM source_links") + await count(
        url, "SELECT count(*) FROM parked") == n
    assert await count(url, "SELECT count(*) FROM outbox WHERE sent_at IS NULL") == 0
    # Every notification reached the council: at least once, none lost.
    notes = hub(hub_env, "notifications", "consume", "--council", "383").stdout.splitlines()
    import json

    ids = {json.loads(line)["event_id"] for line in notes}
    expected = await count(url, "SELECT count(*) FROM outbox WHERE routing_key LIKE 'la.383.%'")
    assert len(ids) == expected
