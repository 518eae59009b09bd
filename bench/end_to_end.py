"""The hub end to end beside the broker ceiling, in one run (`hub bench`).

1. The ceiling (bench.broker_ceiling): as many persistent messages as the hub's
   timed updates, of their mean size, published with confirms to a quorum queue
   and consumed with acks by a process that does nothing else.
2. The hub: a scratch database holding an index of N children (built, or cloned
   from a kept one with --reuse-db), a scratch vhost, councils added with
   `hub council add`, `hub run` as real processes. A source publishes a feed about
   the indexed population (hub.synth central feed: mostly updates that link to
   indexed children, some new births that create, a few that go to review, some
   about shielded children) at full speed; the rate is updates / (first publish ->
   every update committed and every notification published, the outbox empty).
   No council consumes meanwhile (the notifications wait in their queues, counted
   after the phase): the councils read on their own machines, and a consumer here
   would take the two cores' time from the hub (--councils-at-full-speed runs it).
3. Latency at half that rate: a paced source publishes more of the feed while a
   separate process consumes every council's queue; per notification, the time
   it reached its council minus the time its update was published (joined
   through child_versions.message_id). The broker's own publish -> consume
   latency at the same pace is measured too, for reference.
4. Peak memory (VmHWM) of each hub process; with --memory-children, a second run
   on a smaller index, to compare the pipeline processes' peak memory.

Everything it creates (databases, vhosts, the worker login, processes) is
removed at the end, also on failure or Ctrl-C.

    python -m bench.end_to_end --reuse-db hub_bench_1m
    hub bench --reuse-db hub_bench_1m --memory-children 100000
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import statistics
import sys
import tempfile
import time
import uuid
from collections import Counter
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import aio_pika
import asyncpg

from bench import broker_ceiling
from bench.broker_ceiling import percentile
from bench.proc import cpu_seconds
from hub import loop as hub_loop
from hub import native

ROOT = Path(__file__).resolve().parent.parent
TARGET_RATE_RATIO = 0.5
TARGET_LATENCY_RATIO = 10.0
TARGET_MEMORY_CHANGE = 0.10
WINDOW = 256  # confirms outstanding, as `hub publish` and the ceiling's publisher
DEFAULT_SERVER_URL = "postgresql://postgres@127.0.0.1:5432/postgres"


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


@dataclass
class Options:
    amqp_url: str = broker_ceiling.DEFAULT_AMQP_URL
    database_url: str = DEFAULT_SERVER_URL  # the server; scratch databases beside
    children: int = 1_000_000
    reuse_db: str | None = None
    updates: int = 15_000
    latency_updates: int = 4_500
    warmup: int = 500
    # What measured best here (README, Performance): a pipeline process per core, one
    # pipeline each, batches of 500. Batches wait on each other's advisory locks, so
    # more pipelines per process mostly wait, and bigger batches wait less often.
    processes: int = 2
    workers: int = 1
    batch_size: int | None = 500
    memory_children: int = 0  # 0: no second run
    memory_reuse_db: str | None = None
    seed: int = 1
    log_dir: str | None = None
    profile: str | None = None  # a folder: py-spy records the full-speed phase there
    # The councils' consumer beside the hub at full speed too (as before the
    # twenty-fourth session), not only for the latency phase.
    councils_at_full_speed: bool = False

    @property
    def feed_needed(self) -> int:
        return self.warmup + self.updates + self.latency_updates


# -- scratch resources ---------------------------------------------------------------


def _url_with_db(server_url: str, name: str) -> str:
    return urlunsplit(urlsplit(server_url)._replace(path=f"/{name}"))


async def _admin(server_url: str) -> asyncpg.Connection:
    return await asyncpg.connect(_url_with_db(server_url, "postgres"), timeout=10)


async def _clone(server_url: str, template: str, name: str) -> None:
    """CREATE DATABASE ... TEMPLATE: refused while anyone is connected to the
    template, so wait a while for them."""
    deadline = time.monotonic() + 300
    while True:
        admin = await _admin(server_url)
        try:
            # FILE_COPY: a checkpoint and a file copy, much faster than WAL-logging
            # every block of a multi-gigabyte index.
            await admin.execute(
                f'CREATE DATABASE "{name}" TEMPLATE "{template}" STRATEGY = FILE_COPY')
            return
        except asyncpg.ObjectInUseError:
            if time.monotonic() > deadline:
                raise RuntimeError(f"{template} stayed in use; cannot clone it") from None
            log(f"{template} is in use; waiting to clone it")
        finally:
            await admin.close()
        await asyncio.sleep(5)


async def _drop_db(server_url: str, name: str) -> None:
    admin = await _admin(server_url)
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


async def make_index(opts: Options, children: int, reuse: str | None) -> str:
    """A scratch database holding the index and its feed (bench_feed); its name."""
    name = f"hub_bench_e2e_{uuid.uuid4().hex[:8]}"
    if reuse:
        log(f"cloning {reuse} into {name}")
        t0 = time.perf_counter()
        await _clone(opts.database_url, reuse, name)
        log(f"cloned in {time.perf_counter() - t0:.0f}s")
    else:
        from bench import matching  # the population generator: imported only to build

        admin = await _admin(opts.database_url)
        try:
            await admin.execute(f'CREATE DATABASE "{name}"')
        finally:
            await admin.close()
        log(f"building {name}: {children:,} children")
        try:
            raw = await asyncpg.connect(_url_with_db(opts.database_url, name), timeout=10)
            try:
                await matching.build(raw, children, opts.feed_needed, opts.seed)
            finally:
                await raw.close()
        except BaseException:
            await _drop_db(opts.database_url, name)
            raise
    return name


async def _ctl(*args: str) -> None:
    await broker_ceiling._ctl(*args)


async def make_vhost(amqp_url: str) -> tuple[str, str]:
    vhost = f"hub_bench_{uuid.uuid4().hex[:8]}"
    await _ctl("add_vhost", vhost)
    try:
        await _ctl("set_permissions", "-p", vhost, broker_ceiling._user(amqp_url),
                   ".*", ".*", ".*")
    except BaseException:
        await _ctl("delete_vhost", vhost)
        raise
    return vhost, broker_ceiling._with_vhost(amqp_url, vhost)


# -- the feed and the source ------------------------------------------------------------


async def read_feed(db_url: str, needed: int) -> list[dict[str, Any]]:
    conn = await asyncpg.connect(db_url, timeout=10)
    try:
        rows = await conn.fetch("SELECT body::text FROM bench_feed ORDER BY seq")
    finally:
        await conn.close()
    if len(rows) < needed:
        raise RuntimeError(
            f"the index's feed holds {len(rows):,} updates and this run needs {needed:,}"
            " (warm-up + timed + latency): build a new index, or ask for fewer")
    return [json.loads(r[0]) for r in rows[:needed]]


def encode(updates: list[dict[str, Any]]) -> list[tuple[str, str, bytes]]:
    """(routing key, message id, body) as `hub publish` would send each update."""
    from hub.broker.connection import message_id_for
    from hub.publishing import canonical_body

    out = []
    for u in updates:
        key = f"source.{u['source']}"
        body = canonical_body(u)
        out.append((key, message_id_for(key, body), body))
    return out


async def publish(amqp_url: str, items: list[tuple[str, str, bytes]],
                  rate: float | None = None) -> tuple[dict[str, float], float, float]:
    """Publish with confirms (at most WINDOW outstanding), at full speed or paced at
    `rate`; ({message id: publish time}, first publish, last confirm)."""
    from hub.broker import topology as topo
    from hub.broker.connection import message
    from hub.publishing import user_of

    user = user_of(amqp_url)
    sent: dict[str, float] = {}
    conn = await aio_pika.connect(amqp_url)
    async with conn:
        channel = await conn.channel(publisher_confirms=True, on_return_raises=True)
        exchange = await channel.get_exchange(topo.INGEST, ensure=False)
        pending: set[asyncio.Future[Any]] = set()
        start = time.time()
        for i, (key, mid, body) in enumerate(items):
            if rate:
                delay = start + i / rate - time.time()
                if delay > 0:
                    await asyncio.sleep(delay)
            if len(pending) >= WINDOW:
                finished, pending = await asyncio.wait(
                    pending, return_when=asyncio.FIRST_COMPLETED)
                for f in finished:
                    f.result()
            sent.setdefault(mid, time.time())
            msg = message(body, message_id=mid, user_id=user)
            pending.add(asyncio.ensure_future(exchange.publish(msg, routing_key=key)))
        for outcome in await asyncio.gather(*pending, return_exceptions=True):
            if isinstance(outcome, BaseException):
                raise outcome
        return sent, start, time.time()


# -- the running hub ----------------------------------------------------------------------


def _status_of(pid: int) -> dict[str, int]:
    """VmHWM and VmRSS of a process, in KiB (empty once it has gone)."""
    out: dict[str, int] = {}
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(("VmHWM:", "VmRSS:")):
                    key, value = line.split(":", 1)
                    out[key] = int(value.split()[0])
    except OSError:
        pass
    return out


def listener_pid(url: str, default_port: int) -> int | None:
    """The process listening on a URL's port on this machine (the broker, the
    database server), or None when it is elsewhere or unknown."""
    import re
    import subprocess

    parts = urlsplit(url)
    if parts.hostname not in ("127.0.0.1", "localhost", "::1"):
        return None
    try:
        out = subprocess.run(["ss", "-ltnpH", f"sport = :{parts.port or default_port}"],
                             capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    found = re.search(r"pid=(\d+)", out)
    return int(found.group(1)) if found else None


class CpuMeter:
    """CPU seconds spent by groups of processes between start() and stop(). A group
    is a list of pids or a function giving them, asked again at stop(): a process
    that started in between (a database session the pool opened) counts whole."""

    def __init__(self, groups: dict[str, Any]) -> None:
        self.groups = groups
        self.before: dict[int, float] = {}

    async def _pids(self, group: Any) -> list[int]:
        found = group() if callable(group) else group
        if asyncio.iscoroutine(found):
            found = await found
        return list(found)

    async def start(self) -> None:
        for group in self.groups.values():
            for pid in await self._pids(group):
                self.before[pid] = cpu_seconds(pid)

    async def stop(self) -> dict[str, float]:
        out = {}
        for name, group in self.groups.items():
            pids = set(await self._pids(group)) | (set(group) if isinstance(group, list) else set())
            out[name] = round(sum(cpu_seconds(p) - self.before.get(p, 0.0) for p in pids
                                  if cpu_seconds(p)), 2)
        return out


def _children_of(pid: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        # pid (comm) state ppid ...: comm may hold spaces, so split after its ')'
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[1]) == pid:
            found.append(int(entry))
    return sorted(found)


@dataclass
class Hub:
    proc: asyncio.subprocess.Process
    log_path: Path

    def memory(self) -> dict[str, Any]:
        """Peak RSS (MiB) of the hub's processes: the one started and its children."""
        main = self.proc.pid
        kids = _children_of(main)
        peak = {pid: _status_of(pid).get("VmHWM", 0) / 1024 for pid in [main, *kids]}
        return {
            "main_pid": main,
            "main_peak_mib": round(peak[main], 1),
            "pipeline_pids": kids,
            "pipeline_peak_mib": [round(peak[p], 1) for p in kids],
            # the pipeline runs in the main process when there are no children
            "worker_peak_mib": round(max((peak[p] for p in kids), default=peak[main]), 1),
            "total_peak_mib": round(sum(peak.values()), 1),
        }

    async def stop(self) -> int:
        if self.proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(self.proc.wait(), 90)
            except TimeoutError:
                for pid in _children_of(self.proc.pid):
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGKILL)
                self.proc.kill()
                await self.proc.wait()
        assert self.proc.returncode is not None
        return self.proc.returncode


def _hub_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "hub.cli.main", *args]


async def _hub_cli(env: dict[str, str], *args: str) -> str:
    proc = await asyncio.create_subprocess_exec(
        *_hub_cmd(*args), env=env, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE)
    out, err = await proc.communicate()
    if proc.returncode != 0:
        raise RuntimeError(f"hub {' '.join(args)}: {err.decode().strip()}")
    return out.decode()


async def start_hub(env: dict[str, str], opts: Options, log_path: Path, amqp_url: str,
                    expected_consumers: int) -> Hub:
    from hub.broker import topology as topo
    from hub.broker.connection import queue_depth

    with open(log_path, "ab") as out:  # noqa: ASYNC230 - handed to the child process
        proc = await asyncio.create_subprocess_exec(
            *_hub_cmd("run", "--workers", str(opts.workers), "--processes", str(opts.processes)),
            env=env, stdout=out, stderr=out)
    hub = Hub(proc, log_path)
    deadline = time.monotonic() + 300  # loading the matcher reads the whole index
    conn = await aio_pika.connect(amqp_url)
    try:
        channel = await conn.channel()
        while True:
            depth = await queue_depth(channel, topo.INBOUND)
            if depth and depth[1] >= expected_consumers:
                return hub
            if proc.returncode is not None or time.monotonic() > deadline:
                await hub.stop()
                raise RuntimeError(f"hub run did not start its consumers; see {log_path}")
            await asyncio.sleep(0.5)
    finally:
        await conn.close()


class Progress:
    """What the database says has been done: messages processed, outbox pending."""

    def __init__(self, conn: asyncpg.Connection, db_name: str) -> None:
        self.conn = conn
        self.db_name = db_name
        # What the hub's database sessions were doing at each poll (pg_stat_activity):
        # running a statement, waiting for a lock (advisory: one writer per child),
        # waiting for anything else (I/O, WAL), or idle (waiting for the hub).
        self.sessions: Counter[str] = Counter()

    async def sample_sessions(self) -> None:
        rows = await self.conn.fetch(
            "SELECT CASE WHEN state = 'active' AND wait_event_type = 'Lock' THEN 'lock_wait'"
            " WHEN state = 'active' AND wait_event_type IS NOT NULL THEN 'other_wait'"
            " WHEN state = 'active' THEN 'running'"
            " WHEN state = 'idle in transaction' THEN 'in_transaction'"
            " ELSE 'idle' END AS what, count(*) AS n"
            " FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()"
            " AND backend_type = 'client backend' GROUP BY 1", self.db_name)
        for r in rows:
            self.sessions[r["what"]] += r["n"]

    async def counts(self) -> tuple[int, int]:
        processed = await self.conn.fetchval("SELECT count(*) FROM processed_messages")
        pending = await self.conn.fetchval("SELECT count(*) FROM outbox WHERE sent_at IS NULL")
        # Every update of the feed is valid: one that failed would never be processed.
        failed = await self.conn.fetchval("SELECT count(*) FROM parked WHERE kind = 'dead'")
        if failed:
            raise RuntimeError(f"{failed} updates were dead-lettered (see the hub's log)")
        return int(processed), int(pending)

    async def until_done(self, expected: int, hub: Hub, timeout: float = 3600) -> float:
        """Poll until `expected` messages are processed and the outbox is empty;
        the time it was first seen so."""
        deadline = time.monotonic() + timeout
        shown = time.monotonic()
        while True:
            processed, pending = await self.counts()
            now = time.time()
            if processed >= expected and pending == 0:
                return now
            if hub.proc.returncode is not None:
                raise RuntimeError(f"hub run exited {hub.proc.returncode}; see {hub.log_path}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"the hub did not finish: {processed:,}/{expected:,}"
                                   f" processed, {pending:,} notifications pending")
            if time.monotonic() - shown > 10:
                log(f"  ... {processed:,}/{expected:,} processed, {pending:,} in the outbox")
                shown = time.monotonic()
            await self.sample_sessions()
            await asyncio.sleep(0.1)


# -- the councils' consumer (a separate process) -----------------------------------------


def _consumer_main(url: str, queues: list[str], out_path: str) -> None:
    hub_loop.run(_consume_notifications(url, queues, out_path))


async def _consume_notifications(url: str, queues: list[str], out_path: str) -> None:
    """Consume every council queue, acking each message, until SIGTERM; then write
    (received at, child_id, version, event) per notification."""
    received: list[tuple[float, bytes]] = []
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    conn = await aio_pika.connect(url)
    async with conn:
        channel = await conn.channel()
        await channel.set_qos(prefetch_count=1000)

        async def on_message(message: aio_pika.abc.AbstractIncomingMessage) -> None:
            received.append((time.time(), message.body))
            await message.ack()

        for name in queues:
            q = await channel.get_queue(name, ensure=True)
            await q.consume(on_message)
        print(json.dumps({"ready": True}), flush=True)
        await stop.wait()
    with open(out_path, "w") as f:  # noqa: ASYNC230 - once, at the end
        for at, body in received:
            n = json.loads(body)
            f.write(f"{at:.6f}\t{n.get('child_id')}\t{n.get('version')}\t{n.get('event')}\n")
    print(json.dumps({"received": len(received)}), flush=True)


class Councils:
    def __init__(self, proc: asyncio.subprocess.Process, out_path: Path) -> None:
        self.proc, self.out_path = proc, out_path

    @classmethod
    async def start(cls, url: str, queues: list[str], work: Path) -> Councils:
        out_path = work / "notifications.tsv"
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bench.end_to_end", "--consume-notifications",
            "--amqp-url", url, "--queues", ",".join(queues), "--out", str(out_path),
            stdout=asyncio.subprocess.PIPE, cwd=str(ROOT))
        assert proc.stdout is not None
        line = await asyncio.wait_for(proc.stdout.readline(), 60)
        if b"ready" not in line:
            raise RuntimeError("the councils' consumer did not start")
        return cls(proc, out_path)

    async def stop(self) -> list[tuple[float, str, int, str]]:
        if self.proc.returncode is None:
            self.proc.send_signal(signal.SIGTERM)
            await asyncio.wait_for(self.proc.wait(), 120)
        rows = []
        if self.out_path.exists():
            for line in self.out_path.read_text().splitlines():
                at, cid, version, event = line.split("\t")
                rows.append((float(at), cid, int(version), event))
        return rows

    async def kill(self) -> None:
        if self.proc.returncode is None:
            self.proc.kill()
            await self.proc.wait()


async def queues_empty(amqp_url: str, queues: list[str], timeout: float = 120) -> None:
    from hub.broker.connection import queue_depth

    deadline = time.monotonic() + timeout
    conn = await aio_pika.connect(amqp_url)
    try:
        channel = await conn.channel()
        while time.monotonic() < deadline:
            depths = [await queue_depth(channel, q) for q in queues]
            if all(d is None or d[0] == 0 for d in depths):
                await asyncio.sleep(0.5)  # deliveries in flight reach the consumer
                return
            await asyncio.sleep(0.2)
    finally:
        await conn.close()
    raise RuntimeError("the council queues did not drain")


async def notifications_waiting(amqp_url: str, queues: list[str]) -> int:
    from hub.broker.connection import queue_depth

    async with await aio_pika.connect(amqp_url) as conn:
        channel = await conn.channel()
        depths = [await queue_depth(channel, q) for q in queues]
    return sum(d[0] for d in depths if d)


async def purge(amqp_url: str, queues: list[str]) -> None:
    async with await aio_pika.connect(amqp_url) as conn:
        channel = await conn.channel()
        for name in queues:
            await (await channel.get_queue(name, ensure=False)).purge()


# -- one run of the hub on one index ------------------------------------------------------


def _ms_stats(values: list[float]) -> dict[str, float]:
    values = sorted(values)
    if not values:
        return {"count": 0}
    return {"count": len(values), "median_ms": statistics.median(values),
            "p99_ms": percentile(values, 0.99), "max_ms": values[-1]}


async def hub_run(opts: Options, db_name: str, with_latency: bool = True) -> dict[str, Any]:
    """Warm-up, the full-speed phase, and (with_latency) the paced phase, on one index."""
    from hub.admin import setup
    from hub.config import Settings
    from hub.db.roles import drop_scratch_worker, scratch_worker

    db_url = _url_with_db(opts.database_url, db_name)
    feed = await read_feed(db_url, opts.feed_needed)
    vhost, amqp_url = await make_vhost(opts.amqp_url)
    work = Path(opts.log_dir or tempfile.mkdtemp(prefix="hub-bench-"))
    work.mkdir(parents=True, exist_ok=True)  # noqa: ASYNC240 - once, before anything runs
    login: tuple[str, str] | None = None
    hub: Hub | None = None
    councils: Councils | None = None
    monitor: asyncpg.Connection | None = None
    result: dict[str, Any] = {"database": db_name, "vhost": vhost}
    try:
        s = Settings(amqp_url=amqp_url, database_url=db_url)
        log("hub setup (migrations, matching forms, topology)")
        result["setup"] = await setup(s)
        login = await scratch_worker(db_url)
        env = {k: v for k, v in os.environ.items()
               if k not in ("HUB_DATABASE_URL_FILE", "HUB_AMQP_URL_FILE")}
        env.update(HUB_AMQP_URL=amqp_url, HUB_DATABASE_URL=login[0] if login else db_url)
        if opts.batch_size:
            env["HUB_BATCH_SIZE"] = str(opts.batch_size)
        monitor = await asyncpg.connect(db_url, timeout=10)
        meta = json.loads(await monitor.fetchval(
            "SELECT value::text FROM bench_meta WHERE key = 'build'"))
        result["children"] = meta["children"]
        result["block_keys"] = meta["block_keys"]
        las = sorted({u["child"].get("address", {}).get("la") for u in feed} - {None})
        for la in las:  # an operator's command: as the setup login, not the worker
            await _hub_cli({**env, "HUB_DATABASE_URL": db_url}, "council", "add", la)
        queues = [f"council.{la}" for la in las]
        log(f"councils added: {', '.join(las)}")

        warm, timed, paced = (encode(feed[:opts.warmup]),
                              encode(feed[opts.warmup:opts.warmup + opts.updates]),
                              encode(feed[opts.warmup + opts.updates:]))
        result["mean_body_bytes"] = statistics.fmean(len(b) for _, _, b in timed)
        log_path = work / f"hub-{db_name}.log"
        hub = await start_hub(env, opts, log_path, amqp_url, opts.processes * opts.workers)
        result["hub_log"] = str(log_path)
        if opts.councils_at_full_speed:
            councils = await Councils.start(amqp_url, queues, work)
        progress = Progress(monitor, db_name)
        expected: set[str] = set()

        log(f"warm-up: {len(warm):,} updates")
        sent, _, _ = await publish(amqp_url, warm)
        expected |= sent.keys()
        await progress.until_done(len(expected), hub)

        log(f"full speed: {len(timed):,} updates")
        async def backends() -> list[int]:
            assert monitor is not None
            return [r[0] for r in await monitor.fetch(
                "SELECT pid FROM pg_stat_activity WHERE datname = $1"
                " AND pid <> pg_backend_pid()", db_name)]

        broker = listener_pid(opts.amqp_url, 5672)
        meter = CpuMeter({
            "hub": [hub.proc.pid, *_children_of(hub.proc.pid)],
            "postgres_backends": backends,
            "broker": [broker] if broker else [],
            "source_and_bench": [os.getpid()],
        })
        await meter.start()
        recorder = None
        if opts.profile:
            from bench.pyspy import Recorder

            Path(opts.profile).mkdir(parents=True, exist_ok=True)  # noqa: ASYNC240 - once
            recorder = Recorder(hub.proc.pid, Path(opts.profile) / f"{db_name}-full-speed.txt")
            await recorder.start()
        progress.sessions.clear()
        sent, first, last_confirm = await publish(amqp_url, timed)
        expected |= sent.keys()
        done_at = await progress.until_done(len(expected), hub)
        sessions = dict(progress.sessions)
        cpu = await meter.stop()
        if recorder is not None:
            result["profile"] = str(await recorder.stop())
            log(f"  profile: {result['profile']}")
        rate = len(sent) / (done_at - first)
        result["full_speed"] = {
            "updates": len(timed), "distinct_messages": len(sent),
            "publish_seconds": last_confirm - first, "seconds": done_at - first,
            "rate": rate,
            # CPU seconds per 1,000 updates; the broker's includes anyone else's use of it
            "cpu_per_1000": {k: round(1000 * v / len(sent), 2) for k, v in cpu.items()},
            # database sessions busy (running / waiting for a lock / other), sampled
            "db_sessions": sessions,
        }
        log(f"  CPU s per 1,000 updates: {result['full_speed']['cpu_per_1000']}")
        log(f"  {rate:.0f} updates/s end to end ({done_at - first:.1f}s)")
        result["memory_after_full_speed"] = hub.memory()
        if councils is None:
            waiting = await notifications_waiting(amqp_url, queues)
            result["full_speed"]["notifications_waiting"] = waiting
            log(f"  {waiting:,} notifications waiting in the councils' queues")
            if with_latency and paced:  # the latency phase starts from empty queues
                await purge(amqp_url, queues)
                councils = await Councils.start(amqp_url, queues, work)

        if with_latency and paced:
            assert councils is not None
            pace = rate / 2
            log(f"half rate: {len(paced):,} updates at {pace:.0f}/s")
            sent2, first2, _ = await publish(amqp_url, paced, rate=pace)
            expected |= sent2.keys()
            done2 = await progress.until_done(len(expected), hub)
            await queues_empty(amqp_url, queues)
            notes = await councils.stop()
            versions = await monitor.fetch(
                "SELECT child_id::text, version, message_id FROM child_versions"
                " WHERE message_id = ANY($1::text[])", list(sent2))
            origin = {(r[0], r[1]): sent2[r[2]] for r in versions}
            latencies = [1000 * (at - origin[(cid, v)]) for at, cid, v, _ in notes
                         if (cid, v) in origin]
            commits = [r[0] for r in await monitor.fetch(
                "SELECT latency_ms FROM processed_messages WHERE message_id = ANY($1::text[])"
                " AND latency_ms IS NOT NULL", list(sent2))]
            result["half_rate"] = {
                "rate": pace, "updates": len(paced), "distinct_messages": len(sent2),
                "achieved_rate": len(sent2) / (done2 - first2),
                "notifications": _ms_stats(latencies),
                "publish_to_commit": _ms_stats([float(c) for c in commits]),
            }
            h = result["half_rate"]["notifications"]
            if h["count"]:
                log(f"  publish -> notification: median {h['median_ms']:.0f} ms,"
                    f" p99 {h['p99_ms']:.0f} ms ({h['count']:,} notifications)")
        result["memory"] = hub.memory()
        text = log_path.read_text(errors="replace")  # noqa: ASYNC240 - once, at the end
        result["batches_failed"] = text.count('"batch_failed"') + text.count('"batch_aborted"')
        result["decisions"] = dict(Counter({r[0]: r[1] for r in await monitor.fetch(
            "SELECT outcome, count(*) FROM processed_messages GROUP BY 1 ORDER BY 2 DESC")}
        ).most_common())
        code = await hub.stop()
        result["hub_exit"] = code
        if code != 0:
            raise RuntimeError(f"hub run exited {code}; see {log_path}")
        return result
    finally:
        if councils is not None:
            await councils.kill()
        if hub is not None:
            await hub.stop()
        if monitor is not None:
            await monitor.close()
        if login:
            with contextlib.suppress(Exception):
                await drop_scratch_worker(db_url, login[1])
        with contextlib.suppress(Exception):
            await _ctl("delete_vhost", vhost)


# -- the whole benchmark ------------------------------------------------------------------


async def run(opts: Options) -> dict[str, Any]:
    t0 = time.perf_counter()
    created: list[str] = []
    result: dict[str, Any] = {"options": asdict(opts), "native": native.describe()}
    try:
        name = await make_index(opts, opts.children, opts.reuse_db)
        created.append(name)
        feed = encode((await read_feed(_url_with_db(opts.database_url, name),
                                       opts.feed_needed))[opts.warmup:opts.warmup + opts.updates])
        size = round(statistics.fmean(len(b) for _, _, b in feed))
        log(f"broker ceiling: {len(feed):,} messages of {size} B")
        broker = listener_pid(opts.amqp_url, 5672)
        meter = CpuMeter({"broker": [broker] if broker else []})
        await meter.start()
        result["ceiling"] = await broker_ceiling.measure(opts.amqp_url, len(feed), size)
        result["ceiling"]["broker_cpu_per_1000"] = round(
            1000 * (await meter.stop())["broker"] / len(feed), 2)
        log(f"  {result['ceiling']['end_to_end_rate']:.0f} msg/s")
        result["hub"] = await hub_run(opts, name)
        await _drop_db(opts.database_url, name)
        created.remove(name)
        half = result["hub"].get("half_rate")
        if half:
            log(f"broker at the same pace: {half['updates']:,} messages at {half['rate']:.0f}/s")
            result["ceiling_paced"] = await broker_ceiling.measure(
                opts.amqp_url, half["updates"], size, rate=half["rate"])
        if opts.memory_children:
            small = await make_index(opts, opts.memory_children, opts.memory_reuse_db)
            created.append(small)
            result["hub_small"] = await hub_run(replace(opts), small, with_latency=True)
    finally:
        for name in created:
            with contextlib.suppress(Exception):
                await _drop_db(opts.database_url, name)
    result["figures"] = figures(result)
    result["wall_seconds"] = time.perf_counter() - t0
    return result


def figures(r: dict[str, Any]) -> dict[str, Any]:
    """The headline figures and the targets (ratios within this run)."""
    c, h = r["ceiling"], r["hub"]
    out: dict[str, Any] = {
        "ceiling_rate": c["end_to_end_rate"],
        "hub_rate": h["full_speed"]["rate"],
        "rate_ratio": h["full_speed"]["rate"] / c["end_to_end_rate"],
        "broker_p50_ms": c["latency_median_ms"],
        "broker_p99_ms": c["latency_p99_ms"],
        "worker_peak_mib": h["memory"]["worker_peak_mib"],
        "total_peak_mib": h["memory"]["total_peak_mib"],
    }
    out["rate_ok"] = out["rate_ratio"] >= TARGET_RATE_RATIO
    notes = h.get("half_rate", {}).get("notifications", {})
    if notes.get("count"):
        out["hub_p50_ms"] = notes["median_ms"]
        out["hub_p99_ms"] = notes["p99_ms"]
        out["latency_ratio"] = notes["p99_ms"] / c["latency_p99_ms"]
        out["latency_ok"] = out["latency_ratio"] <= TARGET_LATENCY_RATIO
    if "ceiling_paced" in r:
        out["broker_paced_p50_ms"] = r["ceiling_paced"]["latency_median_ms"]
        out["broker_paced_p99_ms"] = r["ceiling_paced"]["latency_p99_ms"]
        if notes.get("count"):
            out["latency_ratio_paced"] = notes["p99_ms"] / r["ceiling_paced"]["latency_p99_ms"]
    if "hub_small" in r:
        small = r["hub_small"]["memory"]["worker_peak_mib"]
        out["small_children"] = r["hub_small"]["children"]
        out["small_worker_peak_mib"] = small
        out["memory_change"] = (out["worker_peak_mib"] - small) / small
        out["memory_ok"] = abs(out["memory_change"]) <= TARGET_MEMORY_CHANGE
    return out


def _verdict(ok: bool) -> str:
    return "meets" if ok else "MISSES"


def format_result(r: dict[str, Any]) -> str:
    f, c, h = r["figures"], r["ceiling"], r["hub"]
    o = r["options"]
    fs = h["full_speed"]
    lines = [
        f"hub bench: {h['children']:,} children indexed ({h['block_keys']:,} blocking keys);"
        f" {fs['updates']:,} updates timed after {o['warmup']:,} of warm-up;"
        f" hub run --processes {o['processes']} --workers {o['workers']}"
        + (f", batch {o['batch_size']}" if o["batch_size"] else "")
        + f"; matching path {r['native']}",
        "",
        f"{'':34}{'rate':>12}{'p50':>11}{'p99':>11}",
        f"{'broker ceiling (quorum, confirms)':34}{f['ceiling_rate']:8.0f} /s"
        f"{f['broker_p50_ms']:8.0f} ms{f['broker_p99_ms']:8.0f} ms"
        f"   {c['n']:,} messages of {c['size']} B, full speed",
    ]
    if "broker_paced_p99_ms" in f:
        lines.append(
            f"{'broker at the hub latency pace':34}{r['ceiling_paced']['paced_rate']:8.0f} /s"
            f"{f['broker_paced_p50_ms']:8.0f} ms{f['broker_paced_p99_ms']:8.0f} ms")
    lat = ""
    if "hub_p99_ms" in f:
        half = h["half_rate"]
        lat = f"{f['hub_p50_ms']:8.0f} ms{f['hub_p99_ms']:8.0f} ms"
    lines.append(f"{'hub end to end':34}{f['hub_rate']:8.0f} /s{lat}"
                 + ("   latency: publish -> council, at half the max rate" if lat else ""))
    lines += [
        "",
        f"hub / ceiling rate:        {f['rate_ratio']:6.2f}   ({_verdict(f['rate_ok'])} the"
        f" target >= {TARGET_RATE_RATIO})",
    ]
    if "latency_ratio" in f:
        half = h["half_rate"]
        lines += [
            f"hub p99 / broker p99:      {f['latency_ratio']:6.2f}   ({_verdict(f['latency_ok'])}"
            f" the target <= {TARGET_LATENCY_RATIO:g}); against the broker at the same pace:"
            f" {f.get('latency_ratio_paced', float('nan')):.1f}",
            f"  half rate: {half['rate']:.0f} updates/s offered, {half['achieved_rate']:.0f}/s"
            f" done; {half['notifications']['count']:,} notifications; publish -> commit"
            f" median {half['publish_to_commit']['median_ms']:.0f} ms,"
            f" p99 {half['publish_to_commit']['p99_ms']:.0f} ms",
        ]
    cpu = fs.get("cpu_per_1000")
    if cpu:
        lines.append(
            "CPU s per 1,000 updates:   " + ", ".join(f"{k} {v:.2f}" for k, v in cpu.items())
            + (f"; broker in the ceiling {c['broker_cpu_per_1000']:.2f}"
               if "broker_cpu_per_1000" in c else ""))
    sess = fs.get("db_sessions")
    if sess:
        busy = sum(v for k, v in sess.items() if k != "idle")
        lines.append(
            "hub database sessions:     " + ", ".join(
                f"{k} {100 * sess.get(k, 0) / max(1, busy):.0f}%"
                for k in ("running", "lock_wait", "other_wait", "in_transaction"))
            + " of the samples of sessions in use (in_transaction: the hub computing)")
    m = h["memory"]
    lines.append(
        f"peak memory (VmHWM):       pipeline processes "
        f"{', '.join(f'{x:.0f}' for x in m['pipeline_peak_mib']) or m['main_peak_mib']} MiB;"
        f" main process {m['main_peak_mib']:.0f} MiB; all hub processes {m['total_peak_mib']:.0f}"
        " MiB")
    if "memory_change" in f:
        lines.append(
            f"worker memory, {f['small_children']:,} -> {h['children']:,} children:"
            f" {f['small_worker_peak_mib']:.0f} -> {f['worker_peak_mib']:.0f} MiB"
            f" ({100 * f['memory_change']:+.1f}%; {_verdict(f['memory_ok'])} the target"
            f" within {100 * TARGET_MEMORY_CHANGE:.0f}%)")
    lines.append("decisions: " + ", ".join(f"{k} {v}" for k, v in h["decisions"].items()))
    if "notifications_waiting" in fs:
        lines.append(f"notifications published at full speed, waiting in the councils' queues"
                     f" (no council consuming then): {fs['notifications_waiting']:,}")
    elif o.get("councils_at_full_speed"):
        lines.append("the councils' consumer ran beside the hub at full speed")
    if h.get("batches_failed"):
        lines.append(f"batches failed and retried: {h['batches_failed']}")
    lines.append(f"wall time: {r['wall_seconds']:.0f} s")
    return "\n".join(lines)


def add_arguments(p: argparse.ArgumentParser) -> None:
    d = Options()
    p.add_argument("--children", type=int, default=d.children,
                   help="children in the index (built afresh; see --reuse-db)")
    p.add_argument("--reuse-db", metavar="NAME",
                   help="clone the index from a database kept by bench.matching --keep-db")
    p.add_argument("--updates", type=int, default=d.updates, help="updates timed at full speed")
    p.add_argument("--latency-updates", type=int, default=d.latency_updates,
                   help="updates published at half the measured rate")
    p.add_argument("--warmup", type=int, default=d.warmup, help="updates before timing")
    p.add_argument("--processes", type=int, default=os.cpu_count() or 2,
                   help="hub run --processes (default: the cores)")
    p.add_argument("--workers", type=int, default=d.workers, help="hub run --workers")
    p.add_argument("--batch-size", type=int, default=d.batch_size,
                   help="HUB_BATCH_SIZE for hub run")
    p.add_argument("--memory-children", type=int, default=0, metavar="N",
                   help="also run on an index of N children and compare worker memory")
    p.add_argument("--memory-reuse-db", metavar="NAME", help="clone that index from NAME")
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument("--log-dir", help="where the hub's logs go (default: a temporary folder)")
    p.add_argument("--profile", metavar="DIR",
                   help="record the hub's processes with py-spy during the full-speed phase")
    p.add_argument("--councils-at-full-speed", action="store_true",
                   help="run the councils' consumer beside the hub at full speed too"
                   " (by default it starts for the latency phase)")
    p.add_argument("--json", action="store_true", help="print the figures as JSON")


def options(args: argparse.Namespace, amqp_url: str, database_url: str) -> Options:
    return Options(
        amqp_url=amqp_url, database_url=database_url, children=args.children,
        reuse_db=args.reuse_db, updates=args.updates, latency_updates=args.latency_updates,
        warmup=args.warmup, processes=args.processes, workers=args.workers,
        batch_size=args.batch_size, memory_children=args.memory_children,
        memory_reuse_db=args.memory_reuse_db, seed=args.seed, log_dir=args.log_dir,
        profile=args.profile, councils_at_full_speed=args.councils_at_full_speed,
    )


async def run_cancellable(opts: Options) -> dict[str, Any]:
    """run(), with SIGTERM treated like Ctrl-C: everything made is removed."""
    task = asyncio.current_task()
    loop = asyncio.get_running_loop()
    assert task is not None
    with contextlib.suppress(NotImplementedError):
        loop.add_signal_handler(signal.SIGTERM, task.cancel)
    return await run(opts)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--amqp-url", default=broker_ceiling.DEFAULT_AMQP_URL)
    p.add_argument("--database-url", default=DEFAULT_SERVER_URL)
    add_arguments(p)
    p.add_argument("--consume-notifications", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--queues", help=argparse.SUPPRESS)
    p.add_argument("--out", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.consume_notifications:
        _consumer_main(args.amqp_url, args.queues.split(","), args.out)
        return
    result = hub_loop.run(run_cancellable(options(args, args.amqp_url, args.database_url)))
    print(json.dumps(result, indent=2, default=str) if args.json else format_result(result))


if __name__ == "__main__":
    main()
