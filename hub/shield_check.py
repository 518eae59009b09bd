"""When a record becomes shielded: the open records that still show where she is.

Two kinds, both named to her authority once, by id, and neither changed:
- the open records at her house (`at_house`: a sibling's, another refuge family's),
  which show where she is as plainly as hers would;
- the open records that could be her (`could_be_her`): a duplicate made before she
  was shielded (registered at the refuge under a new surname, with a sibling's NHS
  number) holds what it was given open, perhaps her new address.

`hub shield` (hub.operations.shield_record) puts them in its child.shielded
notification and its audit; where a batch shields a record (restricted at origin, an
operator's placing: hub.batch.BatchState.write) `tell` sends `alert.shield_check` to
her authority when there is anything to name, and where a batch moves a shielded
child, the open records at her new house.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import asyncpg

from hub.config import Thresholds
from hub.db.queries import q
from hub.decide import DEFAULT_MATCHER, Candidate, Facts, plausible_shielded
from hub.match.blocking import query_keys
from hub.match.compare import prepare
from hub.places import same_house
from hub.records import visible_only

#: Open records that could be her named to her authority, at most (best first; the
#: count says how many in all): the generous test names namesakes too.
COULD_BE_HER_NAMED = 20

#: The event `tell` sends (routing key la.<authority>.alert.shield_check).
EVENT = "alert.shield_check"

# Event ids made from the record and version checked: a batch done again (a retry, a
# redo) writes the same alert once (insert_outbox_text ignores a repeated event id).
_NAMESPACE = uuid.UUID("0b7e3f3c-5f57-4d0e-9a55-3c1f3b8d1a70")


async def at_house(conn: asyncpg.Connection, cid: Any,
                   record: Mapping[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """The open records at her house (hub.places.same_house), other than hers, found
    under her postcode's key; none when her address has no postcode."""
    postcode, address = prepare(record).postcode, record.get("address")
    if not postcode:
        return []
    rows = [(r["child_id"], _record(r["record"])) for r in await conn.fetch(
        q("open_under_key"), f"p:{postcode}")]
    return [(i, r) for i, r in rows if i != str(cid) and same_house(address, r.get("address"))]


async def could_be_her(conn: asyncpg.Connection, cid: Any, record: Mapping[str, Any],
                       thresholds: Thresholds) -> list[str]:
    """The open records found by the keys an update about her looks up that rule 1
    (hub.decide) would count her plausible for, were they an update: best first by
    how like her they are. Looked for once, as she is shielded, instead of by every
    later update."""
    rows = await conn.fetch(q("open_under_keys"), sorted(query_keys(record)), cid)
    facts = Facts(candidates=(Candidate(str(cid), record, shielded=True),))
    form = prepare(record)
    found = []
    for r in rows:
        record_of = _record(r["record"])
        theirs = prepare(record_of)
        if plausible_shielded(record_of, facts, thresholds, DEFAULT_MATCHER, theirs):
            found.append((-DEFAULT_MATCHER.score(theirs, form).identity_probability,
                          r["child_id"]))
    return [i for _, i in sorted(found)]


def _now() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


def _record(value: Any) -> dict[str, Any]:
    """A record as read: decoded by the connection's codec (hub.db.connect), or JSON
    text where it has none (a bulk load's writing connection)."""
    return json.loads(value) if isinstance(value, str) else dict(value)


def named(house: list[str], could_be: list[str]) -> dict[str, Any]:
    """What her authority is told: the fields of a notification body (and an audit)."""
    out: dict[str, Any] = {"open_at_same_house": house} if house else {}
    if could_be:
        out["open_could_be_her"] = could_be[:COULD_BE_HER_NAMED]
        out["open_could_be_her_count"] = len(could_be)
    return out


async def tell(conn: asyncpg.Connection, shielded: list[tuple[str, int, str | None]],
               thresholds: Thresholds,
               moved: list[tuple[str, int, str | None]] | None = None) -> int:
    """For each (child id, version, authority) a batch has just shielded, written in
    this transaction: an `alert.shield_check` to her authority naming the open
    records at her house and those that could be her, when there are any; for each
    shielded record it has just given a new address (`moved`), the open records at
    her new house (those that could be her were named once, as she was shielded).
    How many alerts were written."""
    told = 0
    for (cid, version, authority), asked in [*((s, True) for s in shielded),
                                             *((m, False) for m in moved or ())]:
        row = await conn.fetchrow(
            "SELECT record, shielded FROM children WHERE child_id = $1::uuid", cid)
        if row is None or not row["shielded"] or not authority:
            continue
        record = _record(row["record"])
        body = named([i for i, _ in await at_house(conn, cid, record)],
                     await could_be_her(conn, cid, record, thresholds) if asked else [])
        if not body:
            continue
        event_id = str(uuid.uuid5(_NAMESPACE, f"{cid}:{version}"))
        # As JSON text: a bulk load's writing connection has no jsonb codec.
        await conn.execute(q("insert_outbox_text"), event_id, f"la.{authority}.{EVENT}",
                           json.dumps({"event_id": event_id, "event": EVENT, "child_id": cid,
                                       "version": version, "occurred_at": _now(),
                                       "shielded": True, "child": visible_only(record),
                                       **body}))
        told += 1
    return told
