"""How a worker takes a batch from what the broker has delivered (Pipeline._take)."""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Any

from hub.config import Settings
from workers.pipeline import Pipeline


def _pipeline(size: int, wait: float) -> Pipeline:
    settings = replace(Settings(), batch_size=size, batch_wait=wait)
    return Pipeline(settings, pool=None, amqp=None, worker_id="w")  # type: ignore[arg-type]


async def _filled(p: Pipeline, n: int) -> Pipeline:
    for i in range(n):
        p.buffer.put_nowait(i)  # type: ignore[arg-type]
    return p


async def test_what_is_already_here_is_taken_whatever_the_wait() -> None:
    # With no wait the batch is what has arrived (was: one message a batch, the
    # rest cut off by a zero timeout).
    p = await _filled(_pipeline(500, 0.0), 40)
    assert len(await p._take()) == 40
    # A batch is never more than its size; the rest waits for the next.
    p = await _filled(_pipeline(25, 0.0), 40)
    assert [len(await p._take()), len(await p._take())] == [25, 15]


async def test_a_batch_waits_at_most_its_wait_to_fill() -> None:
    p: Any = await _filled(_pipeline(500, 0.05), 3)
    started = time.monotonic()
    assert len(await p._take()) == 3
    assert 0.04 <= time.monotonic() - started < 0.5
