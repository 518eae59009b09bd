"""`hub wait` trusts what each pipeline last wrote about the messages it holds,
and the runner's heartbeat keeps that row fresh. A status write lost to a cut
database connection (the pipeline logs it and goes on) must not leave the row
saying, for ever, that messages are being processed: an idle pipeline writes its
status again every few seconds."""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path

import asyncpg
import pytest

from tests.factories import nhs, update
from tests.helpers import HubProcess, count, hub, pipelines_up, write_jsonl

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


async def test_a_pipeline_that_stops_reporting_while_it_holds_messages_is_not_idle(
    hub_env: dict[str, str], settings, tmp_path: Path
) -> None:
    """A `hub run` frozen (SIGSTOP; a process starved of CPU looks the same) after the
    broker delivered it updates: its heartbeat goes stale and the queue shows nothing
    ready, but its consumer is still there holding them unacknowledged. `hub wait`
    counted only fresh heartbeats and said idle (an independent probe found it); now
    a consumer of the work queue that no reporting pipeline accounts for is busy."""
    hub(hub_env, "setup")
    log = tmp_path / "hub.log"
    proc = HubProcess(hub_env, "--workers", "1", log=log)
    frozen = False
    try:
        await pipelines_up(settings.database_url, 1)
        assert hub(hub_env, "wait", "--timeout", "30").returncode == 0
        os.kill(proc.proc.pid, signal.SIGSTOP)
        frozen = True
        feed = write_jsonl(tmp_path / "u.jsonl", [
            update("dwp", f"CB-{i}", nhs_number=nhs(200 + i), given_name=f"Wren{i}")
            for i in range(20)])
        hub(hub_env, "publish", "--source", "dwp", "--format", "jsonl", str(feed))
        await asyncio.sleep(12)  # its heartbeat is stale now
        held = hub(hub_env, "wait", "--timeout", "3", check=False)
        assert held.returncode == 1, held.stdout + held.stderr
        os.kill(proc.proc.pid, signal.SIGCONT)
        frozen = False
        assert hub(hub_env, "wait", "--timeout", "60").returncode == 0
        assert await count(settings.database_url,
                           "SELECT count(*) FROM processed_messages") == 20
    finally:
        if frozen:
            os.kill(proc.proc.pid, signal.SIGCONT)
        assert proc.stop() == 0, log.read_text()[-3000:]
