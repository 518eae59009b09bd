"""Reading a source file through its adapter and publishing it with confirms.

Every record ends as exactly one of: published to hub.ingest, or dead-lettered
to hub.dead with its reason and raw content. An update's message id is derived
from its content, so publishing the same file twice is harmless; a bad record's
from its content and this run, so each run's rejection that the summary reports
is kept (a letter purged, or the same bytes read as another format, came back as
an id already parked and was dropped).
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import IO, Any
from urllib.parse import unquote, urlsplit

from adapters.base import BadRecord, Record
from hub.broker import topology as topo
from hub.broker.connection import confirming_channel, connect, message, message_id_for, publish
from hub.validate import Rejection, check

WINDOW = 256  # confirms outstanding at once


@dataclass
class Summary:
    published: int = 0
    confirmed: int = 0  # of those published, confirmed by the broker so far
    rejected: list[tuple[str, str, str]] = field(default_factory=list)  # (where, reason, error)


def canonical_body(update: dict) -> bytes:
    text = json.dumps(update, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    try:
        return text.encode()
    except UnicodeEncodeError:
        # A lone surrogate (from a "\ud800" escape) in a record that is about to be
        # rejected: UTF-8 cannot carry it, a JSON escape can.
        return json.dumps(update, sort_keys=True, separators=(",", ":")).encode()


def user_of(amqp_url: str) -> str:
    return unquote(urlsplit(amqp_url).username or "guest")


async def publish_items(
    amqp_url: str,
    source: str,
    items: Iterable[Record | BadRecord],
    progress: Callable[[Summary], None] | None = None,
    fmt: str = "jsonl",
    summary: Summary | None = None,
) -> Summary:
    """Publish every item; `summary` (else a new one) counts as it goes, so a caller
    can say how far it got when the broker fails part-way."""
    conn = await connect(amqp_url)
    summary = summary if summary is not None else Summary()
    user = user_of(amqp_url)
    run = uuid.uuid4().hex  # this run's dead letters are its own (module docstring)
    try:
        channel = await confirming_channel(conn)
        ingest = await topo.exchange(channel, topo.INGEST)
        dead = await topo.exchange(channel, topo.DEAD)
        routing_key = f"source.{source}"
        window = asyncio.Semaphore(WINDOW)
        pending: set[asyncio.Task[None]] = set()
        failures: list[BaseException] = []
        last = time.monotonic()

        async def send(exchange: Any, key: str, msg: Any) -> None:
            try:
                await publish(exchange, key, msg)
                if exchange is ingest:
                    summary.confirmed += 1
            finally:
                window.release()

        def done(task: asyncio.Task[None]) -> None:
            pending.discard(task)
            if not task.cancelled() and task.exception() is not None:
                failures.append(task.exception())  # type: ignore[arg-type]

        def start(exchange: Any, key: str, msg: Any) -> None:
            task = asyncio.ensure_future(send(exchange, key, msg))
            pending.add(task)
            task.add_done_callback(done)

        for item in items:
            await window.acquire()  # at most WINDOW confirms outstanding
            if failures:
                window.release()
                raise failures[0]  # a refused publish is an error, not a silent drop
            adapter_rejected = isinstance(item, BadRecord)
            if isinstance(item, Record):
                result = check(item.update, expected_source=source)
                if isinstance(result, Rejection):
                    item = BadRecord(item.where, result.reason, result.error,
                                     canonical_body(item.update).decode(),
                                     result.source_record_id)
                else:
                    body = canonical_body(item.update)
                    msg = message(body, message_id=message_id_for(routing_key, body), user_id=user)
                    start(ingest, routing_key, msg)
                    summary.published += 1
            if isinstance(item, BadRecord):
                raw = item.raw.encode("utf-8", "backslashreplace")
                headers = {
                    topo.H_REASON: item.reason,
                    topo.H_ERROR: f"{item.where}: {item.error}",
                    topo.H_SOURCE: source,
                    topo.H_ROUTING_KEY: routing_key,
                }
                if adapter_rejected:  # else its raw content is the canonical body
                    headers[topo.H_FORMAT] = fmt
                if item.source_record_id:
                    headers[topo.H_RECORD] = item.source_record_id
                mid = message_id_for(f"dead.{source}.{fmt}.{run}.{item.where}", raw)
                start(dead, routing_key, message(raw, message_id=mid, headers=headers))
                summary.rejected.append((item.where, item.reason, item.error))
            if progress and time.monotonic() - last > 1:
                progress(summary)
                last = time.monotonic()
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)
        if failures:
            raise failures[0]
    finally:
        await conn.close()
    return summary


def print_progress(stream: IO[str] = sys.stderr) -> Callable[[Summary], None]:
    def show(s: Summary) -> None:
        print(f"... {s.published} published, {len(s.rejected)} rejected", file=stream, flush=True)

    return show
