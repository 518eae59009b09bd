"""Bringing shielded children's protected places (rule 6) up to date with the code
that makes them (hub.places): a migration cannot make an address key as Python
does, so `hub setup` protects, after the migrations, every place of every shielded
child's history the code knows now. Only adds (a place once protected stays so
until the shield is lifted); idempotent, and quick: shielded children are few."""

from __future__ import annotations

import asyncpg

from hub.db.queries import q
from hub.places import protected_places


async def protect_history(conn: asyncpg.Connection, child_ids: list[object]) -> int:
    """Protect every place these (shielded) children's versions hold; return how
    many were not protected yet."""
    rows = await conn.fetch(q("history_places"), child_ids)
    pairs = sorted({(place, r["child_id"]) for r in rows
                    for place in protected_places(r["record"])})
    if not pairs:
        return 0
    added = await conn.fetchval(q("protect_places"), [p for p, _ in pairs],
                                [c for _, c in pairs])
    return int(added or 0)


async def refresh(conn: asyncpg.Connection) -> int:
    """Protect what every shielded child's history holds; return how many places
    were added."""
    ids = [r["child_id"] for r in await conn.fetch("SELECT child_id FROM children WHERE shielded")]
    return await protect_history(conn, ids)
