"""Matching throughput with N children indexed: candidate retrieval + scoring + decide.

Builds a scratch database (migrations applied), loads N synthetic children into
`children` and their blocking keys into `block_keys` with COPY, then replays
batches of B updates from a central feed about that population through what the
pipeline does to match a batch, in one process:

    hub.db.store.load       candidate retrieval for the whole batch (the
                            `children_for_keys` query plus the small lookups:
                            source links, invalidated NHS numbers, protected
                            addresses, not-a-match)
    BatchState.decide       per update: gather its candidates (facts), score
                            every candidate (hub.match.score), decide

No writes, no locks, no broker: matching alone.

    python -m bench.matching --children 1000000 --updates 20000
    python -m bench.matching --children 1000000 --keep-db hub_bench_1m   # build, keep
    python -m bench.matching --reuse-db hub_bench_1m --updates 20000     # measure again

Population: hub.synth.population.generate_population refuses more than 800,000
people (its NHS numbers are drawn from the 999 test range), so N is generated in
chunks (default 200,000) with seeds seed, seed+1, ... Chunk 0 keeps its 999 NHS
numbers and is the population the feed is about; chunk k >= 1 is renumbered
sequentially with the prefix 999-k (998..., 997..., all with valid check digits),
so NHS numbers stay unique across the index, and a UPN an earlier chunk gave
another child takes a free serial (`UniqueUpns`): the chunks are generated
independently, and about 2,000 children of a million shared one, where the DfE's
are unique (the hub holds an update to the record with its UPN: README, rule 3).
Everything else (names, dates, addresses) is as generated.
The feed (hub.synth.feed.central_feed over chunk 0, sources dwp and pds) is kept in
the scratch database (table bench_feed) so --reuse-db measures the same updates.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import resource
import statistics
import sys
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, cast
from urllib.parse import urlsplit, urlunsplit

import asyncpg

import hub.decide
from bench.proc import cpu_seconds
from hub import gc_tuning, native
from hub import loop as hub_loop
from hub.config import Thresholds
from hub.db import migrate, store
from hub.db.connect import connect
from hub.db.queries import q
from hub.match import compact
from hub.match.blocking import stored_keys
from hub.match.compare import prepare
from hub.nhs import check_digit
from hub.publishing import canonical_body
from hub.records import merge
from hub.synth.feed import central_feed
from hub.synth.population import Population, generate_population
from hub.validate import check
from schemas.canonical import CanonicalUpdate

DEFAULT_SERVER_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
CHUNK = 200_000
QUERY_NAMES = ("links_for", "invalidated_for", "protected_for", "not_a_match_for", "records_for",
               "children_for_keys")


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def _db_url(server_url: str, name: str) -> str:
    return urlunsplit(urlsplit(server_url)._replace(path=f"/{name}"))


# -- building the index ---------------------------------------------------------------


class _Renumber:
    """Sequential valid NHS numbers under one 3-digit prefix (chunks after the first)."""

    def __init__(self, prefix: int) -> None:
        self.prefix = f"{prefix:03d}"
        self.serial = 0

    def next(self) -> str:
        while True:
            if self.serial >= 1_000_000:
                raise ValueError(f"NHS prefix {self.prefix} exhausted")
            nine = f"{self.prefix}{self.serial:06d}"
            self.serial += 1
            digit = check_digit(nine)
            if digit is not None:
                return f"{nine}{digit}"


class UniqueUpns:
    """Unique pupil numbers across independently generated chunks: the first child
    with a UPN keeps it; a later one given the same takes the highest serial free
    for its school and start year (the last three digits; a generated population's
    serials count up from 1)."""

    def __init__(self) -> None:
        self.seen: set[str] = set()

    def of(self, upn: str | None) -> str | None:
        if not upn:
            return upn
        candidate, serial = upn, 999
        while candidate in self.seen:
            if serial < 0:
                raise ValueError(f"no free serial for UPN {upn[:-3]}...")
            candidate, serial = f"{upn[:-3]}{serial:03d}", serial - 1
        self.seen.add(candidate)
        return candidate


def _stored_record(child: dict[str, Any]) -> dict[str, Any]:
    """What the hub stores for a first, clean update: merge(None, the child)."""
    record, _ = merge(None, {k: v for k, v in child.items() if v is not None})
    return record


def _rows(pop: Population, renumber: _Renumber | None, upns: UniqueUpns) -> Iterator[
    tuple[tuple[Any, ...], list[tuple[str, uuid.UUID]]]
]:
    for person in pop.children:
        child = person.to_child()
        if renumber is not None:
            child["nhs_number"] = renumber.next()
        child["upn"] = upns.of(child.get("upn"))
        record = _stored_record(child)
        cid = uuid.uuid4()
        row = (cid, 1, json.dumps(record), person.shielded, person.shielding_authority,
               compact.encode(prepare(record), 1))
        keys = stored_keys(record, person.shielded, False)
        yield row, [(k, cid) for k in keys]


async def _constraints(conn: asyncpg.Connection, table: str) -> list[tuple[str, str, str]]:
    """(kind, name, definition) of a table's constraints and other indexes."""
    rows = await conn.fetch(
        "SELECT contype::text AS kind, conname AS name, pg_get_constraintdef(oid) AS def"
        " FROM pg_constraint WHERE conrelid = $1::regclass", table,
    )
    out = [(r["kind"], r["name"], r["def"]) for r in rows]
    idx = await conn.fetch(
        "SELECT indexrelid::regclass::text AS name, pg_get_indexdef(indexrelid) AS def"
        " FROM pg_index WHERE indrelid = $1::regclass"
        " AND indexrelid NOT IN (SELECT conindid FROM pg_constraint WHERE conrelid = $1::regclass)",
        table,
    )
    out += [("i", r["name"], r["def"]) for r in idx]
    return out


async def build(
    conn: asyncpg.Connection, children: int, updates: int, seed: int, chunk: int = CHUNK
) -> dict[str, Any]:
    """Load `children` children and a feed of about `updates` updates into a freshly
    migrated database (`conn` has no JSON codec: records go in as JSON text)."""
    started = time.perf_counter()
    await migrate.apply(conn)
    await conn.execute("SET synchronous_commit = off")
    # block_keys is the big table: load it bare, then build its keys once.
    saved = await _constraints(conn, "block_keys")
    for kind, name, _ in sorted(saved, key=lambda c: c[0] != "f"):  # foreign keys first
        if kind == "i":
            await conn.execute(f"DROP INDEX {name}")
        else:
            await conn.execute(f'ALTER TABLE block_keys DROP CONSTRAINT "{name}"')

    feed_rows: list[tuple[int, str]] = []
    loaded = keys_loaded = 0
    k = 0
    upns = UniqueUpns()
    gen_s = copy_s = 0.0
    while loaded < children:
        size = min(chunk, children - loaded)
        t0 = time.perf_counter()
        pop = generate_population(
            size, seed + k, shielded_fraction=0.01, birth_fraction=0.02 if k == 0 else 0.0
        )
        renumber = _Renumber(999 - k) if k else None
        child_rows: list[tuple[Any, ...]] = []
        key_rows: list[tuple[str, uuid.UUID]] = []
        for row, keys in _rows(pop, renumber, upns):
            child_rows.append(row)
            key_rows.extend(keys)
        if k == 0:
            feed_rows = _feed(pop, seed, updates)
        del pop
        t1 = time.perf_counter()
        await conn.copy_records_to_table(
            "children", records=child_rows,
            columns=["child_id", "version", "record", "shielded", "shielding_authority",
                     "prepared"],
        )
        await conn.copy_records_to_table(
            "block_keys", records=key_rows, columns=["key", "child_id"]
        )
        t2 = time.perf_counter()
        gen_s += t1 - t0
        copy_s += t2 - t1
        loaded += size
        keys_loaded += len(key_rows)
        log(f"chunk {k}: {loaded:,}/{children:,} children, {keys_loaded:,} keys "
            f"(generate {t1 - t0:.0f}s, copy {t2 - t1:.0f}s)")
        k += 1
        del child_rows, key_rows

    t0 = time.perf_counter()
    for kind, name, definition in sorted(saved, key=lambda c: c[0] == "f"):  # foreign keys last
        log(f"restoring {name}")
        if kind == "i":
            await conn.execute(definition)
        else:
            await conn.execute(f'ALTER TABLE block_keys ADD CONSTRAINT "{name}" {definition}')
    await conn.execute(
        "CREATE TABLE bench_feed (seq integer PRIMARY KEY, body jsonb NOT NULL);"
        "CREATE TABLE bench_meta (key text PRIMARY KEY, value jsonb NOT NULL)"
    )
    await conn.copy_records_to_table("bench_feed", records=feed_rows, columns=["seq", "body"])
    log("analyze")
    for table in ("children", "block_keys"):
        await conn.execute(f"VACUUM ANALYZE {table}")
    index_s = time.perf_counter() - t0
    meta = {
        "children": children, "block_keys": keys_loaded, "seed": seed, "chunk": chunk,
        "feed_updates": len(feed_rows), "generate_seconds": round(gen_s, 1),
        "copy_seconds": round(copy_s, 1), "index_seconds": round(index_s, 1),
        "build_seconds": round(time.perf_counter() - started, 1),
    }
    await conn.execute("INSERT INTO bench_meta VALUES ('build', $1)", json.dumps(meta))
    return meta


def _feed(pop: Population, seed: int, updates: int) -> list[tuple[int, str]]:
    """About `updates` valid updates from a central feed (dwp, pds) about `pop`.

    central_feed gives every new birth and every shielded child a record whatever
    its update_rate; at the low rate used here to get only `updates` updates, those
    are thinned to the share they have at the default rate (0.5), so that the feed
    stays mostly about indexed children, as a real one is.
    """
    # Each unshielded child gets a record per source with probability update_rate,
    # about 1.17 versions each; aim a little over the target and cut.
    rate = min(0.5, 1.2 * updates / (2 * 1.17 * max(1, len(pop.children))))
    feed = central_feed(pop, seed, ("dwp", "pds"), update_rate=rate)
    rng = random.Random(seed)
    keep = rate / 0.5
    valid = []
    for u in feed.updates:
        special = (u["source"], u["source_record_id"]) in feed.births or (
            u["source"], u["source_record_id"], u["source_version"]
        ) in feed.shielded
        if special and rng.random() >= keep:
            continue
        if isinstance(check(u), CanonicalUpdate):
            valid.append(u)
    births = sum(1 for u in valid if (u["source"], u["source_record_id"]) in feed.births)
    log(f"feed: {len(valid):,} valid updates ({len(valid) - births:,} about indexed children, "
        f"{births:,} about new births)")
    return [(i, json.dumps(u)) for i, u in enumerate(valid[:updates])]


# -- measuring ------------------------------------------------------------------------


class _TimedConn:
    """Wraps a connection; times fetch() per named query."""

    def __init__(self, conn: asyncpg.Connection) -> None:
        self._conn = conn
        self.server_pid = conn.get_server_pid()
        self._names = {q(name): name for name in QUERY_NAMES}
        self.seconds: dict[str, float] = {}
        self.rows: Counter[str] = Counter()

    async def fetch(self, sql: str, *args: Any) -> list[asyncpg.Record]:
        t0 = time.perf_counter()
        rows: list[asyncpg.Record] = await self._conn.fetch(sql, *args)
        name = self._names.get(sql, "other")
        self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - t0
        self.rows[name] += len(rows)
        return rows


@dataclass
class _ScoreTimer:
    """Stands in for Matcher.score for the run: every pair a decision scores."""

    seconds: float = 0.0
    calls: int = 0
    original: Callable[..., Any] = field(default=hub.decide.Matcher.score)

    def install(self) -> None:
        original, timer = self.original, self

        def timed(matcher: hub.decide.Matcher, *args: Any) -> Any:
            t0 = time.perf_counter()
            try:
                return original(matcher, *args)
            finally:
                timer.seconds += time.perf_counter() - t0
                timer.calls += 1

        hub.decide.Matcher.score = timed  # type: ignore[method-assign]

    def remove(self) -> None:
        hub.decide.Matcher.score = self.original  # type: ignore[method-assign]


def _pct(values: list[int], fraction: float) -> int:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(fraction * len(ordered)) - 1))]


async def measure_batches(
    conn: asyncpg.Connection, updates: list[CanonicalUpdate], batch_size: int = 200,
    thresholds: Thresholds | None = None, more: tuple[asyncpg.Connection, ...] = (),
) -> dict[str, Any]:
    """Match `updates` in batches; connections must have the hub's JSON codec (connect()).

    With `more` connections, that many more batches are matched at once in this one
    process and thread, as `hub run --workers N` does: one batch's query overlaps
    another's scoring. Throughput is then updates / wall time, and the breakdown
    adds up the lanes' busy time (it can exceed the wall time)."""
    thresholds = thresholds or Thresholds()
    batches = [updates[i:i + batch_size] for i in range(0, len(updates), batch_size)]
    lanes = [_TimedConn(c) for c in (conn, *more)]
    # Warm-up (prepared statements, caches): one batch a lane, not counted.
    log("warm-up batch")
    for timed in lanes:
        state = await store.load(cast(asyncpg.Connection, timed), batches[0], thresholds,
                                 slim=True)
        for u in batches[0]:
            await store.decide(cast(asyncpg.Connection, timed), state, u)
        timed.seconds.clear()
        timed.rows.clear()

    timer = _ScoreTimer()
    timer.install()
    load_s = decide_s = 0.0
    candidates: list[int] = []
    actions: Counter[tuple[str, str]] = Counter()
    loaded_children = 0
    todo = iter(batches)

    async def lane(timed: _TimedConn) -> None:
        nonlocal load_s, decide_s, loaded_children
        tconn = cast(asyncpg.Connection, timed)
        for batch in todo:
            t0 = time.perf_counter()
            state = await store.load(tconn, batch, thresholds, slim=True)
            t1 = time.perf_counter()
            for u in batch:
                _, decision, facts = await store.decide(tconn, state, u)
                candidates.append(len(facts.candidates))
                actions[decision.action, decision.reason] += 1
            t2 = time.perf_counter()
            load_s += t1 - t0
            decide_s += t2 - t1
            loaded_children += len(state.children)
            done = len(candidates)
            if done % (10 * batch_size) == 0:
                log(f"{done:,}/{len(updates):,} updates: last batch retrieval {t1 - t0:.2f}s,"
                    f" scoring+decide {t2 - t1:.2f}s, {len(state.children):,} children"
                    f" loaded; {done / (time.perf_counter() - wall0):.0f} updates/s so far")

    # The lanes' PostgreSQL backends (on this machine): their CPU beside this process's.
    backends = [t.server_pid for t in lanes]
    pg0 = sum(cpu_seconds(p) for p in backends)
    cpu0 = resource.getrusage(resource.RUSAGE_SELF)
    wall0 = time.perf_counter()
    try:
        await asyncio.gather(*(lane(t) for t in lanes))
    finally:
        timer.remove()
    wall = time.perf_counter() - wall0
    cpu1 = resource.getrusage(resource.RUSAGE_SELF)
    pg_cpu = sum(cpu_seconds(p) for p in backends) - pg0
    cpu = (cpu1.ru_utime - cpu0.ru_utime) + (cpu1.ru_stime - cpu0.ru_stime)

    n = len(updates)
    busy = load_s + decide_s
    query_seconds: dict[str, float] = {}
    for timed in lanes:
        for name, secs in timed.seconds.items():
            query_seconds[name] = query_seconds.get(name, 0.0) + secs
    query_s = sum(query_seconds.values())
    return {
        "updates": n,
        "batch_size": batch_size,
        "batches": len(batches),
        "lanes": len(lanes),
        "updates_per_second": n / (wall if len(lanes) > 1 else busy),
        "seconds": busy,
        "wall_seconds": wall,
        "python_cpu_seconds": cpu,
        "postgres_cpu_seconds": pg_cpu,
        "candidates_per_update_mean": statistics.fmean(candidates),
        "candidates_per_update_median": statistics.median(candidates),
        "candidates_per_update_p99": _pct(candidates, 0.99),
        "candidates_per_update_max": max(candidates),
        "children_loaded_per_batch": loaded_children / len(batches),
        "retrieval_seconds": load_s,
        "retrieval_query_seconds": query_seconds,
        "retrieval_python_seconds": load_s - query_s,
        "scoring_seconds": timer.seconds,
        "score_calls": timer.calls,
        "us_per_score": 1e6 * timer.seconds / max(1, timer.calls),
        "decide_other_seconds": decide_s - timer.seconds,
        "actions": {f"{a}:{r}": n for (a, r), n in actions.most_common()},
    }


async def _load_feed(conn: asyncpg.Connection, updates: int) -> list[CanonicalUpdate]:
    rows = await conn.fetch("SELECT body FROM bench_feed ORDER BY seq")
    parsed = [check(r["body"]) for r in rows]
    feed = [u for u in parsed if isinstance(u, CanonicalUpdate)]
    if not feed:
        raise RuntimeError("bench_feed is empty")
    if len(feed) < updates:
        log(f"the stored feed has {len(feed):,} updates; cycling it to {updates:,}")
    return [feed[i % len(feed)] for i in range(updates)]


async def run(
    server_url: str = DEFAULT_SERVER_URL,
    children: int = 100_000,
    updates: int = 20_000,
    batch_size: int = 200,
    seed: int = 1,
    chunk: int = CHUNK,
    keep_db: str | None = None,
    reuse_db: str | None = None,
    lanes: int = 1,
) -> dict[str, Any]:
    """Build (or reuse) an index and measure matching against it."""
    name = reuse_db or keep_db or f"hub_bench_{uuid.uuid4().hex[:8]}"
    created = False
    admin = await asyncpg.connect(server_url, timeout=10)
    try:
        if reuse_db is None:
            await admin.execute(f'CREATE DATABASE "{name}"')
            created = True
    finally:
        await admin.close()
    url = _db_url(server_url, name)
    try:
        if reuse_db is None:
            log(f"building {name}: {children:,} children")
            raw = await asyncpg.connect(url, timeout=10)
            try:
                build_meta = await build(raw, children, updates, seed, chunk)
            finally:
                await raw.close()
            log(f"built in {build_meta['build_seconds']:.0f}s")
        conn = await connect(url)
        try:
            meta_row = await conn.fetchval("SELECT value FROM bench_meta WHERE key = 'build'")
            build_meta = dict(meta_row)
            feed = await _load_feed(conn, updates)
            gc_tuning.tune()  # as `hub run` does
            log(f"matching {len(feed):,} updates in batches of {batch_size} "
                f"against {build_meta['children']:,} children")
            more = tuple([await connect(url) for _ in range(lanes - 1)])
            try:
                result = await measure_batches(conn, feed, batch_size, more=more)
            finally:
                for c in more:
                    await c.close()
        finally:
            await conn.close()
    finally:
        if created and keep_db is None:
            await _drop(server_url, name)
    result["database"] = name if (keep_db or reuse_db) else None
    result["mean_body_bytes"] = round(statistics.fmean(
        len(canonical_body(u.model_dump(mode="json"))) for u in feed))
    result["index"] = build_meta
    result["children"] = build_meta["children"]
    result["native"] = native.describe()
    return result


async def _drop(server_url: str, name: str) -> None:
    admin = await asyncpg.connect(server_url, timeout=10)
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


def format_result(r: dict[str, Any]) -> str:
    idx = r["index"]
    qs = r["retrieval_query_seconds"]
    t = r["seconds"]

    def share(s: float) -> str:
        return f"{s:7.2f} s  {100 * s / t:5.1f}%  {1e3 * s / r['batches']:7.1f} ms/batch"

    lines = [
        f"matching: {r['updates']:,} updates in batches of {r['batch_size']} against "
        f"{r['children']:,} children ({idx['block_keys']:,} blocking keys);"
        f" matching path {r['native']}",
        f"  throughput:           {r['updates_per_second']:9.0f} updates/s  "
        f"({r['wall_seconds']:.2f} s wall, {r['lanes']} batches at once, one process and "
        f"thread; Python CPU {r['python_cpu_seconds']:.2f} s, its PostgreSQL backends"
        f" {r['postgres_cpu_seconds']:.2f} s)",
        f"  candidates/update:    mean {r['candidates_per_update_mean']:.1f}, median "
        f"{r['candidates_per_update_median']:.0f}, p99 {r['candidates_per_update_p99']}, "
        f"max {r['candidates_per_update_max']}; "
        f"{r['children_loaded_per_batch']:.0f} distinct children loaded per batch",
        f"  retrieval (store.load)       {share(r['retrieval_seconds'])}",
        f"    children_for_keys query    {share(qs.get('children_for_keys', 0.0))}",
        "    other lookups (5 queries)  "
        + share(sum(v for k, v in qs.items() if k != "children_for_keys")),
        f"    Python (keys, rows)        {share(r['retrieval_python_seconds'])}",
        f"  scoring                      {share(r['scoring_seconds'])}  "
        f"({r['score_calls']:,} pairs, {r['us_per_score']:.1f} us/pair)"
        if r["score_calls"] else
        "  scoring                      (compiled: calls it from compiled code, which the"
        " timer cannot wrap, are in the lines above and below)",
        f"  facts + decide (rest)        {share(r['decide_other_seconds'])}",
        "  decisions: " + ", ".join(f"{k} {v}" for k, v in list(r["actions"].items())[:8]),
    ]
    if "build_seconds" in idx:
        lines.append(
            f"  index build: {idx['build_seconds']:.0f} s (generate {idx['generate_seconds']:.0f}"
            f" s, copy {idx['copy_seconds']:.0f} s, keys+analyze {idx['index_seconds']:.0f} s)"
        )
    return "\n".join(lines)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--database-url", default=DEFAULT_SERVER_URL,
                        help="any database on the server; the scratch one is created beside it")
    parser.add_argument("--children", type=int, default=100_000)
    parser.add_argument("--updates", type=int, default=20_000)
    parser.add_argument("--batch", type=int, default=200)
    parser.add_argument("--lanes", type=int, default=4,
                        help="batches matched at once in the one process and thread (hub run"
                             " --workers): enough in flight that the one core is kept busy"
                             " while PostgreSQL answers")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--chunk", type=int, default=CHUNK,
                        help="children generated per population (at most ~780,000)")
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--keep-db", metavar="NAME", help="build into NAME and keep it")
    group.add_argument("--reuse-db", metavar="NAME", help="measure against a kept NAME")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_arguments(parser)
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args(argv)
    result = hub_loop.run(run(
        args.database_url, args.children, args.updates, args.batch, args.seed, args.chunk,
        args.keep_db, args.reuse_db, args.lanes,
    ))
    print(json.dumps(result, indent=2) if args.json else format_result(result))


if __name__ == "__main__":
    main()
