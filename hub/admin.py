"""Setting up: the database, its migrations and the broker topology."""

from __future__ import annotations

import sys

from hub.broker import topology as topo
from hub.broker.connection import connect
from hub.config import Settings
from hub.db import migrate, prepared, protected
from hub.db.connect import connect as db_connect
from hub.db.connect import ensure_database


def _progress(done: int, total: int) -> None:
    if done == total or done % 100_000 < prepared.CHUNK:
        print(f"matching forms: {done:,}/{total:,}", file=sys.stderr, flush=True)


async def setup(s: Settings) -> str:
    """Idempotent; returns a one-line summary."""
    created = await ensure_database(s.database_url)
    conn = await db_connect(s.database_url)
    try:
        applied = await migrate.apply(conn)
        refreshed = await prepared.refresh(conn, _progress)
        places = await protected.refresh(conn)
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
            f" matching forms refreshed: {refreshed};"
            f" shielded children's places protected: {places} new;"
            " broker topology declared")
