"""The faults the chaos suite injects, and how long the hub takes to recover.

Each fault is injected, lifted (a killed process is restarted by the fleet, a
stopped service started again), and then the suite waits until the hub has
recovered: it has committed updates again since the fault was lifted, every
pipeline consumer is back on hub.inbound, and whatever was killed is running
again. "Recovered after" counts from the injection, so it includes the time the
service was down.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from hub.chaos.fleet import Fleet
from hub.chaos.monitor import Monitor
from hub.chaos.proxy import Proxies
from hub.chaos.services import Services

Say = Callable[[str], None]


@dataclass
class Rig:
    services: Services
    proxies: Proxies
    fleet: Fleet
    monitor: Monitor
    consumers: int  # pipeline consumers on hub.inbound when all is well
    say: Say
    t0: float = field(default_factory=time.time)


@dataclass
class FaultResult:
    name: str
    at: float  # seconds into the run
    detail: str
    down: float  # seconds the component or service was away
    recovered: float | None  # seconds from injection until recovered; None: never


async def _until(check: Callable[[], Awaitable[bool]], timeout: float) -> float | None:
    """Seconds until check() holds, or None at the timeout."""
    start = time.time()
    while time.time() - start < timeout:
        if await check():
            return time.time()
        await asyncio.sleep(0.1)
    return None


async def _recovered(rig: Rig, since: float, *, relay: bool = False,
                     timeout: float = 180) -> float | None:
    async def ok() -> bool:
        if relay:
            sent = await rig.monitor.last_relayed()
            return sent is not None and sent > since
        last = await rig.monitor.last_commit()
        if last is None or last <= since:
            return False
        return (await rig.monitor.consumers() or 0) >= rig.consumers

    return await _until(ok, timeout)


def _result(rig: Rig, name: str, t: float, detail: str, lifted: float,
            recovered: float | None) -> FaultResult:
    return FaultResult(name, t - rig.t0, detail, lifted - t,
                       None if recovered is None else recovered - t)


async def kill_pipeline(rig: Rig, name: str) -> FaultResult:
    """SIGKILL a pipeline process while it holds a batch (within five seconds)."""
    proc = rig.fleet.procs[name]
    pid, held = proc.pid, 0
    deadline = time.time() + 5
    while time.time() < deadline:
        held = await rig.monitor.inflight(pid) or 0
        if held:
            break
        await asyncio.sleep(0.01)
    t = time.time()
    proc.kill()
    detail = f"{name} (pid {pid}), " + (f"{held} messages in its batch" if held
                                        else "between batches")

    async def back() -> bool:
        return proc.alive and proc.pid != pid and bool(await rig.monitor.pipelines_of(proc.pid))

    lifted = await _until(back, 120) or time.time()
    return _result(rig, "SIGKILL a pipeline worker mid-batch", t, detail, lifted,
                   await _recovered(rig, t))


async def kill_relay(rig: Rig) -> FaultResult:
    """SIGKILL the outbox relay while notifications are waiting."""
    proc = rig.fleet.procs["relay"]
    pid, pending = proc.pid, 0
    deadline = time.time() + 5
    while time.time() < deadline:
        pending = await rig.monitor.outbox_pending() or 0
        if pending:
            break
        await asyncio.sleep(0.01)
    t = time.time()
    proc.kill()

    async def back() -> bool:
        return proc.alive and proc.pid != pid

    lifted = await _until(back, 60) or time.time()
    return _result(rig, "SIGKILL the outbox relay", t, f"pid {pid}, {pending} in the outbox",
                   lifted, await _recovered(rig, t, relay=True))


async def cut(rig: Rig, *names: str) -> FaultResult:
    """Abort every connection through these proxies (no close, no goodbye). Lifted
    once every hub process has connected again through each cut hub proxy."""
    t = time.time()
    counts = [f"{rig.proxies.cut(n)} {n}" for n in names]
    processes = len(rig.fleet.procs)

    async def reconnected() -> bool:
        return all(rig.proxies.opened_since(n, t) >= processes
                   for n in names if n.startswith("hub-"))

    lifted = await _until(reconnected, 120) or time.time()
    return _result(rig, f"cut connections: {' + '.join(names)}", t,
                   ", ".join(counts) + " connections", lifted, await _recovered(rig, lifted))


async def restart_postgres(rig: Rig, mode: str = "immediate", down: float = 3.0) -> FaultResult:
    pg = rig.services.postgres
    t = time.time()
    await asyncio.to_thread(pg.stop, mode)
    await asyncio.sleep(down)
    await asyncio.to_thread(pg.start)
    lifted = time.time()
    how = "crash (immediate shutdown), crash recovery on start" if mode == "immediate" else mode
    return _result(rig, "PostgreSQL restarted mid-stream", t, how, lifted,
                   await _recovered(rig, lifted))


async def restart_rabbitmq(rig: Rig, down: float = 2.0) -> FaultResult:
    """Every node stopped, then started again: no broker at all for a while."""
    nodes = rig.services.nodes
    t = time.time()
    await asyncio.gather(*(asyncio.to_thread(n.stop) for n in nodes))
    await asyncio.sleep(down)
    for n in nodes:
        n.start()
    await asyncio.gather(*(asyncio.to_thread(n.wait_ready, 240) for n in nodes))
    lifted = time.time()
    what = "the node" if len(nodes) == 1 else f"all {len(nodes)} nodes"
    return _result(rig, "RabbitMQ restarted mid-stream", t, f"{what} stopped and started",
                   lifted, await _recovered(rig, lifted))


async def kill_node(rig: Rig) -> FaultResult:
    """SIGKILL the cluster node leading hub.inbound. Recovered once the hub's
    connections to it are made again to the others, the queue has a new leader and
    the hub commits again; then the node is started again and rejoins."""
    nodes = rig.services.nodes
    leader = await asyncio.to_thread(_leader, rig.services)
    index = next((i for i, n in enumerate(nodes) if n.name == leader), 0)
    victim = nodes[index]
    had = rig.proxies.open_to("hub-amqp", index)
    t = time.time()
    await asyncio.to_thread(victim.kill)

    async def moved() -> bool:
        if rig.proxies.opened_since("hub-amqp", t) < had:
            return False
        # A new leader on a live node: the queue serves again.
        now = await asyncio.to_thread(_leader, rig.services)
        return now is not None and now != victim.name

    moved_at = await _until(moved, 120) or time.time()
    recovered = await _recovered(rig, moved_at)
    victim.start()
    await asyncio.to_thread(victim.wait_ready, 240)
    lifted = time.time()
    detail = (f"{victim.name.split('@')[0]} (leader of hub.inbound{'' if leader else '?'},"
              f" hub connections on it: {had}) killed; restarted {lifted - t:.0f}s later")
    return _result(rig, "one node of the 3-node cluster SIGKILLed", t, detail, moved_at,
                   recovered)


def _leader(services: Services) -> str | None:
    for n in services.running_nodes():
        try:
            out = n.ctl("list_queues", "name", "leader", "--no-table-headers")
        except Exception:  # noqa: BLE001 - ask another node
            continue
        for line in out.splitlines():
            parts = line.split()
            if len(parts) == 2 and parts[0] == "hub.inbound":
                return parts[1]
    return None


Fault = Callable[[Rig], Awaitable[FaultResult]]


def schedule(cluster: bool, quick: bool) -> list[tuple[str, Fault]]:
    """The faults, in order. Broker cuts take the sources' and councils' connections too."""
    def k(name: str) -> Fault:
        return lambda rig: kill_pipeline(rig, name)

    every_broker = ("hub-amqp", "outside-amqp")
    if quick:
        plan: list[tuple[str, Fault]] = [
            ("kill pipeline-1", k("pipeline-1")),
            ("cut broker", lambda rig: cut(rig, *every_broker)),
            ("kill relay", kill_relay),
            ("restart postgres", restart_postgres),
            ("kill pipeline-2", k("pipeline-2")),
            ("cut database", lambda rig: cut(rig, "hub-pg")),
            ("restart rabbitmq", restart_rabbitmq),
        ]
        return plan
    plan = [
        ("kill pipeline-1", k("pipeline-1")),
        ("kill relay", kill_relay),
        ("cut broker", lambda rig: cut(rig, *every_broker)),
        ("kill pipeline-2", k("pipeline-2")),
        ("restart postgres", restart_postgres),
        ("cut database", lambda rig: cut(rig, "hub-pg")),
        ("kill pipeline-1", k("pipeline-1")),
        ("restart rabbitmq", restart_rabbitmq),
        ("kill relay", kill_relay),
        ("cut broker and database", lambda rig: cut(rig, *every_broker, "hub-pg")),
        ("kill pipeline-2", k("pipeline-2")),
    ]
    if cluster:
        plan.append(("kill a cluster node", kill_node))
        plan.append(("kill pipeline-1", k("pipeline-1")))
    return plan


async def run_faults(rig: Rig, faults: list[tuple[str, Fault]], settle: float,
                     progress: Callable[[int, str], None]) -> list[FaultResult]:
    results: list[FaultResult] = []
    for i, (label, fault) in enumerate(faults):
        progress(i, label)
        result = await fault(rig)
        results.append(result)
        rec = "NOT RECOVERED" if result.recovered is None else f"{result.recovered:.1f}s"
        rig.say(f"  fault {i + 1}/{len(faults)} at {result.at:.0f}s: {result.name}"
                f" ({result.detail}); recovered after {rec}")
        await asyncio.sleep(settle)
    progress(len(faults), "done")
    return results


__all__ = ["FaultResult", "Rig", "run_faults", "schedule"]
