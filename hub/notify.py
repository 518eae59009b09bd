"""Change notifications: which events a change raises and to whom.

Routing asks the shielding policy: a shielded child's notifications go to the
shielding authority alone, and its moves raise no moved_in / moved_out.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from hashlib import sha1
from typing import Any

from hub.records import Record, la_of, visible_only
from hub.shielding import Shield, for_audience, notification_authorities
from hub.uuids import uuid_text

EVENT_NAMESPACE = uuid.UUID("6f1c2f55-6c1e-4f57-9d0a-3c2b1f0e5a11")
_NAMESPACE_BYTES = EVENT_NAMESPACE.bytes


def event_id_for(name: str) -> str:
    """str(uuid.uuid5(EVENT_NAMESPACE, name)), made without the UUID object: one a
    notification, 2 us instead of 6 (a bulk load of a million makes a million)."""
    return uuid_text(sha1(_NAMESPACE_BYTES + name.encode()).digest(), 5)


@dataclass(frozen=True)
class Notification:
    event_id: str
    routing_key: str
    body: dict[str, Any]


_STAMP: tuple[datetime | None, str] = (None, "")


def _stamp(at: datetime) -> str:
    """`at` as the notifications write it, made once for all those of one batch or
    chunk (they share its time; a bulk load writes a million)."""
    global _STAMP
    last = _STAMP  # one tuple, replaced whole: safe between threads
    if last[0] is at:
        return last[1]
    text = at.isoformat().replace("+00:00", "Z")
    _STAMP = (at, text)
    return text


def _note(
    event: str, la: str, child_id: str, version: int, at: datetime, child: Record, shielded: bool
) -> Notification:
    # Stable: the same change always carries the same event id, so councils can drop repeats.
    event_id = event_id_for(f"{child_id}:{version}:{event}:{la}")
    body = {
        "event_id": event_id,
        "event": event,
        "child_id": child_id,
        "version": version,
        "occurred_at": _stamp(at),
        "shielded": shielded,
        "child": child,
    }
    return Notification(event_id, f"la.{la}.{event}", body)


def for_change(
    child_id: str,
    version: int,
    at: datetime,
    before: Record | None,
    after: Record,
    shield: Shield,
) -> list[Notification]:
    """The notifications one committed change raises."""
    created = before is None
    if shield.shielded:
        event = "child.created" if created else "child.updated"
        return [
            _note(event, la, child_id, version, at, for_audience(after, shield, la), True)
            for la in notification_authorities(shield, before, after)
        ]
    old_la, new_la = la_of(before), la_of(after)
    if created:
        if not new_la:
            return []
        return [_note("child.created", new_la, child_id, version, at, after, False)]
    if old_la and new_la and old_la != new_la:
        return [
            _note("child.moved_out", old_la, child_id, version, at, visible_only(after), False),
            _note("child.moved_in", new_la, child_id, version, at, after, False),
        ]
    if new_la and not old_la:
        return [_note("child.moved_in", new_la, child_id, version, at, after, False)]
    return [_note("child.updated", new_la, child_id, version, at, after, False)] if new_la else []


def for_opening(child_id: str, version: int, at: datetime, record: Record,
                authority: str | None, open_la: str | None = None) -> list[Notification]:
    """A record unshielded: the council she lives in, if not her authority, learns of
    her as of a child moving in (while she was shielded only her authority was told
    anything, so it may never have heard of her); the council that held her as an
    open record when she was shielded (`open_la`, migration 0027), if she no longer
    lives there, of her moving out, without her address (nothing told it she left:
    it kept her on its books at the old one)."""
    la = la_of(record)
    out = []
    if open_la and open_la != la:
        out.append(_note("child.moved_out", open_la, child_id, version, at,
                         visible_only(record), False))
    if la and la != authority:
        out.append(_note("child.moved_in", la, child_id, version, at, record, False))
    return out


def for_shielding(
    child_id: str, version: int, at: datetime, record: Record, shield: Shield, event: str
) -> list[Notification]:
    """child.shielded / child.unshielded: told to the shielding authority only, with
    the whole record: the authority may see what it hides, and a child it shields in
    another council's area it may never have been told of (found by an independent
    probe: her address reached her authority by no notification)."""
    if not shield.authority:
        return []
    return [_note(event, shield.authority, child_id, version, at, record,
                  event != "child.unshielded")]


def for_snapshot(child_id: str, version: int, at: datetime, record: Record, shield: Shield,
                 la: str, run: str) -> Notification:
    """child.snapshot: a child as council `la` would be told of it now (one living in
    its area, open; one it shields, whole), for a council that joined late (`hub
    council add LA --backfill`). Its event id names the backfill `run`: a council
    added again is sent a snapshot again, not one it dropped as a repeat."""
    n = _note("child.snapshot", la, child_id, version, at, for_audience(record, shield, la),
              shield.shielded)
    event_id = event_id_for(f"{child_id}:{version}:child.snapshot:{la}:{run}")
    return Notification(event_id, n.routing_key, {**n.body, "event_id": event_id})

