"""Connections: the JSON codec, the pool, and creating the database when missing."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg

# The hub's queries are short and many; PostgreSQL's JIT compiles any whose
# estimate passes jit_above_cost (a batch of 500's candidate query does), which
# cost 11 ms of a 71 ms query and saves nothing here. Nor do parallel workers: a
# batch's candidate query was planned with two (started afresh for each run of a
# 60 ms query, on cores the other pipelines and the broker need).
SERVER_SETTINGS = {"jit": "off", "max_parallel_workers_per_gather": "0"}


async def _init(conn: asyncpg.Connection) -> None:
    for typ in ("json", "jsonb"):
        await conn.set_type_codec(
            typ, encoder=json.dumps, decoder=json.loads, schema="pg_catalog"
        )


async def connect(url: str) -> asyncpg.Connection:
    conn = await asyncpg.connect(url, timeout=10, server_settings=SERVER_SETTINGS)
    await _init(conn)
    return conn


async def pool(url: str, size: int = 4) -> asyncpg.Pool:
    p = await asyncpg.create_pool(url, min_size=1, max_size=size, init=_init, timeout=10,
                                  server_settings=SERVER_SETTINGS)
    assert p is not None
    return p


def database_name(url: str) -> str:
    return urlsplit(url).path.lstrip("/") or "postgres"


def _with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{name}"))


async def ensure_database(url: str) -> bool:
    """Create the database named in `url` if it is missing; True when created."""
    try:
        conn = await asyncpg.connect(url, timeout=10)
    except asyncpg.InvalidCatalogNameError:
        pass
    else:
        await conn.close()
        return False
    admin = await asyncpg.connect(_with_database(url, "postgres"), timeout=10)
    try:
        name = database_name(url)
        await admin.execute(f'CREATE DATABASE "{name}"')
    except asyncpg.DuplicateDatabaseError:
        return False
    finally:
        await admin.close()
    return True


def jsonable(value: Any) -> Any:
    return json.loads(json.dumps(value, default=str))
