"""The event loop every hub command runs on.

uvloop's (libuv, from the makers of asyncpg) by default: on it a pipeline process
uses about a tenth less CPU an update and the hub moves about a tenth more
(`hub bench`, README "Performance"). HUB_EVENT_LOOP=asyncio chooses asyncio's own.
The tests run on the same loop.
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
DEFAULT = "uvloop"


def choice() -> str:
    """The loop HUB_EVENT_LOOP names: "uvloop" (the default) or "asyncio"."""
    name = os.environ.get("HUB_EVENT_LOOP", DEFAULT).strip().lower() or DEFAULT
    if name not in CHOICES:
        raise ConfigError(f"HUB_EVENT_LOOP must be one of {', '.join(CHOICES)}")
    return name


def run(coro: Coroutine[Any, Any, T]) -> T:
    """asyncio.run(coro) on that loop (uvloop's under its policy, for the run only)."""
    try:
        name = choice()
    except ConfigError:
        coro.close()  # never started: no "never awaited" warning
        raise
    if name == "asyncio":
        return asyncio.run(coro)
    before = asyncio.get_event_loop_policy()
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    try:
        return asyncio.run(coro)
    finally:
        asyncio.set_event_loop_policy(before)
