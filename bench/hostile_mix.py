"""The good stream's rate with and without hostile messages mixed in, in one run.

Each round runs the real `hub run` twice, each time on a scratch database and
vhost of its own with the same good updates (new children, one each) queued in
hub.inbound before the hub starts: once alone ("clean"), once with hostile
messages from tests/hostile.py scattered through them ("mixed": --share of all
messages, 10% by default; the catalogue repeated with fresh ids and canaries:
malformed and huge bodies, deep nesting, bad text, wrong types, odd
properties). The good rate is good updates / (commit of the last good update -
commit of the first batch), read from processed_messages, so the hub's start-up
and the publishing are not measured; beside it, good updates per CPU second of
the `hub run` process over the same span (steadier on a shared machine, but
blind to the database's own work). Each round runs a clean and a mixed run back
to back, in alternating order; the medians and the median of the rounds' ratios
are printed (target: mixed / clean of at least 0.95).

    .venv/bin/python -m bench.hostile_mix --good 4000 --share 0.10 --rounds 5 [--workers 1]
        [--max-body BYTES]   # only hostile bodies up to this size

Needs rabbitmqctl (as root) for the scratch vhosts, and a PostgreSQL login
that may create databases. Everything it creates is deleted afterwards.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import quote

import asyncpg

from hub import loop as hub_loop
from hub.broker.connection import scoped_message_id
from tests.hostile import Message, good, hostile, mix, publish

HUB = [sys.executable, "-m", "hub.cli.main"]


def _ctl(*args: str) -> None:
    subprocess.run(["rabbitmqctl", "-q", *args], check=True, capture_output=True, timeout=60)


def _db_url(server: str, name: str) -> str:
    return server.rsplit("/", 1)[0] + "/" + name


def hostile_share(n_good: int, share: float, max_body: int | None = None) -> list[Message]:
    """Enough hostile messages to be `share` of all: the whole catalogue (its bodies
    up to `max_body` bytes) as often as it fits, the rest a random sample of it."""
    want = round(n_good * share / (1 - share))
    out: list[Message] = []
    cycle = 0
    while len(out) < want:
        batch = [m for m in hostile(tag=f"c{cycle}-")
                 if max_body is None or len(m.body) <= max_body]
        if len(out) + len(batch) > want:
            batch = random.Random(cycle).sample(batch, want - len(out))
        out += batch
        cycle += 1
    return out


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def _count(url: str, sql: str, *args: Any) -> Any:
    conn = await asyncpg.connect(url)
    try:
        return await conn.fetchval(sql, *args)
    finally:
        await conn.close()


async def one_run(messages: list[Message], n_good: int, n_bad: int, amqp_base: str,
                  pg_server: str, workers: int, timeout: float) -> dict[str, Any]:
    name = f"hub_bench_hostile_{uuid.uuid4().hex[:8]}"
    _ctl("add_vhost", name)
    _ctl("set_permissions", "-p", name, "guest", ".*", ".*", ".*")
    amqp = amqp_base.rstrip("/") + "/" + quote(name, safe="")
    db = _db_url(pg_server, name)
    env = dict(os.environ, HUB_AMQP_URL=amqp, HUB_DATABASE_URL=db)
    log = Path(tempfile.mkstemp(prefix="hostile-mix-", suffix=".log")[1])
    proc: subprocess.Popen[bytes] | None = None
    try:
        _setup(env)
        await publish(amqp, messages, window=256)
        proc = _start(env, workers, log)
        # As the hub files them: a publisher's id within its routing key.
        goods = [scoped_message_id(m.routing_key, m.properties["message_id"], m.body)
                 for m in messages if m.good]
        deadline = time.monotonic() + timeout
        cpu_start = None
        while True:
            done = await _count(db, "SELECT count(*) FROM processed_messages"
                                    " WHERE message_id = ANY($1::text[])", goods)
            dead = await _count(db, "SELECT count(*) FROM parked WHERE kind = 'dead'")
            if cpu_start is None and (done or dead):
                cpu_start = _cpu_seconds(proc.pid)  # start-up left out
            if done == n_good and dead >= n_bad:
                cpu = _cpu_seconds(proc.pid) - (cpu_start or 0.0)
                break
            if time.monotonic() > deadline or proc.poll() is not None:
                raise RuntimeError(f"{done}/{n_good} good and {dead}/{n_bad} dead after "
                                   f"{timeout}s (hub exit {proc.poll()}); log: {log}")
            await asyncio.sleep(0.2)
        first = await _count(db, "SELECT min(processed_at) FROM processed_messages")
        last = await _count(db, "SELECT max(processed_at) FROM processed_messages"
                                " WHERE message_id = ANY($1::text[])", goods)
        creates = await _count(db, "SELECT count(*) FROM processed_messages WHERE outcome"
                                   " LIKE 'create:%' AND message_id = ANY($1::text[])", goods)
        seconds = (last - first).total_seconds()
        restarts = _failures(log)
        return {"good": n_good, "hostile": n_bad, "dead": dead, "created": creates,
                "seconds": round(seconds, 2), "good_per_second": round(n_good / seconds, 1),
                "worker_cpu_seconds": round(cpu, 2),
                "good_per_cpu_second": round(n_good / cpu, 1), "failures_logged": restarts}
    finally:
        _stop(proc)
        _ctl("delete_vhost", name)
        admin = await asyncpg.connect(pg_server)
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()
        _remove(log)


# Blocking helpers, kept out of the coroutines.

def _setup(env: dict[str, str]) -> None:
    subprocess.run([*HUB, "setup"], env=env, check=True, capture_output=True, timeout=120)


def _start(env: dict[str, str], workers: int, log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen([*HUB, "run", "--workers", str(workers)], env=env,
                                stdout=out, stderr=subprocess.STDOUT)


def _failures(log: Path) -> int:
    text = log.read_text(errors="replace")
    return sum(text.count(e) for e in ("component_failed", "batch_aborted", "message_failed"))


def _stop(proc: subprocess.Popen[bytes] | None) -> None:
    if proc is not None and proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()


def _remove(log: Path) -> None:
    log.unlink(missing_ok=True)


async def measure(n_good: int = 3000, share: float = 0.10, rounds: int = 3, workers: int = 1,
                  amqp_base: str = "amqp://guest:guest@127.0.0.1:5672/",
                  pg_server: str = "postgresql://postgres@127.0.0.1:5432/postgres",
                  timeout: float = 600, max_body: int | None = None) -> dict[str, Any]:
    goods = [good(i) for i in range(n_good)]
    bad = hostile_share(n_good, share, max_body)
    mixed = mix(goods, bad)
    runs: dict[str, list[dict[str, Any]]] = {"clean": [], "mixed": []}
    plan = (("clean", goods, 0), ("mixed", mixed, len(bad)))
    for r in range(rounds):
        # Each round a pair run back to back, in alternating order: a machine whose
        # load drifts (other jobs) then weighs on both sides alike.
        for kind, messages, n_bad in plan if r % 2 == 0 else plan[::-1]:
            result = await one_run(messages, n_good, n_bad, amqp_base, pg_server, workers,
                                   timeout)
            runs[kind].append(result)
            print(f"round {r + 1} {kind}: {json.dumps(result)}", file=sys.stderr)

    def med(kind: str, key: str) -> float:
        return statistics.median(x[key] for x in runs[kind])

    def pair_ratio(key: str) -> float:
        return round(statistics.median(
            m[key] / c[key] for c, m in zip(runs["clean"], runs["mixed"], strict=True)), 3)

    return {"good": n_good, "hostile": len(bad), "hostile_share": round(len(bad) / len(mixed), 3),
            "hostile_bytes": sum(len(m.body) for m in bad), "workers": workers,
            "rounds": rounds,
            "clean_good_per_second": med("clean", "good_per_second"),
            "mixed_good_per_second": med("mixed", "good_per_second"),
            "ratio": pair_ratio("good_per_second"),
            "clean_good_per_cpu_second": med("clean", "good_per_cpu_second"),
            "mixed_good_per_cpu_second": med("mixed", "good_per_cpu_second"),
            "cpu_ratio": pair_ratio("good_per_cpu_second"), "runs": runs}


def format_result(r: dict[str, Any]) -> str:
    return (f"{r['good']} good updates; {r['hostile']} hostile messages "
            f"({r['hostile_share']:.0%} of all, {r['hostile_bytes'] / 1e6:.1f} MB); "
            f"{r['workers']} worker(s); medians of {r['rounds']} rounds\n"
            f"good stream alone:    {r['clean_good_per_second']:8.1f} updates/s"
            f"   {r['clean_good_per_cpu_second']:8.1f} per worker CPU second\n"
            f"with hostile mixed in:{r['mixed_good_per_second']:8.1f} updates/s"
            f"   {r['mixed_good_per_cpu_second']:8.1f} per worker CPU second\n"
            f"ratio mixed / clean:  {r['ratio']:8.3f} (wall clock)"
            f"   {r['cpu_ratio']:8.3f} (worker CPU)   (median of the rounds' ratios)")


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--good", type=int, default=3000, help="good updates per run")
    p.add_argument("--share", type=float, default=0.10, help="hostile share of all messages")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--max-body", type=int, metavar="BYTES",
                   help="leave out hostile bodies larger than this (default: all kinds, "
                        "the 2 MiB ones included)")
    p.add_argument("--amqp-url", default="amqp://guest:guest@127.0.0.1:5672/")
    p.add_argument("--pg-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    p.add_argument("--json", action="store_true")
    a = p.parse_args(argv)
    if not 0 <= a.share < 1 or a.good < 1 or a.good > 40_000:
        p.error("--share must be in [0, 1) and --good in 1..40000")
    result = hub_loop.run(measure(a.good, a.share, a.rounds, a.workers, a.amqp_url, a.pg_url,
                                 max_body=a.max_body))
    print(json.dumps(result) if a.json else format_result(result))


if __name__ == "__main__":
    main()
