"""`hub demo`: the main job on one machine, on a generated national feed.

It uses a database of its own (the configured name + "_demo", made afresh each
time) so that it never mixes with a real index, runs `hub run` as a separate
process, publishes an initial load from the local authorities, shields some
children the way a council would, then publishes the central feeds, in which
the shielded children arrive from their refuges with new addresses. It ends
with a report checked against the generator's ground truth.
"""

from __future__ import annotations

import time
from collections import Counter
from typing import Any

from hub.config import Settings
from hub.db.connect import connect as db_connect
from hub.harness import running_hub, say, shield_population
from hub.places import address_key
from hub.synth.feed import central_feed, initial_load
from hub.synth.population import generate_population


async def run_demo(base: Settings, children: int, seed: int, workers: int) -> int:
    t0 = time.monotonic()
    say(f"hub demo: {children} children, seed {seed}, {workers} pipeline workers")
    pop = generate_population(children, seed)
    feed = central_feed(pop, seed)
    async with running_hub(base, "demo", workers) as h:
        # 1. What the councils already hold.
        say(f"1. initial load from the local authorities ({len(pop.children)} children)")
        pub, rej = await h.publish("la", initial_load(pop))
        say(f"   published {pub}, rejected {rej}")
        await h.wait()

        # 2. Councils shield the children at risk.
        shielded_ids = await shield_population(h.settings.database_url, pop)
        say(f"2. councils shielded {len(shielded_ids)} children (refuges)")

        # 3. The central feeds, with typos, moves and the shielded children's new addresses.
        by_source: dict[str, list[dict[str, Any]]] = {}
        for u in feed.updates:
            by_source.setdefault(u["source"], []).append(u)
        say(f"3. central feeds: {len(feed.updates)} updates from {', '.join(sorted(by_source))}"
            f" ({len(feed.shielded)} about shielded children)")
        for source, updates in sorted(by_source.items()):
            pub, rej = await h.publish(source, updates)
            say(f"   {source}: published {pub}, rejected at the adapter {rej}")
        await h.wait()
        s = h.settings
    ok = await _report(s, pop, feed, shielded_ids)
    say(f"done in {time.monotonic() - t0:.1f}s")
    return 0 if ok else 1


async def _report(s: Settings, pop: Any, feed: Any, shielded_ids: dict[str, str]) -> bool:
    conn = await db_connect(s.database_url)
    try:
        outcomes = Counter(r["outcome"].split(":")[0] for r in await conn.fetch(
            "SELECT outcome FROM processed_messages"))
        review_rows = await conn.fetch(
            "SELECT reason, source, source_record_id FROM parked WHERE kind = 'review'")
        reviews = Counter(r["reason"] for r in review_rows)
        dead = Counter(r["reason"] for r in await conn.fetch(
            "SELECT reason FROM parked WHERE kind = 'dead'"))
        notes = Counter(r["la"] for r in await conn.fetch(
            "SELECT split_part(routing_key, '.', 2) AS la FROM outbox"))
        links = {(r["source"], r["source_record_id"]): r["child_id"] for r in await conn.fetch(
            "SELECT source, source_record_id, child_id::text AS child_id FROM source_links")}
        children = await conn.fetchval("SELECT count(*) FROM children")
        shield_rows = {r["child_id"]: r for r in await conn.fetch(
            "SELECT child_id::text AS child_id, shielding_authority FROM children WHERE shielded")}
        leaks = await conn.fetch(
            "SELECT o.routing_key, o.body->>'child_id' AS child_id FROM outbox o"
            " JOIN children c ON c.child_id::text = o.body->>'child_id' WHERE c.shielded"
            " AND split_part(o.routing_key, '.', 2) <> c.shielding_authority")
        records = await conn.fetch(
            "SELECT child_id::text AS child_id, record->'address' AS address FROM children"
            " WHERE NOT shielded")
        protected = {r["address_key"] for r in await conn.fetch(
            "SELECT address_key FROM protected_addresses")}
    finally:
        await conn.close()

    # Ground truth: which person each record belongs to (through the initial load).
    by_la_id = {p.la_record_id: p.person_id for p in pop.children}
    person_of_child = {cid: by_la_id[rid] for (src, rid), cid in links.items()
                       if src == "la" and rid in by_la_id}
    wrong = dup_creates = 0
    shielded_dups = 0
    for key, cid in links.items():
        if key[0] == "la":
            continue
        truth = feed.truth.get(key)
        if truth is None:
            continue
        owner = person_of_child.get(cid)
        if owner is None:
            if truth in person_of_child.values():
                dup_creates += 1
                if truth in shielded_ids:
                    shielded_dups += 1
        elif owner != truth:
            wrong += 1
    address_leaks = [r for r in records if address_key(r["address"]) in protected]

    say("")
    say("report")
    say(f"  children in the index: {children} ({len(shield_rows)} shielded)")
    say("  updates: " + ", ".join(f"{k} {v}" for k, v in sorted(outcomes.items())))
    say(f"  sent to review: {_counts(reviews)}")
    say(f"  dead-lettered: {_counts(dead)}")
    say("  notifications per council: "
        + ", ".join(f"{la} {n}" for la, n in sorted(notes.items())))
    shielded_updates = len(feed.shielded)
    say("  matching against ground truth: "
        f"wrong links {wrong}, duplicates created for indexed children {dup_creates}")
    say("shielding")
    shielded_people = set(shielded_ids)
    to_person = sum(1 for r in review_rows
                    if feed.truth.get((r["source"], r["source_record_id"])) in shielded_people)
    say(f"  updates about shielded children: {shielded_updates};"
        f" sent to a person: {reviews.get('shielded_candidate', 0)} shielded_candidate,"
        f" {reviews.get('shielded_address', 0)} shielded_address,"
        f" {reviews.get('shielded_contact', 0)} shielded_contact")
    share = 100 * to_person / shielded_updates if shielded_updates else 0.0
    say(f"  operator burden: {to_person} of {shielded_updates} updates about shielded"
        f" children needed a person ({share:.0f}%); the rest were tied by NHS number"
        " and date of birth or by their own source link")
    say(f"  duplicates of shielded children created: {shielded_dups}")
    say(f"  notifications about shielded children to other councils: {len(leaks)}")
    say(f"  unshielded records holding a shielded child's address: {len(address_leaks)}")
    ok = shielded_dups == 0 and not leaks and not address_leaks
    say("  PROOF: no shielded child was duplicated or exposed" if ok
        else "  FAILED: a shielded child was duplicated or exposed")
    return ok


def _counts(c: Counter[str]) -> str:
    return ", ".join(f"{k} {v}" for k, v in sorted(c.items())) or "none"
