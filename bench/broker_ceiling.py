"""The broker ceiling: how fast RabbitMQ moves persistent messages through a quorum
queue on this machine when nobody does any work with them.

A publisher (this process) publishes `n` persistent messages of `size` bytes with
publisher confirms, keeping a window of outstanding confirms as a real publisher
does; a consumer in a separate process consumes them with manual acks and a
prefetch, doing nothing else. Each body starts with the publish timestamp, so the
consumer measures publish -> consume latency per message.

    python -m bench.broker_ceiling --n 20000 --size 1200

Runs in a fresh vhost (rabbitmqctl add_vhost, deleted afterwards) when rabbitmqctl
is usable, else in a uniquely named queue (deleted afterwards) in the URL's vhost.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import statistics
import struct
import sys
import time
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

import aio_pika

from hub import loop as hub_loop

DEFAULT_AMQP_URL = "amqp://guest:guest@127.0.0.1:5672/"
HEADER = struct.Struct("!dQ")  # publish time (time.time()), sequence number
WINDOW = 256  # outstanding publisher confirms
PREFETCH = 500
ROOT = Path(__file__).resolve().parent.parent  # so the consumer can import bench


def _with_vhost(url: str, vhost: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path="/" + quote(vhost, safe="")))


def _user(url: str) -> str:
    return urlsplit(url).username or "guest"


async def _ctl(*args: str) -> None:
    proc = await asyncio.create_subprocess_exec(
        "rabbitmqctl", *args,
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
    )
    _, err = await proc.communicate()
    if proc.returncode != 0:
        raise RuntimeError(f"rabbitmqctl {' '.join(args)}: {err.decode().strip()}")


def percentile(sorted_values: list[float], fraction: float) -> float:
    """Nearest-rank percentile of an already sorted list."""
    if not sorted_values:
        return float("nan")
    rank = max(0, min(len(sorted_values) - 1, round(fraction * len(sorted_values)) - 1))
    return sorted_values[rank]


# -- the consumer (a separate process) ----------------------------------------------


def _say(obj: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def _consumer_main(url: str, queue: str, n: int, prefetch: int) -> None:
    """Entry point of the consumer process: one JSON line when ready, one at the end."""
    try:
        result = hub_loop.run(_consume(url, queue, n, prefetch))
    except BaseException as exc:  # report, never leave the parent guessing
        _say({"error": f"{type(exc).__name__}: {exc}"})
        raise SystemExit(1) from None
    _say(result)


async def _consume(url: str, queue: str, n: int, prefetch: int) -> dict[str, Any]:
    connection = await aio_pika.connect(url)
    async with connection:
        channel = await connection.channel()
        await channel.set_qos(prefetch_count=prefetch)
        q = await channel.get_queue(queue, ensure=True)
        latencies: list[float] = []
        done = asyncio.get_running_loop().create_future()
        first_recv = 0.0
        last_ack = 0.0

        async def on_message(message: aio_pika.abc.AbstractIncomingMessage) -> None:
            nonlocal first_recv, last_ack
            now = time.time()
            sent, _seq = HEADER.unpack_from(message.body)
            if not latencies:
                first_recv = now
            latencies.append(now - sent)
            await message.ack()
            if len(latencies) >= n and not done.done():
                last_ack = time.time()
                done.set_result(None)

        tag = await q.consume(on_message, no_ack=False)
        _say({"ready": True})
        await done
        await q.cancel(tag)
    latencies.sort()
    return {
        "received": len(latencies),
        "first_recv": first_recv,
        "last_ack": last_ack,
        "latency_median_ms": statistics.median(latencies) * 1000,
        "latency_p99_ms": percentile(latencies, 0.99) * 1000,
        "latency_max_ms": latencies[-1] * 1000,
    }


# -- the publisher and the measurement ----------------------------------------------


async def _publish(
    url: str, queue: str, n: int, size: int, window: int, rate: float | None = None
) -> tuple[float, float]:
    """Publish n messages, at most `window` unconfirmed; (first publish, last confirm).
    With `rate`, message i leaves at start + i / rate (a paced source), not at once."""
    padding = b"x" * max(0, size - HEADER.size)
    connection = await aio_pika.connect(url)
    async with connection:
        channel = await connection.channel(publisher_confirms=True)
        exchange = channel.default_exchange
        pending: set[asyncio.Future[Any]] = set()
        start = time.time()
        for seq in range(n):
            if rate:
                delay = start + seq / rate - time.time()
                if delay > 0:
                    await asyncio.sleep(delay)
            if len(pending) >= window:
                finished, pending = await asyncio.wait(
                    pending, return_when=asyncio.FIRST_COMPLETED
                )
                for f in finished:
                    f.result()  # raise on a nack
            body = HEADER.pack(time.time(), seq) + padding
            message = aio_pika.Message(
                body, delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                content_type="application/octet-stream",
            )
            pending.add(asyncio.ensure_future(exchange.publish(message, routing_key=queue)))
        for outcome in await asyncio.gather(*pending, return_exceptions=True):
            if isinstance(outcome, BaseException):
                raise outcome
        return start, time.time()


async def measure(
    amqp_url: str = DEFAULT_AMQP_URL,
    n: int = 20_000,
    size: int = 1200,
    *,
    window: int = WINDOW,
    prefetch: int = PREFETCH,
    use_vhost: bool = True,
    timeout: float = 600.0,
    rate: float | None = None,
) -> dict[str, Any]:
    """Publish/consume n persistent messages of `size` bytes through a fresh quorum
    queue; rates in messages/second, latencies in milliseconds. With `rate`
    (messages/second) the publisher is paced, to measure latency below the ceiling."""
    if size < HEADER.size:
        raise ValueError(f"size must be at least {HEADER.size} bytes")
    suffix = uuid.uuid4().hex[:10]
    vhost: str | None = None
    url = amqp_url
    if use_vhost and shutil.which("rabbitmqctl"):
        vhost = f"bench_{suffix}"
        try:
            await _ctl("add_vhost", vhost)
            await _ctl("set_permissions", "-p", vhost, _user(amqp_url), ".*", ".*", ".*")
        except (RuntimeError, OSError) as exc:
            print(f"no vhost ({exc}); using a unique queue instead", file=sys.stderr)
            if vhost:
                try:
                    await _ctl("delete_vhost", vhost)
                except (RuntimeError, OSError):
                    pass
            vhost = None
        else:
            url = _with_vhost(amqp_url, vhost)
    queue = f"bench.ceiling.{suffix}"
    proc: asyncio.subprocess.Process | None = None
    try:
        connection = await aio_pika.connect(url)
        async with connection:
            channel = await connection.channel()
            await channel.declare_queue(
                queue, durable=True, arguments={"x-queue-type": "quorum"}
            )

        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bench.broker_ceiling", "--consume", queue,
            "--amqp-url", url, "--n", str(n), "--prefetch", str(prefetch),
            stdout=asyncio.subprocess.PIPE, cwd=str(ROOT),
        )
        assert proc.stdout is not None
        ready = await _line(proc.stdout, 60.0)
        if "ready" not in ready:
            raise RuntimeError(f"consumer: {ready.get('error', ready)}")

        first_publish, last_confirm = await _publish(url, queue, n, size, window, rate)
        consumed = await _line(proc.stdout, timeout)
        if "error" in consumed:
            raise RuntimeError(f"consumer: {consumed['error']}")
        await asyncio.wait_for(proc.wait(), 30)
    finally:
        if proc is not None and proc.returncode is None:
            proc.terminate()
            await proc.wait()
        if vhost is not None:
            await _ctl("delete_vhost", vhost)
        else:
            connection = await aio_pika.connect(url)
            async with connection:
                channel = await connection.channel()
                await channel.queue_delete(queue)

    publish_s = last_confirm - first_publish
    e2e_s = consumed["last_ack"] - first_publish
    return {
        "n": n,
        "size": size,
        "window": window,
        "prefetch": prefetch,
        "queue_type": "quorum",
        "paced_rate": rate,
        "vhost": vhost or urlsplit(amqp_url).path or "/",
        "publish_seconds": publish_s,
        "publish_rate": n / publish_s,
        "end_to_end_seconds": e2e_s,
        "end_to_end_rate": n / e2e_s,
        "latency_median_ms": consumed["latency_median_ms"],
        "latency_p99_ms": consumed["latency_p99_ms"],
        "latency_max_ms": consumed["latency_max_ms"],
    }


async def _line(stream: asyncio.StreamReader, timeout: float) -> dict[str, Any]:
    try:
        raw = await asyncio.wait_for(stream.readline(), timeout)
    except TimeoutError:
        raise TimeoutError(f"consumer said nothing within {timeout:.0f}s") from None
    if not raw:
        raise RuntimeError("consumer exited without a result")
    value: dict[str, Any] = json.loads(raw)
    return value


def format_result(r: dict[str, Any]) -> str:
    return "\n".join([
        f"broker ceiling: {r['n']} persistent messages of {r['size']} B, {r['queue_type']} "
        f"queue, confirm window {r['window']}, prefetch {r['prefetch']}",
        f"  publish (confirmed):   {r['publish_rate']:9.0f} msg/s  "
        f"({r['publish_seconds']:.2f} s)",
        f"  end to end (last ack): {r['end_to_end_rate']:9.0f} msg/s  "
        f"({r['end_to_end_seconds']:.2f} s)",
        f"  publish -> consume latency: median {r['latency_median_ms']:.1f} ms, "
        f"p99 {r['latency_p99_ms']:.1f} ms, max {r['latency_max_ms']:.1f} ms",
    ])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--amqp-url", default=DEFAULT_AMQP_URL)
    parser.add_argument("--n", type=int, default=20_000)
    parser.add_argument("--size", type=int, default=1200)
    parser.add_argument("--window", type=int, default=WINDOW)
    parser.add_argument("--prefetch", type=int, default=PREFETCH)
    parser.add_argument("--no-vhost", action="store_true",
                        help="use a unique queue in the URL's vhost instead of a fresh vhost")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    parser.add_argument("--consume", metavar="QUEUE", help=argparse.SUPPRESS)  # the consumer
    args = parser.parse_args(argv)
    if args.consume:
        _consumer_main(args.amqp_url, args.consume, args.n, args.prefetch)
        return
    result = hub_loop.run(measure(
        args.amqp_url, args.n, args.size, window=args.window, prefetch=args.prefetch,
        use_vhost=not args.no_vhost,
    ))
    print(json.dumps(result, indent=2) if args.json else format_result(result))


if __name__ == "__main__":
    main()
