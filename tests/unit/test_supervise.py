"""A failed component of `hub run` is restarted after a pause that doubles while it
keeps failing and starts again from the first once it has run healthily."""

from __future__ import annotations

import asyncio

from workers.runner import _supervise


async def test_the_restart_pause_doubles_then_resets_after_a_healthy_run() -> None:
    loop = asyncio.get_running_loop()
    stopping = asyncio.Event()
    starts: list[float] = []
    # How long each run lasts before failing: five quick failures, a healthy run, two
    # more quick failures; the ninth run ends cleanly.
    runs = [0.0] * 5 + [0.25] + [0.0] * 2

    async def make() -> None:
        starts.append(loop.time())
        if len(starts) > len(runs):
            return
        await asyncio.sleep(runs[len(starts) - 1])
        raise ConnectionResetError

    await asyncio.wait_for(_supervise("test", make, stopping, first_delay=0.02,
                                      healthy_after=0.2), timeout=10)
    ends = [s + r for s, r in zip(starts, runs, strict=False)]
    pauses = [b - a for a, b in zip(ends, starts[1:], strict=False)]
    assert len(pauses) == 8
    # 0.02, 0.04, 0.08, 0.16, 0.32 (each at least that: a wait never ends early)
    assert all(p > 0.018 * 2**i for i, p in enumerate(pauses[:5])), pauses
    # After the healthy run the pauses start again from the first (0.02, 0.04), not
    # from where they were (0.64, 1.28): wide margins for a busy machine.
    assert 0.018 < pauses[5] < 0.5 and 0.036 < pauses[6] < 1.0, pauses


async def test_a_stop_during_the_pause_ends_it_at_once() -> None:
    stopping = asyncio.Event()

    async def make() -> None:
        loop = asyncio.get_running_loop()
        loop.call_later(0.05, stopping.set)
        raise ConnectionResetError

    t0 = asyncio.get_running_loop().time()
    await asyncio.wait_for(_supervise("test", make, stopping, first_delay=30), timeout=5)
    assert asyncio.get_running_loop().time() - t0 < 2
