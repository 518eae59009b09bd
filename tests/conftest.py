"""Real services, isolated per test: each test gets its own database (cloned from a
migrated template) and its own RabbitMQ vhost, so tests never collide with each
other or with a hub run by hand."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from urllib.parse import quote

import asyncpg
import pytest
import uvloop

from hub import loop as hub_loop
from hub.config import Settings

PG_ADMIN = os.environ.get("HUB_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
AMQP_BASE = os.environ.get("HUB_TEST_AMQP", "amqp://guest:guest@127.0.0.1:5672/")
RUN_ID = uuid.uuid4().hex[:8]


# Async tests run on the loop the hub runs on (hub/loop.py: uvloop unless
# HUB_EVENT_LOOP=asyncio): pytest-asyncio makes its loops through the policy.
if hub_loop.choice() == "uvloop":
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())


def _pg(db: str) -> str:
    return PG_ADMIN.rsplit("/", 1)[0] + "/" + db


def rabbitmqctl(*args: str) -> None:
    exe = shutil.which("rabbitmqctl") or "/usr/sbin/rabbitmqctl"
    subprocess.run([exe, "-q", *args], check=True, capture_output=True, timeout=60)


@pytest.fixture(scope="session")
async def template_db() -> AsyncIterator[str]:
    from hub.db import migrate
    from hub.db.connect import connect

    name = f"hub_test_{RUN_ID}_template"
    admin = await asyncpg.connect(PG_ADMIN)
    await admin.execute(f'CREATE DATABASE "{name}"')
    conn = await connect(_pg(name))
    await migrate.apply(conn)
    await conn.close()
    yield name
    await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    await admin.close()


@pytest.fixture
async def database_url(template_db: str) -> AsyncIterator[str]:
    name = f"hub_test_{RUN_ID}_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(PG_ADMIN)
    await admin.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template_db}"')
    yield _pg(name)
    await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    await admin.close()


@pytest.fixture
def amqp_url() -> Iterator[str]:
    vhost = f"hub_test_{RUN_ID}_{uuid.uuid4().hex[:8]}"
    rabbitmqctl("add_vhost", vhost)
    rabbitmqctl("set_permissions", "-p", vhost, "guest", ".*", ".*", ".*")
    yield AMQP_BASE.rstrip("/") + "/" + quote(vhost, safe="")
    rabbitmqctl("delete_vhost", vhost)


@pytest.fixture
def settings(database_url: str, amqp_url: str) -> Settings:
    return replace(Settings(), database_url=database_url, amqp_url=amqp_url, batch_wait=0.02)


@pytest.fixture
def hub_env(settings: Settings) -> dict[str, str]:
    env = dict(os.environ)
    env["HUB_DATABASE_URL"] = settings.database_url
    env["HUB_AMQP_URL"] = settings.amqp_url
    return env


@pytest.fixture
def running(hub_env: dict[str, str], tmp_path):  # type: ignore[no-untyped-def]
    """A set-up hub with `hub run` going; stopped cleanly (exit 0) at the end."""
    from tests.helpers import HubProcess, hub

    hub(hub_env, "setup")
    proc = HubProcess(hub_env, log=tmp_path / "hub.log")
    yield hub_env
    assert proc.stop() == 0, (tmp_path / "hub.log").read_text()
