"""A TCP proxy the chaos suite controls, between the hub and a service.

`cut()` aborts every connection through it without a close (an RST, no AMQP or
PostgreSQL goodbye), as a dropped network path or a dead load balancer would.
With several targets (the nodes of a RabbitMQ cluster) new connections go round
the nodes and skip one that refuses, as a load balancer in front of a cluster
does. It runs on an event loop of its own, in a thread, so the traffic keeps
flowing while the suite blocks.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Coroutine
from typing import Any


class Proxy:
    def __init__(self, targets: list[tuple[str, int]]) -> None:
        self.targets = targets
        self.server: asyncio.Server | None = None
        self.writers: set[asyncio.StreamWriter] = set()
        self.next = 0
        self.cuts = 0
        self.opened: list[float] = []  # when each connection through it was made
        self.open_to: dict[int, int] = {}  # target index -> connections open to it now

    @property
    def port(self) -> int:
        assert self.server is not None
        return int(self.server.sockets[0].getsockname()[1])

    async def start(self) -> Proxy:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return self

    async def _upstream(self) -> tuple[int, asyncio.StreamReader, asyncio.StreamWriter] | None:
        n = len(self.targets)
        first, self.next = self.next, (self.next + 1) % n
        for i in range(n):
            target = (first + i) % n
            with contextlib.suppress(OSError, TimeoutError):
                r, w = await asyncio.wait_for(asyncio.open_connection(*self.targets[target]), 5)
                return target, r, w
        return None

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up = await self._upstream()
        if up is None:
            writer.transport.abort()
            return
        target, up_reader, up_writer = up
        self.writers |= {writer, up_writer}
        self.opened.append(time.time())
        self.open_to[target] = self.open_to.get(target, 0) + 1

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            with contextlib.suppress(Exception):
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            with contextlib.suppress(Exception):
                dst.transport.abort()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))
        self.writers -= {writer, up_writer}
        self.open_to[target] -= 1

    def cut(self) -> int:
        """Abort every connection through the proxy; returns how many."""
        n = len(self.writers) // 2
        for w in list(self.writers):
            w.transport.abort()
        self.writers.clear()
        self.cuts += 1
        return n

    async def stop(self) -> None:
        self.cut()
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()


class Proxies:
    """Named proxies on one event loop in a thread of their own."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True,
                                       name="chaos-proxies")
        self.thread.start()
        self.by_name: dict[str, Proxy] = {}

    def _call(self, coro: Coroutine[Any, Any, Any]) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout=30)

    def add(self, name: str, targets: list[tuple[str, int]]) -> int:
        """A proxy to these targets; returns its port."""
        self.by_name[name] = self._call(Proxy(targets).start())
        return self.by_name[name].port

    def cut(self, name: str) -> int:
        async def do() -> int:
            return self.by_name[name].cut()

        return int(self._call(do()))

    def opened_since(self, name: str, t: float) -> int:
        """Connections made through a proxy since `t` (the hub reconnecting)."""
        return sum(1 for at in list(self.by_name[name].opened) if at > t)

    def open_to(self, name: str, target: int) -> int:
        """Connections open now through a proxy to one of its targets."""
        return self.by_name[name].open_to.get(target, 0)

    def close(self) -> None:
        for p in self.by_name.values():
            with contextlib.suppress(Exception):
                self._call(p.stop())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)
