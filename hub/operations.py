"""What operators do: shielding, severing, review, dead letters, sources, export.

Each action runs in one transaction with its audit row; anything that changes a
record writes its notifications to the outbox in that same transaction.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from typing import Any, NamedTuple

import asyncpg

from hub import shield_check
from hub.batch import BatchState
from hub.config import Thresholds
from hub.db import protected, store
from hub.db.queries import q
from hub.decide import Facts, linkable, plausible_shielded
from hub.match import compact
from hub.match.blocking import stored_keys
from hub.match.compare import prepare
from hub.notify import for_change, for_opening, for_shielding, for_snapshot
from hub.places import contact_keys, lock_places, lookup_places, near, same_dwelling, same_house
from hub.records import Record, la_of, visible_only
from hub.shielding import (
    SEVERED,
    Shield,
    candidates_for_audience,
    for_audience,
    listed_update_hidden,
)
from schemas.canonical import CanonicalUpdate


class OperationError(Exception):
    """An expected failure with a one-line message for the operator."""


def _uuid(value: str, what: str) -> str:
    try:
        return str(uuid.UUID(value))
    except ValueError:
        raise OperationError(f"{what} {value!r} is not a valid id") from None


async def audit(
    conn: asyncpg.Connection, actor: str, action: str, child_id: str | None,
    subject: str | None, detail: dict[str, Any],
) -> None:
    await conn.execute(q("insert_audit"), actor, action, child_id, subject, detail)


async def _child(conn: asyncpg.Connection, child_id: str, guard: bool = False) -> asyncpg.Record:
    """The child's row, locked. With `guard` (shield, unshield, sever: a change that
    decides how updates about the child are placed), first the guard locks of its
    keys (hub.db.store.guard_ids), before the row's: a batch creating a record that
    would find this child, and committing after this change, waits for it and
    decides with the child as changed (hub.db.store.guard_new_keys)."""
    # Not while `hub load` writes the index (it holds LOAD_LOCK exclusively).
    await conn.execute("SELECT pg_advisory_xact_lock_shared($1)", store.LOAD_LOCK)
    cid = _uuid(child_id, "child")
    if guard:
        record = await conn.fetchval("SELECT record FROM children WHERE child_id = $1", cid)
        if record is not None:
            await store.lock_all(conn, store.guard_ids([prepare(record)]))
    row = await conn.fetchrow("SELECT * FROM children WHERE child_id = $1 FOR UPDATE", cid)
    if row is None:
        raise OperationError(f"no child with id {child_id}")
    return row


async def _new_version(
    conn: asyncpg.Connection, row: asyncpg.Record, record: dict[str, Any], actor: str,
    shielded: bool, authority: str | None, severed: bool,
) -> int:
    version = row["version"] + 1
    await conn.execute(
        "UPDATE children SET version = $2, record = $3, shielded = $4, shielding_authority = $5,"
        " shielded_at = CASE WHEN $4 THEN coalesce(shielded_at, now()) END,"
        " restricted_at_origin = restricted_at_origin AND $4, severed = $6, updated_at = now(),"
        " prepared = $7, contacts = $8 WHERE child_id = $1",
        row["child_id"], version, record, shielded, authority, severed,
        compact.encode(prepare(record), version), sorted(contact_keys(record)),
    )
    await conn.execute(q("insert_version"), row["child_id"], version, record, actor, None)
    # Shielded and severed records carry extra blocking keys (blocking.stored_keys).
    keys = sorted(stored_keys(record, shielded, severed))
    await conn.execute(q("replace_keys"), keys, [row["child_id"]] * len(keys), [row["child_id"]])
    return version


# -- shielding ---------------------------------------------------------------------

class Shielded(NamedTuple):
    version: int
    # open records at her house: shielded with her (`household`), else still open
    household: tuple[str, ...]
    open_at_house: tuple[str, ...]
    # her address has lines but no postcode: no one at her house was looked for
    house_unsearched: bool = False
    # open records that could be her (hub.shield_check.could_be_her), best first, at
    # most shield_check.COULD_BE_HER_NAMED of them; and how many there were
    could_be_her: tuple[str, ...] = ()
    could_be_her_count: int = 0
    # shielded already by this authority: her record was not changed
    already: bool = False


async def shield(conn: asyncpg.Connection, child_id: str, authority: str, by: str,
                 reason: str | None) -> int:
    """Shield a record (`shield_record`); its new version."""
    return (await shield_record(conn, child_id, authority, by, reason)).version


async def shield_record(conn: asyncpg.Connection, child_id: str, authority: str, by: str,
                        reason: str | None, household: bool = False,
                        thresholds: Thresholds | None = None) -> Shielded:
    """Shield a record on behalf of `authority`, and find the open records at the same
    house (hub.places.same_house: a sibling, another family of the refuge), which
    show where she is as plainly as hers would. With `household` they are shielded
    with her by the same authority (told of each, child.shielded; it may lift their
    shields one by one); without, they are returned for the operator to decide.

    Also the open records that could be her (hub.shield_check): a duplicate of her
    made before she was shielded holds what it was given open, perhaps her new
    address. Her authority is asked once, in its child.shielded notification and in
    the audit; nothing is changed in them."""
    async with conn.transaction():
        cid = _uuid(child_id, "child")
        await conn.execute("SELECT pg_advisory_xact_lock_shared($1)", store.LOAD_LOCK)
        record = await conn.fetchval("SELECT record FROM children WHERE child_id = $1", cid)
        if record is None:
            raise OperationError(f"no child with id {child_id}")
        # Her house's lock first, as a batch writing an address there takes it
        # (store.lock_ids): a record written there meanwhile commits before this
        # (and is found below) or after it (and sees her protected: rule 6).
        address, form = record.get("address"), prepare(record)
        await store.lock_all(conn, store.place_lock_ids(lock_places(address)))
        house = await shield_check.at_house(conn, cid, record)
        # Every guard lock in one call (sorted: no deadlock with a batch), then rows.
        await store.lock_all(conn, store.guard_ids(
            [form, *(prepare(r) for _, r in house if household)]))
        if household and house:  # every row at once, in the order of their ids
            await conn.execute("SELECT 1 FROM children WHERE child_id = ANY($1::uuid[])"
                               " ORDER BY child_id FOR UPDATE", [cid, *(i for i, _ in house)])
        row = await _child(conn, cid)
        if row["shielded"] and row["shielding_authority"] not in (None, authority):
            raise OperationError("record is already shielded by another authority")
        if row["shielded"] and row["shielding_authority"] is None:
            await _may_take_on(conn, authority, reason)
        if row["record"].get("address") != address:
            # A batch moved her between the read and the lock: what was locked and
            # looked for is not her house now.
            raise OperationError("the record changed while it was being shielded (an update"
                                 " was written); nothing was changed: run it again")
        # Her authority's notification and the audit name the open records left at
        # her house.
        left = () if household else tuple(i for i, _ in house)
        with_her = {i for i, _ in house} if household else set()
        could_be = [i for i in await shield_check.could_be_her(  # her record as locked
            conn, cid, row["record"], thresholds or Thresholds()) if i not in with_her]
        named = shield_check.named(list(left), could_be)
        already = row["shielded"] and row["shielding_authority"] == authority
        if already:
            # Shielded already by this authority: her record, her authority's
            # notifications and her history stay as they are (no second version or
            # child.shielded); the household, if asked, is still shielded below.
            version = row["version"]
            await audit(conn, by, "shield", str(cid), authority,
                        {"reason": reason, "already_shielded": True, **named})
        else:
            version = await _shield_row(conn, row, authority, by, {"reason": reason, **named},
                                        named or None)
        shielded: list[str] = []
        for other, _ in house if household else ():
            orow = await _child(conn, other)
            # As it is now, locked: still open, still at her house.
            if orow["shielded"] or not same_house(address, orow["record"].get("address")):
                continue
            await _shield_row(conn, orow, authority, by,
                              {"reason": "at the house of a child shielded with it",
                               "with": str(row["child_id"])})
            shielded.append(other)
    return Shielded(version, tuple(shielded), left, bool(address) and not form.postcode,
                    tuple(could_be[:shield_check.COULD_BE_HER_NAMED]), len(could_be),
                    already)


async def _may_take_on(conn: asyncpg.Connection, authority: str, reason: str | None) -> None:
    """A council takes on a shield no authority holds (restricted by its source, no
    council known): it is sent her whole record, so only a council the hub knows
    (`hub council add`), with a reason, audited (an independent probe: any LA number,
    even 000, was sent her hidden address, then could lift the shield)."""
    if not reason:
        raise OperationError("this record was restricted by its source and no authority"
                             " holds its shield: taking it on needs --reason")
    if not await conn.fetchval("SELECT 1 FROM councils WHERE la = $1", authority):
        raise OperationError(f"council {authority} is not known to the hub (`hub council"
                             " list`): only a known council may take on this shield")


async def _shield_row(conn: asyncpg.Connection, row: asyncpg.Record, authority: str, by: str,
                      detail: dict[str, Any], told: dict[str, Any] | None = None) -> int:
    """Shield one locked row: a new version, every place its history held protected
    (every address, phone number and email address it ever had, not just the current
    ones), its authority told (with `told` in the notification), audited."""
    version = await _new_version(conn, row, row["record"], by, True, authority, row["severed"])
    await protected.protect_history(conn, [row["child_id"]])
    await _outbox_shielding(conn, row, version, authority, "child.shielded", told)
    await audit(conn, by, "shield", str(row["child_id"]), authority, detail)
    return version


class Unshielded(NamedTuple):
    version: int
    household: tuple[str, ...] = ()  # the records at her house lifted with her


async def unshield(conn: asyncpg.Connection, child_id: str, authority: str, by: str,
                   reason: str | None, household: bool = False) -> Unshielded:
    """Lift a shield. Never onto a shielded child's current address: a record there
    stays shielded while she is (her brother's open record would show where she
    lives), unless `household` lifts every record of this authority at that house
    with it. Nor near another authority's child: that authority decides first."""
    async with conn.transaction():
        row = await _child(conn, child_id, guard=True)
        if not row["shielded"]:
            raise OperationError("record is not shielded")
        if row["shielding_authority"] is None:
            # Restricted by its source, in no council's care yet: any council could
            # lift it and be told where she is (an independent probe).
            raise OperationError(
                "no authority holds this shield (the record was restricted by its source):"
                " the council responsible takes it on first with `hub shield --authority`")
        if row["shielding_authority"] != authority:
            raise OperationError("only the shielding authority may lift the shield")
        main = str(row["child_id"])
        rows = {main: row}
        if household:
            at, _, shields = await _holders(conn, row["record"], str(row["child_id"]))
            for cid in sorted(at):
                other = await conn.fetchrow(
                    "SELECT * FROM children WHERE child_id = $1::uuid FOR UPDATE", cid)
                if (other is not None and other["shielded"]
                        and shields[cid].authority == authority):
                    rows[cid] = other
        for r in rows.values():
            await _may_lift(conn, r, authority, set(rows))
        version = 0
        for cid, r in rows.items():
            v = await _new_version(conn, r, r["record"], by, False, None, r["severed"])
            version = version or v
            await conn.execute("DELETE FROM protected_addresses WHERE child_id = $1",
                               r["child_id"])
            await _outbox_shielding(conn, r, v, authority, "child.unshielded")
            for n in for_opening(cid, v, datetime.now(UTC), r["record"], authority,
                                 r["open_la"]):
                await conn.execute(q("insert_outbox"), n.event_id, n.routing_key, n.body)
            await audit(conn, by, "unshield", cid, authority,
                        {"reason": reason, **({"with": main} if cid != main else {})})
    return Unshielded(version, tuple(c for c in rows if c != main))


async def _may_lift(conn: asyncpg.Connection, row: asyncpg.Record, authority: str,
                    lifting: set[str]) -> None:
    """Refuse to lift `row`'s shield (with the others in `lifting`) where its record
    would show a shielded child's whereabouts."""
    at, others, shields = await _holders(conn, row["record"], str(row["child_id"]))
    at -= lifting
    foreign = {shields[c].authority or "?" for c in at | others
               if c not in lifting and shields[c].authority != authority}
    if foreign:
        # Rule 6: the record would hold open an address where another authority's
        # child is hidden.
        raise OperationError(
            f"refused: the record is near a child shielded by"
            f" {', '.join(sorted(foreign))} (her address or postcode, a former address"
            " of hers, or her carers' contacts); lifted, the shield could leave them"
            " open: that authority decides first")
    # Its own children near it it may leave (a former address of hers, her street),
    # and its own updates waiting in review (the authority decides them): not a child
    # living at the house, whom the open record would show there.
    living = [str(c) for c in await conn.fetchval(
        "SELECT array_agg(child_id ORDER BY child_id) FROM children"
        " WHERE child_id = ANY($1::uuid[]) AND shielded", sorted(at)) or []]
    if living:
        raise OperationError(
            f"refused: {', '.join(living)}, shielded by {authority}, lives at the"
            f" address of record {row['child_id']}; lifted alone, that record would show"
            " where: lift them together (--household), or leave it shielded")


async def _outbox_shielding(conn: asyncpg.Connection, row: asyncpg.Record, version: int,
                            authority: str, event: str,
                            extra: dict[str, Any] | None = None) -> None:
    for n in for_shielding(str(row["child_id"]), version, datetime.now(UTC), row["record"],
                           Shield(True, authority), event):
        await conn.execute(q("insert_outbox"), n.event_id, n.routing_key,
                           {**n.body, **(extra or {})})


async def sever(conn: asyncpg.Connection, child_id: str, authority: str, by: str,
                reason: str | None) -> int:
    """Sever the record's former identity: its source links and NHS number never link again."""
    async with conn.transaction():
        row = await _child(conn, child_id, guard=True)
        if row["shielded"] and row["shielding_authority"] not in (None, authority):
            raise OperationError("only the shielding authority may sever this record")
        record = dict(row["record"])
        nhs = record.pop("nhs_number", None)
        if nhs:
            await conn.execute(
                "INSERT INTO invalidated_identifiers (nhs_number, child_id) VALUES ($1, $2)"
                " ON CONFLICT DO NOTHING", nhs, row["child_id"],
            )
        await conn.execute(
            "INSERT INTO severances (child_id, authority) VALUES ($1, $2) ON CONFLICT"
            " (child_id) DO UPDATE SET authority = $2, severed_at = now()",
            row["child_id"], authority)
        # Former names would tie the two identities together in exports and searches.
        record.pop("former_family_names", None)
        await conn.execute(
            "UPDATE source_links SET severed = true WHERE child_id = $1", row["child_id"]
        )
        # Its keys are now those of the record without the NHS number and former names.
        version = await _new_version(conn, row, record, by, row["shielded"],
                                     row["shielding_authority"], True)
        # The councils holding the record drop the severed number and names from their
        # copy as from any change (a shielded record: its authority alone, as ever).
        for n in for_change(str(row["child_id"]), version, datetime.now(UTC),
                            dict(row["record"]), record,
                            Shield(row["shielded"], row["shielding_authority"])):
            await conn.execute(q("insert_outbox"), n.event_id, n.routing_key, n.body)
        await audit(conn, by, "sever", str(row["child_id"]), authority, {"reason": reason})
    return version


# -- councils ----------------------------------------------------------------------

async def backfill(conn: asyncpg.Connection, la: str, by: str,
                   progress: Callable[[int], None] | None = None) -> int:
    """Tell council `la` of every child it would be told of now (`child.snapshot`):
    those living in its area whose records are open, and those it shields; nothing
    of a child another authority shields. Written to the outbox in chunks, each in
    its own transaction (a county's hundred thousand children), audited once."""
    run = str(uuid.uuid4())
    now = datetime.now(UTC)
    sent = 0
    rows = await conn.fetch(
        "SELECT child_id FROM children WHERE CASE WHEN shielded"
        " THEN shielding_authority = $1 ELSE record->'address'->>'la' = $1 END"
        " ORDER BY child_id", la)
    ids = [r[0] for r in rows]
    for start in range(0, len(ids), BACKFILL_CHUNK):
        async with conn.transaction():
            chunk = await conn.fetch(
                "SELECT child_id::text, version, record, shielded, shielding_authority"
                " FROM children WHERE child_id = ANY($1::uuid[]) ORDER BY child_id",
                ids[start:start + BACKFILL_CHUNK])
            notes = [for_snapshot(r[0], r[1], now, r[2], Shield(r[3], r[4]), la, run)
                     for r in chunk
                     if (r[4] == la if r[3] else la_of(r[2]) == la)]  # as it is now
            await conn.executemany(q("insert_outbox"),
                                   [(n.event_id, n.routing_key, n.body) for n in notes])
            sent += len(notes)
        if progress is not None:
            progress(sent)
    await audit(conn, by, "council.backfill", None, la, {"run": run, "children": sent})
    return sent


BACKFILL_CHUNK = 2_000


# -- export ------------------------------------------------------------------------

async def export(conn: asyncpg.Connection, include_protected: bool, by: str | None,
                 reason: str | None) -> AsyncIterator[dict[str, Any]]:
    if include_protected:
        await audit(conn, by or "unknown", "export.break_glass", None, None, {"reason": reason})
        # Break the glass: every shielding authority is told, child by child, whose
        # hidden fields went out, in the shape of every notification (a probe's
        # consumer, written to the contract, failed on one alert an authority with
        # no child in it).
        at = datetime.now(UTC).isoformat().replace("+00:00", "Z")
        alerts = []
        for r in await conn.fetch(
                "SELECT child_id::text, version, record, shielding_authority FROM children"
                " WHERE shielded AND shielding_authority IS NOT NULL ORDER BY child_id"):
            event_id = str(uuid.uuid4())
            alerts.append((event_id, f"la.{r[3]}.alert.break_glass", {
                "event_id": event_id, "event": "alert.break_glass", "child_id": r[0],
                "version": r[1], "occurred_at": at, "shielded": True,
                "child": visible_only(r[2]), "by": by, "reason": reason,
                "access": "export --include-protected",
            }))
        await conn.executemany(q("insert_outbox"), alerts)
    async with conn.transaction():
        cursor = conn.cursor(
            "SELECT c.child_id::text AS child_id, c.version, c.record, c.shielded,"
            " c.shielding_authority,"
            " coalesce((SELECT json_agg(json_build_object('source', l.source,"
            "   'source_record_id', l.source_record_id) ORDER BY l.source, l.source_record_id)"
            "   FROM source_links l WHERE l.child_id = c.child_id AND NOT l.severed), '[]')"
            "   AS sources"
            " FROM children c ORDER BY c.created_at, c.child_id"
        )
        async for r in cursor:
            shield_ = Shield(r["shielded"], r["shielding_authority"])
            yield {
                "child_id": r["child_id"],
                "version": r["version"],
                "shielded": r["shielded"],
                "shielding_authority": r["shielding_authority"],
                "sources": r["sources"],
                "child": for_audience(r["record"], shield_, None, break_glass=include_protected),
            }


# -- review ------------------------------------------------------------------------

def review_line(r: asyncpg.Record, shields: dict[str, Shield]) -> dict[str, Any]:
    """One review item as `hub review list --json` prints it (to an operator acting
    for no authority). `shields`: the shielded among its candidates
    (`candidate_shields`), whose scores are shown as the shielding policy allows."""
    cands = [{"child_id": c["child_id"], "score": c.get("score"),
              **({"address_withheld": True} if c.get("address_withheld") else {})}
             for c in candidates_for_audience(
                 r["candidates"] or [], shields, None,
                 listed_update_hidden(r["update"], shields, None, r["reason"]), r["reason"])]
    return {
        "id": str(r["id"]),
        "reason": r["reason"],
        "source": r["source"],
        "source_record_id": r["source_record_id"],
        "candidates": cands,
        "received_at": _ts(r["received_at"]),
        **_handling(r),
    }


def _handling(r: asyncpg.Record) -> dict[str, Any]:
    return {"assigned_to": r["assigned_to"], "investigating": r["investigating"],
            "notes": len(r["notes"] or [])}


def dead_line(r: asyncpg.Record) -> dict[str, Any]:
    return {
        "id": str(r["id"]),
        "reason": r["reason"],
        "source": r["source"],
        "source_record_id": r["source_record_id"],
        "error": r["error"],
        "received_at": _ts(r["received_at"]),
        "format": r["format"],  # the adapter's that rejected it; null: a canonical body
        **_handling(r),
    }


def _ts(value: datetime) -> str:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


async def shields_among(conn: asyncpg.Connection | asyncpg.Pool,
                        ids: list[str]) -> dict[str, Shield]:
    """The shields of the shielded children among `ids`, by id."""
    if not ids:
        return {}
    return {str(r["child_id"]): Shield(True, r["shielding_authority"]) for r in await conn.fetch(
        "SELECT child_id, shielding_authority FROM children"
        " WHERE child_id = ANY($1::uuid[]) AND shielded", ids)}


async def candidate_shields(conn: asyncpg.Connection | asyncpg.Pool,
                            rows: list[asyncpg.Record]) -> dict[str, Shield]:
    """The shields of the shielded children among parked items' candidates."""
    return await shields_among(
        conn, sorted({c["child_id"] for r in rows for c in r["candidates"] or []}))


async def list_parked(conn: asyncpg.Connection, kind: str, reason: str | None,
                      source: str | None = None, older_than_hours: float | None = None,
                      assigned_to: str | None = None) -> list[asyncpg.Record]:
    return await conn.fetch(
        "SELECT * FROM parked WHERE kind = $1 AND status = 'open'"
        # (superseded: retried, its retry parked again; migration 0028)
        " AND NOT EXISTS (SELECT 1 FROM parked n WHERE n.retry_of = parked.id)"
        " AND ($2::text IS NULL OR reason = $2) AND ($3::text IS NULL OR source = $3)"
        " AND ($4::float8 IS NULL OR received_at < now() - make_interval(secs => $4 * 3600))"
        " AND ($5::text IS NULL OR assigned_to = $5)"
        " ORDER BY received_at, source, source_record_id, id",
        kind, reason, source, older_than_hours, assigned_to,
    )


async def handle_parked(conn: asyncpg.Connection, item_id: str, by: str, *,
                        assign_to: str | None = None, note: str | None = None,
                        investigating: bool | None = None) -> None:
    """Assign, annotate, or mark under investigation any open parked item; audited."""
    async with conn.transaction():
        row = await conn.fetchrow("SELECT id, status FROM parked WHERE id = $1 FOR UPDATE",
                                  _uuid(item_id, "item"))
        if row is None:
            raise OperationError(f"no parked item {item_id}")
        if row["status"] != "open":
            raise OperationError(f"item {item_id} is already {row['status']}")
        entry = [{"by": by, "at": datetime.now(UTC).isoformat(), "text": note}] if note else []
        await conn.execute(
            "UPDATE parked SET assigned_to = coalesce($2, assigned_to),"
            " investigating = coalesce($3, investigating), notes = notes || $4::jsonb"
            " WHERE id = $1", row["id"], assign_to, investigating, entry)
        await audit(conn, by, "parked.handle", None, str(row["id"]),
                    {"assigned_to": assign_to, "investigating": investigating,
                     "noted": bool(note)})


async def dead_letter(conn: asyncpg.Connection, item_id: str, by: str,
                      reason: str) -> asyncpg.Record:
    """One dead letter, its raw content included: audited, for that content was never
    validated and may be anything (a shielded child's refuge address in an update
    that failed validation)."""
    async with conn.transaction():
        row = await conn.fetchrow("SELECT * FROM parked WHERE id = $1 AND kind = 'dead'",
                                  _uuid(item_id, "dead letter"))
        if row is None:
            raise OperationError(f"no dead letter {item_id}")
        await audit(conn, by, "dlq.show", None, str(row["id"]), {"reason": reason})
    return row


async def purge_older_than(conn: asyncpg.Connection, days: float, by: str) -> int:
    """Retention: dead letters open longer than `days` lose their content; audited."""
    rows = await conn.fetch(
        "SELECT id FROM parked WHERE kind = 'dead' AND status = 'open'"
        " AND received_at < now() - make_interval(secs => $1 * 86400)", days)
    async with conn.transaction():
        await mark_dead(conn, [r["id"] for r in rows], "purged", by, "dlq.purge.retention")
    return len(rows)


async def purge_decided_reviews(conn: asyncpg.Connection, days: float, by: str) -> int:
    """Retention: review items resolved or rejected more than `days` ago lose the
    update and raw content they were parked with (a shielded child's among them);
    the decision stays, and its audit record. Open items are never touched."""
    async with conn.transaction():
        ids = [r["id"] for r in await conn.fetch(q("review_purge_decided"), days)]
        for i in ids:
            await audit(conn, by, "review.purge.retention", None, str(i), {})
    return len(ids)


async def purge_sent_notifications(conn: asyncpg.Connection, days: float, by: str) -> int:
    """Retention: notifications the broker confirmed more than `days` ago are deleted
    (each body is a copy of a child's record); unsent ones never are. Audited."""
    return await _counted_purge(conn, "outbox_purge_sent", "outbox", days, by)


async def _counted_purge(conn: asyncpg.Connection, query: str, what: str, days: float,
                         by: str) -> int:
    """A retention statement that returns how many rows it removed, audited."""
    async with conn.transaction():
        purged: int = await conn.fetchval(q(query), days)
        await audit(conn, by, f"{what}.purge.retention", None, None,
                    {"older_than_days": days, "purged": purged})
    return purged


#: `hub processed purge` keeps at least this many days: a redelivery after a cut
#: connection comes within minutes, and must still find its message processed.
PROCESSED_MIN_DAYS = 1.0


async def purge_processed(conn: asyncpg.Connection, days: float, by: str) -> int:
    """Retention: forget the ids of messages processed more than `days` ago (at least
    PROCESSED_MIN_DAYS). A copy of such a message that comes again is decided again:
    a stale version through its source link, a dead letter again if it was one.
    Audited."""
    if not days >= PROCESSED_MIN_DAYS:
        raise OperationError(
            f"processed message ids are kept at least {PROCESSED_MIN_DAYS:g} day: a"
            " redelivery must still find its message processed")
    return await _counted_purge(conn, "processed_purge", "processed", days, by)


async def _parked(conn: asyncpg.Connection, item_id: str, kind: str) -> asyncpg.Record:
    row = await conn.fetchrow(
        "SELECT * FROM parked WHERE id = $1 AND kind = $2 FOR UPDATE", _uuid(item_id, "item"), kind
    )
    if row is None:
        raise OperationError(f"no {'review item' if kind == 'review' else 'dead letter'} {item_id}")
    return row


class Resolution(NamedTuple):
    child_id: str | None  # the child the update went to (None: rejected)
    # The shield the record took on (None: no new shield), and why.
    shielded: Shield | None = None
    why: str = ""
    # Shielded candidates a reject did not mark "not a match": only their authority may.
    kept: tuple[str, ...] = ()


KEPT_NOTE = ("a shielded candidate stays a candidate for this source record's later"
             " updates (only her authority may say she is not its child)")
HOLDS_ADDRESS = "it holds a shielded child's address"
CARRIES_CONTACT = "it carries a phone number or email address of a shielded child's carers"
BESIDE_SHIELDED = ("a shielded child was a candidate, and only its authority, seeing both,"
                   " may say this is another child (it unshields the record if so)")


async def resolve(conn: asyncpg.Connection, item_id: str, action: str, child_id: str | None,
                  by: str, note: str | None, thresholds: Thresholds,
                  acting_for: str | None = None) -> Resolution:
    """Apply an operator's decision on a review item.

    The operator's word places the update, but no decision writes a shielded child's
    address into an open record: a record that the update puts at such an address
    (a sibling moving into the refuge, a child the operator judged to be another) is
    shielded by the authority shielding that child, which then decides. So is a record
    created beside a shielded candidate, wherever its address, unless the resolver
    acts for that candidate's authority (`acting_for`): anyone else judged "another
    child" without seeing the hidden fields, and if wrong, the new record would hold
    the shielded child's new address open (the failure this hub exists to prevent).
    For the same reason only that authority may link such an update to an open
    record."""
    async with conn.transaction():
        row = await _parked(conn, item_id, "review")
        if row["status"] != "open":
            raise OperationError(f"review item {item_id} is already {row['status']}")
        update = CanonicalUpdate.model_validate(row["update"])
        result: str | None = None
        shield: Shield | None = None
        why = ""
        kept: tuple[str, ...] = ()
        if action == "reject":
            ids = [c["child_id"] for c in row["candidates"] or []]
            shields = await shields_among(conn, ids)
            # "Not a match" for a shielded child would take her out of every later
            # version's candidates, so the next one would be created open, at her new
            # address: the failure this hub exists to prevent. Only her authority,
            # seeing both, may say so; anyone else's reject leaves her a candidate.
            kept = tuple(cid for cid in ids
                         if cid in shields and shields[cid].authority != acting_for)
            for cid in ids:
                if cid in kept:
                    continue
                await conn.execute(
                    "INSERT INTO not_a_match (source, source_record_id, child_id, decided_by)"
                    " VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
                    update.source, update.source_record_id, cid, by,
                )
        restricted = bool((row["update"] or {}).get("restricted")) and acting_for is None
        # Decided, its birth no longer waits (migration 0029).
        await conn.execute("DELETE FROM pending_births WHERE parked_id = $1", row["id"])
        if action != "reject" or not (kept or restricted):
            # Its own places no longer wait (migration 0020): placed, the record it
            # goes into is shielded on arrival and protects them; rejected by her
            # authority, it is not hers. Rejected by anyone else, it may still be her
            # new address: it stays protected (an independent probe: her brother's
            # record was then written there open and its council told). Decided
            # now, the places earlier items of this source record kept go too.
            await conn.execute(
                "DELETE FROM pending_places WHERE parked_id IN (SELECT id FROM parked"
                " WHERE id = $1 OR (source = $2 AND source_record_id = $3"
                " AND kind = 'review' AND status <> 'open'))",
                row["id"], row["source"], row["source_record_id"])
        if action != "reject":
            # The update's advisory locks before the target's row, in a pipeline
            # batch's order: the other order could deadlock with a batch writing it.
            await store.lock(conn, [update])
            target = None
            if action == "link":
                assert child_id is not None
                target = (await _child(conn, child_id))["child_id"]
                target = str(target)
            await _held_apart(conn, row, update, target, acting_for)
            state: BatchState = await store.load(conn, [update], thresholds,
                                                 extra_child_ids=[target] if target else [])
            state.actor = by
            child = update.child.model_dump(mode="json", exclude_none=True)
            # Rule 6, as the index stands now: the shielded children the update comes
            # near (at her address, her contacts, near her address); a record whose
            # own address the update writes again, where none lives now, keeps it.
            held = await holders_of(
                conn, child, target,
                dict(state.children[target].record) if target is not None else None)
            # A record given her carers' number is shielded by her authority unless it
            # places it itself (seeing both: a sibling it need not hide), as rule 7.
            holders = held.at + [h for h in held.contact
                                 if h.authority is None or h.authority != acting_for]
            # The candidates the operator saw when it was parked that could have been
            # this child then, and any shielded child that could be this one now
            # (shielded, or created, since). Not a neighbour found by the postcode
            # alone and scored as nothing like it: rule 4 (hub.decide) did not hold
            # the update for that one either.
            candidates = [*(c for c in row["candidates"] or [] if _was_plausible(c, thresholds)),
                          *({"child_id": c} for c in plausible_shielded(
                              child, state.facts(update, child), thresholds, state.matcher,
                              state.form_of(update)))]
            placed = state.links.get((update.source, update.source_record_id))
            if placed is not None and placed.last_version >= update.source_version:
                # A later version was placed since: the pipeline would take this one for
                # a stale copy. Placing it would move the source's link, and with it
                # every later update, away from where that version went.
                raise OperationError(
                    f"refused: {update.source}/{update.source_record_id} has been placed"
                    f" since, at version {placed.last_version} (this item is version"
                    f" {update.source_version}); reject this item")
            nhs = child.get("nhs_number")
            holder_of_number = nhs and await conn.fetchval(
                "SELECT child_id::text FROM block_keys WHERE key = $1 AND child_id"
                " IS DISTINCT FROM $2::uuid LIMIT 1", f"n:{nhs}", target)
            if holder_of_number:
                # Two records holding one NHS number would each link its next update
                # nowhere (a tie that is no tie) and split the child between them.
                raise OperationError(
                    f"refused: record {holder_of_number} holds the update's NHS number;"
                    f" link the update to it (--link {holder_of_number}) or reject it")
            if action == "create":
                # A record written since the item was parked (by another source, or
                # another operator) that the update would be linked to on its own
                # was never in front of the operator: a record created now would be
                # its duplicate.
                seen = {c["child_id"] for c in row["candidates"] or []}
                since = [(cid, p) for cid, p in linkable(
                    child, state.facts(update, child), thresholds, state.matcher,
                    state.form_of(update)) if cid not in seen]
                if since:
                    cid, p = since[0]
                    raise OperationError(
                        f"refused: record {cid}, written since this item was parked, matches"
                        f" this update (match probability {p:.2f}); compare them (hub show"
                        f" {cid}), then link it there (--link {cid}) or reject it")
            own = state.children[target] if target is not None else None
            was_shielded = own is not None and own.shielded
            own_la = own.authority if own is not None and own.shielded else None
            beside = await shields_among(
                conn, [c["child_id"] for c in candidates if c["child_id"] != target])
            # Shielded candidates whose authority is neither the resolver's nor the
            # target's own (or not known yet: nobody acts for it), best first: only that
            # authority, seeing both, may say the update is not its child's. Linked
            # anywhere else, the update and every later one through its source link
            # would put what may be her next address where another can read it (an
            # open record, another authority's child).
            others = [s for cid in dict.fromkeys(c["child_id"] for c in candidates)
                      if (s := beside.get(cid)) is not None
                      and (s.authority is None or s.authority not in (acting_for, own_la))]
            if own is not None and others:
                la = others[0].authority or "its authority"
                raise OperationError(
                    f"refused: a child shielded by {la} is a candidate, and only that"
                    f" authority, seeing both, may link this update to "
                    + ("another authority's shielded record" if own.shielded
                       else "an open record")
                    + f" (--authority {others[0].authority or 'LA'}); otherwise link it to"
                    " the shielded child, create (shielded) or reject")
            if own is not None and own.shielded and any(
                    h.authority != own.authority for h in holders):
                # Its authority would see where another authority's child is hidden.
                raise OperationError(
                    "refused: the update carries the address of a child shielded by"
                    " another authority, and the record is shielded by its own; the"
                    " authorities decide first")
            # Near a shielded child but not at her address (her street, a former
            # address): only her authority, which sees both, may say it is not hers (a
            # neighbour), and then places it as it is; shielding it by her authority
            # would take a stranger's child from its own council.
            strangers = [h for h in held.near if h.authority is None
                         or h.authority != acting_for
                         or (own is not None and own.shielded and own.authority != h.authority)]
            if strangers:
                near_la = strangers[0].authority
                raise OperationError(
                    "refused: the update comes near a child shielded by "
                    + (near_la or "an authority not known yet")
                    + " (her street, or a former address of hers), and"
                    " only that authority, seeing both, may place it"
                    + (f" (--authority {near_la})" if near_la else "") + "; otherwise reject it")
            # A record this puts at a shielded child's address, gives her carers'
            # number, or creates beside her, is shielded by her authority: by one
            # authority, which alone then decides.
            involved = {h.authority for h in holders} | (
                {s.authority for s in others} if action == "create" else set())
            if len(involved) > 1:
                raise OperationError(
                    "refused: children shielded by more than one authority ("
                    + ", ".join(sorted(la or "?" for la in involved))
                    + ") hold the update's address or contacts, or are candidates;"
                    " the authorities decide first")
            holder = holders[0] if holders else None
            why = HOLDS_ADDRESS
            if not held.at and action == "create" and others:
                holder, why = others[0], BESIDE_SHIELDED
            elif not held.at and holders:
                why = CARRIES_CONTACT
            result = state.apply(update, child, target, None, by, f"operator_{action}",
                                 shield=holder)
            written = state.children[result]
            if holder is not None and not was_shielded:
                shield = written.shield
                state.writes.outbox.extend(for_shielding(
                    result, written.version, state.now, dict(written.record), shield,
                    "child.shielded"))
            if action == "create":
                for c in row["candidates"] or []:
                    await conn.execute(
                        "INSERT INTO not_a_match (source, source_record_id, child_id, decided_by)"
                        " VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
                        update.source, update.source_record_id, c["child_id"], by,
                    )
            if action == "create":  # strict below: no facts are decided again
                state.created.append((update, Facts()))
            # A record created, or given new keys by a link, takes the guard locks as
            # a batch's would (hub.db.store.guard_new_keys).
            try:
                await store.guard_new_keys(conn, state, strict=True)
            except store.IndexMoved:
                raise OperationError(
                    "another record was written beside this update while it was being"
                    f" placed: run `hub review show {item_id}` and decide again"
                ) from None
            await store.flush(conn, state.writes)
            await shield_check.tell(conn, state.writes.shielded, thresholds, state.writes.moved)
        status = "rejected" if action == "reject" else "resolved"
        await conn.execute(
            "UPDATE parked SET status = $2, resolved_at = now(), resolved_by = $3,"
            " resolution = $4, note = $5 WHERE id = $1",
            row["id"], status, by, action if not result else f"{action}:{result}", note,
        )
        await audit(conn, by, f"review.{action}", result, str(row["id"]),
                    {"note": note, "reason": row["reason"],
                     **({"acting_for": acting_for} if acting_for else {}),
                     **({"shielded_by": shield.authority, "shielded_why": why}
                        if shield else {}),
                     **({"kept_as_candidates": list(kept)} if kept else {})})
    return Resolution(result, shield, why if shield else "", kept)


async def _held_apart(conn: asyncpg.Connection, row: asyncpg.Record, update: CanonicalUpdate,
                      target: str | None, acting_for: str | None) -> None:
    """No operator joins the two identities of a severed record (as on adoption: the
    domain's "must never be linked"; found by an independent probe, any operator's
    `--link` did). An update carrying an NHS number a sever invalidated is neither
    linked nor given a record (that identity made again, perhaps at the adoptive
    address): it is rejected. Only the authority that severed a record, seeing both,
    may link an update into it (its new identity's, say), or say that an update that
    could be its former identity is another child (`--create`)."""
    nhs = update.child.nhs_number
    if nhs and await conn.fetchval(
            "SELECT 1 FROM invalidated_identifiers WHERE nhs_number = $1", nhs):
        raise OperationError(
            "refused: the update carries an NHS number invalidated when a record's former"
            " identity was severed (as on adoption); the two identities are never joined,"
            " nor is the former one made again: reject it")
    ids = [target] if target is not None else (
        [c["child_id"] for c in row["candidates"] or []] if row["reason"] == SEVERED else [])
    for r in await conn.fetch(
            "SELECT c.child_id::text AS id, coalesce(s.authority, c.shielding_authority) AS la"
            " FROM children c LEFT JOIN severances s USING (child_id)"
            " WHERE c.severed AND c.child_id = ANY($1::uuid[]) ORDER BY c.child_id", ids):
        if r["la"] is not None and r["la"] == acting_for:
            continue
        how = f" (--authority {r['la']})" if r["la"] else ""
        if target is not None:
            # (Not saying why: that a record was severed says she was adopted.)
            raise OperationError(
                f"refused: only the authority responsible for record {target}, seeing"
                f" both, may place this update in it{how}; otherwise reject it")
        raise OperationError(
            "refused: the update could be the former identity of a record severed by "
            + (r["la"] or "an authority") + " (as on adoption), and only that authority,"
            f" seeing both, may say it is another child{how}; otherwise reject it")


def _was_plausible(candidate: dict[str, Any], thresholds: Thresholds) -> bool:
    """Whether a candidate stored with a review item could have been the update's
    child by the scores kept with it (hub.decide's plausibility test but for its
    generous name test, which `plausible_shielded` asks again of the record now). A
    candidate kept without scores is not: a shielded child listed only as near the
    update (rule 6), whom `holders_of` finds again as the index stands now, and
    rule 8 listed because she could not be the update's child."""
    identity, score = candidate.get("identity_score"), candidate.get("score")
    if identity is None or score is None:
        return False
    return identity >= thresholds.shielded_plausible or score >= thresholds.review


class Holders(NamedTuple):
    """The shielded children rule 6 counts against an update (hub.places.near), as
    their shields: `at`, those living at its address now; `contact`, the others
    whose carers' or services' phone number or email address it carries (family,
    most likely); `near`, the rest (her postcode, a former address, a house of hers
    without a postcode: a neighbour, most likely)."""

    at: list[Shield]
    contact: list[Shield]
    near: list[Shield]


async def holders_of(conn: asyncpg.Connection | asyncpg.Pool, child: Record,
                     target: str | None = None, own: Record | None = None) -> Holders:
    """The shielded children (other than `target`) rule 6 counts against the update.
    `own`, the record it would be written into: one whose address it writes again
    keeps it (only a child living at it now counts), and a contact that record
    holds is no news."""
    at, family, close, shields = await _places_held(conn, child, target, own)
    return Holders(*([shields[c] for c in sorted(ids)]
                     for ids in (at, family, close - at - family)))


async def _holders(conn: asyncpg.Connection, child: Record, target: str,
                   ) -> tuple[set[str], set[str], dict[str, Shield]]:
    """`holders_of` by id: those at the address; every other; their shields."""
    at, family, close, shields = await _places_held(conn, child, target)
    return at, (family | close) - at, shields


async def _places_held(conn: asyncpg.Connection | asyncpg.Pool, child: Record,
                       target: str | None, own: Record | None = None,
                       ) -> tuple[set[str], set[str], set[str], dict[str, Shield]]:
    address = child.get("address")
    contacts = contact_keys(child) - (contact_keys(own) if own is not None else set())
    contacts -= await store.public_among(conn, contacts)  # shared lines: not theirs
    places = sorted(lookup_places(address) | contacts)
    if not places:
        return set(), set(), set(), {}
    rows = [r for r in await conn.fetch(q("shielded_holders"), places)
            if r["child_id"] != target]
    at, close = near(address, [(r["address_key"], r["child_id"], r["address"]) for r in rows])
    if own is not None and same_dwelling(own.get("address"), address):
        close = set()
    family = {r["child_id"] for r in rows if r["address_key"] in contacts} - at
    shields = {r["child_id"]: Shield(True, r["shielding_authority"]) for r in rows}
    return set(at), family, set(close), shields


async def shielded_holders(conn: asyncpg.Connection | asyncpg.Pool, child: Record,
                           target: str | None = None) -> list[Shield]:
    """The shields of every shielded child (other than `target`) rule 6 counts
    against the update (`holders_of`): where the update could tell someone where
    one of them is."""
    held = await holders_of(conn, child, target)
    return held.at + held.contact + held.near


async def mark_dead(conn: asyncpg.Connection, ids: list[Any], status: str, by: str,
                    action: str) -> None:
    await conn.execute(
        "UPDATE parked SET status = $2, resolved_at = now(), resolved_by = $3"
        + (", raw = NULL, update = NULL" if status == "purged" else "")
        + " WHERE id = ANY($1::uuid[])",
        ids, status, by,
    )
    for i in ids:
        await audit(conn, by, action, None, str(i), {})


async def select_dead(conn: asyncpg.Connection, item_ids: str | list[str] | None,
                      reason: str | None, every: bool,
                      older_than_days: float | None = None) -> list[asyncpg.Record]:
    """Open dead letters by every selector given at once (found by a probe: `purge
    --reason R` with an id or an age purged letters of other reasons): the ids, if
    any, each of which must be open and answer the others (else nothing is
    selected and the error says why); else all open ones of `reason` and older than
    `older_than_days`, when one of them or `every` is given."""
    ids = [item_ids] if isinstance(item_ids, str) else list(item_ids or [])
    hours = older_than_days * 24 if older_than_days is not None else None
    if ids:
        cutoff = None if hours is None else await conn.fetchval(
            "SELECT now() - make_interval(secs => $1 * 3600)", hours)
        rows = []
        for item_id in ids:
            row = await _parked(conn, item_id, "dead")
            if row["status"] != "open":
                raise OperationError(f"dead letter {item_id} is already {row['status']}")
            retry = await conn.fetchval("SELECT id FROM parked WHERE retry_of = $1 LIMIT 1",
                                        row["id"])
            if retry is not None:
                raise OperationError(f"dead letter {item_id} was retried already: its retry"
                                     f" is {retry}")
            if reason is not None and row["reason"] != reason:
                raise OperationError(f"dead letter {item_id} has reason {row['reason']}, not"
                                     f" {reason}: nothing was done")
            if cutoff is not None and row["received_at"] >= cutoff:
                raise OperationError(f"dead letter {item_id} is not older than"
                                     f" {older_than_days:g} days: nothing was done")
            rows.append(row)
        return rows
    if reason or every or hours is not None:
        return await list_parked(conn, "dead", reason, older_than_hours=hours)
    raise OperationError("say which: one or more IDs, --reason R or --all")
