"""`hub wait` trusts what each pipeline last wrote about the messages it holds,
and the runner's heartbeat keeps that row fresh. A status write lost to a cut
database connection (the pipeline logs it and goes on) must not leave the row
saying, for ever, that messages are being processed: an idle pipeline writes its
status again every few seconds."""

from __future__ import annotations

from pathlib import Path

import asyncpg
import pytest

from tests.helpers import HubProcess, count, hub, pipelines_up

pytestmark = pytest.mark.integration


async def test_an_idle_hub_corrects_a_lost_status_write(
    hub_env: dict[str, str], settings, tmp_path: Path
) -> None:
    hub(hub_env, "setup")
    log = tmp_path / "hub.log"
    proc = HubProcess(hub_env, "--workers", "2", log=log)
    try:
        await pipelines_up(settings.database_url, 2)
        assert hub(hub_env, "wait", "--timeout", "30").returncode == 0
        # What a pipeline's last write before its lost "0" leaves behind.
        conn = await asyncpg.connect(settings.database_url)
        try:
            await conn.execute("UPDATE worker_status SET inflight = 37")
        finally:
            await conn.close()
        waited = hub(hub_env, "wait", "--timeout", "15", check=False)
        assert waited.returncode == 0, waited.stderr
        assert await count(settings.database_url,
                           "SELECT coalesce(sum(inflight), 0) FROM worker_status") == 0
    finally:
        assert proc.stop() == 0, log.read_text()[-3000:]
