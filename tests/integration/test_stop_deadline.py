"""A clean stop has a deadline: `hub run` told to stop while its broker and
database are unreachable gives up waiting after HUB_STOP_GRACE seconds and exits
(what it held unacknowledged comes back to another worker; nothing uncommitted
was acknowledged)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from hub.chaos.proxy import Proxies
from hub.chaos.services import free_port
from tests.helpers import HubProcess, hub, pipelines_up, via_proxy

pytestmark = pytest.mark.integration



async def test_a_stop_with_services_gone_ends_within_the_grace(
    hub_env: dict[str, str], settings, tmp_path: Path
) -> None:
    hub(hub_env, "setup")
    proxies = Proxies()
    amqp = proxies.add("amqp", [("127.0.0.1", urlsplit(settings.amqp_url).port or 5672)])
    db = proxies.add("db", [("127.0.0.1", urlsplit(settings.database_url).port or 5432)])
    env = dict(hub_env, HUB_AMQP_URL=via_proxy(settings.amqp_url, amqp),
               HUB_DATABASE_URL=via_proxy(settings.database_url, db), HUB_STOP_GRACE="3")
    log = tmp_path / "hub.log"
    proc = HubProcess(env, "--workers", "2", log=log)
    try:
        await pipelines_up(settings.database_url, 2)
        await asyncio.sleep(1)
        for name in ("amqp", "db"):  # nothing listens at the new targets
            proxies.by_name[name].targets = [("127.0.0.1", free_port())]
            proxies.cut(name)
        await asyncio.sleep(2)
        t = time.monotonic()
        code = proc.stop(timeout=90)
        took = time.monotonic() - t
    finally:
        if proc.proc.poll() is None:
            proc.kill()
        proxies.close()
    text = log.read_text()
    assert took < 20, text[-3000:]
    assert code == 0, text[-3000:]
    assert '"stop_grace_expired"' in text, text[-3000:]
