"""The event loop every hub command runs on.

uvloop's (libuv, from the makers of asyncpg) by default: the pipeline spends its
time moving small messages and query results, and on uvloop a pipeline process
used about a tenth less CPU an update than on asyncio's own loop (`hub bench`,
README "Performance"). HUB_EVENT_LOOP=asyncio chooses asyncio's own loop, should
uvloop ever misbehave somewhere; the tests run on the same loop as the hub.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

import uvloop

from hub.config import ConfigError

T = TypeVar("T")

CHOICES = ("uvloop", "asyncio")


def choice() -> str:
    """The loop HUB_EVENT_LOOP names: "uvloop" (the default) or "asyncio"."""
    name = os.environ.get("HUB_EVENT_LOOP", "uvloop").strip().lower() or "uvloop"
    if name not in CHOICES:
        raise ConfigError(f"HUB_EVENT_LOOP must be one of {', '.join(CHOICES)}")
    return name


def factory() -> Callable[[], asyncio.AbstractEventLoop]:
    """Makes a new event loop of that kind (asyncio's own class, whatever the policy)."""
    return asyncio.SelectorEventLoop if choice() == "asyncio" else uvloop.new_event_loop


def run(coro: Coroutine[Any, Any, T]) -> T:
    """asyncio.run(coro) on that loop."""
    try:
        make = factory()
    except ConfigError:
        coro.close()  # never started: no "never awaited" warning
        raise
    with asyncio.Runner(loop_factory=make) as runner:
        return runner.run(coro)
