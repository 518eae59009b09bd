"""`hub search` and `hub show`: what a practitioner may find and see.

Search uses the same blocking keys and scoring as matching, then asks the
shielding policy what each result may show: a shielded record appears only on
its visible fields with "contact the shielding authority", and never when the
search used a hidden field (postcode), even when it matches.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Any

import asyncpg

from hub.db.queries import q
from hub.db.store import packed
from hub.match.blocking import query_keys
from hub.match.score import score
from hub.operations import OperationError, _uuid, audit
from hub.records import visible_only
from hub.shielding import CONTACT_NOTE, Shield, for_audience, search_may_return

MIN_SCORE = 0.1  # family name and date of birth alone, exact, still find a child


async def search(
    conn: asyncpg.Connection, *, given_name: str | None, family_name: str | None,
    date_of_birth: str, sex: str | None, postcode: str | None, by: str,
) -> list[dict[str, Any]]:
    probe: dict[str, Any] = {"given_name": given_name, "family_name": family_name,
                             "date_of_birth": date_of_birth, "sex": sex}
    if postcode:
        probe["address"] = {"postcode": postcode, "lines": []}
    probe = {k: v for k, v in probe.items() if v}
    plain, odd = packed(sorted(query_keys(probe)))
    # (every child at a postcode, however many: a practitioner asked for them)
    rows = await conn.fetch(q("children_for_keys"), plain, "", False, "", odd, [], 2**31 - 1)
    results = []
    for r in rows:
        shield = Shield(r["shielded"], r["shielding_authority"])
        if not search_may_return(shield, used_hidden_field=bool(postcode)):
            continue
        record = json.loads(r["record_json"])
        # A shielded record is judged on its visible fields only: its hidden
        # ones must not decide whether it is found.
        s = score(probe, visible_only(record) if shield.shielded else record)
        if s.probability < MIN_SCORE:
            continue
        item: dict[str, Any] = {
            "child_id": r["child_id"], "score": round(s.probability, 4),
            "shielded": shield.shielded, "child": for_audience(record, shield, None),
        }
        if shield.shielded:
            item["child"] = visible_only(record)
            item["note"] = f"{CONTACT_NOTE} ({shield.authority})"
        results.append(item)
    results.sort(key=lambda x: -x["score"])
    await audit(conn, by, "search", None, None, {
        "fields": sorted(k for k in probe if k != "address") + (["postcode"] if postcode else []),
        "results": len(results),
    })
    return results


async def show(conn: asyncpg.Connection, child_id: str, by: str, authority: str | None,
               break_glass: bool, reason: str | None) -> dict[str, Any]:
    if break_glass and not reason:
        raise OperationError("--break-glass needs --reason TEXT")
    async with conn.transaction():
        r = await conn.fetchrow(
            "SELECT child_id::text AS child_id, version, record, shielded, shielding_authority"
            " FROM children WHERE child_id = $1", _uuid(child_id, "child"))
        if r is None:
            raise OperationError(f"no child with id {child_id}")
        shield = Shield(r["shielded"], r["shielding_authority"])
        glass = break_glass and shield.shielded and authority != shield.authority
        child = for_audience(r["record"], shield, authority, break_glass=glass)
        await audit(conn, by, "show.break_glass" if glass else "show", r["child_id"], authority,
                    {"reason": reason})
        if glass and shield.authority:
            # The shielding authority is told at once: every override is investigated.
            now = datetime.now(UTC).isoformat().replace("+00:00", "Z")
            event_id = str(uuid.uuid4())
            await conn.execute(q("insert_outbox"), event_id,
                               f"la.{shield.authority}.alert.break_glass", {
                                   "event_id": event_id, "event": "alert.break_glass",
                                   "child_id": r["child_id"], "version": r["version"],
                                   "occurred_at": now, "shielded": True,
                                   "child": visible_only(r["record"]), "by": by, "reason": reason,
                                   "access": "show --break-glass",
                               })
    out: dict[str, Any] = {"child_id": r["child_id"], "version": r["version"],
                           "shielded": shield.shielded,
                           "shielding_authority": shield.authority, "child": child}
    if shield.shielded and not glass and authority != shield.authority:
        out["note"] = CONTACT_NOTE
    return out
