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
    CREATE,
    DEFAULT_MATCHER,
    MORE,
    Decision,
    Facts,
    Matcher,
    SourceLink,
)
from hub.decide import decide as decided
from hub.match import compact
from hub.match.blocking import CROWDED_POSTCODE, PROTECTED
from hub.match.compare import Prepared
from hub.places import PUBLIC_CONTACT, is_contact, lock_places
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
    ids: set[int] = {_lock_id(f"m:{m}") for m in message_ids}
    for u in updates:
        dob = u.child.date_of_birth
        names = [f"l:{u.source}:{u.source_record_id}", f"b:{dob.isoformat()}"]
        if dob.day <= 12 and dob.day != dob.month:
            names.append(f"b:{dob.year:04d}-{dob.day:02d}-{dob.month:02d}")
        if u.child.nhs_number:
            names.append(f"n:{u.child.nhs_number}")
        for name in names:
            ids.add(_lock_id(name))
        # Its postcode (or its houses): a batch shielding a child there and one
        # writing an address near it into another record (a sibling, any date of
        # birth) run one after the other, so the second sees it protected (rule 6).
        a = u.child.address
        if a:
            ids.update(place_lock_ids(lock_places(
                {"postcode": a.postcode, "lines": a.lines, "town": a.town})))
    return sorted(ids)


def _lock_id(name: str) -> int:
    return zlib.crc32(name.encode()) - 2**31


def place_lock_ids(places: Iterable[str]) -> list[int]:
    """The lock ids of an address's places (hub.places.lock_places): every writer of
    an address there takes them (a batch: `lock_ids`; `hub shield`)."""
    return sorted({_lock_id(f"a:{p}") for p in places})


#: What a current stored form begins with, before its record version (hub.match.compact).
FORM_PREFIX = compact.TAG + "\x1f"

#: Held exclusively by `hub load` for the whole load (hub/bulk/load.py); every other
#: writer of children takes it shared first, so none writes while a load runs.
LOAD_LOCK = 7_201_118


async def lock(conn: asyncpg.Connection, updates: list[CanonicalUpdate],
               message_ids: Iterable[str] = ()) -> None:
    ids = lock_ids(updates, message_ids)
    if ids:
        await conn.execute("SELECT pg_advisory_xact_lock_shared($1)", LOAD_LOCK)
        await lock_all(conn, ids)


async def lock_all(conn: asyncpg.Connection, ids: list[int]) -> None:
    """Transaction advisory locks on `ids`, in their order (so that two transactions
    taking overlapping sets never deadlock)."""
    await conn.execute(
        "SELECT pg_advisory_xact_lock(k) FROM unnest($1::bigint[]) AS k ORDER BY k", ids)


class IndexMoved(Exception):  # noqa: N818 (a condition: do the batch again)
    """Another transaction committed a child beside a record this batch was about to
    create (created it, or gave it the keys it is found by), after the batch read its
    candidates, and with that child as it is now the update would not have created:
    the batch is done again, and this time sees it (a transient condition:
    workers.retry)."""


def guard_ids(forms: Iterable[Prepared],
              grown: Iterable[tuple[Prepared, Iterable[str]]] = ()) -> list[int]:
    """Advisory lock ids a batch takes once it has decided: for each record it
    creates, the birth year, the birthday, the postcode and the UPN behind the
    record's blocking keys (hub.match.blocking: every key but an NHS number's, which
    `lock_ids` covers, holds one of them); for each record it gives new keys (`grown`:
    a corrected date of birth, a new surname, a move), those behind the new keys
    alone. Two batches that create, or create and give keys, records that could find
    each other share one and commit one after the other, and the second sees the
    first's record (`guard_new_keys`): without them, two updates about one new
    child with its date of birth mistyped two ways, each deciding in its own batch,
    both create; and if one is shielded, the other is the open duplicate with the
    child's address that the hub exists to prevent. Coarse (a year, not a date;
    postcodes and UPNs in GUARD_BUCKETS buckets), so that even a batch that creates
    every record takes fewer than a thousand (PostgreSQL's lock table is shared, and
    a few thousand locks a batch already fill its default); kept apart from
    `lock_ids`' range."""
    names: set[str] = set()
    for p in forms:
        names |= _guards(p, "ympu")
    for p, kinds in grown:
        names |= _guards(p, "".join(_GUARDED_BY.get(k, "") for k in kinds))
    return sorted(zlib.crc32(n.encode()) + 2**32 for n in names)


#: Buckets of postcodes and of UPNs for `guard_ids`: two batches creating records in
#: the same year already wait for each other, so a shared bucket rarely adds a wait.
GUARD_BUCKETS = 256

#: A blocking key's kind (its first letter) -> the guard behind it: the birth year
#: (date of birth, year and month or day, year; for 1 January the years either side
#: too), the birthday, the postcode, the UPN.
_GUARDED_BY = {"d": "y", "y": "y", "Y": "y", "G": "y", "T": "y", "J": "y", "m": "m", "p": "p",
               "u": "u"}


def _guards(p: Prepared, kinds: str) -> set[str]:
    names: set[str] = set()
    if "y" in kinds:
        names.add(f"y:{p.year}")
        if p.dob_s[4:] == "0101":  # a date not known: it finds, and is found by, the
            # years either side (forms p8, p9: an age assessed a year out)
            names.update((f"y:{p.year - 1}", f"y:{p.year + 1}"))
    if "m" in kinds:
        names.add(f"m:{p.dob_s[4:]}")
    if "p" in kinds and p.postcode:
        names.add(f"p:{zlib.crc32(p.postcode.encode()) % GUARD_BUCKETS}")
    if "u" in kinds and p.upn:
        names.add(f"u:{zlib.crc32(p.upn.encode()) % GUARD_BUCKETS}")
    return names


async def guard_new_keys(conn: asyncpg.Connection, state: BatchState,
                         strict: bool = False) -> None:
    """Before a batch that creates records, or gives records new keys, writes: take
    `guard_ids`; then, if it creates, look again under the creating updates' blocking
    keys. A child there that the batch never read, or read at another version, was
    committed (created, or changed) by another transaction since the batch read its
    candidates (an update that creates read all of them); each creating update that
    would have found it is decided again with it as it is now, and one that would not
    create now means IndexMoved. (A namesake created meanwhile changes nothing, and
    costs one more query.) `strict` (an operator's create, which the rules did not
    decide): any such child means IndexMoved. Batches waiting here hold `lock_ids`
    and wait only for one another, in the ids' order: no deadlock."""
    grown = list(state.grown.values())
    if not state.created and not grown:
        return
    await lock_all(conn, guard_ids((state.form_of(u) for u, _ in state.created), grown))
    if not state.created:
        return
    keys: set[str] = set()
    for u, _ in state.created:
        keys.update(state.view(u)[1])
    plain, odd = packed(sorted(keys))
    read, children, written = state.read_before, state.children, state.writes.children
    found: dict[str, set[str]] = {}  # key -> children under it not as the batch read them
    for key, cid, version in await conn.fetch(q("keys_under"), plain, odd, CROWDED_POSTCODE):
        if cid in written:
            continue
        row = children.get(cid)
        if (row.version if row is not None else read.get(cid)) != version:
            found.setdefault(key, set()).add(cid)
    if not found:
        return
    if strict:
        raise IndexMoved
    now = {r[0]: _row(r) for r in await conn.fetch(
        q("records_for"), sorted(set().union(*found.values())))}
    for update, facts in state.created:
        beside = {cid for k in state.view(update)[1] & found.keys() for cid in found[k]}
        if not beside:
            continue
        candidates = [now.get(c.child_id, c) for c in facts.candidates]
        had = {c.child_id for c in candidates}
        candidates += [now[c] for c in sorted(beside - had) if c in now]
        again = decided(state.view(update)[0], update.source_version,
                        facts._replace(candidates=tuple(candidates)),
                        state.thresholds, state.matcher, state.form_of(update))
        if again.action != CREATE:
            raise IndexMoved


def _row(r: asyncpg.Record) -> ChildRow:
    cid, version, record_json, form, shielded, authority, restricted, severed = r
    return ChildRow(cid, version, StoredRecord(record_json, cid), shielded, authority,
                    restricted, severed, None, form)


async def processed(conn: asyncpg.Connection, message_ids: list[str]) -> dict[str, bytes | None]:
    """The message ids already processed, with the digest of what was processed
    under each (None: processed before digests were kept)."""
    rows = await conn.fetch(q("processed_ids"), message_ids)
    return {r["message_id"]: r["body_digest"] for r in rows}


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

    First what bears on the updates by identity (identities_for: source links,
    invalidated NHS numbers, protected addresses, "not a match", the children under
    their NHS numbers), then their candidates by blocking key. With `slim` an update
    that a source link, an invalidated NHS number or an NHS number tie will decide
    is read partially (Facts.partial): only its shielded and severed candidates (the
    PROTECTED copies of its keys), not the ordinary ones, which cannot change such a
    decision and are most of the rows a batch reads. Those for which the rules, asked
    on the partial facts, want every candidate (a shielded child beside the tie is
    plausible: a person decides) are read in full in one more round trip (`widen`)."""
    views = [state.view(u) for u in updates]
    sources = [u.source for u in updates]
    rids = [u.source_record_id for u in updates]
    nhs = sorted({c["nhs_number"] for c, _ in views if c.get("nhs_number")})
    places = sorted(set().union(*(state.places_of(u) for u in updates)))
    tied_by = [f"n:{n}" for n in nhs] if slim else []  # valid NHS numbers: digits
    rows = await conn.fetch(q("identities_for"), sources, rids, SEP.join(nhs), places,
                            SEP.join(tied_by), sorted(set(extra_child_ids)))
    guarding = _read_identities(state, rows)  # keys that found a shielded or severed child
    await read_public_contacts(conn, state, places)
    keys: set[str] = set()
    guarded: set[str] = set()
    partial: list[CanonicalUpdate] = []
    for u, (child, ks) in zip(updates, views, strict=True):
        if slim and _settled_by_identity(state, u, child):
            partial.append(u)
            # (its n: key too, though identities_for read every child under it)
            guarded |= ks
        else:
            keys.update(ks)
    state.partial.update(id(u) for u in partial)
    guarding |= await _read_candidates(conn, state, keys, guarded, slim)
    await widen(conn, state, [u for u in partial if _needs_more(state, u, guarding)],
                records=False)
    if slim:
        await fetch_records(conn, state, state.records_wanted(updates))


async def read_public_contacts(conn: asyncpg.Connection, state: BatchState,
                               places: Iterable[str]) -> None:
    """Which of the batch's contacts that a shielded child's record holds are shared
    lines (hub.places.PUBLIC_CONTACT): one more round trip, only for a batch that
    carries such a contact."""
    asked = [p for p in places if is_contact(p) and p in state.protected_in
             and p not in state.contacts_counted]
    if not asked:
        return
    state.contacts_counted.update(asked)
    state.public_contacts |= await public_among(conn, asked)


async def public_among(conn: asyncpg.Connection | asyncpg.Pool,
                       contacts: Iterable[str]) -> set[str]:
    """The shared lines among `contacts`: held by PUBLIC_CONTACT open records or more."""
    asked = sorted(contacts)
    if not asked:
        return set()
    return {r["contact"] for r in await conn.fetch(q("open_contact_holders"), asked,
                                                  PUBLIC_CONTACT)
            if r["holders"] >= PUBLIC_CONTACT}


def _read_identities(state: BatchState, rows: list[asyncpg.Record]) -> set[str]:
    """identities_for's rows into the state; the NHS keys of shielded or severed children."""
    key_index, children = state.key_index, state.children
    guarding: set[str] = set()
    for kind, a, b, n, flag, cid, version, record_json, form, shielded, authority, \
            restricted, severed in rows:
        if kind == "l":
            state.links.setdefault((a, b), SourceLink(cid, n, flag))
        elif kind == "i":
            state.invalidated[a] = cid
        elif kind == "p":
            state.protect(a, cid)
            if flag:  # a parked update's place, its authority in b (identities_for)
                state.pending[cid] = b
        elif kind == "x":
            state.not_a_match.setdefault((a, b), set()).add(cid)
            continue
        elif kind == "b":
            state.pending_births.add((a, b))
            continue
        elif kind == "w":
            # (this batch's own items, parked since, are in it already: the higher wins)
            state.waiting[(a, b)] = max(state.waiting.get((a, b), 0), n)
            continue
        elif kind == "k":
            key_index.add(a, cid)
            if shielded or severed:
                guarding.add(a)
        if version is not None and cid not in children:
            children[cid] = ChildRow(cid, version, StoredRecord(record_json, cid), shielded,
                                     authority, restricted, severed, None, form)
    return guarding


SEP = "\x1f"


def packed(keys: list[str]) -> tuple[str, list[str]]:
    """Blocking keys as one string joined by chr(31), and any key that holds that
    character on its own: asyncpg encodes an array of text a string at a time, 4-5 ms
    of this process's time for a batch's 9,000 keys. (Validation refuses control
    characters, so no key holds one today: should that change, none is lost.)"""
    joined = SEP.join(keys)
    if joined.count(SEP) == max(len(keys) - 1, 0):
        return joined, []
    return SEP.join(k for k in keys if SEP not in k), [k for k in keys if SEP in k]


def _settled_by_identity(state: BatchState, update: CanonicalUpdate, child: Record) -> bool:
    """Whether a source link, an invalidated NHS number or an NHS number tie (one
    child under the number, born the same day, not severed) will decide the update."""
    if (update.source, update.source_record_id) in state.links:
        return True
    nhs = child.get("nhs_number")
    if not nhs:
        return False
    if nhs in state.invalidated:
        return True
    same = state.key_index.ids(f"n:{nhs}")
    if len(same) != 1:
        return False
    row = state.children.get(next(iter(same)))
    return (row is not None and not row.severed
            and row.nhs_and_dob[1] == str(child.get("date_of_birth")).replace("-", ""))


def _needs_more(state: BatchState, update: CanonicalUpdate, guarding: set[str]) -> bool:
    """Whether the rules want every candidate of an update read partially, as the
    index stands before the batch (`handle` asks again as it decides: an earlier
    update of the batch may change the answer). Without a shielded or severed child
    under any of its keys (`guarding`) or a protected place, its source link,
    invalidated number or tie decides it; else the rules are asked."""
    keys = state.view(update)[1]
    if guarding.isdisjoint(keys) and state.protected_in.keys().isdisjoint(
            state.places_of(update)):
        return False
    # Else the rules say (a shielded child beside the tie that is not plausible
    # leaves the tie to decide); the scores stay with the rows for the decision.
    try:
        return state.decide(update)[1].action == MORE
    except RecordNeeded:
        return True


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
    await _read_candidates(conn, state, keys, set(), slim=True)
    if records:
        await fetch_records(conn, state, state.records_wanted(updates))


async def _read_candidates(conn: asyncpg.Connection, state: BatchState, keys: set[str],
                           guarded: set[str], slim: bool) -> set[str]:
    """The children under `keys` and the shielded and severed ones under `guarded`,
    into the state (children_for_keys); the keys that found a shielded or severed
    child. The keys go sorted: PostgreSQL sorts them again, much faster when they
    already are (3-4 ms less a batch of 500)."""
    guarding: set[str] = set()
    if not keys and not guarded:
        return guarding
    key_index, rows = state.key_index, state.children
    # Thousands of rows a batch: read by position (the query's column order).
    plain, odd = packed(sorted(keys))
    copies, odd_copies = packed(sorted(guarded))  # prefixed by the query
    for cid, version, record_json, form, shielded, authority, restricted, severed, found \
            in await conn.fetch(q("children_for_keys"), plain, copies, slim, FORM_PREFIX,
                                odd, odd_copies, CROWDED_POSTCODE):
        if cid not in rows:
            rows[cid] = ChildRow(
                cid, version, StoredRecord(record_json, cid), shielded, authority, restricted,
                severed, None, form,
            )
        for k in found:
            if k[0] == PROTECTED:
                k = k[1:]
            key_index.add(k, cid)
        if shielded or severed:
            guarding.update(k[1:] if k[0] == PROTECTED else k for k in found)
    return guarding


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
