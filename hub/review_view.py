"""`hub review show`: the update beside each candidate, field by field, with weights.

Protected fields of a shielded candidate (and of an update that may be about a
shielded child: its address may be the refuge) are shown only to an operator
acting for the shielding authority.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import asyncpg

from hub.operations import OperationError, _uuid, audit, shielded_holders
from hub.places import contact_keys, lookup_places
from hub.records import HIDDEN_WHEN_SHIELDED
from hub.shielding import (
    CONTACT_NOTE,
    SEVERED,
    Shield,
    candidates_for_audience,
    for_audience,
    may_see_protected,
    restricted_shield,
    update_open_to,
)
from schemas.canonical import PROTECTED_FIELDS

FIELDS = ("nhs_number", "given_name", "middle_names", "family_name", "former_family_names",
          "date_of_birth", "sex", *PROTECTED_FIELDS)


def _plain(value: Any) -> str:
    """Human text for a field: an address as lines, town, postcode (LA)."""
    if isinstance(value, dict):
        if "lines" in value or "postcode" in value:
            parts = [*value.get("lines", []), value.get("town"), value.get("postcode")]
            text = ", ".join(p for p in parts if p)
            return f"{text} ({value['la']})" if value.get("la") else text
        return ", ".join(str(v) for v in value.values() if v)
    if isinstance(value, list):
        return "; ".join(_plain(v) for v in value)
    return str(value)


def _cell(value: Any, width: int = 34) -> str:
    if value is None or value == [] or value == "":
        text = "-"
    else:
        text = _plain(value)
    return text if len(text) <= width else text[: width - 1] + "…"


def shields_of(children: Mapping[str, asyncpg.Record]) -> dict[str, Shield]:
    """The shields of the shielded among a review item's candidates' rows, by id."""
    return {cid: Shield(True, r["shielding_authority"])
            for cid, r in children.items() if r["shielded"]}


async def show(conn: asyncpg.Connection, item_id: str, authority: str | None,
               by: str | None = None) -> str:
    row = await conn.fetchrow("SELECT * FROM parked WHERE id = $1", _uuid(item_id, "item"))
    if row is None:
        raise OperationError(f"no parked item {item_id}")
    lines = [f"{row['kind']} item {row['id']}  reason: {row['reason']}  status: {row['status']}",
             f"source: {row['source']}/{row['source_record_id']}  received: {row['received_at']}"]
    if row["kind"] == "dead":
        lines.append(f"error: {row['error']}")
        return "\n".join(lines)
    update = (row["update"] or {}).get("child", {})
    cands = row["candidates"] or []
    ids = [c["child_id"] for c in cands]
    children = {
        str(r["child_id"]): r for r in await conn.fetch(
            "SELECT * FROM children WHERE child_id = ANY($1::uuid[])", ids)
    }
    shields = shields_of(children)
    update_view = update
    beside = [*shields.values(), *await shielded_holders(conn, update, str(row["id"])),
              *restricted_shield(row["update"])]
    update_hidden = not update_open_to(authority, beside)
    if update_hidden:
        update_view = for_audience(update, Shield(True, None), authority)
    stored = len(cands)
    cands = candidates_for_audience(cands, shields, authority, update_hidden=update_hidden,
                                    reason=row["reason"])
    if row["reason"] == SEVERED and len(cands) < stored:
        lines.append("(the record that carried this severed identity is not shown: only the"
                     " authority shielding it sees it)")
    for c in cands:
        r = children.get(c["child_id"])
        lines.append("")
        if r is None:
            lines.append(f"candidate {c['child_id']}: no longer in the index")
            continue
        sh = Shield(r["shielded"], r["shielding_authority"])
        view = for_audience(r["record"], sh, authority)
        flag = f"  SHIELDED ({CONTACT_NOTE}: {sh.authority})" if sh.shielded else ""
        what = "identity score" if c.get("address_withheld") else "score"
        lines.append(f"candidate {c['child_id']}  {what} {c.get('score')}"
                     f"  model {c.get('model_version', '-')}{flag}")
        if c.get("address_withheld"):
            lines.append("  (how the address compares is withheld: shielded"
                         + (")" if sh.shielded else ", the update's)"))
        weights = {f["field"]: f for f in c.get("fields", [])}
        lines.append(f"  {'field':<20} {'update':<34} {'candidate':<34} level / weight")
        for f in FIELDS:
            w = weights.get(f)
            # Hidden whether or not it holds anything: "-" would say she has no
            # school, no GP (an independent probe read that off).
            hidden = f in HIDDEN_WHEN_SHIELDED and not may_see_protected(sh, authority)
            cand_cell = "[hidden: shielded]" if hidden else _cell(view.get(f))
            upd_hidden = f in HIDDEN_WHEN_SHIELDED and update_hidden
            upd_cell = "[hidden: shielded]" if upd_hidden else _cell(update_view.get(f))
            score = f"{w['level']} / {w['weight']:+.2f}" if w else ""
            lines.append(f"  {f:<20} {upd_cell:<34} {cand_cell:<34} {score}")
        for f in weights:
            if f not in FIELDS:
                w = weights[f]
                lines.append(f"  {f:<20} {'':<34} {'':<34} {w['level']} / {w['weight']:+.2f}")
    if not cands:
        lines.append("no candidates")
    places = sorted(lookup_places(update.get("address")) | contact_keys(update))
    for waiting in await conn.fetch(
            "SELECT DISTINCT w.parked_id::text FROM pending_places w"
            " JOIN parked k ON k.id = w.parked_id AND k.status = 'open'"  # (a rejected one's stay)
            " WHERE w.postcode = ANY($1::text[]) AND w.parked_id <> $2 ORDER BY 1",
            places, row["id"]):
        lines.append(f"beside review item {waiting[0]}: an update that may be a hidden"
                     " child's, waiting at this place (decide it first)")
    if authority:
        # Acting for an authority shows its shielded children's hidden fields: in the
        # audit trail of each, as `hub show` is, and of the item when none was shown.
        shown: list[str | None] = [str(cid) for cid, r in children.items()
                 if r["shielded"] and r["shielding_authority"] == authority]
        for child_id in shown or [None]:
            await audit(conn, by or "operator", "review.show", child_id, authority,
                        {"item": str(row["id"])})
    return "\n".join(lines)
