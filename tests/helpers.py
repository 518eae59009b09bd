"""Driving the real `hub` command from tests."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HUB = [sys.executable, "-m", "hub.cli.main"]


def hub(env: dict[str, str], *args: str, check: bool = True, timeout: float = 120,
        stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run([*HUB, *args], env=env, capture_output=True, text=True,
                          timeout=timeout, input=stdin)
    if check and proc.returncode != 0:
        raise AssertionError(f"hub {' '.join(args)} exited {proc.returncode}:\n"
                             f"{proc.stdout}\n{proc.stderr}")
    return proc


def via_proxy(url: str, port: int) -> str:
    """`url` with its host and port replaced by a local proxy's (hub.chaos.proxy)."""
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    user = parts.netloc.rsplit("@", 1)
    host = f"127.0.0.1:{port}"
    return urlunsplit(parts._replace(netloc=f"{user[0]}@{host}" if len(user) == 2 else host))


def jsonl(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


class HubProcess:
    """`hub run` in the background, stopped with SIGTERM (or killed)."""

    def __init__(self, env: dict[str, str], *args: str, log: Path | None = None) -> None:
        self.log_path = log
        out = open(log, "w") if log else None  # noqa: SIM115
        try:
            self.proc = subprocess.Popen(
                [*HUB, "run", *args], env=env, stdout=out or subprocess.DEVNULL,
                stderr=subprocess.STDOUT if log else subprocess.DEVNULL)
        finally:
            if out is not None:  # the child has its own descriptor
                out.close()
        time.sleep(0.2)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30) -> int:
        if self.proc.poll() is None:
            os.kill(self.proc.pid, sig)
        return self.proc.wait(timeout=timeout)

    def kill(self) -> None:
        self.stop(signal.SIGKILL)


def write_jsonl(path: Path, records: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


async def count(url: str, sql: str) -> int:
    """One number from the test's database (a fresh connection, closed after)."""
    import asyncpg

    conn = await asyncpg.connect(url)
    try:
        return int(await conn.fetchval(sql))
    finally:
        await conn.close()


async def pipelines_up(url: str, n: int, timeout: float = 60) -> None:
    """Wait until `n` pipelines have written their status (a started `hub run`)."""
    import asyncio
    import time

    deadline = time.monotonic() + timeout
    while await count(url, "SELECT count(*) FROM worker_status") < n:
        assert time.monotonic() < deadline, f"fewer than {n} pipelines up after {timeout}s"
        await asyncio.sleep(0.2)
