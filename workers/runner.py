"""`hub run`: pipeline workers, outbox relay, dead-letter parking and held-queue
release, in one process, stopped cleanly by SIGTERM or SIGINT."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
from collections.abc import Awaitable, Callable
from typing import Any

from hub import gc_tuning, native
from hub.broker.connection import connect
from hub.config import Settings
from hub.db.connect import pool as make_pool
from hub.db.roles import too_powerful
from hub.log import get
from workers import parking, relay
from workers.pipeline import Pipeline, release_held

log = get("runner")


async def _supervise(name: str, make: Callable[[], Awaitable[None]],
                     stopping: asyncio.Event, first_delay: float = 0.5,
                     healthy_after: float = 60.0) -> None:
    """Run a loop until the hub stops, restarting it after a failure: a cut
    connection must not stop the hub (what was unacknowledged comes back). The
    pause doubles while it keeps failing (to 10 s), and starts again from
    `first_delay` once it has run `healthy_after` seconds: an outage weeks after the
    last one is retried at once."""
    loop = asyncio.get_running_loop()
    delay = first_delay
    while not stopping.is_set():
        started = loop.time()
        try:
            await make()
            return
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - logged and restarted
            log.error("component_failed", component=name, error=type(exc).__name__)
            if loop.time() - started >= healthy_after:
                delay = first_delay
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stopping.wait(), timeout=delay)
            delay = min(delay * 2, 10)


async def _heartbeat(pool: object, ids: list[str], stopping: asyncio.Event) -> None:
    while not stopping.is_set():
        with contextlib.suppress(Exception):
            async with pool.acquire() as conn:  # type: ignore[attr-defined]
                await conn.execute(
                    "UPDATE worker_status SET heartbeat = now() WHERE worker_id = ANY($1)", ids
                )
                await conn.execute(
                    "DELETE FROM worker_status WHERE heartbeat < now() - interval '1 minute'"
                )
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stopping.wait(), timeout=2)


async def _matcher_loop(pool: object, pipelines: list[Pipeline], stopping: asyncio.Event,
                        ready: asyncio.Event) -> None:
    """The active scoring model and the index's name frequencies, refreshed now and then."""
    from hub.decide import Matcher
    from hub.match_store import active_model, term_frequencies

    while not stopping.is_set():
        try:
            async with pool.acquire() as conn:  # type: ignore[attr-defined]
                model = await active_model(conn)
                matcher = Matcher(model, await term_frequencies(conn, model))
            for p in pipelines:
                p.matcher = matcher
            log.info("matcher_loaded", model_version=matcher.model.version)
        except Exception as exc:  # noqa: BLE001 - keep the model in hand
            log.warning("matcher_load_failed", error=type(exc).__name__)
        ready.set()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stopping.wait(), timeout=300)


async def _release_loop(pool: object, amqp: object, stopping: asyncio.Event) -> None:
    while not stopping.is_set():
        try:
            await release_held(pool, amqp)  # type: ignore[arg-type]
        except Exception as exc:  # noqa: BLE001 - retried next round
            log.warning("release_failed", error=type(exc).__name__)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stopping.wait(), timeout=1)


COMPONENTS = ("pipeline", "relay", "parking")

#: Seconds to wait for what is cancelled, and for connections to close, on a stop.
CLOSE_WAIT = 5.0


async def _within(seconds: float, tasks: list[asyncio.Task[Any]]) -> int:
    """Wait for `tasks`; cancel those still running after `seconds` and give them
    CLOSE_WAIT more. Returns how many had to be cancelled."""
    if not tasks:
        return 0
    _, pending = await asyncio.wait(tasks, timeout=seconds)
    for t in pending:
        t.cancel()
    if pending:
        await asyncio.wait(pending, timeout=CLOSE_WAIT)
    for t in tasks:  # retrieved, as gather(return_exceptions=True) did
        if t.done() and not t.cancelled():
            t.exception()
    return len(pending)


async def run(settings: Settings, workers: int = 1, started: asyncio.Event | None = None,
              only: tuple[str, ...] = COMPONENTS) -> dict:
    """`only` runs some components (the chaos suite kills the relay on its own);
    "pipeline" includes releasing resumed sources' held updates."""
    gc_tuning.tune()
    pool = await make_pool(settings.database_url, size=workers + 4)
    async with pool.acquire() as conn:
        # The runtime needs only hub_worker (README, Security); say when it has more.
        too_much = await too_powerful(conn)
    try:
        amqp = await connect(settings.amqp_url)
    except BaseException:
        await pool.close()
        raise
    if too_much:  # after both services answer: a failure to start is one line on stderr
        log.warning("db_login_too_powerful", login=too_much,
                    hint="run `hub run` as a hub_worker login (hub db-user add)")
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stopping.set)
    base = f"{socket.gethostname()}:{os.getpid()}"
    pipelines = [Pipeline(settings, pool, amqp, f"{base}:{i}")
                 for i in range(workers if "pipeline" in only else 0)]
    ids = [p.worker_id for p in pipelines]
    matcher_ready = asyncio.Event()
    matcher_task = asyncio.create_task(_matcher_loop(pool, pipelines, stopping, matcher_ready))
    await asyncio.wait([asyncio.create_task(matcher_ready.wait()), matcher_task],
                       return_when=asyncio.FIRST_COMPLETED)
    work = [
        asyncio.create_task(_supervise(p.worker_id, p.run, p.stopping), name=p.worker_id)
        for p in pipelines
    ]
    side = [
        asyncio.create_task(_heartbeat(pool, ids, stopping), name="heartbeat"),
        matcher_task,
    ]
    if "relay" in only:
        side.append(asyncio.create_task(
            _supervise("relay", lambda: relay.run(pool, amqp, stopping), stopping), name="relay"))
    if "parking" in only:
        side.append(asyncio.create_task(
            _supervise("parking", lambda: parking.run(pool, amqp, stopping), stopping),
            name="parking"))
    if "pipeline" in only:
        side.append(asyncio.create_task(_release_loop(pool, amqp, stopping), name="release"))
    # A deployment that runs the matching path as Python spends ~15% more CPU an
    # update: say which (hub.native).
    log.info("started", workers=workers, matching_path=native.describe())
    if started is not None:
        started.set()
    stop_wait = asyncio.create_task(stopping.wait())
    done, _ = await asyncio.wait([stop_wait, *work, *side], return_when=asyncio.FIRST_COMPLETED)
    failure = next((t for t in done if t is not stop_wait and t.exception()), None)
    stopping.set()
    for p in pipelines:
        p.stopping.set()
    # Pipelines finish the batch in hand (commit, then ack) before stopping, within
    # the grace: with the broker or database gone they could wait for ever, and a
    # batch cut short is safe (not acked, so delivered again; not committed).
    late = await _within(settings.stop_grace, work)
    if late:
        log.warning("stop_grace_expired", seconds=settings.stop_grace, unfinished=late)
    # The relay finishes the batch in hand (published, then marked sent; it stops at
    # its next turn), or a restart would send it again. The others are cancelled at
    # once: what they hold is safe to cut (parking commits, then acks).
    relays = [t for t in side if t.get_name() == "relay"]
    await asyncio.gather(_within(CLOSE_WAIT, relays),
                         _within(0, [t for t in side if t not in relays]))
    try:
        await asyncio.wait_for(amqp.close(), CLOSE_WAIT)
    except Exception as exc:  # noqa: BLE001 - stopping anyway
        log.warning("broker_close_failed", error=type(exc).__name__)
    try:
        await asyncio.wait_for(pool.close(), CLOSE_WAIT)
    except Exception as exc:  # noqa: BLE001 - stopping anyway
        log.warning("database_close_failed", error=type(exc).__name__)
        pool.terminate()
    totals: dict[str, int] = {}
    for p in pipelines:
        for k, v in p.stats.items():
            totals[k] = totals.get(k, 0) + v
    log.info("stopped", **totals)
    if failure is not None:
        error = failure.exception()
        assert error is not None
        raise error
    return totals
