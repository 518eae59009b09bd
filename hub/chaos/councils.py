"""The councils: each consumes its own queue during the run, as a council's system
would, recording every notification before acknowledging it (so a delivery cut
short arrives again: at-least-once)."""

from __future__ import annotations

import contextlib
import json
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from aio_pika.abc import AbstractIncomingMessage

from hub.broker import topology as topo
from hub.broker.connection import connect


@dataclass
class Received:
    """event_id -> deliveries; and what each delivery said."""

    deliveries: Counter[str] = field(default_factory=Counter)
    seen: dict[str, tuple[str, str | None, int | None]] = field(default_factory=dict)
    malformed: int = 0
    # Deliveries whose council, child or version disagree with an earlier copy.
    inconsistent: int = 0

    def record(self, la: str, body: bytes) -> None:
        try:
            note = json.loads(body)
            event_id = str(note["event_id"])
            what = (la, note.get("child_id"), note.get("version"))
        except (ValueError, KeyError, TypeError):
            self.malformed += 1
            return
        if event_id in self.seen and self.seen[event_id] != what:
            self.inconsistent += 1
        self.seen.setdefault(event_id, what)
        self.deliveries[event_id] += 1


class Councils:
    def __init__(self, url: str, las: list[str]) -> None:
        self.url, self.las = url, las
        self.received = Received()
        self.conn: Any = None
        # Held: a robust connection keeps its channels in a WeakSet, so a channel
        # nobody references is collected and never restored after a reconnect.
        self.channel: Any = None

    async def start(self) -> None:
        self.conn = await connect(self.url)
        self.channel = channel = await self.conn.channel()
        await channel.set_qos(prefetch_count=200)
        for la in self.las:
            # Declared (passively) so the robust channel restores the consumer.
            queue = await channel.declare_queue(topo.council_queue(la), passive=True)
            await queue.consume(self._on(la))

    def _on(self, la: str) -> Any:
        async def handle(msg: AbstractIncomingMessage) -> None:
            self.received.record(la, msg.body)
            with contextlib.suppress(Exception):  # a cut channel: it comes again
                await msg.ack()

        return handle

    async def close(self) -> None:
        if self.conn is not None:
            with contextlib.suppress(Exception):
                await self.conn.close()
