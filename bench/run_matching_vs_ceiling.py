"""The broker ceiling and matching throughput in one run, and their ratio.

The target (the issue): matching alone, with 1,000,000 children indexed, at least
twice the broker ceiling's end-to-end rate, so that the broker, not matching,
limits the hub.

    python -m bench.run_matching_vs_ceiling --children 1000000 --updates 20000
    python -m bench.run_matching_vs_ceiling --reuse-db hub_bench_1m --n 20000

Matching runs first (building the index if asked), then the ceiling, with as many
messages as asked (--n) of the mean size of the updates matched (their canonical
bodies, as `hub publish` sends them: about 450 B), unless --size says otherwise.
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

from bench import broker_ceiling, matching
from hub import loop as hub_loop

TARGET_RATIO = 2.0


async def run(args: argparse.Namespace) -> dict[str, Any]:
    t0 = time.perf_counter()
    match = await matching.run(
        args.database_url, args.children, args.updates, args.batch, args.seed, args.chunk,
        args.keep_db, args.reuse_db, args.lanes,
    )
    size = args.size or match["mean_body_bytes"]
    matching.log(f"broker ceiling: {args.n:,} messages of {size} B")
    ceiling = await broker_ceiling.measure(args.amqp_url, args.n, size)
    ratio = match["updates_per_second"] / ceiling["end_to_end_rate"]
    return {
        "ceiling": ceiling,
        "matching": match,
        "ratio": ratio,
        "target_ratio": TARGET_RATIO,
        "meets_target": ratio >= TARGET_RATIO,
        "wall_seconds": time.perf_counter() - t0,
    }


def format_result(r: dict[str, Any]) -> str:
    c, m = r["ceiling"], r["matching"]
    verdict = "meets" if r["meets_target"] else "MISSES"
    return "\n".join([
        broker_ceiling.format_result(c),
        "",
        matching.format_result(m),
        "",
        f"broker ceiling (end to end): {c['end_to_end_rate']:9.0f} msg/s",
        f"matching alone:              {m['updates_per_second']:9.0f} updates/s "
        f"with {m['children']:,} children indexed",
        f"ratio matching / ceiling:    {r['ratio']:9.2f}  "
        f"({verdict} the target of {r['target_ratio']:.0f}x)",
        f"wall time: {r['wall_seconds']:.0f} s",
    ])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--amqp-url", default=broker_ceiling.DEFAULT_AMQP_URL)
    parser.add_argument("--n", type=int, default=20_000, help="ceiling: messages")
    parser.add_argument("--size", type=int, default=None,
                        help="ceiling: message bytes (default: the updates' mean size)")
    matching.add_arguments(parser)
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    parser.set_defaults(children=1_000_000)
    args = parser.parse_args(argv)
    result = hub_loop.run(run(args))
    print(json.dumps(result, indent=2) if args.json else format_result(result))


if __name__ == "__main__":
    main()
