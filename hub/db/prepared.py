"""Bringing each child's normal form (children.prepared) and blocking keys up to
date with the matching code.

A form that is missing or stale costs speed only (the reader prepares the record
itself), but blocking keys made by older code cost recall: an update would look
up keys its record is not indexed under. Both are made by the same normalisation
(hub.match.compact.TAG covers it and the key scheme), so one pass renews both;
`hub setup` runs it after the migrations.
"""

from __future__ import annotations

import json
from collections.abc import Callable

import asyncpg

from hub.db.queries import q
from hub.match import compact
from hub.match.blocking import stored_keys
from hub.match.compare import prepare

CHUNK = 5_000


async def refresh(
    conn: asyncpg.Connection, progress: Callable[[int, int], None] | None = None
) -> int:
    """Write the form of every child whose form is missing or stale; return how many."""
    total = await conn.fetchval(q("count_stale_prepared"), compact.TAG)
    done = 0
    after = "00000000-0000-0000-0000-000000000000"
    while done < total:
        rows = await conn.fetch(q("stale_prepared"), compact.TAG, after, CHUNK)
        if not rows:
            break
        ids, versions, forms = [], [], []
        keys: dict[str, set[str]] = {}
        for r in rows:
            p = prepare(json.loads(r["record_json"]))
            ids.append(r["child_id"])
            versions.append(r["version"])
            forms.append(compact.encode(p, r["version"]))
            keys[str(r["child_id"])] = stored_keys(p, r["shielded"], r["severed"])
        async with conn.transaction():
            # Only where the version is still the one read: the update locks those
            # rows, so a concurrent writer's keys are never overwritten by older ones.
            fresh = [str(r["child_id"]) for r in
                     await conn.fetch(q("set_prepared"), ids, versions, forms)]
            pairs = [(k, cid) for cid in fresh for k in keys[cid]]
            await conn.execute(q("replace_keys"), [k for k, _ in pairs], [c for _, c in pairs],
                               fresh)
        after = str(rows[-1]["child_id"])
        done += len(rows)
        if progress:
            progress(min(done, total), total)
    return done


async def stale_shielded(conn: asyncpg.Connection) -> int:
    """How many shielded children still carry forms and keys of other matching code
    (`hub run` refuses to start: an update would look up keys they lack, and miss
    them: a duplicate)."""
    try:
        return int(await conn.fetchval(q("count_stale_shielded"), compact.TAG) or 0)
    except asyncpg.UndefinedTableError:  # no index yet (`hub setup` not run): nothing stale
        return 0
