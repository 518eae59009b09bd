"""`hub load`: a source's initial extract straight into the index, in large chunks.

The same adapters, validation, blocking, scoring, decisions and writes as
`hub publish` + `hub run`, without the broker and without deciding one small
batch at a time:

1. read a chunk of records (default 50,000) through the format's adapter;
2. workers validate each record (hub.validate), give it the message id `hub
   publish` would give it, normalise it and compute its blocking keys;
3. records already processed (processed_messages: an earlier load or publish of
   the same content) are skipped; so are repeats inside the load;
4. when the index held children before the load, or the load has let go of what it
   made (beyond --hold records it keeps only the chunk being written), what the
   index knows about the chunk (source links, invalidated NHS numbers, protected
   addresses, operators' "not a match", candidate children by blocking key) is read
   in one round of queries;
5. the candidates of every record are found: children indexed before the chunk
   (by the index's keys, as the pipeline looks them up) and earlier records of the
   chunk itself (by their keys); workers score each record against them;
6. one process decides the records in file order with the pipeline's BatchState
   and hub.decide (hub/bulk/state.py): each record sees the index and every earlier
   record of the load, so the same child twice in one extract becomes one record
   with two source links, and a shielded candidate sends a record to review;
7. the chunk's rows are written with COPY in one transaction (hub/bulk/write.py).

Serialisation: the load holds the advisory lock LOAD_LOCK (hub.db.store)
exclusively for its whole run. The pipeline (hub.db.store.lock), operators'
decisions and shield/unshield/sever take it shared, so while a load runs nothing
else writes a child: streaming batches wait, unacknowledged, and go on when the
load ends. Per-child locks, as the pipeline takes them, would mean millions of
locks in one transaction; a paused source is refused rather than loaded.

Idempotent: a rerun of the same file finds every message id processed (and every
dead letter parked) and writes nothing; a load stopped half way resumes where its
last committed chunk ended.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import gc
import json
import multiprocessing
import os
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from itertools import islice
from typing import Any, BinaryIO

import asyncpg

from adapters.base import BadRecord, Deferred, Record
from adapters.registry import row_reader
from hub import gc_tuning
from hub.batch import PARK_NAMESPACE, ChildRow, StoredRecord, Writes, chunk_candidates
from hub.broker.connection import message_id_for
from hub.bulk import work, write
from hub.bulk.state import CachedMatcher, LoadedUpdate, LoadState
from hub.config import Settings
from hub.db.connect import SERVER_SETTINGS
from hub.db.queries import q
from hub.db.store import FORM_PREFIX, LOAD_LOCK, SEP
from hub.decide import CREATE, LINK, REVIEW, Matcher, SourceLink
from hub.ingest import raw_text
from hub.match import compact
from hub.match.blocking import CROWDED_POSTCODE, PROTECTED
from hub.match_store import active_model, term_frequencies
from hub.operations import OperationError

CHUNK = 50_000
# Records held in memory (what the load has made, found again by later records
# without a query) before it releases them and reads them back from the index as
# needed: about 4.4 GB a million records held, so an extract of any size fits.
HOLD = 1_500_000
ACTOR = "load"


@dataclass
class Summary:
    read: int = 0
    valid: int = 0
    duplicates: int = 0  # already processed, or repeated within the load
    rejected: list[tuple[str, str, str]] = field(default_factory=list)  # (where, reason, error)
    outcomes: Counter[str] = field(default_factory=Counter)  # "action:reason" -> n
    scores: Counter[str] = field(default_factory=Counter)  # cached / scored pairs
    phases: dict[str, float] = field(default_factory=dict)  # seconds spent per phase
    # of which the deciding thread ran (the rest it waited: for workers, for the
    # database, or for the interpreter lock while this process's other threads ran)
    phases_cpu: dict[str, float] = field(default_factory=dict)
    seconds: float = 0.0
    fraction: float = 0.0
    released: int = 0  # times the load let go of what it held (--hold)

    def count(self, action: str) -> int:
        return sum(n for k, n in self.outcomes.items() if k.split(":", 1)[0] == action)

    def line(self) -> str:
        rate = self.read / self.seconds if self.seconds else 0.0
        eta = ""
        if 0 < self.fraction < 1 and self.seconds:
            left = self.seconds * (1 / self.fraction - 1)
            eta = f", ETA {int(left // 60)}m{int(left % 60):02d}s"
        return (f"load: {self.read:,} read ({100 * self.fraction:.0f}%), "
                f"{len(self.rejected):,} dead-lettered, {self.duplicates:,} already done; "
                f"created {self.count(CREATE):,}, linked {self.count(LINK):,}, "
                f"review {self.count(REVIEW):,}, unchanged {self.count('noop'):,}; "
                f"{rate:,.0f} records/s{eta}")


class _Files:
    """The records of several files in order, and how far through them reading is."""

    def __init__(self, fmt: str, source: str, paths: list[str]) -> None:
        try:
            # Rows mapped by the workers (work.read_items) where the format allows:
            # the CSV adapter's mapping was a tenth of this process's interpreter.
            self.read = row_reader(fmt)
        except KeyError as exc:
            raise OperationError(str(exc.args[0])) from None
        self.source = source
        self.paths = paths
        self.sizes = []
        for p in paths:
            try:
                self.sizes.append(os.path.getsize(p))
            except OSError as exc:
                raise OperationError(f"cannot read {p}: {exc.strerror}") from None
        self.done_bytes = 0
        self.stream: BinaryIO | None = None

    def __iter__(self) -> Iterator[tuple[str, Record | BadRecord | Deferred]]:
        for path, size in zip(self.paths, self.sizes, strict=True):
            try:
                stream = open(path, "rb")  # noqa: SIM115 - closed below
            except OSError as exc:
                raise OperationError(f"cannot read {path}: {exc.strerror}") from None
            with stream:
                self.stream = stream
                for item in self.read(stream, self.source):
                    yield path, item
            self.stream = None
            self.done_bytes += size

    @property
    def fraction(self) -> float:
        total = sum(self.sizes) or 1
        at = self.done_bytes
        if self.stream is not None:
            try:
                at += self.stream.tell()
            except (OSError, ValueError):
                pass
        return min(at / total, 1.0)


class _Writer:
    """A connection of its own, in a thread of its own, writing chunk k while the
    loader decides chunk k+1 (PostgreSQL does the work on the other core)."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="load-writer",
                                       daemon=True)
        self.thread.start()
        self.conn: asyncpg.Connection | None = None
        self.pending: concurrent.futures.Future[Any] | None = None
        self.writing: write.Snapshot | None = None

    async def run(self, coro: Coroutine[Any, Any, Any]) -> Any:
        return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(coro, self.loop))

    async def open(self, url: str) -> None:
        self.conn = await self.run(
            asyncpg.connect(url, timeout=10, server_settings=SERVER_SETTINGS))

    async def wait(self) -> write.Snapshot | None:
        """The chunk in hand is committed (or its failure raised here); returns it."""
        written, self.writing = self.writing, None
        if self.pending is not None:
            pending, self.pending = self.pending, None
            await asyncio.wrap_future(pending)
        return written

    def submit(self, snap: write.Snapshot) -> None:
        """Start writing `snap` (the chunk before it committed: wait() first)."""
        assert self.pending is None, "the chunk before is still being written"
        self.writing = snap
        conn = self.conn
        assert conn is not None

        async def flush() -> None:
            async with conn.transaction():
                await write.flush(conn, snap)
        self.pending = asyncio.run_coroutine_threadsafe(flush(), self.loop)

    async def close(self) -> None:
        try:
            if self.conn is not None:
                await self.run(self.conn.close())
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(timeout=10)
            self.loop.close()


async def load(
    settings: Settings, source: str, fmt: str, paths: list[str], *,
    chunk: int = CHUNK, workers: int = 2, hold: int = HOLD,
    progress: Callable[[Summary], None] | None = None, keep: list[Any] | None = None,
) -> Summary:
    """Load `paths`; `keep`, if given, receives what the load held once it succeeds, so
    that a caller about to end the process can leave it to the exit (`hub load`); the
    collector then stays off (turned back on, it soon walked everything held once
    more: 3 s at 324,182 records)."""
    files = _Files(fmt, source, paths)
    started = time.monotonic()
    summary = Summary()
    conn = await asyncpg.connect(settings.database_url, timeout=10,
                                 server_settings=SERVER_SETTINGS)
    pool: Any = None
    writer: _Writer | None = None
    try:
        paused = await conn.fetchval("SELECT paused FROM sources WHERE name = $1", source)
        if paused:
            raise OperationError(f"source {source} is paused: resume it before loading")
        if not await conn.fetchval("SELECT pg_try_advisory_lock($1)", LOAD_LOCK):
            print("load: waiting for running pipeline batches, operators' decisions or"
                  " another load to finish", file=sys.stderr, flush=True)
            await conn.execute("SELECT pg_advisory_lock($1)", LOAD_LOCK)
        empty = not await conn.fetchval(write.lq("load_index_size"))
        matcher = CachedMatcher(await active_model(conn), await term_frequencies(conn))
        # Forked while this process is small and has no other thread; the workers
        # keep the matcher (the model and the index's name frequencies).
        work.set_matcher(Matcher(matcher.model, matcher.tf))
        # Two pools: one validates the next chunk while the other scores this one.
        ctx = multiprocessing.get_context("fork")
        # Their collector tuned as a pipeline process's (hub.gc_tuning): with the
        # default thresholds it took 6% of a validating worker's time.
        pool = (ctx.Pool(workers, initializer=gc_tuning.tune),
                ctx.Pool(workers, initializer=gc_tuning.tune))
        writer = _Writer()
        await writer.open(settings.database_url)
        state = LoadState(thresholds=settings.thresholds, now=datetime.now(UTC),
                          matcher=matcher)
        run = _Run(conn, pool, workers, source, state, matcher, empty, summary, writer, hold)
        items = iter(files)
        # What is loaded stays: the collector need not walk it again and again. Its
        # automatic runs cost more than half the deciding process's time at 100,000
        # records. Nor is what a chunk made collected after it: a collection of it
        # found nothing to free in every chunk measured (0 objects in each of the 5
        # chunks of 216,091 records) and cost 1.3-1.6 s a chunk (interleaved runs of
        # that load, compiled: 125.4 and 134.1 s with it, 122.4 and 119.5 s without).
        # What cycles a load makes are freed when it ends (gc.enable below).
        gc.freeze()
        gc.disable()
        # The workers validate chunk k+1 while this process decides chunk k.
        batch = list(islice(items, chunk))
        reading = run.read(batch, 0) if batch else None
        while reading is not None:
            current, results = batch, reading
            batch = list(islice(items, chunk))
            run.tick("read the file (adapter)")
            reading = run.read(batch, len(current)) if batch else None
            await run.chunk(current, results.get())
            summary.seconds = time.monotonic() - started
            summary.fraction = files.fraction
            if progress:
                progress(summary)
        await run.write_last()
        if keep is not None:
            keep.append(run)
        run.tick("write (COPY, not overlapped)")
        summary.scores.update(matcher.counts)
        await conn.execute(
            q("insert_audit"), ACTOR, "load", None, source,
            json.dumps({"files": [os.path.basename(p) for p in paths], "read": summary.read,
                        "rejected": len(summary.rejected), "duplicates": summary.duplicates,
                        "outcomes": dict(summary.outcomes)}),
        )
    finally:
        for p in pool or ():
            p.terminate()
            p.join()
        try:
            if writer is not None:
                await writer.wait()
        finally:
            if writer is not None:
                await writer.close()
            await conn.close()  # ends the session: LOAD_LOCK goes with it
            if not keep:
                gc.enable()
                gc.unfreeze()
    summary.seconds = time.monotonic() - started
    return summary


class _Run:
    def __init__(self, conn: asyncpg.Connection, pool: Any, workers: int,
                 source: str, state: LoadState, matcher: CachedMatcher, empty: bool,
                 summary: Summary, writer: _Writer, hold: int) -> None:
        self.conn, self.pool, self.workers = conn, pool, workers
        self.source, self.state, self.matcher = source, state, matcher
        self.empty, self.summary = empty, summary
        self.writer, self.hold = writer, hold
        # message ids of the chunks not yet committed (processed_messages has the rest)
        self.seen: set[str] = set()
        self.mine: set[str] = set()  # of which this chunk's
        self.in_db: dict[str, int] = {}  # child id -> version the index holds
        self.clock, self.cpu = time.perf_counter(), time.thread_time()
        self.targets: list[Any] = []
        self.last: write.Snapshot | None = None  # the chunk decided, not yet written
        self.analyzed = 0  # records read when the load last analysed the index

    def _parts(self, items: list[Any]) -> list[list[Any]]:
        n = max(1, min(len(items), self.workers * 4))
        size = -(-len(items) // n)
        return [items[i:i + size] for i in range(0, len(items), size)]

    def tick(self, phase: str) -> None:
        now, cpu = time.perf_counter(), time.thread_time()
        p, c = self.summary.phases, self.summary.phases_cpu
        p[phase] = p.get(phase, 0.0) + now - self.clock
        c[phase] = c.get(phase, 0.0) + cpu - self.cpu
        self.clock, self.cpu = now, cpu

    def read(self, batch: list[tuple[str, Record | BadRecord | Deferred]], before: int) -> Any:
        """Start the workers on a chunk: validation, normal forms, keys, and what the
        chunk will look up in the index if it may: if the index held children or the
        load may have let go of some by then (`before` records are decided first)."""
        parts = self._parts([item for _, item in batch])
        may = not self.empty or len(self.state.children) + before > self.hold
        return self.pool[0].starmap_async(work.read_items,
                                          [(self.source, p, may) for p in parts])

    async def chunk(self, batch: list[tuple[str, Record | BadRecord | Deferred]],
                    parts: list[tuple[list[work.Valid | work.Bad], work.Lookups | None]]
                    ) -> None:
        s = self.summary
        s.read += len(batch)
        results = [r for part, _ in parts for r in part]
        paths = [path for path, _ in batch]
        writes = self.state.writes
        valid: list[work.Valid] = []
        bad: list[tuple[str, str, work.Bad]] = []
        for path, r in zip(paths, results, strict=True):
            if isinstance(r, work.Bad):
                mid = message_id_for(f"dead.{self.source}.{r.where}", r.raw.encode())
                bad.append((path, mid, r))
            else:
                valid.append(r)
        s.valid += len(valid)
        self.tick("validate (workers, not overlapped)")
        # The chunk before the last is committed once the writer is idle: beyond
        # --hold, let go of what the index now holds. This chunk's lookups run before
        # the last chunk's write begins: run beside it, they shared this process and
        # the database with it (a lookup of 50,000 records took 25 s, alone 6 s).
        last, self.last = self.last, None
        if last is not None:
            self._committed(await self.writer.wait(), last)
            if not self.empty and s.read >= 2 * self.analyzed:
                # The lookups' plans need statistics of tables the load grows fast:
                # never analysed, a lookup at 744,000 children ran for ten minutes
                # (a plan made for empty tables) where it had taken 6-22 s.
                await self.conn.execute(write.lq("load_analyze"))
                self.analyzed = s.read
        await self._dead(bad, writes)
        done = {row["message_id"] for row in await self.conn.fetch(
            q("processed_ids"), [v.message_id for v in valid])}
        todo = []
        for v in valid:
            if v.message_id in done or v.message_id in self.seen:
                s.duplicates += 1
                continue
            self.seen.add(v.message_id)
            self.mine.add(v.message_id)
            todo.append(v)
        if not self.empty:
            await self._lookup(todo, [
                work.lookups([v for v in part if isinstance(v, work.Valid)])
                if lookups is None else lookups for part, lookups in parts])
        if last is not None:
            self.writer.submit(last)
        self.tick("processed ids and index lookups")
        tasks, objects = self._candidates(todo)
        self.tick("candidates")
        scores = self._score(todo, tasks)
        s.scores["pairs"] += sum(len(c) for _, c in tasks)
        self.tick("scoring (workers)")
        self._decide(todo, tasks, objects, scores)
        self.tick("decide and merge")
        # Written once the next chunk has read what it needs (above).
        self.last = write.snapshot(self.state.writes, self.in_db, self.state.thresholds)
        self.state.writes = Writes()
        self.state.now = datetime.now(UTC)

    async def write_last(self) -> None:
        """Write the last chunk and wait for every write to be committed."""
        last, self.last = self.last, None
        if last is not None:
            await self.writer.wait()
            self.writer.submit(last)
        await self.writer.wait()

    def _committed(self, written: write.Snapshot | None, last: write.Snapshot) -> None:
        """Every chunk before `last` is committed, `written` the latest. Up to `hold`
        records, keep them, those of `written` as the text they were written as.
        Beyond, keep only what `last` holds: from here on each chunk reads the rest
        from the index, as it reads the children indexed before the load, and memory
        stays bounded (it grew about 4.4 GB a million records)."""
        self.seen, self.mine = self.mine, set()
        if len(self.state.children) <= self.hold:
            if written is not None:
                self.state.keep_written(written)
            return
        self.state.release(last)
        kept = self.state.children
        self.in_db = {cid: v for cid, v in self.in_db.items() if cid in kept}
        self.empty = False
        self.summary.released += 1

    async def _dead(self, bad: list[tuple[str, str, work.Bad]], writes: Writes) -> None:
        """Dead letters as `hub publish` + parking would store them (once each)."""
        if not bad:
            return
        parked = {row["message_id"] for row in await self.conn.fetch(
            write.lq("load_parked_dead"), [mid for _, mid, _ in bad])}
        routing_key = f"source.{self.source}"
        for path, mid, r in bad:
            self.summary.rejected.append((f"{path}: {r.where}", r.reason, r.error))
            if mid in parked or mid in self.seen:
                continue
            self.seen.add(mid)
            self.mine.add(mid)
            pid = str(uuid.uuid5(PARK_NAMESPACE, f"dead:{mid}"))
            writes.parked.append({
                "id": pid, "kind": "dead", "reason": r.reason, "source": self.source,
                "source_record_id": r.source_record_id, "source_version": None,
                "error": f"{r.where}: {r.error}", "raw": raw_text(r.raw.encode()),
                "routing_key": routing_key, "message_id": mid, "update": None,
                "candidates": [], "retry_of": None,
            })
            writes.audit.append((ACTOR, "decision.dead", None,
                                 f"{self.source}/{r.source_record_id}",
                                 {"reason": r.reason, "message_id": mid, "parked_id": pid}))

    async def _lookup(self, todo: list[work.Valid], parts: list[work.Lookups]) -> None:
        """What the index holds about these records (hub.db.store.load): children
        indexed before the load, and those the load has made and let go of (--hold)."""
        st, conn = self.state, self.conn
        sources = [v.source for v in todo]
        rids = [v.source_record_id for v in todo]
        for r in await conn.fetch(q("links_for"), sources, rids):
            key = (r["source"], r["source_record_id"])
            if key not in st.links:
                st.links[key] = SourceLink(r["child_id"], r["last_version"], r["severed"])
        nhs = [v.child["nhs_number"] for v in todo if v.child.get("nhs_number")]
        for r in await conn.fetch(q("invalidated_for"), nhs):
            st.invalidated.setdefault(r["nhs_number"], r["child_id"])
        ids = {link.child_id for link in st.links.values()} | set(st.invalidated.values())
        # What the workers made of each part: a part's keys and places are those of
        # all its valid records, a few more than `todo` looks up (records already
        # processed), which finds no candidate of any record in `todo`.
        places = [place for part in parts for place in part.places]
        for r in await conn.fetch(q("protected_for"), places):
            st.protect(r["address_key"], r["child_id"])
            if r["pending"]:  # a parked update's (migration 0020)
                st.pending[r["child_id"]] = r["authority"]
            ids.add(r["child_id"])
        for r in await conn.fetch(q("not_a_match_for"), sources, rids):
            st.not_a_match.setdefault((r["source"], r["source_record_id"]), set()).add(
                r["child_id"])
        # Keys only shielded records carry are looked up as their PROTECTED copies,
        # in the small partial index (hub.match.blocking), as the pipeline does.
        plain = SEP.join(part.plain for part in parts if part.plain)
        copies = SEP.join(part.guarded for part in parts if part.guarded)
        odd = [k for part in parts for k in part.odd]
        odd_copies = [k for part in parts for k in part.odd_guarded]
        rows = await conn.fetch(q("children_for_keys"), plain, copies, False, FORM_PREFIX,
                                odd, odd_copies, CROWDED_POSTCODE)
        wanted = ids.difference(st.children, (r["child_id"] for r in rows))
        if wanted:
            rows += await conn.fetch(q("records_for"), sorted(wanted))
        for r in rows:
            cid = r["child_id"]
            if cid not in st.children:
                # With its normal forms it is scored without its record: decoded only
                # if a decision reads it (hub.batch.StoredRecord).
                match = compact.decode(r["prepared"], r["version"])
                record = (json.loads(r["record_json"]) if match is None
                          else StoredRecord(r["record_json"], cid))
                st.children[cid] = ChildRow(cid, r["version"], record, r["shielded"],
                                            r["shielding_authority"],
                                            r["restricted_at_origin"], r["severed"], match)
                self.in_db[cid] = r["version"]
            for k in r.get("keys") or ():
                st.key_index.add(k[1:] if k[0] == PROTECTED else k, cid)

    def _candidates(
        self, todo: list[work.Valid]
    ) -> tuple[list[tuple[int, tuple[int, ...]]], list[Any]]:
        """Per record, what to score it against: targets 0..n-1 are the chunk's own
        records (by their keys, earlier ones only), the rest are children the index
        holds (by the key index, as BatchState.facts finds them)."""
        st = self.state
        # Only the plain kinds while the index holds no key of the others (they would
        # find no one; nor do they find the chunk's own records, whose keys are plain).
        every = st.key_index.guarded > 0
        tasks, found = chunk_candidates(
            [v.qkeys if every else v.qkeys[:v.nplain] for v in todo], [v.ikeys for v in todo],
            st.key_index, st.children)
        # Its normal forms when the state holds them, else its record.
        targets: list[Any] = [v.packed for v in todo]
        targets += [row.record if row.match is None else work.pack(row.match) for row in found]
        objects: list[Any] = [None] * len(todo)
        objects += [(row.record, row.match) for row in found]
        self.targets = targets
        return tasks, objects

    def _score(self, todo: list[work.Valid],
               tasks: list[tuple[int, tuple[int, ...]]]) -> Iterator[list[Any]]:
        """Each record's scores, in file order. From the workers, part by part as they
        finish: the records of the first part are decided while the workers score the
        rest (this process waited for all of them, 27-34 s of 138-160 at 324,182
        records, while it had nothing else to do)."""
        pairs = sum(len(c) for _, c in tasks)
        if not pairs:
            return iter([[] for _ in tasks])
        targets, self.targets = self.targets, []
        if pairs < 2000 or self.workers < 2:
            return iter(work.score_pairs(dict(enumerate(targets)), tasks))
        jobs = []
        for part in self._parts(tasks):
            needed = {t for u, cands in part for t in (u, *cands)}
            jobs.append(({t: targets[t] for t in needed}, part))
        return self._scored(self.pool[1].imap(work.score_part, jobs))

    def _scored(self, parts: Iterator[list[list[Any]]]) -> Iterator[list[Any]]:
        while True:
            self.tick("decide and merge")
            part = next(parts, None)  # waits for the workers
            self.tick("scoring (workers)")
            if part is None:
                return
            yield from part

    def _decide(self, todo: list[work.Valid], tasks: list[tuple[int, tuple[int, ...]]],
                objects: list[Any], scores: Iterator[list[Any]]) -> None:
        st, m, s = self.state, self.matcher, self.summary
        created: dict[int, tuple[Any, Any]] = {}
        for (r, v), task, mine in zip(enumerate(todo), tasks, scores, strict=True):
            m.cache.clear()
            for t, sc in zip(task[1], mine, strict=True):
                for obj in (objects[t] if t >= len(todo) else created.get(t, ())):
                    if obj is not None:
                        m.cache[id(obj)] = sc
            prep = work.unpack(v.packed)
            m.current[0], m.current[1] = v.child, prep
            st.current_child, st.current_qkeys, st.current_ikeys = v.child, v.qkeys, v.ikeys
            st.current_nplain = v.nplain
            st.current_prepared = prep
            st.current_places = (frozenset(v.places), frozenset(v.contacts))
            update = LoadedUpdate(v.source, v.source_record_id, v.source_version,
                                  v.restricted, v.child, v.raw)
            outcome = st.handle(update.as_update(), v.message_id, v.raw)
            s.outcomes[f"{outcome.action}:{outcome.reason}"] += 1
            if outcome.action == CREATE and outcome.child_id:
                row = st.children[outcome.child_id]
                created[r] = (row.record, row.match)
        m.cache.clear()
        m.current[0] = m.current[1] = st.current_child = st.current_prepared = None
        st.end_chunk()


def print_progress(s: Summary) -> None:
    print(s.line(), file=sys.stderr, flush=True)
