"""Flushing a batch's writes: one statement per table, its rows sent as arrays.

`executemany` sends a row at a time and PostgreSQL executes one INSERT per row:
for a batch of 200 updates that is well over a thousand executions. Here each
table gets one INSERT ... SELECT FROM unnest(...), so the server plans and runs
one statement per table whatever the batch size (bench/README.md, "hub bench").
The statements are in queries.sql (flush_*).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import asyncpg

from hub.batch import Writes
from hub.db.queries import q
from hub.match import compact
from hub.places import contact_keys


def _json(value: Any) -> str | None:
    """JSON as text (cast to jsonb in the statement), as the connection's codec
    would have encoded it."""
    if value is None:
        return None
    if isinstance(value, Mapping) and not isinstance(value, dict):
        value = dict(value)
    return json.dumps(value)


def contacts_text(record: Any) -> str:
    """The record's contacts (children.contacts) as flush_children takes them: joined
    by chr(31) (they hold no control character), one text per row."""
    return "\x1f".join(sorted(contact_keys(record)))


def columns(rows: Iterable[Sequence[Any]], width: int) -> list[list[Any]]:
    """Rows to one list per column (the arrays the unnest statements take)."""
    cols: list[list[Any]] = [[] for _ in range(width)]
    for row in rows:
        for col, value in zip(cols, row, strict=True):
            col.append(value)
    return cols


async def flush(conn: asyncpg.Connection, w: Writes) -> None:
    """All of a batch's writes; the caller holds the transaction. Tables in the
    order their foreign keys need (children first)."""
    if w.children:
        await conn.execute(q("flush_children"), *columns((
            (c.child_id, c.version, _json(c.record), c.shielded, c.authority, c.restricted,
             c.severed, compact.encode(c.normal_form, c.version), contacts_text(c.record))
            # In the order of their ids, as `hub shield` locks a household's rows: two
            # writers of the same rows never wait for each other crosswise.
            for c in sorted(w.children.values(), key=lambda c: c.child_id)), 9))
    if w.versions:
        await conn.execute(q("flush_versions"), *columns(
            ((cid, v, _json(rec), by, mid) for cid, v, rec, by, mid in w.versions), 5))
    if w.keys:
        pairs = [(k, cid) for cid, ks in w.keys.items() for k in ks]
        await conn.execute(q("replace_keys"), *columns(pairs, 2), list(w.keys))
    if w.links:
        await conn.execute(q("flush_links"), *columns(w.links.values(), 5))
    if w.provenance:
        await conn.execute(q("flush_provenance"), *columns(w.provenance.values(), 5))
    if w.protected:
        await conn.execute(q("flush_protected"), *columns(sorted(w.protected), 2))
    if w.pending_places:
        await conn.execute(q("flush_pending_places"), *columns(
            sorted(w.pending_places, key=lambda p: (p[0], p[1])), 3))
    if w.pending_births:
        await conn.execute(q("flush_pending_births"), *columns(sorted(w.pending_births), 3))
    if w.parked:
        await conn.execute(q("flush_parked"), *columns((
            (p["id"], p["kind"], p["reason"], p["source"], p["source_record_id"],
             p["source_version"], p["error"], p["raw"], p["routing_key"], p["message_id"],
             _json(p["update"]), _json(p["candidates"]), p["retry_of"], p.get("body_digest"))
            for p in w.parked), 14))
    if w.audit:
        await conn.execute(q("flush_audit"), *columns(
            ((actor, action, cid, subject, _json(detail))
             for actor, action, cid, subject, detail in w.audit), 5))
    if w.outbox:
        await conn.execute(q("flush_outbox"), *columns(
            ((n.event_id, n.routing_key, _json(n.body)) for n in w.outbox), 3))
    if w.processed:
        await conn.execute(q("flush_processed"), *columns(w.processed, 6))
