"""The event loop every hub command runs on.

asyncio's own by default. HUB_EVENT_LOOP=uvloop chooses uvloop's (libuv, from the
makers of asyncpg): on it a pipeline process used about a tenth less CPU an update
(`hub bench`, README "Performance"), but one run of the chaos suite stalled on it
after a broker restart (not seen on asyncio's loop), so it is not the default until
that is understood. The tests run on the same loop as the hub.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Coroutine
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
