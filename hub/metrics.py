"""Prometheus metrics: `collect(settings)` returns the text exposition format.

The query part (`gather`) and the formatting part (`render`) are separate, so the
format is a pure function of a `Snapshot` and can be tested without services.

The processing latency histogram covers the last hour: from the publisher's
timestamp on the message (set by `hub publish`, the client and the hub itself)
to the commit of its effect (processed_messages.latency_ms).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

import asyncpg

from hub.config import Settings
from hub.db.queries import q

# name, type, help
FAMILIES: tuple[tuple[str, str, str], ...] = (
    ("hub_updates_total", "counter",
     "Messages processed by the pipeline, by source and decision."),
    ("hub_review_backlog", "gauge", "Open review items, by reason."),
    ("hub_review_oldest_age_seconds", "gauge",
     "Age of the oldest open review item, by reason."),
    ("hub_dead_letters", "gauge", "Open dead letters, by reason."),
    ("hub_outbox_pending", "gauge", "Notifications written but not yet published."),
    ("hub_queue_depth", "gauge", "Ready messages in each work queue."),
    ("hub_queue_consumers", "gauge", "Consumers on each work queue."),
    ("hub_source_paused", "gauge",
     "1 while a source is paused (its updates held in hub.held.<source>), by source."),
    ("hub_outbox_withheld", "gauge",
     "Notifications the relay withheld: written before their child was shielded, for a"
     " council that is not her authority."),
    ("hub_broker_up", "gauge", "1 when the broker answered this scrape, else 0."),
    ("hub_processing_latency_seconds", "histogram",
     "Publish to commit, messages processed in the last hour."),
)
LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


@dataclass
class Snapshot:
    updates: dict[tuple[str, str], int] = field(default_factory=dict)  # (source, decision)
    review_backlog: dict[str, int] = field(default_factory=dict)
    review_oldest_age: dict[str, float] = field(default_factory=dict)
    dead_letters: dict[str, int] = field(default_factory=dict)
    outbox_pending: int = 0
    queue_depth: dict[str, int] = field(default_factory=dict)
    queue_consumers: dict[str, int] = field(default_factory=dict)
    broker_up: bool = True
    paused: dict[str, int] = field(default_factory=dict)  # source -> 1 paused, 0 running
    outbox_withheld: int = 0
    # cumulative counts per bucket bound (seconds), then sum and count
    latency_buckets: dict[float, int] = field(default_factory=dict)
    latency_sum: float = 0.0
    latency_count: int = 0


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _labels(**labels: str) -> str:
    if not labels:
        return ""
    inner = ",".join(f'{k}="{_escape(v)}"' for k, v in labels.items())
    return "{" + inner + "}"


def _number(value: float) -> str:
    if float(value).is_integer():
        return str(int(value))
    return repr(float(value))


def render(s: Snapshot) -> str:
    """The Prometheus text exposition (version 0.0.4) of a snapshot."""
    samples: dict[str, list[tuple[str, float]]] = {
        "hub_updates_total": [(_labels(source=src, decision=d), n)
                              for (src, d), n in sorted(s.updates.items())],
        "hub_review_backlog": [(_labels(reason=r), n)
                               for r, n in sorted(s.review_backlog.items())],
        "hub_review_oldest_age_seconds": [(_labels(reason=r), a)
                                          for r, a in sorted(s.review_oldest_age.items())],
        "hub_dead_letters": [(_labels(reason=r), n) for r, n in sorted(s.dead_letters.items())],
        "hub_outbox_pending": [("", s.outbox_pending)],
        "hub_queue_depth": [(_labels(queue=q), n) for q, n in sorted(s.queue_depth.items())],
        "hub_queue_consumers": [(_labels(queue=q), n)
                                for q, n in sorted(s.queue_consumers.items())],
        "hub_broker_up": [("", 1 if s.broker_up else 0)],
        "hub_source_paused": [(_labels(source=n), p) for n, p in sorted(s.paused.items())],
        "hub_outbox_withheld": [("", s.outbox_withheld)],
        "hub_processing_latency_seconds": [],
    }
    lines: list[str] = []
    for name, kind, help_text in FAMILIES:
        lines.append(f"# HELP {name} {help_text}")
        lines.append(f"# TYPE {name} {kind}")
        lines.extend(f"{name}{labels} {_number(v)}" for labels, v in samples[name])
        if kind == "histogram":
            for bound in LATENCY_BUCKETS:
                le = _labels(le=_number(bound))
                lines.append(f"{name}_bucket{le} {s.latency_buckets.get(bound, 0)}")
            lines.append(f'{name}_bucket{{le="+Inf"}} {s.latency_count}')
            lines.append(f"{name}_sum {_number(round(s.latency_sum, 3))}")
            lines.append(f"{name}_count {s.latency_count}")
    return "\n".join(lines) + "\n"


#: Fold update_counts into one row per source and decision past this many rows
#: (each flush appends a few; a scrape every 15 s keeps the table this small).
FOLD_AT = 1000


async def gather_db(conn: asyncpg.Connection | asyncpg.Pool, snap: Snapshot,
                    now: datetime | None = None) -> None:
    now = now or datetime.now(UTC)
    rows = await conn.fetch(q("update_counts"))
    snap.updates = {(r["source"], r["decision"]): r["n"] for r in rows}
    if sum(r["rows"] for r in rows) > FOLD_AT:
        await conn.execute(q("fold_update_counts"))  # operators scrape (migration 0011)
    rows = await conn.fetch(
        "SELECT kind, reason, count(*) AS n, min(received_at) AS oldest FROM parked"
        " WHERE status = 'open'"
        # (an item a later one retried is that one: operations.list_parked)
        " AND NOT EXISTS (SELECT 1 FROM parked n WHERE n.retry_of = parked.id)"
        " GROUP BY kind, reason")
    for r in rows:
        if r["kind"] == "review":
            snap.review_backlog[r["reason"]] = r["n"]
            snap.review_oldest_age[r["reason"]] = max(
                0.0, round((now - r["oldest"]).total_seconds(), 3))
        else:
            snap.dead_letters[r["reason"]] = r["n"]
    snap.outbox_pending = await conn.fetchval(
        "SELECT count(*) FROM outbox WHERE sent_at IS NULL")
    snap.outbox_withheld = await conn.fetchval("SELECT count(*) FROM outbox WHERE withheld")
    snap.paused = {r["name"]: int(r["paused"]) for r in await conn.fetch(
        "SELECT name, paused FROM sources")}
    row = await conn.fetchrow(q("latency_last_hour"), [int(b * 1000) for b in LATENCY_BUCKETS])
    snap.latency_count = row["n"]
    snap.latency_sum = row["total"] / 1000
    snap.latency_buckets = dict(zip(LATENCY_BUCKETS, row["buckets"], strict=True))


async def gather_broker(amqp_url: str, snap: Snapshot, held: tuple[str, ...] = ()) -> None:
    """The work queues' depths and consumers, and those of the `held` sources' held
    queues (what a paused source's updates wait in)."""
    from hub.broker import topology as topo
    from hub.broker.connection import queue_depth

    try:
        import aio_pika

        amqp = await aio_pika.connect(amqp_url, timeout=5)
    except Exception:  # noqa: BLE001 - a scrape reports the broker down, it does not fail
        snap.broker_up = False
        return
    try:
        for name in [*topo.work_queues(), *(topo.held_queue(n) for n in held)]:
            # A passive declare of a missing queue closes the channel: one channel each.
            channel = await amqp.channel()
            depth = await queue_depth(channel, name)
            if depth is not None:
                snap.queue_depth[name], snap.queue_consumers[name] = depth
            if not channel.is_closed:
                await channel.close()
    finally:
        await amqp.close()


async def gather(settings: Settings) -> Snapshot:
    from hub.db.connect import connect

    snap = Snapshot()
    conn = await connect(settings.database_url)
    try:
        await gather_db(conn, snap)
        held = tuple(r[0] for r in await conn.fetch(
            "SELECT name FROM sources WHERE held ORDER BY name"))
    finally:
        await conn.close()
    await gather_broker(settings.amqp_url, snap, held)
    return snap


async def collect(settings: Settings) -> str:
    """Everything above, as Prometheus text."""
    return render(await gather(settings))
