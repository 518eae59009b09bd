"""What the chaos suite's sources send, and what they know about it afterwards.

The stream comes from the synthetic population (hub.synth), so every message
has a ground truth: the person it is about, or none. It holds

- the local authorities' load and the DWP, PDS and DfE feeds, interleaved at
  random but each source record's versions in the order the feed chose (some
  later versions first), with the feed's duplicates (the same body twice);
- race groups: every update about one child (a new birth, or a sample of the
  others), from every source, sent back to back from the sources' separate
  connections, so that different workers take them at the same moment;
- resends: a version sent again with different content (a new message id);
- ambiguous updates: a twin named by surname, date of birth and address only,
  which two children fit (a person must decide: review items);
- invalid records, published raw (as a source that does not validate would);
- poison messages: valid updates whose writes the suite's database refuses
  (a trigger, see `POISON_SQL`), so they fail on every attempt.

The feed is generated without corruption: with clean values each person must
end as exactly one child, so any second child is the hub's doing, not a
matching miss.

Each source publishes with publisher confirms (the path hub.client uses:
persistent messages, content-derived message ids) and retries until the broker
confirms; the `Ledger` records what was attempted and what was confirmed.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from hub.broker import topology as topo
from hub.broker.connection import confirming_channel, connect, message, message_id_for, publish
from hub.publishing import canonical_body, user_of
from hub.synth.data import tree_copy
from hub.synth.feed import central_feed, initial_load, initial_truth
from hub.synth.population import Population, generate_population

SOURCES = ("la", "dwp", "pds", "dfe")
UPDATES_PER_CHILD = 2.65  # about how many updates the stream holds per generated child

# Poison: the suite's database refuses to record these message ids, as it would
# a write that breaks a constraint: processing fails on every attempt.
POISON_SQL = """
CREATE TABLE IF NOT EXISTS chaos_poison (message_id text PRIMARY KEY);
CREATE OR REPLACE FUNCTION chaos_poison_refuse() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM chaos_poison WHERE message_id = NEW.message_id) THEN
        RAISE EXCEPTION 'chaos suite: this message is poison';
    END IF;
    RETURN NEW;
END $$;
DROP TRIGGER IF EXISTS chaos_poison_refuse ON processed_messages;
CREATE TRIGGER chaos_poison_refuse BEFORE INSERT ON processed_messages
    FOR EACH ROW EXECUTE FUNCTION chaos_poison_refuse();
"""


@dataclass(frozen=True)
class Planned:
    source: str
    body: bytes
    message_id: str
    role: str  # update | resend | ambiguous | invalid | poison
    record: tuple[str, str]  # (source, source_record_id)
    version: int
    person: str | None  # ground truth; None for invalid and poison records
    group: int | None = None  # race group


@dataclass
class Plan:
    messages: list[Planned]
    population: Population
    truth: dict[tuple[str, str], str | None]
    las: list[str]

    def count(self, role: str) -> int:
        return sum(1 for m in self.messages if m.role == role)

    @property
    def groups(self) -> dict[int, list[Planned]]:
        out: dict[int, list[Planned]] = {}
        for m in self.messages:
            if m.group is not None:
                out.setdefault(m.group, []).append(m)
        return out


def _planned(update: dict[str, Any], role: str, person: str | None,
             group: int | None = None) -> Planned:
    source = update["source"]
    body = canonical_body(update)
    return Planned(source, body, message_id_for(f"source.{source}", body), role,
                   (source, update["source_record_id"]), update["source_version"], person, group)


def _poison(n: int) -> dict[str, Any]:
    return {
        "source": "dwp", "source_record_id": f"CHAOS-POISON-{n:03d}", "source_version": 1,
        "kind": "upsert",
        "child": {"given_name": "Poisonia", "family_name": f"Chaosfield{n}",
                  "date_of_birth": f"2016-03-{1 + n % 28:02d}", "sex": "female"},
    }


def _slot(stream: list[Planned], at: int) -> int:
    """`at`, or the next position that does not split a race group."""
    while 0 < at < len(stream) and stream[at].group is not None \
            and stream[at - 1].group == stream[at].group:
        at += 1
    return at


def build(children: int, seed: int, poison: int = 5, race_share: float = 0.05,
          resend_share: float = 0.003) -> Plan:
    rng = random.Random(f"chaos:{seed}")
    pop = generate_population(children, seed, shielded_fraction=0.0)
    feed = central_feed(pop, seed, sources=("dwp", "pds", "dfe"), corruption_rate=0.0,
                        duplicate_rate=0.01, out_of_order_rate=0.5)
    truth: dict[tuple[str, str], str | None] = {**initial_truth(pop), **feed.truth}
    updates = initial_load(pop) + feed.updates

    # Race groups: each birth, and a share of the others, all sources back to back.
    racers = {p.person_id for p in pop.births}
    racers |= {p.person_id for p in pop.children if rng.random() < race_share}
    by_person: dict[str, list[dict[str, Any]]] = {}
    lanes: dict[str, list[dict[str, Any]]] = {s: [] for s in SOURCES}
    for u in updates:
        person = truth.get((u["source"], u["source_record_id"]))
        if person in racers:
            by_person.setdefault(person, []).append(u)
        else:
            lanes[u["source"]].append(u)

    # Interleave the sources at random, each in its own order.
    stream: list[Planned] = []
    cursors = {s: 0 for s in SOURCES}
    remaining = sum(len(v) for v in lanes.values())
    while remaining:
        pick = rng.randrange(remaining)
        for s in SOURCES:
            left = len(lanes[s]) - cursors[s]
            if pick < left:
                u = lanes[s][cursors[s]]
                cursors[s] += 1
                invalid = (s, u["source_record_id"], u["source_version"]) in feed.invalid
                stream.append(_planned(u, "invalid" if invalid else "update",
                                       truth.get((s, u["source_record_id"]))))
                break
            pick -= left
        remaining -= 1

    groups = [
        [_planned(u, "update", person, g) for u in us]
        for g, (person, us) in enumerate(sorted(by_person.items()))
    ]
    for group in groups:
        at = _slot(stream, rng.randrange(len(stream) + 1))
        stream[at:at] = group

    # Resends: the same version again, with content that differs (a new message id),
    # some time after the original.
    chosen = [stream[i] for i in rng.sample(range(len(stream)), int(len(stream) * resend_share))]
    for m in chosen:
        if m.role != "update" or m.group is not None:
            continue
        u = json.loads(m.body)
        u["child"]["middle_names"] = "Resent"
        at = _slot(stream, rng.randrange(stream.index(m) + 1, len(stream) + 1))
        stream.insert(at, _planned(u, "resend", m.person))

    # Ambiguous: a twin named only by surname, date of birth and address. Two
    # children fit; a person decides (a review item), once both are indexed.
    for n, twin in enumerate(p for p in pop.children if p.twin_of):
        child = {"family_name": twin.family_name, "date_of_birth": twin.date_of_birth.isoformat(),
                 "address": tree_copy(twin.address)}
        u = {"source": "dfe", "source_record_id": f"DFE-AMBIGUOUS-{n:04d}", "source_version": 1,
             "kind": "upsert", "child": child}
        at = _slot(stream, rng.randrange(len(stream) // 2, len(stream)))
        stream.insert(at, _planned(u, "ambiguous", None))

    for n in range(poison):
        at = _slot(stream, rng.randrange(len(stream) // 10, len(stream)))
        stream.insert(at, _planned(_poison(n), "poison", None))
    las = sorted({p.la for p in pop.children})
    return Plan(stream, pop, truth, las)


@dataclass
class Ledger:
    """What the sources attempted and what the broker confirmed."""

    attempts: Counter[str] = field(default_factory=Counter)
    confirmed: set[str] = field(default_factory=set)
    gave_up: set[str] = field(default_factory=set)
    dispatched: int = 0
    done: int = 0
    retries: int = 0

    @property
    def sent(self) -> set[str]:
        return set(self.attempts)


class Source:
    """One source system's connection: persistent messages, publisher confirms,
    retried until confirmed (the same message id each time)."""

    def __init__(self, url: str, name: str, ledger: Ledger, give_up_after: float = 300) -> None:
        self.url, self.name, self.ledger = url, name, ledger
        self.routing_key = f"source.{name}"
        self.give_up_after = give_up_after
        self.conn: Any = None
        self.exchange: Any = None

    async def open(self) -> None:
        self.conn = await connect(self.url)
        channel = await confirming_channel(self.conn)
        self.exchange = await topo.exchange(channel, topo.INGEST)

    async def close(self) -> None:
        if self.conn is not None:
            await self.conn.close()

    async def send(self, p: Planned) -> None:
        deadline = time.monotonic() + self.give_up_after
        delay = 0.2
        while True:
            self.ledger.attempts[p.message_id] += 1
            try:
                async with asyncio.timeout(20):
                    await publish(self.exchange, self.routing_key,
                                  message(p.body, message_id=p.message_id,
                                          user_id=user_of(self.url)))
            except asyncio.CancelledError:
                task = asyncio.current_task()
                if task is not None and task.cancelling():
                    raise
                # aiormq cancels the confirm of a connection that died: not confirmed.
            except Exception:  # noqa: BLE001 - not confirmed; try again
                pass
            else:
                self.ledger.confirmed.add(p.message_id)
                return
            if time.monotonic() > deadline:
                self.ledger.gave_up.add(p.message_id)
                return
            self.ledger.retries += 1
            await asyncio.sleep(delay)
            delay = min(delay * 2, 2.0)


class Pace:
    """Sends at `rate` messages a second while faults are pending, holding back the
    stream's tail until they are done, then as fast as the broker confirms."""

    def __init__(self, rate: float, total: int, hold_share: float = 0.1) -> None:
        self.rate = rate
        self.hold_at = int(total * (1 - hold_share))
        self.released = asyncio.Event()
        self.start = time.monotonic()

    async def wait(self, i: int, same_moment: bool) -> None:
        if self.released.is_set() or same_moment:
            return
        if i >= self.hold_at:
            await self.released.wait()
            return
        delay = self.start + i / self.rate - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)


async def send_all(plan: Plan, sources: dict[str, Source], pace: Pace, ledger: Ledger,
                   window: int = 300) -> None:
    """Every planned message through its source, `window` confirms outstanding at most;
    a race group's messages leave together."""
    slots = asyncio.Semaphore(window)
    tasks: set[asyncio.Task[None]] = set()
    previous: Planned | None = None
    for i, p in enumerate(plan.messages):
        same = p.group is not None and previous is not None and previous.group == p.group
        await pace.wait(i, same)
        await slots.acquire()
        ledger.dispatched += 1
        task = asyncio.create_task(sources[p.source].send(p))
        tasks.add(task)

        def finished(t: asyncio.Task[None]) -> None:
            tasks.discard(t)
            slots.release()
            ledger.done += 1

        task.add_done_callback(finished)
        previous = p
    if tasks:
        await asyncio.gather(*tasks)
