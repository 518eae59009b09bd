"""A million-record CSV through `hub publish` in bounded memory.

Writes an N-row child-benefit style CSV (streamed, invented names, test NHS
numbers), declares the hub's topology in a scratch vhost, drains hub.inbound
with a consumer that only acks (so the broker is not the thing measured
filling up), then runs the real `hub publish --format csv` as a child process
and prints records per second and that process's peak memory.

    .venv/bin/python -m bench.publish_csv --rows 1000000
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import csv
import os
import resource
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import aio_pika

from hub import loop as hub_loop
from hub.nhs import check_digit

HEADER = ["source_record_id", "source_version", "nhs_number", "given_name", "family_name",
          "date_of_birth", "sex", "address_line1", "town", "postcode", "la",
          "carer1_name", "carer1_relationship", "carer1_phone"]
GIVEN = ["Amelia", "Oliver", "Isla", "George", "Ava", "Noah", "Ivy", "Arthur", "Freya", "Leo"]
FAMILY = ["Smith", "Jones", "Taylor", "Brown", "Quenby", "Ashdown", "Threlkeld", "Lindqvist"]


def write_csv(path: Path, rows: int) -> None:
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(HEADER)
        for i in range(rows):
            first = f"999{i % 1_000_000:06d}"
            d = check_digit(first)
            nhs = first + str(d) if d is not None else ""
            family = FAMILY[i % len(FAMILY)]
            w.writerow([f"CB-{i:07d}", 1, nhs, GIVEN[i % len(GIVEN)], family,
                        f"{2008 + i % 17}-{1 + i % 12:02d}-{1 + i % 28:02d}",
                        "F" if i % 2 else "M", f"{1 + i % 200} Orchard Row", "Leeds",
                        f"LS{1 + i % 20} {i % 9}AA", "383", f"Rowan {family}", "mother",
                        f"07700 900{i % 1000:03d}"])


def rabbitmqctl(*args: str) -> None:
    subprocess.run(["rabbitmqctl", "-q", *args], check=True, capture_output=True)


async def drain(url: str, stop: asyncio.Event) -> int:
    conn = await aio_pika.connect_robust(url)
    count = 0
    async with conn:
        ch = await conn.channel()
        await ch.set_qos(prefetch_count=1000)
        q = await ch.get_queue("hub.inbound", ensure=False)
        async with q.iterator() as it:
            async for msg in it:
                await msg.ack()
                count += 1
                if stop.is_set():
                    break
    return count


async def main_async(rows: int, base_url: str) -> dict[str, float]:
    vhost = f"bench_{uuid.uuid4().hex[:8]}"
    rabbitmqctl("add_vhost", vhost)
    rabbitmqctl("set_permissions", "-p", vhost, "guest", ".*", ".*", ".*")
    url = base_url.rstrip("/") + "/" + vhost
    work = Path(tempfile.mkdtemp(prefix="bench-csv-"))
    path = work / "extract.csv"
    try:
        t = time.monotonic()
        write_csv(path, rows)
        print(f"wrote {rows} rows ({path.stat().st_size / 1e6:.0f} MB) in "
              f"{time.monotonic() - t:.1f}s", file=sys.stderr)
        conn = await aio_pika.connect_robust(url)
        async with conn:
            from hub.broker.topology import declare

            await declare(await conn.channel())
        stop = asyncio.Event()
        drainer = asyncio.create_task(drain(url, stop))
        env = dict(os.environ, HUB_AMQP_URL=url)
        t = time.monotonic()
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "hub.cli.main", "publish", "--source", "dwp", "--format",
            "csv", str(path), env=env, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.DEVNULL)
        out, _ = await proc.communicate()
        elapsed = time.monotonic() - t
        stop.set()
        drainer.cancel()
        with contextlib.suppress(BaseException):  # the drain only kept the queue short
            await drainer
        peak_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        summary = out.decode().strip().splitlines()[-1] if out else ""
        return {"rows": rows, "seconds": round(elapsed, 1),
                "records_per_second": round(rows / elapsed),
                "publisher_peak_mib": round(peak_kib / 1024, 1), "summary": summary}  # type: ignore[dict-item]
    finally:
        rabbitmqctl("delete_vhost", vhost)
        path.unlink(missing_ok=True)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--rows", type=int, default=1_000_000)
    p.add_argument("--amqp-url", default="amqp://guest:guest@127.0.0.1:5672/")
    args = p.parse_args()
    for k, v in hub_loop.run(main_async(args.rows, args.amqp_url)).items():
        print(f"{k}: {v}")


if __name__ == "__main__":
    main()
