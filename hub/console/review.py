"""The review item as the console shows it: the update beside each candidate, with
protected fields hidden by the shielding policy (hub.shielding) unless the user acts
for the shielding authority."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import asyncpg

from hub.console.users import User
from hub.match.model import DEFAULT_MODEL
from hub.operations import shielded_holders
from hub.records import HIDDEN_WHEN_SHIELDED
from hub.review_view import FIELDS, _plain, shields_of
from hub.shielding import (
    CONTACT_NOTE,
    Shield,
    candidates_for_audience,
    for_audience,
    may_see_protected,
    restricted_shield,
    update_open_to,
)
from schemas.canonical import PROTECTED_FIELDS


def hidden_text(authorities: Sequence[str | None]) -> str:
    las = ", ".join(dict.fromkeys(a for a in authorities if a)) or "unknown"
    return f"[hidden: shielded — {CONTACT_NOTE} {las}]"


@dataclass
class Row:
    field: str
    update: str
    candidate: str
    update_hidden: bool
    candidate_hidden: bool
    level: str | None
    weight: float | None


@dataclass
class Candidate:
    child_id: str
    score: float | None
    identity_score: float | None
    model_version: str | None
    present: bool
    shielded: bool = False
    authority: str | None = None
    rows: list[Row] = field(default_factory=list)
    weights: list[tuple[str, str, float]] = field(default_factory=list)
    prior: float | None = None
    address_withheld: bool = False  # score is the identity score; no address weights


@dataclass
class ItemView:
    item: asyncpg.Record
    candidates: list[Candidate]
    any_shielded: bool
    protected_shown: bool  # this user saw some protected field of a shielded record
    may_resolve: bool


def _text(value: Any) -> str:
    if value is None or value == [] or value == "" or value == {}:
        return "-"
    return _plain(value)


async def _priors(conn: asyncpg.Connection | asyncpg.Pool,
                  versions: set[str]) -> dict[str, float]:
    import math

    out = {DEFAULT_MODEL.version: DEFAULT_MODEL.prior_weight}
    rows = await conn.fetch(
        "SELECT version, (model->>'prior')::float8 AS prior FROM match_models"
        " WHERE version = ANY($1::text[])", sorted(versions))
    for r in rows:
        if r["prior"] and 0 < r["prior"] < 1:
            out[r["version"]] = math.log2(r["prior"] / (1 - r["prior"]))
    return out


async def item_view(conn: asyncpg.Connection | asyncpg.Pool, row: asyncpg.Record,
                    user: User) -> ItemView:
    acting = user.acting_for
    update = (row["update"] or {}).get("child", {})
    cands = row["candidates"] or []
    children = {
        str(r["child_id"]): r for r in await conn.fetch(
            "SELECT child_id, record, shielded, shielding_authority FROM children"
            " WHERE child_id = ANY($1::uuid[])", [c["child_id"] for c in cands])
    }
    shields = shields_of(children)
    shield_las = [s.authority for s in shields.values()]
    any_shielded = bool(shields)
    # The update may be about a shielded child, or carry her address: it may be the refuge.
    beside = [*shields.values(), *await shielded_holders(conn, update, str(row["id"])),
              *restricted_shield(row["update"])]
    update_open = update_open_to(acting, beside)
    update_view = update if update_open else for_audience(update, Shield(True, None), None)
    cands = candidates_for_audience(cands, shields, acting, update_hidden=not update_open,
                                    reason=row["reason"])
    priors = await _priors(conn, {str(c.get("model_version")) for c in cands})
    protected_shown = bool(beside) and update_open and any(f in update for f in PROTECTED_FIELDS)
    out = []
    for c in cands:
        r = children.get(c["child_id"])
        cand = Candidate(c["child_id"], c.get("score"), c.get("identity_score"),
                         c.get("model_version"), r is not None,
                         address_withheld=bool(c.get("address_withheld")))
        cand.weights = [(f["field"], f["level"], float(f["weight"])) for f in c.get("fields", [])]
        cand.prior = priors.get(str(c.get("model_version")))
        if r is not None:
            sh = Shield(r["shielded"], r["shielding_authority"])
            cand.shielded, cand.authority = sh.shielded, sh.authority
            view = for_audience(r["record"], sh, acting)
            if sh.shielded and any(f in view for f in PROTECTED_FIELDS):
                protected_shown = True
            weights = {f: (lv, w) for f, lv, w in cand.weights}
            for f in (*FIELDS, *(f for f in weights if f not in FIELDS)):
                lv, w = weights.get(f, (None, None))
                # Hidden means hidden: even whether the field is filled in at all.
                c_hidden = f in HIDDEN_WHEN_SHIELDED and sh.shielded and not may_see_protected(
                    sh, acting)
                u_hidden = f in HIDDEN_WHEN_SHIELDED and not update_open
                cand.rows.append(Row(
                    f,
                    hidden_text([b.authority for b in beside]) if u_hidden else
                    _text(update_view.get(f)) if f in FIELDS else "",
                    hidden_text([sh.authority or ""]) if c_hidden else
                    _text(view.get(f)) if f in FIELDS else "",
                    u_hidden, c_hidden, lv, w))
        out.append(cand)
    if user.role == "operator":
        may = True
    elif user.role == "authority":
        # Management of an authority decides on items about its own shielded children.
        may = acting is not None and acting in shield_las
    else:
        may = False
    return ItemView(row, out, any_shielded, protected_shown, may and row["status"] == "open")
