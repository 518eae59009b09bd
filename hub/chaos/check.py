"""The exactly-once invariant, checked against what the sources had confirmed.

An effect of a message id is one of
- a record change: a row of child_versions written by that message;
- a review item: a parked row of kind 'review' for it;
- a dead letter: a parked row of kind 'dead' for it;
- a recorded no-op: its processed_messages row and nothing else (an older or
  equal version, or an update linked to its child with nothing new in it).

Then, over every message id a source sent:
- lost: confirmed by the broker, and no effect at all;
- doubled: more than one effect, or more than one decision in the audit log,
  or one source version written twice (under two message ids), or a person of
  the ground truth with more than one child;
- unexpected: an effect, decision or record for a message id nobody sent, or a
  child that no sent message created or links to.

Notifications (at-least-once): every committed outbox row addressed to a
council must reach that council's queue at least once, every committed change
of a record in a local authority must have raised one, and nothing may arrive
that the hub did not commit. Deliveries beyond the first are counted, not
failures.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

import asyncpg

from hub.chaos.councils import Received
from hub.chaos.stream import Ledger, Plan


@dataclass
class Facts:
    """What the hub's database holds, by message id."""

    processed: dict[str, tuple[str, float]] = field(default_factory=dict)  # outcome, tx start
    versions: list[tuple[str | None, str, int, str | None]] = field(default_factory=list)
    parked: list[tuple[str, str, str | None]] = field(default_factory=list)  # kind, reason, mid
    decisions: Counter[str] = field(default_factory=Counter)
    links: dict[tuple[str, str], tuple[str, int]] = field(default_factory=dict)
    children: set[str] = field(default_factory=set)
    # event_id -> (la, child_id, version, sent)
    outbox: dict[str, tuple[str, str, int, bool]] = field(default_factory=dict)


async def load(conn: asyncpg.Connection) -> Facts:
    f = Facts()
    for r in await conn.fetch("SELECT message_id, outcome,"
                              " extract(epoch FROM processed_at)::float8 AS at"
                              " FROM processed_messages"):
        f.processed[r["message_id"]] = (r["outcome"], r["at"])
    f.versions = [(r["message_id"], str(r["child_id"]), r["version"], r["la"]) for r in await
                  conn.fetch("SELECT message_id, child_id, version,"
                             " record->'address'->>'la' AS la FROM child_versions")]
    f.parked = [(r["kind"], r["reason"], r["message_id"])
                for r in await conn.fetch("SELECT kind, reason, message_id FROM parked")]
    for r in await conn.fetch("SELECT detail->>'message_id' AS m, count(*) AS n FROM audit_log"
                              " WHERE action LIKE 'decision.%' GROUP BY 1"):
        f.decisions[r["m"]] = r["n"]
    for r in await conn.fetch("SELECT source, source_record_id, child_id, last_version"
                              " FROM source_links"):
        f.links[(r["source"], r["source_record_id"])] = (str(r["child_id"]), r["last_version"])
    f.children = {str(r["child_id"]) for r in await conn.fetch("SELECT child_id FROM children")}
    for r in await conn.fetch("SELECT event_id, routing_key, body->>'child_id' AS child,"
                              " (body->>'version')::int AS version, sent_at IS NOT NULL AS sent"
                              " FROM outbox"):
        la = r["routing_key"].split(".")[1]
        f.outbox[str(r["event_id"])] = (la, r["child"], r["version"], r["sent"])
    return f


@dataclass
class Figures:
    sent: int = 0  # distinct message ids the sources sent
    publishes: int = 0  # publish attempts, retries included
    confirmed: int = 0
    unconfirmed: int = 0  # sent, never confirmed (the source gave up)
    effects: int = 0  # sent ids with an effect
    changes: int = 0
    noops: int = 0  # older or equal versions, duplicates
    unchanged: int = 0  # linked, with nothing new to write
    reviews: int = 0
    dead_invalid: int = 0
    dead_poison: int = 0
    lost: int = 0
    doubled: int = 0
    unexpected: int = 0
    # Valid updates the broker dead-lettered at the quorum queue's delivery limit,
    # never processed: RabbitMQ 3.x counts every return, a consumer's lost
    # connection included, so a message held through five faults goes there. An
    # effect (retriable from the dead letters), nothing lost; counted apart.
    dead_valid: int = 0
    misplaced: int = 0  # an invalid or poison message processed as a good one
    duplicate_children: int = 0  # persons of the ground truth with more than one child
    stale_links: int = 0  # a source record's applied version is not its newest confirmed one
    race_groups: int = 0
    race_groups_concurrent: int = 0  # decided in two or more transactions within a second
    notes_committed: int = 0
    notes_delivered: int = 0  # distinct event ids that reached their council
    notes_redelivered: int = 0  # event ids delivered more than once
    notes_missing: int = 0
    notes_unexpected: int = 0
    changes_unnotified: int = 0
    examples: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))

    def example(self, what: str, detail: str) -> None:
        if len(self.examples[what]) < 5:
            self.examples[what].append(detail)

    @property
    def failures(self) -> dict[str, int]:
        """Every figure that must be zero, with its value."""
        return {k: v for k, v in {
            "lost": self.lost, "doubled": self.doubled, "unexpected": self.unexpected,
            "misplaced": self.misplaced, "duplicate children": self.duplicate_children,
            "stale source links": self.stale_links,
            "notifications missing": self.notes_missing,
            "notifications unexpected": self.notes_unexpected,
            "changes without a notification": self.changes_unnotified,
        }.items() if v}

    @property
    def ok(self) -> bool:
        return not self.failures


def evaluate(plan: Plan, ledger: Ledger, facts: Facts, received: Received,
             councils: list[str]) -> Figures:
    g = Figures()
    sent = ledger.sent
    g.sent, g.publishes = len(sent), sum(ledger.attempts.values())
    g.confirmed = len(ledger.confirmed)
    g.unconfirmed = len(sent - ledger.confirmed)

    changes: Counter[str] = Counter(m for m, _, _, _ in facts.versions if m)
    reviews: Counter[str] = Counter(m for k, _, m in facts.parked if k == "review" and m)
    dead: Counter[str] = Counter(m for k, _, m in facts.parked if k == "dead" and m)
    dead_reason = {m: r for k, r, m in facts.parked if k == "dead" and m}
    role = {p.message_id: p.role for p in plan.messages}

    for m in sent:
        e = changes[m] + reviews[m] + dead[m]
        noop = m in facts.processed and e == 0
        e += noop
        if e:
            g.effects += 1
        g.changes += changes[m]
        g.reviews += reviews[m]
        if noop and facts.processed[m][0].startswith("noop"):
            g.noops += 1
        elif noop:
            g.unchanged += 1
        bad = role.get(m) in ("invalid", "poison")
        if dead[m] and not bad:
            g.dead_valid += 1
            g.example("valid updates dead-lettered", f"{m}: {dead_reason[m]}")
        elif dead[m] and dead_reason[m] == "poison_message":
            g.dead_poison += 1
        elif dead[m]:
            g.dead_invalid += 1
        if e == 0 and m in ledger.confirmed:
            g.lost += 1
            g.example("lost", f"{m} ({role.get(m)})")
        if e > 1 or facts.decisions[m] > 1:
            g.doubled += 1
            g.example("doubled", f"{m}: {changes[m]} changes, {reviews[m]} reviews,"
                                 f" {dead[m]} dead, {facts.decisions[m]} decisions")
        wrong_reason = role.get(m) == "poison" and dead_reason.get(m) != "poison_message"
        if e and bad and (not dead[m] or wrong_reason):
            g.misplaced += 1
            g.example("misplaced", f"{m} ({role.get(m)}): "
                                   f"{dead_reason.get(m) or 'not dead-lettered'}")

    # One source version written once, whatever message carried it.
    version_of = {p.message_id: (p.record, p.version) for p in plan.messages}
    written: Counter[Any] = Counter(version_of[m] for m in changes if m in version_of)
    for key, n in written.items():
        if n > 1:
            g.doubled += 1
            g.example("doubled", f"{key[0][0]}/{key[0][1]} v{key[1]} written {n} times")

    # Unexpected: anything about a message id nobody sent, or a child nobody made.
    seen = (set(facts.processed) | set(changes) | set(reviews) | set(dead)
            | {m for m in facts.decisions if m})
    for m in sorted(seen - sent):
        g.unexpected += 1
        g.example("unexpected", m)
    anonymous = sum(1 for m, _, _, _ in facts.versions if not m)
    if anonymous:
        g.unexpected += anonymous
        g.example("unexpected", f"{anonymous} record versions without a message id")
    created_by_sent = {c for m, c, _, _ in facts.versions if m in sent}
    linked = {c for c, _ in facts.links.values()}
    for c in sorted(facts.children - (created_by_sent & linked)):
        g.unexpected += 1
        g.example("unexpected", f"child {c} made or linked by no message sent")

    # Ground truth: each person one child.
    children_of: dict[str, set[str]] = defaultdict(set)
    for key, (child, _) in facts.links.items():
        person = plan.truth.get(key)
        if person:
            children_of[person].add(child)
    for person, kids in children_of.items():
        if len(kids) > 1:
            g.duplicate_children += len(kids) - 1
            g.example("duplicate children", f"person {person}: {len(kids)} children")

    # Each source record's applied version is its newest confirmed one, unless the
    # versions after it wait in review: a later version that arrived first, before
    # the record was linked, may be one a person must place (a twin's first update
    # without an NHS number, say), while an earlier one links once the child is
    # indexed. (A version sent but never confirmed may or may not have arrived.)
    newest_sent: dict[tuple[str, str], int] = {}
    confirmed_versions: dict[tuple[str, str], dict[int, bool]] = defaultdict(dict)
    for p in plan.messages:
        if p.role == "update" and p.message_id in sent:
            newest_sent[p.record] = max(newest_sent.get(p.record, 0), p.version)
            if p.message_id in ledger.confirmed:
                held = confirmed_versions[p.record]
                held[p.version] = held.get(p.version, False) or reviews[p.message_id] > 0
    for key, held in confirmed_versions.items():
        link = facts.links.get(key)
        if link is None:
            continue
        unapplied = [v for v, in_review in held.items() if v > link[1] and not in_review]
        if unapplied or link[1] > newest_sent[key]:
            g.stale_links += 1
            g.example("stale source links",
                      f"{key[0]}/{key[1]}: v{link[1]}, sent v{max(held)}")

    # Race groups: every update about one child at once, from several sources.
    for group in plan.groups.values():
        if len(group) < 2:
            continue
        g.race_groups += 1
        starts = sorted({facts.processed[p.message_id][1] for p in group
                         if p.message_id in facts.processed})
        if len(starts) > 1 and starts[-1] - starts[0] < 1.0:
            g.race_groups_concurrent += 1

    # Notifications: at least once, and only what was committed.
    listening = set(councils)
    for event_id, (la, child, version, _sent) in facts.outbox.items():
        if la not in listening:
            continue
        g.notes_committed += 1
        n = received.deliveries[event_id]
        if n == 0:
            g.notes_missing += 1
            g.example("notifications missing", f"{event_id} to {la} ({child} v{version})")
            continue
        g.notes_delivered += 1
        g.notes_redelivered += n > 1
        if received.seen[event_id] != (la, child, version):
            g.notes_unexpected += 1
            g.example("notifications unexpected", f"{event_id}: {received.seen[event_id]}")
    for event_id in set(received.deliveries) - set(facts.outbox):
        g.notes_unexpected += 1
        g.example("notifications unexpected", f"{event_id} never committed")
    g.notes_unexpected += received.malformed + received.inconsistent
    notified = {(child, version) for _, child, version, _ in facts.outbox.values()}
    for mid, child, version, record_la in facts.versions:
        if record_la and (child, version) not in notified:
            g.changes_unnotified += 1
            g.example("changes without a notification", f"{child} v{version} ({mid})")
    return g
