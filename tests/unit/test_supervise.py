"""A failed component of `hub run` is restarted after a pause that doubles while it
keeps failing and starts again from the first once it has run healthily."""

from __future__ import annotations

import asyncio

from workers.runner import _supervise


async def test_the_restart_pause_doubles_then_resets_after_a_healthy_run() -> None:
    loop = asyncio.get_running_loop()
    stopping = asyncio.Event()
    starts: list[float] = []
    # How long each run lasts before failing: three quick failures, a healthy run,
    # one more quick failure; the sixth run ends cleanly.
    runs = [0.0, 0.0, 0.0, 0.25, 0.0]

    async def make() -> None:
        starts.append(loop.time())
        if len(starts) > len(runs):
            return
        await asyncio.sleep(runs[len(starts) - 1])
        raise ConnectionResetError

    await asyncio.wait_for(_supervise("test", make, stopping, first_delay=0.04,
                                      healthy_after=0.2), timeout=5)
    ends = [s + r for s, r in zip(starts, runs, strict=False)]
    pauses = [b - a for a, b in zip(ends, starts[1:], strict=False)]
    assert len(pauses) == 5
    assert pauses[0] > 0.035 and pauses[1] > 0.075 and pauses[2] > 0.15, pauses
    # After the healthy run the pauses start again from the first (0.04, 0.08), not
    # from where they were (0.32, 0.64).
    assert 0.035 < pauses[3] < 0.3 and 0.075 < pauses[4] < 0.6, pauses


async def test_a_stop_during_the_pause_ends_it_at_once() -> None:
    stopping = asyncio.Event()

    async def make() -> None:
        loop = asyncio.get_running_loop()
        loop.call_later(0.05, stopping.set)
        raise ConnectionResetError

    t0 = asyncio.get_running_loop().time()
    await asyncio.wait_for(_supervise("test", make, stopping, first_delay=30), timeout=5)
    assert asyncio.get_running_loop().time() - t0 < 2
