"""One function per command: parse nothing, decide nothing, call the hub and print."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import aio_pika
import asyncpg

from hub import operations as ops
from hub.broker import topology as topo
from hub.broker.connection import connect
from hub.cli import UsageError
from hub.config import Settings
from hub.db.connect import connect as db_connect
from hub.operations import OperationError


@asynccontextmanager
async def database(s: Settings) -> AsyncIterator[Any]:
    conn = await db_connect(s.database_url)
    try:
        yield conn
    finally:
        await conn.close()


@asynccontextmanager
async def broker(s: Settings) -> AsyncIterator[Any]:
    amqp = await connect(s.amqp_url)
    try:
        yield amqp
    finally:
        await amqp.close()


def out(obj: Any) -> None:
    print(json.dumps(obj, ensure_ascii=False, default=str), flush=True)


async def setup(args: argparse.Namespace, s: Settings) -> int:
    from hub.admin import setup as do_setup

    print(await do_setup(s))
    return 0


async def run(args: argparse.Namespace, s: Settings) -> int:
    from workers.processes import run as run_hub
    from workers.runner import COMPONENTS

    if args.workers < 1 or args.processes < 1:
        raise OperationError("--workers and --processes must be at least 1")
    from hub.db.prepared import stale_shielded

    stale = await _with_conn(s, stale_shielded)
    if stale:
        raise OperationError(
            f"{stale} shielded records carry blocking keys made by other matching code:"
            " run `hub setup` first (updates about them would miss them)")
    if args.processes > 1:
        async with broker(s):  # down: one line, before the processes start and log
            pass
    await run_hub(s, args.workers, args.processes, only=args.only or COMPONENTS)
    return 0


async def publish_cmd(args: argparse.Namespace, s: Settings) -> int:
    from adapters.registry import reader
    from hub.publishing import Summary, print_progress, publish_items

    read = reader(args.fmt)  # a known format: checked as the arguments were parsed
    for path in args.files:  # every file readable before any is published
        try:
            with open(path, "rb"):  # noqa: ASYNC230 - opened and closed at once
                pass
        except OSError as exc:
            raise OperationError(f"cannot read {path}: {exc.strerror}; nothing was"
                                 " published") from None
    total_published, total_rejected = 0, 0
    for path in args.files:
        try:
            stream = open(path, "rb")  # noqa: SIM115, ASYNC230 - streamed, closed below
        except OSError as exc:
            raise OperationError(f"cannot read {path}: {exc.strerror}") from None
        summary = Summary()
        try:
            with stream:
                await publish_items(
                    s.amqp_url, args.source, read(stream, args.source),
                    None if args.quiet else print_progress(), args.fmt, summary,
                )
        except Exception:
            # How far it got, before the one line saying why it stopped; the
            # records' ids are stable, so publishing the file again is safe.
            print(f"{path}: stopped: {summary.confirmed} of {summary.published} records"
                  " sent were confirmed by the broker; publish it again (what the hub"
                  " has received already is not applied twice)", flush=True)
            raise
        for where, reason, error in summary.rejected:
            print(f"{path}: {where}: rejected: {reason}: {error}", flush=True)
        print(f"{path}: published {summary.published}, rejected {len(summary.rejected)}"
              " (dead-lettered)", flush=True)
        total_published += summary.published
        total_rejected += len(summary.rejected)
    if len(args.files) > 1:
        print(f"total: published {total_published}, rejected {total_rejected}")
    return 0


publish = publish_cmd


async def load(args: argparse.Namespace, s: Settings) -> int:
    from hub.bulk.load import load as bulk_load
    from hub.bulk.load import print_progress

    if args.chunk < 1 or args.workers < 1 or args.hold < 0:
        raise OperationError("--chunk and --workers must be at least 1, --hold at least 0")
    held: list[Any] = []
    summary = await bulk_load(s, args.source, args.fmt, args.files, chunk=args.chunk,
                              workers=args.workers, hold=args.hold,
                              progress=None if args.quiet else print_progress, keep=held)
    for where, reason, error in summary.rejected:
        print(f"{where}: rejected: {reason}: {error}", flush=True)
    outcomes = ", ".join(f"{k} {n}" for k, n in sorted(summary.outcomes.items()))
    print(f"loaded {summary.read} records in {summary.seconds:.1f}s: "
          f"{summary.read - len(summary.rejected)} valid, {len(summary.rejected)} rejected"
          f" (dead-lettered), {summary.duplicates} already processed;"
          f" {outcomes or 'nothing new'}", flush=True)
    if not args.quiet:
        phases = ", ".join(f"{k} {v:.1f}s (ran {summary.phases_cpu.get(k, 0.0):.1f}s)"
                           for k, v in summary.phases.items())
        released = (f"; let go of what it held {summary.released} times (--hold {args.hold:,})"
                    if summary.released else "")
        print(f"load: time by phase: {phases}; pairs scored ahead"
              f" {summary.scores['pairs']:,}, used {summary.scores['cached']:,},"
              f" scored while deciding {summary.scores['scored']:,}{released}", file=sys.stderr)
    # Everything is committed and said. What the load held (about 6 GB at a million
    # records) goes with the process, not freed object by object first: that took
    # 25 s at a million. Nothing is left to close (the load closed its connections
    # and workers) and nothing else runs after a command.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


async def wait(args: argparse.Namespace, s: Settings) -> int:
    from hub.waiting import idle

    deadline = time.monotonic() + args.timeout
    quiet_since: float | None = None
    while True:
        try:  # a probe that hangs (a half-open connection) must not outlast the timeout
            ok, why = await asyncio.wait_for(idle(s), max(deadline - time.monotonic(), 5))
        except TimeoutError:
            ok, why = False, "no answer from the broker or the database"
        now = time.monotonic()
        if ok:
            quiet_since = quiet_since or now
            # Idle for a moment, not an instant: a delivery in flight has time to show.
            if now - quiet_since >= 0.6:
                print("hub is idle" + (f" ({why})" if why else ""))
                return 0
        else:
            quiet_since = None
        if now >= deadline:
            print(f"hub: still busy after {args.timeout:g}s: {why}", file=sys.stderr)
            return 1
        await asyncio.sleep(0.2)


async def export(args: argparse.Namespace, s: Settings) -> int:
    if args.include_protected and not (args.by and args.reason):
        raise UsageError("--include-protected needs --by OPERATOR and --reason TEXT")
    async with database(s) as conn:
        async for line in ops.export(conn, args.include_protected, args.by, args.reason):
            out(line)
    return 0


async def _with_conn(s: Settings, fn: Any, *a: Any) -> Any:
    async with database(s) as conn:
        return await fn(conn, *a)


async def shield(args: argparse.Namespace, s: Settings) -> int:
    done = await _with_conn(s, ops.shield_record, args.child_id, args.authority, args.by,
                            args.reason, args.household, s.thresholds)
    if done.already:
        print(f"{args.child_id} is already shielded for {args.authority} (version"
              f" {done.version}); its record was not changed")
    else:
        print(f"shielded {args.child_id} for {args.authority} (version {done.version})")
    for other in done.household:
        print(f"also shielded {other} for {args.authority}: an open record at the same house"
              f" (lift it with hub unshield {other} --authority {args.authority} if it should"
              " not be)")
    if done.house_unsearched:
        # (Says nothing of the address itself: only that it is known by its lines.)
        print("note: her address is known by its lines alone, so no open record at the same"
              " house was looked for", file=sys.stderr)
    for other in done.open_at_house:
        print(f"note: {other}, an open record at the same house, still shows this address:"
              f" shield it too (hub shield {other} --authority {args.authority}), or all of"
              " them with --household", file=sys.stderr)
    if done.could_be_her:
        more = done.could_be_her_count - len(done.could_be_her)
        # Ids only: the authority looks at them seeing both records.
        print(f"note: {done.could_be_her_count} open record(s) could be this child (a"
              " duplicate made before the shield would hold what it was given open):"
              f" {', '.join(done.could_be_her)}" + (f" and {more} more" if more else "")
              + (f"; named in {args.authority}'s audit" if done.already else
                 f"; named to {args.authority} in its child.shielded notification"),
              file=sys.stderr)
    return 0


async def unshield(args: argparse.Namespace, s: Settings) -> int:
    done = await _with_conn(s, ops.unshield, args.child_id, args.authority, args.by,
                            args.reason, args.household)
    print(f"unshielded {args.child_id} (version {done.version})")
    for other in done.household:
        print(f"also unshielded {other}: shielded by {args.authority} at the same house")
    return 0


async def sever(args: argparse.Namespace, s: Settings) -> int:
    v = await _with_conn(s, ops.sever, args.child_id, args.authority, args.by, args.reason)
    print(f"severed the former identity of {args.child_id} (version {v})")
    return 0


def _print_parked(rows: list[Any], what: str, as_json: bool, line: Any, text: Any) -> None:
    """A parked list: JSON lines, or counts by reason and one line an item."""
    if as_json:
        for r in rows:
            out(line(r))
        return
    counts = Counter(r["reason"] for r in rows)
    print(f"{len(rows)} {what}" + "".join(f"; {k}: {v}" for k, v in sorted(counts.items())))
    for r in rows:
        print(text(line(r)))


def _review_text(d: dict[str, Any]) -> str:
    cands = ", ".join(f"{c['child_id']} ({'identity ' if c.get('address_withheld') else ''}"
                      f"{c['score']})" for c in d["candidates"])
    return (f"{d['id']}  {d['reason']:<20} {d['source']}/{d['source_record_id']}"
            f"  {d['received_at']}  candidates: {cands or '-'}")


def _dead_text(d: dict[str, Any]) -> str:
    return (f"{d['id']}  {d['reason']:<22} {d['source']}/{d['source_record_id']}"
            f"  {d['received_at']}  {d['error']}")


async def review_list(args: argparse.Namespace, s: Settings) -> int:
    async with database(s) as conn:
        rows = await ops.list_parked(conn, "review", args.reason, args.source,
                                     args.older_than, args.assigned_to)
        shields = await ops.candidate_shields(conn, rows)
    _print_parked(rows, "awaiting review", args.json,
                  lambda r: ops.review_line(r, shields), _review_text)
    if not rows and args.reason and args.reason not in REVIEW_REASONS:
        # Probably mistyped: said, not refused (the list is what it is).
        print(f"note: {args.reason} is not a review reason the hub gives (it gives "
              + ", ".join(REVIEW_REASONS) + ")", file=sys.stderr)
    return 0


#: Every reason a review item is parked with (hub.decide, hub.batch).
REVIEW_REASONS = ("ambiguous_match", "conflicting_identity", "possible_match",
                  "severed_identity", "shielded_address", "shielded_candidate",
                  "shielded_contact")


async def review_show(args: argparse.Namespace, s: Settings) -> int:
    from hub.review_view import show

    if args.authority and not args.by:
        raise UsageError("--authority needs --by OPERATOR: what an authority is shown is audited")
    text = await _with_conn(s, show, args.item_id, args.authority, args.by)
    print(text)
    return 0


async def review_resolve(args: argparse.Namespace, s: Settings) -> int:
    action = "link" if args.link else "create" if args.create else "reject"
    done = await _with_conn(s, ops.resolve, args.item_id, action, args.link, args.by, args.note,
                            s.thresholds, args.authority)
    print(f"resolved {args.item_id}: {action}" + (f" -> {done.child_id}" if done.child_id else ""))
    if done.shielded is not None:  # said beside the result line, which stays as it was
        print(f"note: {done.child_id} is now shielded (authority "
              f"{done.shielded.authority or 'to be decided'}): {done.why}", file=sys.stderr)
    if done.kept:
        print(f"note: {ops.KEPT_NOTE}: {', '.join(done.kept)}", file=sys.stderr)
    return 0


async def dlq_list(args: argparse.Namespace, s: Settings) -> int:
    rows = await _with_conn(s, ops.list_parked, "dead", args.reason, args.source,
                            args.older_than, args.assigned_to)
    _print_parked(rows, "dead letters", args.json, ops.dead_line, _dead_text)
    return 0


async def dlq_show(args: argparse.Namespace, s: Settings) -> int:
    async with database(s) as conn:
        row = await ops.dead_letter(conn, args.item_id, args.by, args.reason)
    line = ops.dead_line(row)
    for key in ("id", "reason", "source", "source_record_id", "error", "received_at",
                "format", "assigned_to"):
        print(f"{key}: {line[key] if line[key] is not None else '-'}")
    print("raw content:" if row["raw"] is not None else "raw content: - (purged)")
    if row["raw"] is not None:
        print(row["raw"])
    return 0


def _dead_selected(args: argparse.Namespace) -> None:
    if not (args.item_id or args.reason or args.every):
        raise UsageError("say which: one or more IDs, --reason R or --all")


async def dlq_retry(args: argparse.Namespace, s: Settings) -> int:
    from hub.console.actions import retry_dead

    _dead_selected(args)
    async with database(s) as conn, broker(s) as amqp:
        rows = await ops.select_dead(conn, args.item_id, args.reason, args.every)
        retried, skipped = await retry_dead(conn, amqp, rows, args.by)
    for item, why in skipped:
        print(f"{item}: cannot retry: {why}", file=sys.stderr)
    print(f"retried {retried}")
    return 0


async def dlq_purge(args: argparse.Namespace, s: Settings) -> int:
    retention = not (args.item_id or args.reason or args.every)
    async with database(s) as conn:
        if args.older_than_days is not None and retention:
            print(f"purged {await ops.purge_older_than(conn, args.older_than_days, args.by)}")
            return 0
        _dead_selected(args)
        # Every selector given narrows the others (an age with a reason: both).
        rows = await ops.select_dead(conn, args.item_id, args.reason, args.every,
                                     args.older_than_days)
        async with conn.transaction():
            await ops.mark_dead(conn, [r["id"] for r in rows], "purged", args.by, "dlq.purge")
    print(f"purged {len(rows)}")
    return 0


async def review_purge(args: argparse.Namespace, s: Settings) -> int:
    return await _retention(args, s, ops.purge_decided_reviews, "decided review items")


async def outbox_purge(args: argparse.Namespace, s: Settings) -> int:
    return await _retention(args, s, ops.purge_sent_notifications, "sent notifications")


async def processed_purge(args: argparse.Namespace, s: Settings) -> int:
    return await _retention(args, s, ops.purge_processed, "processed message ids")


async def _retention(args: argparse.Namespace, s: Settings,
                     purge: Callable[[asyncpg.Connection, float, str], Awaitable[int]],
                     what: str) -> int:
    async with database(s) as conn:
        purged = await purge(conn, args.older_than_days, args.by)
    print(f"purged {purged} {what}")
    return 0


async def council_add(args: argparse.Namespace, s: Settings) -> int:
    async with broker(s) as amqp:
        await topo.declare_council(await amqp.channel(), args.la)
    async with database(s) as conn:
        await conn.execute("INSERT INTO councils (la) VALUES ($1) ON CONFLICT DO NOTHING", args.la)
        await ops.audit(conn, args.by, "council.add", None, args.la, {})
        print(f"council {args.la}: queue {topo.council_queue(args.la)} bound to la.{args.la}.#")
        if args.backfill:
            sent = await ops.backfill(conn, args.la, args.by, lambda n: print(
                f"... {n} children", file=sys.stderr, flush=True))
            print(f"council {args.la}: {sent} child.snapshot notifications written (the"
                  " children in its area, open, and those it shields)")
    return 0


async def council_remove(args: argparse.Namespace, s: Settings) -> int:
    async with database(s) as conn:
        found = await conn.fetchval("DELETE FROM councils WHERE la = $1 RETURNING la", args.la)
        if not found:
            raise OperationError(f"no council {args.la}")
        async with broker(s) as amqp:
            deleted = await (await amqp.channel()).queue_delete(topo.council_queue(args.la))
        unread = deleted.message_count or 0
        await ops.audit(conn, "operator", "council.remove", None, args.la,
                        {"notifications_deleted": unread})
    print(f"council {args.la} removed")
    if unread:  # gone with its queue: said, not silent
        print(f"note: {unread} notification(s) it had not consumed were deleted with its"
              f" queue {topo.council_queue(args.la)}", file=sys.stderr)
    return 0


async def council_list(args: argparse.Namespace, s: Settings) -> int:
    from hub.broker.connection import queue_depth

    async with database(s) as conn:
        las = [r["la"] for r in await conn.fetch("SELECT la FROM councils ORDER BY la")]
    async with broker(s) as amqp:
        for la in las:
            depth = await queue_depth(await amqp.channel(), topo.council_queue(la))
            waiting = "queue missing" if depth is None else f"{depth[0]} waiting"
            print(f"{la}  {topo.council_queue(la)}  {waiting}")
    if not las:
        print("no councils")
    return 0


async def notifications_consume(args: argparse.Namespace, s: Settings) -> int:
    count = 0
    # SIGTERM (a service manager stopping the consumer) ends it as SIGINT does:
    # after the notification in hand is printed and acknowledged, exit 0.
    stop = asyncio.Event()
    with contextlib.suppress(NotImplementedError, RuntimeError):
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    async with broker(s) as amqp:
        channel = await amqp.channel()
        await channel.set_qos(prefetch_count=50)
        try:
            queue = await channel.declare_queue(topo.council_queue(args.council), passive=True)
        except aio_pika.exceptions.ChannelClosed:
            raise OperationError(f"no queue for council {args.council}: "
                                 f"run 'hub council add {args.council}'") from None
        while (args.max_count is None or count < args.max_count) and not stop.is_set():
            msg = await queue.get(no_ack=False, fail=False, timeout=5)
            deadline = time.monotonic() + args.idle
            while msg is None and time.monotonic() < deadline and not stop.is_set():
                await asyncio.sleep(0.1)
                msg = await queue.get(no_ack=False, fail=False, timeout=5)
            if msg is None:
                break
            sys.stdout.write(msg.body.decode() + "\n")
            sys.stdout.flush()
            await msg.ack()  # only after it has been printed
            count += 1
    return 0


async def source_pause(args: argparse.Namespace, s: Settings) -> int:
    from hub.console.actions import pause

    async with database(s) as conn, broker(s) as amqp:
        await pause(conn, amqp, args.name, args.by, via="cli")
    print(f"source {args.name} paused: its updates are held in {topo.held_queue(args.name)}")
    return 0


async def source_resume(args: argparse.Namespace, s: Settings) -> int:
    from hub.console.actions import resume

    async with database(s) as conn:
        await resume(conn, args.name, args.by, via="cli")
    print(f"source {args.name} resumed: held updates go back to the pipeline")
    return 0


async def source_status(args: argparse.Namespace, s: Settings) -> int:
    from hub.console.actions import source_status as status_of

    async with database(s) as conn, broker(s) as amqp:
        sources = await status_of(conn, amqp)
    for src in sources:
        held = f", {src['held']} held" if src["held"] is not None else ""
        print(f"{src['name']}: {'paused' if src['paused'] else 'running'}"
              f"{held}, {src['linked']} records linked")
    if not sources:
        print("no sources yet")
    return 0


async def demo(args: argparse.Namespace, s: Settings) -> int:
    from hub.demo import run_demo

    return await run_demo(s, children=args.children, seed=args.seed, workers=args.workers)


async def chaos(args: argparse.Namespace, s: Settings) -> int:
    """Runs on private services of its own: HUB_* settings are not used."""
    from hub.chaos.services import ServiceError
    from hub.chaos.suite import Options, run_chaos, to_json

    opts = Options.quick_run() if args.quick else Options()
    for name in ("updates", "nodes", "rate"):
        if getattr(args, name) is not None:
            setattr(opts, name, getattr(args, name))
    opts.seed, opts.keep = args.seed, args.keep
    try:
        outcome = await run_chaos(opts)
    except (ServiceError, TimeoutError) as exc:
        raise OperationError(f"chaos suite: {exc}") from None
    except asyncio.CancelledError:
        raise OperationError("chaos suite: stopped by a signal (its services are gone)") from None
    if args.json:
        with open(args.json, "w") as fh:  # noqa: ASYNC230 - one small file at the end
            fh.write(to_json(outcome) + "\n")
    return 0 if outcome.ok else 1


async def evaluate(args: argparse.Namespace, s: Settings) -> int:
    from hub.evaluate import run_eval

    return await run_eval(s, args.children, args.seed, args.workers, args.corruption,
                          args.shielded)


async def search(args: argparse.Namespace, s: Settings) -> int:
    from datetime import date

    from hub.search import search as do_search

    try:
        date.fromisoformat(args.date_of_birth)
    except ValueError:
        raise OperationError("--date-of-birth must be YYYY-MM-DD") from None
    if not (args.given_name or args.family_name):
        raise OperationError("give --given-name or --family-name (or both)")
    results = await _with_conn(s, lambda conn: do_search(
        conn, given_name=args.given_name, family_name=args.family_name,
        date_of_birth=args.date_of_birth, sex=args.sex, postcode=args.postcode, by=args.by))
    for r in results:
        out(r)
    return 0


async def show(args: argparse.Namespace, s: Settings) -> int:
    from hub.search import show as do_show

    out(await _with_conn(s, do_show, args.child_id, args.by, args.authority, args.break_glass,
                         args.reason))
    return 0


async def match_train(args: argparse.Namespace, s: Settings) -> int:
    from hub.match_store import train_and_store

    _, summary = await _with_conn(s, lambda conn: train_and_store(
        conn, sample=args.sample, pairs=args.pairs, seed=args.seed,
        activate=not args.no_activate))
    out(summary)
    return 0


async def match_models(args: argparse.Namespace, s: Settings) -> int:
    from hub.match_store import list_models

    for m in await _with_conn(s, list_models):
        out(m)
    return 0


async def native(args: argparse.Namespace, s: Settings) -> int:
    from hub import native

    return await asyncio.to_thread(native.main, [args.action])


async def match_activate(args: argparse.Namespace, s: Settings) -> int:
    from hub.match_store import activate_model

    try:
        await _with_conn(s, activate_model, args.version)
    except KeyError:
        raise OperationError(f"no stored model {args.version}") from None
    print(f"model {args.version} is in force (running hubs pick it up within 5 minutes)")
    return 0


async def source_preview(args: argparse.Namespace, s: Settings) -> int:
    from hub.preview import preview

    p = await preview(s, args.name)
    if args.json:
        out({"source": args.name, "held": p.held, "outcomes": dict(p.outcomes),
             "reasons": dict(p.reasons), "touching_shielded": p.touching_shielded})
        return 0
    print(f"source {args.name}: {p.held} updates held; resuming would now give:")
    for action in ("link", "create", "review", "dead", "noop", "duplicate"):
        if p.outcomes.get(action):
            detail = ", ".join(f"{k.split(':', 1)[1]} {v}" for k, v in sorted(p.reasons.items())
                               if k.startswith(action + ":"))
            print(f"  {action:<9} {p.outcomes[action]:>6}  ({detail})")
    print(f"  touching shielded records: {p.touching_shielded}")
    print("nothing was written; the held updates are still held")
    return 0


async def console(args: argparse.Namespace, s: Settings) -> int:
    import signal

    from hub.console.app import serve

    task = asyncio.ensure_future(serve(s, args.host, args.port))
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, task.cancel)
    print(f"console on http://{args.host}:{args.port}/ (metrics at /metrics)", flush=True)
    try:
        await task
    except asyncio.CancelledError:
        pass
    return 0


async def console_user_add(args: argparse.Namespace, s: Settings) -> int:
    from pathlib import Path

    from hub.console.users import add_user

    try:
        password = Path(args.password_file).read_text().strip()  # noqa: ASYNC240 - tiny file
    except OSError as exc:
        raise OperationError(f"cannot read {args.password_file}: {exc.strerror}") from None
    await _with_conn(s, add_user, args.name, args.role, password, args.authority)
    print(f"console user {args.name} ({args.role}) added")
    return 0


async def status(args: argparse.Namespace, s: Settings) -> int:
    from hub.metrics import collect

    text = await collect(s)
    if args.prometheus:
        print(text, end="")
        return 0
    for line in text.splitlines():
        if line and not line.startswith("#"):
            print(line)
    return 0


async def review_handle(args: argparse.Namespace, s: Settings) -> int:
    kw: dict[str, Any] = {}
    if args.handle == "assign":
        kw["assign_to"] = args.to
    elif args.handle == "note":
        kw["note"] = args.text
    else:
        kw["investigating"] = not args.done
    await _with_conn(s, lambda conn: ops.handle_parked(conn, args.item_id, args.by, **kw))
    print(f"{args.item_id}: {args.handle} recorded")
    return 0


def _bench_module() -> Any:
    """bench/ lives in the repository, beside the hub package, and is not installed."""
    import importlib
    from pathlib import Path

    root = str(Path(__file__).resolve().parents[2])
    if (Path(root) / "bench" / "end_to_end.py").exists() and root not in sys.path:
        sys.path.insert(0, root)
    return importlib.import_module("bench.end_to_end")


def bench_arguments(parser: argparse.ArgumentParser) -> None:
    try:
        _bench_module().add_arguments(parser)
    except ImportError:  # an installed hub without its repository: `hub bench` says so
        parser.add_argument("rest", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)


async def bench(args: argparse.Namespace, s: Settings) -> int:
    from urllib.parse import urlsplit, urlunsplit

    try:
        e2e = _bench_module()
    except ImportError:
        raise OperationError("hub bench runs from a clone of the repository (it needs bench/)"
                             ) from None
    server = urlunsplit(urlsplit(s.database_url)._replace(path="/postgres"))
    try:
        result = await e2e.run_cancellable(e2e.options(args, s.amqp_url, server))
    except RuntimeError as exc:
        raise OperationError(f"bench: {exc}") from None
    print(json.dumps(result, indent=2, default=str) if args.json else e2e.format_result(result))
    return 0
