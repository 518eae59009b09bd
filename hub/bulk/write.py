"""Writing a chunk of a bulk load: the rows hub.db.store.flush would write, with COPY.

Rows that cannot already exist (new children, their versions, keys, source links
and provenance, audit rows, outbox events, processed ids) are copied straight into
their tables; rows that may (children the index held before, their source links
and provenance, protected addresses, parked items) go through the pipeline's own
statements (hub.db.writes, queries.sql flush_*), so an upsert is written once. The
caller holds the transaction. The connection has no JSON codec: jsonb goes in as text,
encoded once (a new record's text serves its children row and its version 1).
"""

from __future__ import annotations

import io
import json
from collections import Counter
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cache
from importlib.resources import files
from typing import Any

import asyncpg

from hub import shield_check
from hub.batch import Writes
from hub.config import Thresholds
from hub.db.queries import q
from hub.db.writes import columns, contacts_text
from hub.match import compact
from hub.match.compare import prepare
from hub.operations import OperationError
from hub.places import contact_keys


class IndexChanged(OperationError):
    """Someone else changed a record the load holds in memory (should not happen: the
    load holds LOAD_LOCK, which every other writer takes shared)."""


@cache
def _queries() -> dict[str, str]:
    text = files("hub.db").joinpath("load_queries.sql").read_text()
    out: dict[str, str] = {}
    for block in text.split("-- name: ")[1:]:
        name, _, body = block.partition("\n")
        out[name.strip()] = body.strip()
    return out


def lq(name: str) -> str:
    return _queries()[name].rstrip(";")


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


class Encoder:
    """JSON text of records, each encoded once per flush (by identity)."""

    def __init__(self) -> None:
        self.texts: dict[int, tuple[Any, str]] = {}

    def __call__(self, value: Any) -> str:
        hit = self.texts.get(id(value))
        if hit is not None and hit[0] is value:
            return hit[1]
        text = _dumps(value)
        self.texts[id(value)] = (value, text)
        return text


def stored_form(match: Any, record: Any, version: int) -> str | None:
    """children.prepared: the record's normal forms (hub.match.compact)."""
    return compact.encode(match if match is not None else prepare(record), version)


@dataclass
class Snapshot:
    """One chunk's writes, taken from the state in the deciding thread so that the
    writing thread sees each record as it was at the end of the chunk."""

    writes: Writes
    children: list[tuple[Any, ...]]  # id, version, record, flags..., normal forms
    expected: dict[str, int]  # children the index holds -> the version it should hold
    new: set[str]  # children the index does not hold yet
    thresholds: Thresholds  # the load's (shield checks)
    # child id -> the JSON text its record was written as (filled by flush): once
    # the chunk is committed the load keeps that text, not the record's objects
    # (LoadState.keep_written)
    texts: dict[str, str] = field(default_factory=dict)


def snapshot(w: Writes, in_db: dict[str, int], thresholds: Thresholds) -> Snapshot:
    """Take a chunk's writes; `in_db` (child id -> version in the index) is updated
    as if they were written."""
    children = [(c.child_id, c.version, c.record, c.shielded, c.authority, c.restricted,
                 c.severed, getattr(c, "match", None)) for c in w.children.values()]
    expected = {c[0]: in_db[c[0]] for c in children if c[0] in in_db}
    new = {c[0] for c in children if c[0] not in in_db}
    for c in children:
        in_db[c[0]] = c[1]
    return Snapshot(w, children, expected, new, thresholds)


async def flush(conn: asyncpg.Connection, snap: Snapshot) -> dict[str, int]:
    """Write one chunk (the caller holds the transaction). Returns rows per table."""
    w = snap.writes
    now = datetime.now(UTC)
    enc = Encoder()
    counts: dict[str, int] = {}

    if snap.expected:
        rows = await conn.fetch(lq("load_versions"), list(snap.expected))
        seen = {r["child_id"]: r["version"] for r in rows}
        for cid, version in snap.expected.items():
            if seen.get(cid) != version:
                raise IndexChanged(f"record {cid} changed in the index during the load")

    new_rows: list[tuple[Any, ...]] = []
    old_rows: list[tuple[Any, ...]] = []
    for cid, version, record, shielded, authority, restricted, severed, match in snap.children:
        text = snap.texts[cid] = enc(record)
        row: tuple[Any, ...] = (cid, version, text, shielded, authority, restricted,
                                severed, stored_form(match, record, version))
        if cid in snap.new:
            new_rows.append(row[:5] + (now if shielded else None,) + row[5:]
                            + (sorted(contact_keys(record)),))
        else:
            old_rows.append(row + (contacts_text(record),))
    if new_rows:
        await conn.copy_records_to_table(
            "children", records=new_rows,
            columns=["child_id", "version", "record", "shielded", "shielding_authority",
                     "shielded_at", "restricted_at_origin", "severed", "prepared",
                     "contacts"])
    if old_rows:
        await conn.execute(q("flush_children"), *columns(old_rows, 9))
    counts["children"] = len(snap.children)

    if w.versions:
        await conn.copy_records_to_table(
            "child_versions",
            records=[(cid, v, enc(rec), by, mid) for cid, v, rec, by, mid in w.versions],
            columns=["child_id", "version", "record", "changed_by", "message_id"])
    counts["versions"] = len(w.versions)

    if w.keys:
        stale = [cid for cid in w.keys if cid not in snap.new]
        if stale:
            await conn.execute(lq("load_delete_keys"), stale)
        key_rows = keys_as_copy_text(w.keys)
        if key_rows is not None:
            await conn.copy_to_table("block_keys", source=io.BytesIO(key_rows),
                                     columns=["key", "child_id"], format="text")
        else:
            await conn.copy_records_to_table(
                "block_keys", records=[(k, cid) for cid, ks in w.keys.items() for k in ks],
                columns=["key", "child_id"])

    await _split_copy(conn, list(w.links.values()), 2, snap.new, "source_links", "flush_links",
                      ["source", "source_record_id", "child_id", "last_version", "linked_by"])
    await _split_copy(conn, list(w.provenance.values()), 0, snap.new, "provenance",
                      "flush_provenance",
                      ["child_id", "field", "source", "source_record_id", "source_version"])
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
             None if p["update"] is None else _dumps(p["update"]), _dumps(p["candidates"]),
             p["retry_of"], p.get("body_digest"))
            for p in w.parked), 14))
    if w.audit:
        await conn.copy_records_to_table(
            "audit_log", records=[(a, act, cid, subj, _dumps(d)) for a, act, cid, subj, d
                                  in w.audit],
            columns=["actor", "action", "child_id", "subject", "detail"])
    # Event ids name a child's new version, and message ids were checked against
    # processed_messages under LOAD_LOCK: neither can exist yet (COPY would fail
    # loudly if one did). In order: the relay publishes by outbox id.
    if w.outbox:
        await conn.copy_records_to_table("outbox", records=[
            (n.event_id, n.routing_key, _body(n.body, enc)) for n in w.outbox
        ], columns=["event_id", "routing_key", "body"])
    if w.processed:
        await conn.copy_records_to_table(
            "processed_messages", records=[(m, o, c, src) for m, o, c, _, _, src in w.processed],
            columns=["message_id", "outcome", "child_id", "source"])
        tally = Counter((src or "unknown", o.split(":", 1)[0]) for _, o, *_, src in w.processed)
        await conn.execute(q("add_update_counts"), *columns(
            ((src, decision, n) for (src, decision), n in tally.items()), 3))
    # Records shielded on arrival (restricted at origin): their authority is asked
    # about the open records at their house and those that could be them, as a
    # batch's would be (hub.shield_check), over what is written so far.
    counts["shield_checks"] = await shield_check.tell(conn, w.shielded, snap.thresholds, w.moved)
    for name in ("links", "provenance", "protected", "parked", "audit", "outbox", "processed"):
        counts[name] = len(getattr(w, name))
    return counts


def keys_as_copy_text(keys: Mapping[str, Collection[str]]) -> bytes | None:
    """block_keys rows as COPY's text format, a line "key<TAB>child id" each: made by
    joining strings, eleven rows a record, where a tuple a row cost the writing
    thread a fifth of its time (py-spy, 324,182 records). None if any key holds a
    character the text format would read otherwise (a backslash, a tab, a line
    break): those go as tuples."""
    parts = []
    rows = 0
    for cid, ks in keys.items():
        if ks:
            tail = "\t" + cid + "\n"
            parts.append(tail.join(ks) + tail)
            rows += len(ks)
    text = "".join(parts)
    if "\\" in text or "\r" in text or text.count("\n") != rows or text.count("\t") != rows:
        return None
    return text.encode()


async def _split_copy(conn: asyncpg.Connection, rows: list[tuple[Any, ...]], child_at: int,
                      new_ids: set[str], table: str, upsert: str, names: list[str]) -> None:
    """A new child's rows copied into `table` (none can exist yet: a row in the index
    would have tied the record to its child); the rest upserted by the pipeline's
    named query `upsert`, which takes them as arrays in the order of `names`."""
    new = [r for r in rows if r[child_at] in new_ids]
    old = [r for r in rows if r[child_at] not in new_ids]
    if new:
        await conn.copy_records_to_table(table, records=new, columns=names)
    if old:
        await conn.execute(q(upsert), *columns(old, len(names)))


def _body(body: dict[str, Any], enc: Encoder) -> str:
    """A notification body's text, reusing the record's text when it carries the record."""
    child = body.get("child")
    hit = enc.texts.get(id(child)) if child is not None else None
    if hit is None or hit[0] is not child:
        return _dumps(body)
    head = _dumps({k: v for k, v in body.items() if k != "child"})
    return head[:-1] + ',"child":' + hit[1] + "}"
