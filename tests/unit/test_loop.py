"""The event loop the hub runs on (hub/loop.py)."""

from __future__ import annotations

import asyncio
import subprocess
import sys

import pytest

from hub import loop as hub_loop
from hub.config import ConfigError


async def _kind() -> str:
    return type(asyncio.get_running_loop()).__module__


def test_uvloop_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HUB_EVENT_LOOP", raising=False)
    assert hub_loop.run(_kind()).startswith("uvloop")


def test_asyncio_on_request(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HUB_EVENT_LOOP", "asyncio")
    before = asyncio.get_event_loop_policy()  # a test session on uvloop set its own
    asyncio.set_event_loop_policy(asyncio.DefaultEventLoopPolicy())
    try:
        assert hub_loop.run(_kind()).startswith("asyncio")
    finally:
        asyncio.set_event_loop_policy(before)


def test_unknown_loop_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HUB_EVENT_LOOP", "twisted")
    coro = _kind()
    with pytest.raises(ConfigError, match="HUB_EVENT_LOOP must be one of asyncio, uvloop"):
        hub_loop.run(coro)
    assert coro.cr_frame is None  # closed, not left unawaited


def test_the_cli_says_so_in_one_line() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "hub.cli.main", "review", "list"],
        env={"HUB_EVENT_LOOP": "twisted", "PATH": "/usr/bin:/bin"},
        capture_output=True, text=True, timeout=60,
    )
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines() == [
        "hub: HUB_EVENT_LOOP must be one of asyncio, uvloop"]


async def test_async_tests_run_on_the_hubs_loop() -> None:
    assert (await _kind()).startswith(hub_loop.choice())
