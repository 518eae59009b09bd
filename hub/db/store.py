"""Loading what the index knows about a batch, and flushing a batch's writes."""

from __future__ import annotations

import zlib
from collections.abc import Iterable
from datetime import UTC, datetime

import asyncpg

from hub.batch import (
    BatchState,
    CandidatesNeeded,
    ChildRow,
    Outcome,
    RecordNeeded,
    StoredRecord,
    Writes,
)
from hub.config import Thresholds
from hub.db import writes
from hub.db.queries import q
from hub.decide import (
    DEFAULT_MATCHER,
    MORE,
    Decision,
    Facts,
    Matcher,
    SourceLink,
    enough_when_partial,
)
from hub.match import compact
from hub.match.blocking import PROTECTED, protected
from hub.records import Record
from schemas.canonical import CanonicalUpdate


def lock_ids(updates: Iterable[CanonicalUpdate], message_ids: Iterable[str] = ()) -> list[int]:
    """Advisory lock ids for a batch: one writer per child at a time.

    Two updates that might be about the same child share their source link, NHS
    number or date of birth (or its day/month swap), so they take the same lock
    and the second sees what the first wrote. Each message's id is locked too, so
    a second delivery of a message being processed right now (a redelivery after
    a cut, a message published twice), even one that is not a valid update, waits
    and then finds it processed. Sorted, so batches never deadlock.
    """
    ids: set[int] = {zlib.crc32(f"m:{m}".encode()) - 2**31 for m in message_ids}
    for u in updates:
        dob = u.child.date_of_birth
        names = [f"l:{u.source}:{u.source_record_id}", f"b:{dob.isoformat()}"]
        if dob.day <= 12 and dob.day != dob.month:
            names.append(f"b:{dob.year:04d}-{dob.day:02d}-{dob.month:02d}")
        if u.child.nhs_number:
            names.append(f"n:{u.child.nhs_number}")
        for name in names:
            ids.add(zlib.crc32(name.encode()) - 2**31)
    return sorted(ids)


#: What a current stored form begins with, before its record version (hub.match.compact).
_FORM_PREFIX = compact.TAG + "\x1f"

#: Held exclusively by `hub load` for the whole load (hub/bulk/load.py); every other
#: writer of children takes it shared first, so none writes while a load runs.
LOAD_LOCK = 7_201_118


async def lock(conn: asyncpg.Connection, updates: list[CanonicalUpdate],
               message_ids: Iterable[str] = ()) -> None:
    ids = lock_ids(updates, message_ids)
    if ids:
        await conn.execute("SELECT pg_advisory_xact_lock_shared($1)", LOAD_LOCK)
        await conn.execute(
            "SELECT pg_advisory_xact_lock(k) FROM unnest($1::bigint[]) AS k ORDER BY k", ids
        )


async def processed(conn: asyncpg.Connection, message_ids: list[str]) -> set[str]:
    rows = await conn.fetch(q("processed_ids"), message_ids)
    return {r["message_id"] for r in rows}


async def paused_sources(conn: asyncpg.Connection) -> set[str]:
    return {r["name"] for r in await conn.fetch(q("paused_sources"))}


async def load(
    conn: asyncpg.Connection,
    updates: list[CanonicalUpdate],
    thresholds: Thresholds,
    extra_child_ids: Iterable[str] = (),
    matcher: Matcher = DEFAULT_MATCHER,
    slim: bool = False,
) -> BatchState:
    """Everything the index knows that bears on these updates.

    `slim` (the pipeline): candidates come without their record but for those the
    batch will likely write (BatchState.records_wanted, one more round trip); the
    caller handles RecordNeeded for the rest (`handle`). A batch of 200 at 1,000,000
    children reads 2,000 candidates and writes fewer than 300 of them."""
    state = new_state(thresholds, matcher)
    await load_into(conn, state, updates, extra_child_ids, slim)
    return state


def new_state(thresholds: Thresholds, matcher: Matcher = DEFAULT_MATCHER) -> BatchState:
    return BatchState(thresholds=thresholds, now=datetime.now(UTC), matcher=matcher)


async def load_into(
    conn: asyncpg.Connection,
    state: BatchState,
    updates: list[CanonicalUpdate],
    extra_child_ids: Iterable[str] = (),
    slim: bool = False,
) -> None:
    """`load` into a batch already under way (hub.ingest loads a batch in chunks):
    what the batch has itself written (links, children) is newer than the index,
    so it is kept, not read over.

    `slim` also reads an update with a source link or an NHS number partially
    (Facts.partial): its children by id and NHS number and its shielded and severed
    candidates (the PROTECTED copies of its keys), not the ordinary candidates,
    which cannot change the decision of a source link or an NHS number tie, and are
    most of the rows a batch reads. Those that the rules then say need every
    candidate (hub.decide.MORE: no tie after all, or a person to decide) are read
    in full in one more round trip (`widen`)."""
    sources = [u.source for u in updates]
    rids = [u.source_record_id for u in updates]
    views = [state.view(u) for u in updates]
    children = [child for child, _ in views]
    for r in await conn.fetch(q("links_for"), sources, rids):
        state.links.setdefault((r["source"], r["source_record_id"]), SourceLink(
            r["child_id"], r["last_version"], r["severed"]
        ))
    nhs = [c["nhs_number"] for c in children if c.get("nhs_number")]
    for r in await conn.fetch(q("invalidated_for"), nhs):
        state.invalidated[r["nhs_number"]] = r["child_id"]
    ids = {state.links[k].child_id for k in zip(sources, rids, strict=True) if k in state.links}
    ids |= set(state.invalidated.values()) | set(extra_child_ids)
    addrs = [a for a in (state.address_of(u) for u in updates) if a]
    for r in await conn.fetch(q("protected_for"), addrs):
        state.protected.setdefault(r["address_key"], set()).add(r["child_id"])
        ids.add(r["child_id"])
    for r in await conn.fetch(q("not_a_match_for"), sources, rids):
        state.not_a_match.setdefault((r["source"], r["source_record_id"]), set()).add(
            r["child_id"]
        )
    keys: set[str] = set()
    guarded: set[str] = set()
    partial: list[CanonicalUpdate] = []
    for u, (child, ks) in zip(updates, views, strict=True):
        nhs_number = child.get("nhs_number")
        if slim and (nhs_number or (u.source, u.source_record_id) in state.links):
            partial.append(u)
            guarded.update(ks)
            if nhs_number:
                keys.add(f"n:{nhs_number}")
        else:
            keys.update(ks)
    await _read_candidates(conn, state, keys, guarded, ids, slim)
    if partial:
        state.partial.update(id(u) for u in partial)
        await widen(conn, state, [u for u in partial if _needs_more(state, u)], records=False)
    if slim:
        await fetch_records(conn, state, state.records_wanted(updates))


def _needs_more(state: BatchState, update: CanonicalUpdate) -> bool:
    """Whether the rules may need every candidate of an update read partially (as the
    index stands before the batch: `handle` asks again as it decides)."""
    child = state.view(update)[0]
    return not enough_when_partial(child, state.facts(update, child))


async def widen(conn: asyncpg.Connection, state: BatchState,
                updates: list[CanonicalUpdate], records: bool = True) -> None:
    """Read every candidate of updates read partially (the rules answered MORE), and
    with `records` the records they will likely write."""
    if not updates:
        return
    keys: set[str] = set()
    for u in updates:
        state.partial.discard(id(u))
        keys.update(state.view(u)[1])
    await _read_candidates(conn, state, keys, set(), set(), slim=True)
    if records:
        await fetch_records(conn, state, state.records_wanted(updates))


async def _read_candidates(conn: asyncpg.Connection, state: BatchState, keys: set[str],
                           guarded: set[str], ids: set[str], slim: bool) -> None:
    """The children under `keys`, the shielded and severed ones under `guarded`, and
    `ids`, into the state (keys, children_for_keys; PostgreSQL sorts the keys itself)."""
    key_index, rows = state.key_index, state.children
    # Thousands of rows a batch: read by position (the query's column order).
    for cid, version, record_json, form, shielded, authority, restricted, severed, found \
            in await conn.fetch(q("children_for_keys"), list(keys), protected(guarded),
                                list(ids), slim, _FORM_PREFIX):
        if cid not in rows:
            rows[cid] = ChildRow(
                cid, version, StoredRecord(record_json, cid), shielded, authority, restricted,
                severed, None, form,
            )
        for k in found:
            if k[0] == PROTECTED:
                k = k[1:]
            if k in key_index:
                key_index[k].add(cid)
            else:
                key_index[k] = {cid}


async def fetch_records(conn: asyncpg.Connection, state: BatchState, ids: list[str]) -> None:
    """Fill in the records of children loaded without them. A child changed since
    (another transaction committed in between) is taken as it is now."""
    if not ids:
        return
    rows = await conn.fetch(q("records_for"), ids)
    for cid, version, record_json, form, shielded, authority, restricted, severed in rows:
        row = state.children[cid]
        if version != row.version:
            row.version, row.match, row.form = version, None, form
        row.record = StoredRecord(record_json, cid)
        row.shielded, row.authority, row.restricted, row.severed = (
            shielded, authority, restricted, severed)
    if len(rows) != len(set(ids)):
        raise LookupError("children loaded in this batch are gone from the index")


async def handle(conn: asyncpg.Connection, state: BatchState, update: CanonicalUpdate,
                 message_id: str, raw: str) -> Outcome:
    """`state.handle`, first reading any record or candidates it turns out to need
    (the batch decided otherwise than `load` guessed, or an earlier update of the
    batch changed what this one finds): nothing of an update is applied before
    RecordNeeded or CandidatesNeeded, so it is simply handled again."""
    while True:
        try:
            return state.handle(update, message_id, raw)
        except RecordNeeded as need:
            await fetch_records(conn, state, [need.child_id])
        except CandidatesNeeded as more:
            await widen(conn, state, [more.update])


async def decide(conn: asyncpg.Connection, state: BatchState,
                 update: CanonicalUpdate) -> tuple[Record, Decision, Facts]:
    """`state.decide`, reading what it needs as `handle` does (matching alone: the
    benchmark, a dry run)."""
    while True:
        try:
            got = state.decide(update)
        except RecordNeeded as need:
            await fetch_records(conn, state, [need.child_id])
            continue
        if got[1].action != MORE:
            return got
        await widen(conn, state, [update])


async def flush(conn: asyncpg.Connection, w: Writes) -> None:
    """All of a batch's writes; the caller holds the transaction. One statement a
    table, rows as arrays (hub/db/writes.py)."""
    await writes.flush(conn, w)
