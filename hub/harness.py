"""Running the real hub on generated data: a database of its own, `hub run` as a
child process, publishing through the adapters, waiting. Used by `hub demo`
and `hub eval`."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import aiormq
import asyncpg

from adapters.registry import reader
from hub.admin import setup
from hub.broker import topology as topo
from hub.broker.connection import connect, queue_depth
from hub.config import Settings
from hub.db.connect import connect as db_connect
from hub.db.roles import drop_scratch_worker, scratch_worker
from hub.operations import OperationError, shield
from hub.publishing import publish_items
from hub.synth.feed import write_jsonl
from hub.waiting import idle

Say = Callable[[str], None]


def say(text: str = "") -> None:
    print(text, flush=True)


def scratch_url(url: str, suffix: str) -> str:
    parts = urlsplit(url)
    name = (parts.path.lstrip("/") or "hub") + f"_{suffix}"
    return urlunsplit(parts._replace(path=f"/{name}"))


async def fresh_database(url: str) -> None:
    parts = urlsplit(url)
    admin = await asyncpg.connect(urlunsplit(parts._replace(path="/postgres")), timeout=10)
    try:
        name = parts.path.lstrip("/")
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()


#: An exclusive queue a demo or eval holds on its vhost for its whole run.
HARNESS_QUEUE = "hub.harness"


@asynccontextmanager
async def alone(s: Settings):  # type: ignore[no-untyped-def]
    """Hold the vhost for one demo or eval: an exclusive queue, which a second harness
    cannot declare while this connection lives (two started at once both found
    hub.inbound idle, then consumed each other's messages, and their figures looked
    like a broken matcher); and no `hub run` already there."""
    amqp = await connect(s.amqp_url)
    try:
        channel = await amqp.channel()
        try:
            await channel.declare_queue(HARNESS_QUEUE, exclusive=True, auto_delete=True)
        except aiormq.exceptions.ChannelLockedResource:
            raise OperationError(
                "another hub demo or eval is running on this broker's vhost: wait for it,"
                " or point HUB_AMQP_URL at another vhost") from None
        depth = await queue_depth(await amqp.channel(), topo.INBOUND)
        if depth and (depth[0] or depth[1]):
            raise OperationError(
                "another hub is using this broker (hub.inbound has messages or consumers):"
                " stop it, or point HUB_AMQP_URL at another vhost")
        yield
    finally:
        await amqp.close()


@dataclass
class Harness:
    settings: Settings
    work: Path
    out: Say = say

    async def publish(self, source: str, updates: list[dict[str, Any]]) -> tuple[int, int]:
        path = self.work / f"{source}-{len(list(self.work.iterdir()))}.jsonl"
        write_jsonl(updates, path)

        def progress(summary: Any) -> None:
            self.out(f"    ... {summary.published} published")

        with open(path, "rb") as stream:  # noqa: ASYNC230 - streamed by the adapter
            summary = await publish_items(self.settings.amqp_url, source,
                                          reader("jsonl")(stream, source), progress)
        return summary.published, len(summary.rejected)

    async def wait(self, timeout: float = 1800) -> None:
        deadline = time.monotonic() + timeout
        shown = 0.0
        quiet_since: float | None = None
        while time.monotonic() < deadline:
            ok, why = await idle(self.settings)
            if ok:
                quiet_since = quiet_since or time.monotonic()
                if time.monotonic() - quiet_since > 0.6:
                    return
            else:
                quiet_since = None
                if time.monotonic() - shown > 2:
                    self.out(f"    ... waiting: {why}")
                    shown = time.monotonic()
            await asyncio.sleep(0.2)
        raise OperationError(f"the hub did not finish within {timeout:g}s")


@asynccontextmanager
async def running_hub(base: Settings, suffix: str, workers: int, out: Say = say):  # type: ignore[no-untyped-def]
    """A fresh database `<name>_<suffix>`, set up, with `hub run` going against it."""
    s = replace(base, database_url=scratch_url(base.database_url, suffix))
    async with alone(s):
        async with _running(s, suffix, workers, out) as harness:
            yield harness


@asynccontextmanager
async def _running(s: Settings, suffix: str, workers: int, out: Say):  # type: ignore[no-untyped-def]
    await fresh_database(s.database_url)
    out(f"  database: {urlsplit(s.database_url).path.lstrip('/')} (made afresh)")
    out(f"  setup: {await setup(s)}")
    work = Path(tempfile.mkdtemp(prefix=f"hub-{suffix}-"))
    log_path = work / "hub.log"
    # `hub run` connects as a hub_worker login, as it should anywhere (README, Security).
    login = await scratch_worker(s.database_url)
    out("  hub run connects as " + (f"database login {login[1]} (hub_worker)" if login else
                                    "the setup login (it may not create roles)"))
    # The scratch URLs only: a *_FILE variable would point `hub run` elsewhere.
    env = {k: v for k, v in os.environ.items()
           if k not in ("HUB_DATABASE_URL_FILE", "HUB_AMQP_URL_FILE")}
    env.update(HUB_DATABASE_URL=login[0] if login else s.database_url, HUB_AMQP_URL=s.amqp_url)
    with open(log_path, "ab") as log:  # noqa: ASYNC230 - handed to the child process
        proc = subprocess.Popen(  # noqa: ASYNC220 - a long-lived child, started once
            [sys.executable, "-m", "hub.cli.main", "run", "--workers", str(workers)],
            env=env, stdout=log, stderr=log,
        )
    out(f"  hub running (pid {proc.pid}); its log: {log_path}")
    feeds = work / "feeds"
    feeds.mkdir()
    harness = Harness(s, feeds, out)
    try:
        yield harness
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        out(f"  hub stopped (exit {proc.returncode})")
        if login:
            await drop_scratch_worker(s.database_url, login[1])
        if proc.returncode != 0:
            raise OperationError(f"hub run exited {proc.returncode}; see {log_path}")


async def shield_population(url: str, pop: Any) -> dict[str, str]:
    """The councils shield the population's children at risk (as `hub shield` does),
    after the initial load: person id -> index id of each one shielded."""
    conn = await db_connect(url)
    shielded_ids: dict[str, str] = {}
    try:
        for person in pop.shielded_children:
            cid = await conn.fetchval(
                "SELECT child_id::text FROM source_links WHERE source = 'la'"
                " AND source_record_id = $1", person.la_record_id)
            if cid:
                await shield(conn, cid, person.shielding_authority or person.la,
                                 "demo-council-operator", "refuge placement")
                shielded_ids[person.person_id] = cid
    finally:
        await conn.close()
    return shielded_ids
