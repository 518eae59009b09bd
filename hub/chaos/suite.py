"""`hub chaos`: the real hub, a stream of updates, faults, and the exactly-once check.

1. Private services: a PostgreSQL cluster and one RabbitMQ node (--quick) or a
   three-node RabbitMQ cluster, under a temporary directory, on free ports.
2. TCP proxies the suite controls: hub <-> broker, hub <-> database, and the
   outside world (sources, councils) <-> broker.
3. The hub as a process manager would run it: two pipeline processes of two
   workers each, the outbox relay and the dead-letter parking, each its own
   `hub run --only ...` process, restarted when killed.
4. The stream (hub.chaos.stream), paced while the faults (hub.chaos.faults) are
   injected one after another, each once the hub recovered from the last;
   councils consume their notifications all along.
5. Once the hub is idle and stopped cleanly: the check (hub.chaos.check), the
   tables (hub.chaos.report).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

from hub.admin import setup
from hub.broker import topology as topo
from hub.broker.connection import connect
from hub.chaos import report
from hub.chaos.check import Figures, evaluate, load
from hub.chaos.councils import Councils
from hub.chaos.faults import FaultResult, Rig, run_faults, schedule
from hub.chaos.fleet import Fleet
from hub.chaos.monitor import Monitor
from hub.chaos.proxy import Proxies
from hub.chaos.services import Services, reap_orphans
from hub.chaos.stream import (
    POISON_SQL,
    SOURCES,
    UPDATES_PER_CHILD,
    Ledger,
    Pace,
    Plan,
    Source,
    build,
    send_all,
)
from hub.config import Settings
from hub.db.connect import connect as db_connect
from hub.waiting import idle
from workers.processes import PARENT_ENV

Say = Callable[[str], None]

# Rough seconds each fault takes, injection to recovery plus settling: the pace
# spreads the stream over the faults.
ESTIMATES = {"kill a cluster node": 25.0, "kill": 5.0, "cut": 4.0, "restart postgres": 7.0,
             "restart rabbitmq": 12.0}


@dataclass
class Options:
    updates: int = 26_000
    quick: bool = False
    nodes: int = 3
    seed: int = 7
    pipelines: int = 2  # processes
    workers: int = 2  # pipeline workers in each
    poison: int = 5
    rate: float | None = None  # messages/s while faults are pending; None: from ESTIMATES
    settle: float = 2.0
    keep: bool = False  # keep the temporary directory (logs, data)

    @classmethod
    def quick_run(cls) -> Options:
        return cls(updates=3_500, quick=True, nodes=1, poison=2, settle=1.0)


@dataclass
class Outcome:
    figures: Figures
    faults: list[FaultResult]
    exit_codes: dict[str, int | None]
    seconds: float
    root: Path
    problems: list[str] = field(default_factory=list)
    # (sent, committed) when the last fault had been recovered from
    during_faults: tuple[int, int] = (0, 0)
    # From the parking worker's log: good updates sent back to the pipeline from
    # hub.inbound's delivery limit, and dead-lettered copies of committed messages
    # dropped (both after faults; README, Reliability).
    parking: dict[str, int] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.figures.ok and not self.problems


def _estimate(labels: list[str], settle: float) -> float:
    def one(label: str) -> float:
        for prefix, seconds in ESTIMATES.items():
            if label.startswith(prefix):
                return seconds
        return ESTIMATES["kill"]

    return sum(one(label) + settle for label in labels)


async def run_chaos(opts: Options, say: Say = print) -> Outcome:
    t0 = time.time()
    # The suite's own clients reconnect through every fault; their warnings would
    # drown the progress lines (the hub's processes log to their own files).
    for name in ("aio_pika", "aiormq"):
        logging.getLogger(name).setLevel(logging.CRITICAL)
    children = max(100, round(opts.updates / UPDATES_PER_CHILD))
    plan = build(children, opts.seed, poison=opts.poison)
    say(f"hub chaos: {len(plan.messages):,} updates from {', '.join(SOURCES)} about"
        f" {children:,} children ({plan.count('invalid')} invalid, {plan.count('poison')} poison,"
        f" {plan.count('resend')} resent versions, {plan.count('ambiguous')} ambiguous,"
        f" {len(plan.groups)} race groups);"
        f" {'one RabbitMQ node' if opts.nodes == 1 else f'{opts.nodes}-node RabbitMQ cluster'}")
    for root in reap_orphans():
        say(f"  stopped the services a killed earlier run left behind ({root})")
    services = Services.create(opts.nodes, keep=opts.keep)
    proxies: Proxies | None = None
    fleet: Fleet | None = None
    # SIGTERM and SIGHUP stop the suite as Ctrl-C does: through the cleanup below.
    main = asyncio.current_task()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGHUP):
        with contextlib.suppress(NotImplementedError, RuntimeError, AttributeError):
            loop.add_signal_handler(sig, main.cancel)  # type: ignore[union-attr]
    try:
        starting = asyncio.ensure_future(asyncio.to_thread(services.start, say))
        try:
            await asyncio.shield(starting)
        except asyncio.CancelledError:
            with contextlib.suppress(BaseException):
                await starting  # what it started, the cleanup below stops
            raise
        proxies = Proxies()
        targets = [("127.0.0.1", n.port) for n in services.nodes]
        hub_amqp = proxies.add("hub-amqp", targets)
        outside_amqp = proxies.add("outside-amqp", targets)
        hub_pg = proxies.add("hub-pg", [("127.0.0.1", services.postgres.port)])
        direct = Settings(amqp_url=services.nodes[0].url,
                          database_url=services.postgres.url("hub"))
        say(f"  setup: {await setup(direct)}")
        await _prepare(direct, plan)
        if len(services.nodes) > 1:
            members = await asyncio.to_thread(_members, services, topo.INBOUND)
            say(f"  {topo.INBOUND}: quorum queue replicated on {members} nodes")

        logs = services.root / "logs"
        logs.mkdir()
        env = dict(os.environ,
                   HUB_AMQP_URL=f"amqp://guest:guest@127.0.0.1:{hub_amqp}/",
                   HUB_DATABASE_URL=f"postgresql://postgres@127.0.0.1:{hub_pg}/hub")
        # The hub's processes stop themselves if this one is killed (workers/processes.py).
        env[PARENT_ENV] = str(os.getpid())
        env.pop("HUB_AMQP_URL_FILE", None)
        env.pop("HUB_DATABASE_URL_FILE", None)
        fleet = Fleet(env, logs)
        for i in range(opts.pipelines):
            fleet.add(f"pipeline-{i + 1}", "--only", "pipeline", "--workers", str(opts.workers))
        fleet.add("relay", "--only", "relay")
        fleet.add("parking", "--only", "parking")
        fleet.start()
        monitor = Monitor(direct.database_url,
                          lambda: [n.url for n in services.running_nodes()])
        rig = Rig(services, proxies, fleet, monitor, opts.pipelines * opts.workers, say, t0)
        await _wait_for(lambda: _consumers_up(rig), 90, "the hub's pipeline consumers")
        say(f"  hub running: {opts.pipelines} pipeline processes x {opts.workers} workers,"
            f" relay, parking (logs in {logs})")

        outcome = await _stream(rig, plan, opts, outside_amqp, direct)
        outcome.seconds = time.time() - t0
        outcome.root = services.root
        _print(outcome, say)
        return outcome
    finally:
        if fleet is not None:
            fleet.kill_all()
        if proxies is not None:
            proxies.close()
        services.close()
        for sig in (signal.SIGTERM, signal.SIGHUP):
            with contextlib.suppress(NotImplementedError, RuntimeError, AttributeError):
                loop.remove_signal_handler(sig)


def _members(services: Services, queue: str) -> int:
    out = services.nodes[0].ctl("list_queues", "name", "members", "--no-table-headers")
    line = next((x for x in out.splitlines() if x.split() and x.split()[0] == queue), "")
    return line.count("@")


async def _prepare(s: Settings, plan: Plan) -> None:
    """Councils listening for every local authority; the poison messages' trap."""
    conn = await db_connect(s.database_url)
    try:
        await conn.execute(POISON_SQL)
        await conn.executemany("INSERT INTO chaos_poison VALUES ($1) ON CONFLICT DO NOTHING",
                               [(p.message_id,) for p in plan.messages if p.role == "poison"])
        await conn.executemany("INSERT INTO councils (la) VALUES ($1) ON CONFLICT DO NOTHING",
                               [(la,) for la in plan.las])
    finally:
        await conn.close()
    amqp = await connect(s.amqp_url)
    try:
        channel = await amqp.channel()
        for la in plan.las:
            await topo.declare_council(channel, la)
    finally:
        await amqp.close()


async def _consumers_up(rig: Rig) -> bool:
    return (await rig.monitor.consumers() or 0) >= rig.consumers


async def _wait_for(check: Callable[[], object], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if await check():  # type: ignore[misc]
            return
        await asyncio.sleep(0.2)
    raise TimeoutError(f"{what}: not ready within {timeout:g}s")


async def _stream(rig: Rig, plan: Plan, opts: Options, outside_port: int,
                  direct: Settings) -> Outcome:
    outside = f"amqp://guest:guest@127.0.0.1:{outside_port}/"
    faults = schedule(cluster=opts.nodes > 1, quick=opts.quick)
    total = len(plan.messages)
    rate = opts.rate or max(20.0, 0.9 * total / _estimate([f[0] for f in faults], opts.settle))
    ledger = Ledger()
    sources = {name: Source(outside, name, ledger) for name in SOURCES}
    for src in sources.values():
        await src.open()
    councils = Councils(outside, plan.las)
    await councils.start()
    pace = Pace(rate, total)
    state = {"fault": "warming up"}
    rig.say(f"  streaming at {rate:.0f} updates/s while {len(faults)} faults are injected,"
            " then at full speed")
    sender = asyncio.create_task(send_all(plan, sources, pace, ledger))
    ticker = asyncio.create_task(_progress(rig, ledger, total, state))
    try:
        warm = min(500, total // 20)
        await _wait_for(lambda: _committed_at_least(rig, warm), 300, "the first commits")

        def progress(i: int, label: str) -> None:
            state["fault"] = f"{i + 1}/{len(faults)} {label}" if i < len(faults) else "done"

        results = await run_faults(rig, faults, opts.settle, progress)
        during = (ledger.dispatched, await rig.monitor.committed() or 0)
        pace.released.set()
        await sender
        state["fault"] = "draining"
        await _drain(rig, direct, councils)
    finally:
        pace.released.set()
        ticker.cancel()
        sender.cancel()
        with contextlib.suppress(BaseException):
            await sender
    codes = await rig.fleet.stop()
    parking = _parking_events(rig.fleet.logs)
    await councils.close()
    for src in sources.values():
        await src.close()
    conn = await db_connect(direct.database_url)
    try:
        facts = await load(conn)
    finally:
        await conn.close()
    await rig.monitor.close()
    figures = evaluate(plan, ledger, facts, councils.received, plan.las)
    problems = [f"{name} exited {code} on SIGTERM" for name, code in codes.items() if code]
    problems += [f"fault {r.name} at {r.at:.0f}s: not recovered" for r in results
                 if r.recovered is None]
    return Outcome(figures, results, codes, 0.0, Path(), problems, during, parking)


def _parking_events(logs: Path) -> dict[str, int]:
    counts = {"redriven": 0, "dead_letter_already_processed": 0}
    for path in logs.glob("parking.*.log"):
        for line in path.read_text(errors="replace").splitlines():
            for event in counts:
                if f'"event": "{event}"' in line:
                    counts[event] += 1
    return counts


async def _committed_at_least(rig: Rig, n: int) -> bool:
    return (await rig.monitor.committed() or 0) >= n


async def _progress(rig: Rig, ledger: Ledger, total: int, state: dict[str, str]) -> None:
    while True:
        await asyncio.sleep(5)
        committed = await rig.monitor.committed()
        rig.say(f"  [{time.time() - rig.t0:4.0f}s] sent {ledger.dispatched:,}/{total:,},"
                f" confirmed {len(ledger.confirmed):,}, committed"
                f" {'?' if committed is None else f'{committed:,}'}; fault {state['fault']}")


async def _drain(rig: Rig, direct: Settings, councils: Councils, timeout: float = 600) -> None:
    """Until the hub is idle (queues empty, nothing in flight, outbox drained) and the
    councils have read every notification."""
    deadline = time.monotonic() + timeout
    quiet = 0
    while time.monotonic() < deadline:
        running = rig.services.running_nodes()
        s = replace(direct, amqp_url=running[0].url) if running else direct
        try:
            done, _why = await idle(s)
        except Exception:  # noqa: BLE001 - a service still coming back
            done = False
        if done:
            depths = [await rig.monitor.queue(topo.council_queue(la)) for la in councils.las]
            done = all(d is not None and d[0] == 0 for d in depths)
        quiet = quiet + 1 if done else 0
        if quiet >= 5:
            return
        await asyncio.sleep(0.5)
    raise TimeoutError(f"the hub did not drain within {timeout:g}s")


def _print(o: Outcome, say: Say) -> None:
    say("")
    sent, committed = o.during_faults
    say(f"Faults: {sent:,} updates sent and {committed:,} committed while they were injected"
        " (recovered: from injection until the hub commits again, every consumer back)")
    for line in report.faults_table(o.faults):
        say(line)
    say("")
    say("Figures")
    for line in report.figures_table(o.figures):
        say(line)
    say(f"  parking: {o.parking.get('redriven', 0)} good updates sent back to the pipeline"
        " from the delivery limit, "
        f"{o.parking.get('dead_letter_already_processed', 0)} dead-lettered copies of"
        " committed updates dropped")
    for line in report.examples(o.figures):
        say(line)
    for p in o.problems:
        say(f"  problem: {p}")
    say("")
    verdict = "PASS" if o.ok else "FAIL: " + ", ".join(
        [f"{k} {v}" for k, v in o.figures.failures.items()] + o.problems)
    say(f"{verdict} (wall time {o.seconds:.0f}s)")


def to_json(o: Outcome) -> str:
    g = {k: v for k, v in vars(o.figures).items() if k != "examples"}
    return json.dumps({"ok": o.ok, "seconds": round(o.seconds, 1), "figures": g,
                       "during_faults": {"sent": o.during_faults[0],
                                         "committed": o.during_faults[1]},
                       "faults": [vars(r) for r in o.faults], "exit_codes": o.exit_codes,
                       "parking": o.parking,
                       "problems": o.problems})
