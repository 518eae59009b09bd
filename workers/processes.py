"""`hub run --processes N`: pipeline workers in N processes of their own.

Matching is CPU work in Python: one process runs on one core at a time, and a
batch being scored holds up everything else on its event loop. So with N > 1
this process keeps the light, latency-sensitive work (the outbox relay, the
parking of dead letters) and starts N child processes, each `hub run --only
pipeline` with its own broker and database connections: competing consumers on
hub.inbound. Per-child serialisation holds across processes (and machines)
because the pipeline's advisory locks are taken in PostgreSQL, in the batch's
transaction (hub/db/store.py lock_ids).

A child that dies is started again; SIGTERM or SIGINT stops the children first
(each finishes the batch in hand: commit, then ack), then this process. A child
whose parent disappears (SIGKILL) stops itself cleanly.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
from typing import Any

from hub.config import Settings
from hub.log import get
from workers import runner

log = get("processes")

PARENT_ENV = "HUB_RUN_PARENT_PID"


async def _watch_parent(parent: int) -> None:
    """In a child: stop cleanly (as on SIGTERM) once the parent has gone."""
    while True:
        await asyncio.sleep(1)
        if os.getppid() != parent:
            log.warning("parent_gone", parent=parent)
            os.kill(os.getpid(), signal.SIGTERM)
            return


def _child_args(workers: int) -> list[str]:
    return [sys.executable, "-m", "hub.cli.main", "run", "--workers", str(workers),
            "--only", "pipeline"]


async def _child(index: int, workers: int, stopping: asyncio.Event,
                 pids: dict[int, int]) -> None:
    """Keep one pipeline process running until the hub stops."""
    delay = 0.5
    env = {**os.environ, PARENT_ENV: str(os.getpid())}
    while not stopping.is_set():
        proc = await asyncio.create_subprocess_exec(*_child_args(workers), env=env)
        pids[index] = proc.pid
        log.info("process_started", index=index, pid=proc.pid)
        try:
            code = await proc.wait()
        except asyncio.CancelledError:
            await _stop(proc)
            raise
        if stopping.is_set():
            return
        log.error("process_exited", index=index, pid=proc.pid, code=code)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stopping.wait(), timeout=delay)
        delay = min(delay * 2, 10)


async def _stop(proc: asyncio.subprocess.Process, timeout: float = 60) -> None:
    if proc.returncode is None:
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(proc.wait(), timeout)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()


async def run(settings: Settings, workers: int = 1, processes: int = 1,
              only: tuple[str, ...] = runner.COMPONENTS,
              started: asyncio.Event | None = None) -> dict[str, Any]:
    parent = os.environ.get(PARENT_ENV)
    watcher = None
    if parent and parent.isdigit():
        watcher = asyncio.create_task(_watch_parent(int(parent)))
    try:
        if processes <= 1 or "pipeline" not in only:
            return await runner.run(settings, workers, started=started, only=only)
        return await _run_children(settings, workers, processes, only, started)
    finally:
        if watcher is not None:
            watcher.cancel()


async def _run_children(settings: Settings, workers: int, processes: int,
                        only: tuple[str, ...], started: asyncio.Event | None) -> dict[str, Any]:
    stopping = asyncio.Event()
    pids: dict[int, int] = {}
    children = [asyncio.create_task(_child(i, workers, stopping, pids), name=f"process-{i}")
                for i in range(processes)]
    here = tuple(c for c in only if c != "pipeline")
    log.info("processes", pipeline_processes=processes, workers_per_process=workers,
             here=",".join(here))
    try:
        if here:
            # The runner handles SIGTERM/SIGINT for this process and returns once stopped.
            totals = await runner.run(settings, workers, started=started, only=here)
        else:
            loop = asyncio.get_running_loop()
            done = asyncio.Event()
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(sig, done.set)
            if started is not None:
                started.set()
            await done.wait()
            totals = {}
    finally:
        stopping.set()
        for task in children:
            task.cancel()
        await asyncio.gather(*children, return_exceptions=True)
    log.info("processes_stopped", pids=sorted(pids.values()))
    return totals
