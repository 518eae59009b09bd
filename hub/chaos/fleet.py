"""The hub under test: `hub run` processes, restarted when they die.

A process manager (systemd, Kubernetes) restarts a hub process that was killed;
the fleet does the same, so the suite can kill a worker or the relay with
SIGKILL and watch the hub recover. Each process logs to a file of its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class HubProcess:
    name: str
    args: list[str]
    env: dict[str, str]
    logs: Path
    proc: subprocess.Popen[bytes] | None = None
    starts: int = 0
    started_at: float = 0.0
    exits: list[int] = field(default_factory=list)

    def start(self) -> None:
        self.starts += 1
        log = open(self.logs / f"{self.name}.{self.starts}.log", "wb")  # noqa: SIM115
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "hub.cli.main", "run", *self.args],
            env=self.env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        )
        log.close()
        self.started_at = time.time()

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill(self) -> None:
        if self.alive:
            os.kill(self.pid, signal.SIGKILL)


class Fleet:
    def __init__(self, env: dict[str, str], logs: Path) -> None:
        self.env, self.logs = env, logs
        self.procs: dict[str, HubProcess] = {}
        self.stopping = False
        self._watch: asyncio.Task[None] | None = None

    def add(self, name: str, *args: str) -> HubProcess:
        p = HubProcess(name, list(args), self.env, self.logs)
        self.procs[name] = p
        return p

    def start(self) -> None:
        for p in self.procs.values():
            p.start()
        self._watch = asyncio.create_task(self._watchdog())

    async def _watchdog(self) -> None:
        """Restart a process that died (after half a second, as a process manager would)."""
        while not self.stopping:
            for p in self.procs.values():
                if p.proc is not None and p.proc.poll() is not None and not self.stopping:
                    p.exits.append(p.proc.returncode)
                    p.proc = None
                    await asyncio.sleep(0.5)
                    if not self.stopping:
                        p.start()
            await asyncio.sleep(0.1)

    def pipeline_pids(self) -> list[int]:
        return [p.pid for n, p in self.procs.items() if n.startswith("pipeline") and p.alive]

    async def stop(self, timeout: float = 60) -> dict[str, int | None]:
        """SIGTERM to every process (a clean stop loses nothing); their exit codes."""
        self.stopping = True
        if self._watch is not None:
            self._watch.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watch
        for p in self.procs.values():
            if p.alive:
                p.proc.send_signal(signal.SIGTERM)  # type: ignore[union-attr]
        codes: dict[str, int | None] = {}
        deadline = time.monotonic() + timeout
        for name, p in self.procs.items():
            if p.proc is None:
                codes[name] = None
                continue
            try:
                await asyncio.to_thread(p.proc.wait, max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                p.proc.kill()
                p.proc.wait()
            codes[name] = p.proc.returncode
        return codes

    def kill_all(self) -> None:
        """Last resort (a failed run): nothing of ours is left running."""
        self.stopping = True
        for p in self.procs.values():
            with contextlib.suppress(ProcessLookupError):
                p.kill()
            if p.proc is not None:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    p.proc.wait(timeout=10)
