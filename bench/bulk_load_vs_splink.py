"""`hub load` of a million children beside Splink deduplicating the same records.

    .venv/bin/python -m bench.bulk_load_vs_splink --children 1000000
    .venv/bin/python -m bench.bulk_load_vs_splink --children 20000 --work /tmp/bl-small

1. Generates N children (hub.synth, in chunks of 200,000 as bench/matching.py does,
   NHS numbers kept unique) and a child-benefit style CSV extract of them in which
   `--duplicates` of the children (default 8%) appear a second time, later in the
   file, under another record id, with one or two of the corruptions sources make
   (typos, nicknames, swapped names or day and month, a missing NHS number, a move,
   a new surname, ...). Kept in --work with its ground truth, reused when present.
2. Installs Splink 4 with DuckDB in a venv of its own (bench/.splink-venv; never the
   hub's dependencies) and runs bench/splink_dedupe.py there: comparable blocking
   rules and comparisons, m and u trained first (not timed), then read + predict +
   cluster at 0.95, timed.
3. Times `hub load --source la --format csv` of the same file into a fresh, empty
   hub database (made and dropped here), as a child process: everything from
   reading the file to the last commit.
4. Prints both times, the ratio (target: hub load <= 2x Splink) and, for both, the
   precision and recall of the duplicate pairs found (records put in one cluster,
   or linked to one child) against the ground truth. Records the hub sends to review
   count as not found.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import time
import uuid
from collections import defaultdict
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from bench.matching import CHUNK, UniqueUpns, _Renumber
from hub import loop as hub_loop
from hub.bulk.extract import with_duplicates, write_csv
from hub.db import migrate
from hub.db.connect import connect
from hub.synth.population import generate_population

HERE = Path(__file__).resolve().parent
SPLINK_VENV = HERE / ".splink-venv"
SPLINK_REQUIREMENTS = ["splink>=4,<5", "duckdb>=1.1,<2"]


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# -- the extract ---------------------------------------------------------------------


def _updates(children: int, seed: int, duplicates: float, truth: dict[str, str]
             ) -> Iterator[dict[str, Any]]:
    made = k = 0
    upns = UniqueUpns()
    while made < children:
        size = min(CHUNK, children - made)
        pop = generate_population(size, seed + k, shielded_fraction=0.0, birth_fraction=0.0)
        if k:  # unique NHS numbers across chunks (bench/matching.py)
            renumber = _Renumber(999 - k)
            for person in pop.children:
                person.nhs_number = renumber.next()
        for person in pop.children:  # and unique UPNs
            person.upn = upns.of(person.upn)
        extract, chunk_truth = with_duplicates(pop, seed + k, duplicates, source="la")
        for u in extract:
            rid = f"C{k}-{u['source_record_id']}"
            u["source_record_id"] = rid
            truth[rid] = f"{k}:{chunk_truth[rid.split('-', 1)[1]]}"
            yield u
        made += size
        k += 1
        log(f"generated {made:,}/{children:,} children")


def make_extract(work: Path, children: int, seed: int, duplicates: float) -> tuple[Path, Path]:
    # "u": UPNs unique across chunks (the twenty-fourth session); older extracts are
    # not reused.
    name = f"extract-{children}-{seed}-{duplicates:g}-u"
    path, truth_path = work / f"{name}.csv", work / f"{name}.truth.csv"
    if path.exists() and truth_path.exists():
        log(f"reusing {path}")
        return path, truth_path
    truth: dict[str, str] = {}
    rows = write_csv(_updates(children, seed, duplicates, truth), path)
    with truth_path.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["source_record_id", "person"])
        w.writerows(sorted(truth.items()))
    log(f"wrote {rows:,} records ({path.stat().st_size / 1e6:.0f} MB) to {path}")
    return path, truth_path


# -- accuracy -------------------------------------------------------------------------


def read_truth(path: Path) -> dict[str, str]:
    with path.open(newline="") as fh:
        return {r["source_record_id"]: r["person"] for r in csv.DictReader(fh)}


def pair_accuracy(clusters: Iterable[list[str]], truth: dict[str, str]) -> dict[str, Any]:
    """Precision and recall of the pairs of records put together, against the truth."""
    found = right = 0
    for members in clusters:
        n = len(members)
        found += n * (n - 1) // 2
        people: dict[str, int] = defaultdict(int)
        for m in members:
            people[truth[m]] += 1
        right += sum(c * (c - 1) // 2 for c in people.values())
    per_person: dict[str, int] = defaultdict(int)
    for p in truth.values():
        per_person[p] += 1
    true = sum(c * (c - 1) // 2 for c in per_person.values())
    return {"true_pairs": true, "found_pairs": found, "right_pairs": right,
            "precision": right / found if found else 1.0,
            "recall": right / true if true else 1.0}


def splink_clusters(pairs_path: Path) -> list[list[str]]:
    groups: dict[str, list[str]] = defaultdict(list)
    with pairs_path.open(newline="") as fh:
        for r in csv.DictReader(fh):
            groups[r["b"]].append(r["a"])
    return [[first, *rest] for first, rest in groups.items()]


async def hub_clusters(url: str) -> tuple[list[list[str]], int]:
    conn = await asyncpg.connect(url)
    try:
        groups: dict[Any, list[str]] = defaultdict(list)
        for r in await conn.fetch("SELECT child_id, source_record_id FROM source_links"):
            groups[r["child_id"]].append(r["source_record_id"])
        reviews = await conn.fetchval("SELECT count(*) FROM parked WHERE kind = 'review'")
        return list(groups.values()), int(reviews)
    finally:
        await conn.close()


# -- the two runs ---------------------------------------------------------------------


def splink_python() -> Path:
    python = SPLINK_VENV / "bin" / "python"
    if not python.exists():
        log(f"creating {SPLINK_VENV} and installing {' '.join(SPLINK_REQUIREMENTS)}")
        base = "/usr/bin/python3" if Path("/usr/bin/python3").exists() else sys.executable
        subprocess.run([base, "-m", "venv", str(SPLINK_VENV)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", *SPLINK_REQUIREMENTS],
                       check=True)
    return python


def run_splink(extract: Path, work: Path, threads: int) -> tuple[dict[str, Any], Path]:
    pairs = work / "splink-pairs.csv"
    proc = subprocess.run(
        [str(splink_python()), str(HERE / "splink_dedupe.py"), str(extract), str(pairs),
         "--threads", str(threads)],
        capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        sys.stderr.write(proc.stderr[-4000:])
        raise SystemExit("splink failed")
    return json.loads(proc.stdout.strip().splitlines()[-1]), pairs


def _db_url(server: str, name: str) -> str:
    return urlunsplit(urlsplit(server)._replace(path=f"/{name}"))


async def fresh_db(server: str, name: str) -> str:
    admin = await asyncpg.connect(server)
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    url = _db_url(server, name)
    conn = await connect(url)
    try:
        await migrate.apply(conn)
    finally:
        await conn.close()
    return url


async def drop_db(server: str, name: str) -> None:
    admin = await asyncpg.connect(server)
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


def run_hub_load(url: str, extract: Path, chunk: int, workers: int) -> tuple[float, str, str]:
    env = dict(os.environ, HUB_DATABASE_URL=url)
    started = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-m", "hub.cli.main", "load", "--source", "la", "--format", "csv",
         "--chunk", str(chunk), "--workers", str(workers), str(extract)],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    err_lines: list[str] = []
    assert proc.stderr is not None
    for line in proc.stderr:  # progress, passed through
        err_lines.append(line)
        sys.stderr.write("    " + line)
    out = proc.stdout.read() if proc.stdout else ""
    code = proc.wait()
    elapsed = time.perf_counter() - started
    if code != 0:
        raise SystemExit(f"hub load exited {code}")
    return elapsed, out, "".join(err_lines)


def run(args: argparse.Namespace) -> None:
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    t = time.perf_counter()
    extract, truth_path = make_extract(work, args.children, args.seed, args.duplicates)
    log(f"extract ready in {time.perf_counter() - t:.0f}s")
    truth = read_truth(truth_path)

    log("splink: training, then deduplicating (read + predict + cluster)")
    load_before = os.getloadavg()[0]
    splink, pairs = run_splink(extract, work, args.threads)
    splink["load_average"] = f"{load_before:.1f} -> {os.getloadavg()[0]:.1f}"
    log(f"splink: {splink}")
    splink_acc = pair_accuracy(splink_clusters(pairs), truth)

    name = args.keep_db or f"hub_bench_load_{uuid.uuid4().hex[:8]}"
    url = hub_loop.run(fresh_db(args.database_url, name))
    try:
        log(f"hub load into {name} (empty)")
        load_before = os.getloadavg()[0]
        hub_s, out, err = run_hub_load(url, extract, args.chunk, args.workers)
        hub_load_average = f"{load_before:.1f} -> {os.getloadavg()[0]:.1f}"
        clusters, reviews = hub_loop.run(hub_clusters(url))
        hub_acc = pair_accuracy(clusters, truth)
    finally:
        if not args.keep_db:
            hub_loop.run(drop_db(args.database_url, name))

    splink_s = float(splink["dedupe_seconds"])
    ratio = hub_s / splink_s if splink_s else float("inf")
    records = len(truth)
    print(f"records: {records:,} ({args.children:,} children, "
          f"{records - args.children:,} second copies)")
    print(f"splink {splink.get('version', '4')} (duckdb, {args.threads} threads): "
          f"dedupe {splink_s:.1f}s = read {splink['read_seconds']}s + predict "
          f"{splink['predict_seconds']}s + cluster {splink['cluster_seconds']}s "
          f"(training {splink['train_seconds']}s, not counted); "
          f"{splink['pairs_at_0.5']:,} pairs >= 0.5, {splink['clusters']:,} clusters; "
          f"load average {splink['load_average']}")
    print(f"hub load: {hub_s:.1f}s ({records / hub_s:,.0f} records/s), read to last commit;"
          f" load average {hub_load_average}")
    print("  " + out.strip().replace("\n", "\n  "))
    print("  " + next((ln for ln in err.splitlines() if "time by phase" in ln), "").strip())
    verdict = "meets" if ratio <= 2.0 else "MISSES"
    print(f"ratio hub load / splink: {ratio:.2f} ({verdict} the target of <= 2.0)")
    for who, acc in (("splink", splink_acc), ("hub", hub_acc)):
        print(f"{who:>6}: duplicate pairs found {acc['found_pairs']:,}, right "
              f"{acc['right_pairs']:,} of {acc['true_pairs']:,} true: precision "
              f"{100 * acc['precision']:.2f}%, recall {100 * acc['recall']:.2f}%")
    print(f"   hub: {reviews:,} records sent to review (counted as not found)")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--children", type=int, default=1_000_000)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--duplicates", type=float, default=0.08)
    p.add_argument("--work", default="/tmp/hub-bench-bulk")
    p.add_argument("--chunk", type=int, default=50_000)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--threads", type=int, default=2, help="DuckDB threads for Splink")
    p.add_argument("--database-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    p.add_argument("--keep-db", metavar="NAME", help="load into this database and keep it")
    run(p.parse_args())


if __name__ == "__main__":
    main()
