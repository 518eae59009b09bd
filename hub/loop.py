"""The event loop every hub command runs on.

asyncio's own by default. HUB_EVENT_LOOP=uvloop chooses uvloop's (libuv, from the
makers of asyncpg): on it a pipeline process used about a tenth less CPU an update
(`hub bench`, README "Performance"). It is not the default yet: it has not had the
runs of the chaos suite that asyncio's loop has. The tests run on the same loop.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Coroutine
from typing import Any, TypeVar

import uvloop

from hub.config import ConfigError

T = TypeVar("T")

CHOICES = ("asyncio", "uvloop")


def choice() -> str:
    """The loop HUB_EVENT_LOOP names: "asyncio" (the default) or "uvloop"."""
    name = os.environ.get("HUB_EVENT_LOOP", "asyncio").strip().lower() or "asyncio"
    if name not in CHOICES:
        raise ConfigError(f"HUB_EVENT_LOOP must be one of {', '.join(CHOICES)}")
    return name


def run(coro: Coroutine[Any, Any, T]) -> T:
    """asyncio.run(coro) on that loop: asyncio.run itself, which also makes the loop
    the thread's current one. Started otherwise (an asyncio.Runner given a loop
    factory, or asyncio's own loop under a policy set here), `hub chaos` waited for
    ever once the hub had done its work (CI's chaos test)."""
    try:
        name = choice()
    except ConfigError:
        coro.close()  # never started: no "never awaited" warning
        raise
    if name == "asyncio":
        return asyncio.run(coro)  # exactly as before the setting existed
    before = asyncio.get_event_loop_policy()
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    try:
        return asyncio.run(coro)
    finally:
        asyncio.set_event_loop_policy(before)
