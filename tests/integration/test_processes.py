"""`hub run --processes N`: N pipeline processes competing on hub.inbound beside this
one (relay, parking); SIGTERM stops them all; a child whose parent is killed
stops itself, and what it held comes back."""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

import pytest

from hub import native
from hub.synth.feed import initial_load, write_jsonl
from hub.synth.population import generate_population
from tests.helpers import HubProcess, count, hub, jsonl

pytestmark = pytest.mark.integration


def _children_of(pid: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    if int(f.read().rsplit(")", 1)[1].split()[1]) == pid:
                        found.append(int(entry))
            except OSError:
                continue
    return found


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


async def _until(predicate, timeout: float = 30) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        await asyncio.sleep(0.1)
    return False


async def test_pipeline_processes_share_the_queue_and_stop_together(
    hub_env: dict[str, str], settings, tmp_path: Path
) -> None:
    updates = initial_load(generate_population(600, seed=5, shielded_fraction=0.0))
    write_jsonl(updates, tmp_path / "la.jsonl")
    hub(hub_env, "setup")
    env = dict(hub_env, HUB_BATCH_SIZE="20")  # many batches, so both processes take some
    proc = HubProcess(env, "--processes", "2", "--workers", "1", log=tmp_path / "hub.log")
    try:
        assert await _until(lambda: len(_children_of(proc.proc.pid)) == 2)
        kids = _children_of(proc.proc.pid)
        hub(env, "publish", "--source", "la", "--format", "jsonl", "--quiet",
            str(tmp_path / "la.jsonl"))
        assert hub(env, "wait", "--timeout", "120").returncode == 0
        url = settings.database_url
        assert await count(url, "SELECT count(*) FROM processed_messages") == len(updates)
        assert await count(url, "SELECT count(*) FROM outbox WHERE sent_at IS NULL") == 0
        workers = await count(url, "SELECT count(DISTINCT split_part(worker_id, ':', 2))"
                                   " FROM worker_status")
        assert workers == 2  # one pipeline in each child process, none in the parent
    finally:
        assert proc.stop() == 0, (tmp_path / "hub.log").read_text()[-3000:]
    assert not any(_alive(k) for k in kids)
    # Each process says how it runs the matching path: as this one does (compiled
    # under deploy/test.sh, which requires the build; hub.native).
    # One JSON object a line (jsonl): three processes share the file, and each writes
    # a line with its newline at once (hub.log).
    started = [e for e in jsonl((tmp_path / "hub.log").read_text())
               if e.get("event") == "started"]
    assert [e["matching_path"] for e in started] == [native.describe()] * 3


async def test_children_of_a_killed_hub_stop_and_nothing_is_lost(
    hub_env: dict[str, str], settings, tmp_path: Path
) -> None:
    updates = initial_load(generate_population(800, seed=6, shielded_fraction=0.0))
    write_jsonl(updates, tmp_path / "la.jsonl")
    hub(hub_env, "setup")
    hub(hub_env, "publish", "--source", "la", "--format", "jsonl", "--quiet",
        str(tmp_path / "la.jsonl"))
    env = dict(hub_env, HUB_BATCH_SIZE="20")
    proc = HubProcess(env, "--processes", "2", "--workers", "1", log=tmp_path / "hub.log")
    assert await _until(lambda: len(_children_of(proc.proc.pid)) == 2)
    kids = _children_of(proc.proc.pid)
    url = settings.database_url
    deadline = time.monotonic() + 60
    while await count(url, "SELECT count(*) FROM processed_messages") < 100:
        assert time.monotonic() < deadline
        await asyncio.sleep(0.05)
    proc.kill()  # SIGKILL: the children are orphaned mid-stream
    assert await _until(lambda: not any(_alive(k) for k in kids), timeout=30)
    again = HubProcess(env, "--processes", "2", "--workers", "1", log=tmp_path / "again.log")
    try:
        assert hub(env, "wait", "--timeout", "120").returncode == 0
    finally:
        assert again.stop() == 0
    assert await count(url, "SELECT count(*) FROM processed_messages") == len(updates)
    assert await count(url, "SELECT count(*) FROM children") == len(updates)
