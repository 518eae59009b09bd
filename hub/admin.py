"""Setting up: the database, its migrations and the broker topology."""

from __future__ import annotations

from hub.broker import topology as topo
from hub.broker.connection import connect
from hub.config import Settings
from hub.db import migrate
from hub.db.connect import connect as db_connect
from hub.db.connect import ensure_database


async def setup(s: Settings) -> str:
    """Idempotent; returns a one-line summary."""
    created = await ensure_database(s.database_url)
    conn = await db_connect(s.database_url)
    try:
        applied = await migrate.apply(conn)
        councils = [r["la"] for r in await conn.fetch("SELECT la FROM councils")]
    finally:
        await conn.close()
    amqp = await connect(s.amqp_url)
    try:
        channel = await amqp.channel()
        await topo.declare(channel)
        for la in councils:
            await topo.declare_council(channel, la)
    finally:
        await amqp.close()
    return (f"database {'created' if created else 'present'};"
            f" migrations applied: {', '.join(applied) or 'none needed'};"
            " broker topology declared")
