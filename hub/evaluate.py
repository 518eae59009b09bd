"""`hub eval`: the generator's population and feeds through the real pipeline,
scored against ground truth, per error type and overall.

For each source record of the central feed it finds what the hub did with it:
linked to a record (right or wrong person), created a record (a birth, or a
duplicate of a child already indexed), or sent to review.
"""

from __future__ import annotations

import time
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from hub.config import Settings
from hub.db.connect import connect as db_connect
from hub.harness import running_hub, say, shield_population
from hub.synth.feed import Feed, central_feed, initial_load, initial_truth
from hub.synth.population import generate_population

#: Records about shielded children (hub eval --shielded), counted apart as well.
ABOUT_SHIELDED = "about shielded children"


@dataclass
class Row:
    records: int = 0
    linked: int = 0  # automatically, to a record that existed
    wrong: int = 0
    created: int = 0
    duplicates: int = 0
    review: int = 0

    def add(self, other: Row) -> None:
        for k in vars(self):
            setattr(self, k, getattr(self, k) + getattr(other, k))

    @property
    def precision(self) -> float:
        return (self.linked - self.wrong) / self.linked if self.linked else 1.0


async def run_eval(base: Settings, children: int, seed: int, workers: int,
                   corruption: float, shielded: float = 0.0) -> int:
    t0 = time.monotonic()
    say(f"hub eval: {children} children, seed {seed}, corruption rate {corruption:g}"
        + (f", {shielded:g} shielded" if shielded else ""))
    pop = generate_population(children, seed, shielded_fraction=shielded)
    feed = central_feed(pop, seed, corruption_rate=corruption)
    async with running_hub(base, "eval", workers) as h:
        say("1. initial load")
        await h.publish("la", initial_load(pop))
        await h.wait()
        if shielded:
            say(f"   councils shield {len(await shield_population(h.settings.database_url, pop))}"
                " children (refuges)")
        say(f"2. central feeds: {len(feed.updates)} updates")
        by_source: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for u in feed.updates:
            by_source[u["source"]].append(u)
        for source, updates in sorted(by_source.items()):
            await h.publish(source, updates)
        await h.wait()
        rows = await _score(h.settings, pop, feed)
    _print(rows)
    say(f"done in {time.monotonic() - t0:.1f}s")
    return 0


async def _score(s: Settings, pop: Any, feed: Feed) -> dict[str, Row]:
    conn = await db_connect(s.database_url)
    try:
        links = {(r["source"], r["source_record_id"]): (r["child_id"], r["linked_by"])
                 for r in await conn.fetch(
                     "SELECT source, source_record_id, child_id::text AS child_id, linked_by"
                     " FROM source_links")}
        creators = {r["child_id"]: tuple(r["subject"].rsplit("@", 1)[0].split("/", 1))
                    for r in await conn.fetch(
                        "SELECT child_id::text AS child_id, subject FROM audit_log"
                        " WHERE action = 'decision.create'")}
        review = {(r["source"], r["source_record_id"]) for r in await conn.fetch(
            "SELECT source, source_record_id FROM parked WHERE kind = 'review'")}
    finally:
        await conn.close()
    truth: dict[tuple[str, str], str | None] = {**initial_truth(pop), **feed.truth}
    owner = {cid: truth.get(key) for cid, key in creators.items()}  # type: ignore[arg-type]
    indexed = {p for (src, _), p in truth.items() if src == "la"}
    kinds: dict[tuple[str, str], set[str]] = defaultdict(set)
    for (src, rid, _v), ks in feed.kinds.items():
        kinds[(src, rid)].update(ks)
    shielded = {p.person_id for p in pop.children if p.shielded}

    rows: dict[str, Row] = defaultdict(Row)
    first_create: dict[str, str] = {}
    for cid, key in sorted(creators.items(), key=lambda kv: kv[0]):
        p = truth.get(key)  # type: ignore[arg-type]
        if p is not None and key[0] != "la":
            first_create.setdefault(p, cid)
    for key, person in feed.truth.items():
        if person is None:
            continue
        row = Row(records=1)
        link = links.get(key)
        if link is not None:
            cid, by = link
            if creators.get(cid) == key:
                row.created = 1
                if person in indexed or first_create.get(person) != cid:
                    row.duplicates = 1
            elif by == "auto":
                row.linked = 1
                row.wrong = int(owner.get(cid) != person)
        elif key in review:
            row.review = 1
        for kind in kinds.get(key) or {"clean"}:
            rows[kind].add(row)
        rows["overall"].add(row)
        if person in shielded:  # also counted above, by error type
            rows[ABOUT_SHIELDED].add(row)
    return rows


def _print(rows: dict[str, Row]) -> None:
    say("")
    say(f"  {'error type':<24}{'records':>8}{'linked':>8}{'wrong':>7}{'precision':>11}"
        f"{'created':>9}{'dups':>6}{'review':>8}{'review %':>10}")
    order = sorted(k for k in rows if k not in ("overall", ABOUT_SHIELDED)) + ["overall"]
    for kind in order:
        r = rows[kind]
        pct = 100 * r.review / r.records if r.records else 0.0
        say(f"  {kind:<24}{r.records:>8}{r.linked:>8}{r.wrong:>7}{100 * r.precision:>10.2f}%"
            f"{r.created:>9}{r.duplicates:>6}{r.review:>8}{pct:>9.2f}%")
    o = rows["overall"]
    if ABOUT_SHIELDED in rows:
        r = rows[ABOUT_SHIELDED]
        say(f"  of which {ABOUT_SHIELDED}: {r.records} records, {r.wrong} wrong links,"
            f" {r.duplicates} duplicates created (both must be 0), {r.review} to review")
    say("")
    say(f"  auto-link precision {100 * o.precision:.2f}% (target >= 99.9%);"
        f" duplicates created {100 * o.duplicates / max(o.records, 1):.2f}% (target <= 0.5%);"
        f" sent to review {100 * o.review / max(o.records, 1):.2f}% (target <= 3%)")
