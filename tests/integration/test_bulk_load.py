"""`hub load`: a source's extract matched and written in bulk, against real PostgreSQL
(and, for the comparison with the streaming pipeline, real RabbitMQ and `hub run`)."""

from __future__ import annotations

import asyncio
import json
import subprocess
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from hub import metrics
from hub import operations as ops
from hub.bulk.extract import with_duplicates, write_csv
from hub.db.connect import connect
from hub.db.store import LOAD_LOCK
from hub.synth.feed import central_feed
from hub.synth.population import generate_population
from tests.conftest import PG_ADMIN, RUN_ID, _pg
from tests.factories import moved, nhs, update
from tests.helpers import HUB, HubProcess, count, hub, jsonl, write_jsonl

pytestmark = pytest.mark.integration


@pytest.fixture
async def load_env(template_db: str, hub_env: dict[str, str]) -> AsyncIterator[dict[str, str]]:
    """A second database (from the same migrated template) for `hub load`."""
    name = f"hub_test_{RUN_ID}_load_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(PG_ADMIN)
    await admin.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template_db}"')
    yield dict(hub_env, HUB_DATABASE_URL=_pg(name))
    await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    await admin.close()


def load(env: dict[str, str], *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return hub(env, "load", *args, check=check, timeout=600)


async def snapshot(url: str) -> dict[str, Any]:
    """What a comparison of two hubs looks at."""
    conn = await asyncpg.connect(url)
    try:
        links = {(r["source"], r["source_record_id"]): str(r["child_id"]) for r in await conn.fetch(
            "SELECT source, source_record_id, child_id FROM source_links")}
        reviews = Counter({r["reason"]: r["n"] for r in await conn.fetch(
            "SELECT reason, count(*) AS n FROM parked WHERE kind = 'review' GROUP BY 1")})
        dead = Counter({r["reason"]: r["n"] for r in await conn.fetch(
            "SELECT reason, count(*) AS n FROM parked WHERE kind = 'dead' GROUP BY 1")})
        outcomes = Counter({r["outcome"]: r["n"] for r in await conn.fetch(
            "SELECT outcome, count(*) AS n FROM processed_messages GROUP BY 1")})
        shielded = await conn.fetchval("SELECT count(*) FROM children WHERE shielded")
        decided = {r["message_id"]: r["outcome"] for r in await conn.fetch(
            "SELECT message_id, outcome FROM processed_messages")}
        metric = metrics.Snapshot()
        await metrics.gather_db(conn, metric)
        return {
            "counted": metric.updates,  # hub_updates_total
            "children": await conn.fetchval("SELECT count(*) FROM children"),
            "versions": await conn.fetchval("SELECT count(*) FROM child_versions"),
            "links": links, "reviews": reviews, "dead": dead, "outcomes": outcomes,
            "shielded": shielded, "decided": decided,
            "outbox": await conn.fetchval("SELECT count(*) FROM outbox"),
            # every record's contacts, written with it (migration 0024)
            "contacts": await conn.fetchval(
                "SELECT count(*) FROM children, unnest(contacts)"),
            "keys": Counter({r["kind"]: r["n"] for r in await conn.fetch(
                "SELECT split_part(key, ':', 1) AS kind, count(*) AS n FROM block_keys"
                " GROUP BY 1")}),
            # block_keys has no foreign key (migration 0018): the writers keep it whole.
            "orphan_keys": await conn.fetchval(
                "SELECT count(*) FROM block_keys b"
                " WHERE NOT EXISTS (SELECT 1 FROM children c WHERE c.child_id = b.child_id)"),
        }
    finally:
        await conn.close()


def grouping(links: dict[tuple[str, str], str]) -> set[frozenset[tuple[str, str]]]:
    """Source records grouped by the child they were linked to (ids differ per hub)."""
    by_child: dict[str, set[tuple[str, str]]] = {}
    for key, cid in links.items():
        by_child.setdefault(cid, set()).add(key)
    return {frozenset(v) for v in by_child.values()}


def accuracy(links: dict[tuple[str, str], str], truth: dict[tuple[str, str], str | None]
             ) -> tuple[int, int, int]:
    """(pairs of records rightly together, wrongly together, rightly kept apart missed)."""
    persons: dict[str, set[str]] = {}
    for key, cid in links.items():
        p = truth.get(key)
        if p is not None:
            persons.setdefault(p, set()).add(cid)
    together: dict[str, list[str | None]] = {}
    for key, cid in links.items():
        together.setdefault(cid, []).append(truth.get(key))
    right = sum(1 for ps in together.values() for i, a in enumerate(ps) for b in ps[i + 1:]
                if a is not None and a == b)
    wrong = sum(1 for ps in together.values() for i, a in enumerate(ps) for b in ps[i + 1:]
                if a is not None and b is not None and a != b)
    split = sum(len(cids) - 1 for cids in persons.values())
    return right, wrong, split


async def shield_people(url: str, la_ids: list[str]) -> None:
    """Shield the children the `la` extract gave these record ids, as their councils."""
    conn = await connect(url)
    try:
        for rid in la_ids:
            row = await conn.fetchrow(
                "SELECT c.child_id::text AS child_id, c.record->'address'->>'la' AS la"
                " FROM source_links l JOIN children c USING (child_id)"
                " WHERE l.source = 'la' AND l.source_record_id = $1", rid)
            await ops.shield(conn, row["child_id"], row["la"], "test", "refuge")
    finally:
        await conn.close()


async def test_load_decides_as_the_streaming_pipeline_does(
    hub_env: dict[str, str], load_env: dict[str, str], tmp_path: Path,
) -> None:
    """An initial extract with duplicates in it, then a shielding, then a central feed
    (corrupted, out of order, repeated, invalid records, shielded children at refuges):
    `hub load` gives the database `hub publish` + `hub run` gives.

    Each step's `hub run` starts afresh, as each `hub load` does, so both score with
    the name frequencies of the index as it was when the step began."""
    pop = generate_population(1500, 21, shielded_fraction=0.03)
    extract, truth = with_duplicates(pop, 21, duplicate_rate=0.08)
    write_csv(extract, tmp_path / "la.csv")
    feed = central_feed(pop, 21, sources=("dwp",), update_rate=0.3)
    write_jsonl(tmp_path / "dwp.jsonl", feed.updates)
    shielded_rids = [rid for rid, person in truth.items() if "-D" not in rid
                     and pop.person(person).shielded]
    assert shielded_rids and feed.invalid and feed.shielded

    # The streaming pipeline.
    running = hub_env
    hub(running, "setup")
    for source, fmt, path in (("la", "csv", "la.csv"), ("dwp", "jsonl", "dwp.jsonl")):
        proc = HubProcess(running, log=tmp_path / f"hub-{source}.log")
        try:
            hub(running, "publish", "--source", source, "--format", fmt, str(tmp_path / path))
            hub(running, "wait", "--timeout", "300")
        finally:
            assert proc.stop() == 0
        if source == "la":
            await shield_people(running["HUB_DATABASE_URL"], shielded_rids)
    streamed = await snapshot(running["HUB_DATABASE_URL"])

    # The bulk load, in chunks small enough that records meet across chunks, some
    # records in memory and some read back from the index (--hold).
    out = load(load_env, "--source", "la", "--format", "csv", "--chunk", "500",
               "--hold", "800", str(tmp_path / "la.csv"))
    assert "load:" in out.stderr and "records/s" in out.stderr  # progress lines
    await shield_people(load_env["HUB_DATABASE_URL"], shielded_rids)
    out = load(load_env, "--source", "dwp", "--format", "jsonl", "--chunk", "700",
               str(tmp_path / "dwp.jsonl"))
    assert "rejected: invalid_nhs_number" in out.stdout
    loaded = await snapshot(load_env["HUB_DATABASE_URL"])

    differ = {m: (o, streamed["decided"].get(m)) for m, o in loaded["decided"].items()
              if streamed["decided"].get(m) != o}
    assert not differ, differ
    for key in ("children", "versions", "reviews", "dead", "outcomes", "shielded", "outbox",
                "counted", "keys", "contacts"):
        assert loaded[key] == streamed[key], key
    assert loaded["contacts"] > loaded["children"] // 2
    assert loaded["orphan_keys"] == streamed["orphan_keys"] == 0
    assert sum(loaded["keys"].values()) > 10 * loaded["children"]
    assert sum(loaded["counted"].values()) == sum(loaded["outcomes"].values()) > 0
    assert loaded["links"].keys() == streamed["links"].keys()
    assert grouping(loaded["links"]) == grouping(streamed["links"])

    # Ground truth: duplicates inside the extract were found, nobody was merged wrongly.
    everyone = {("la", rid): p for rid, p in truth.items()}
    everyone.update(feed.truth)
    right, wrong, split = accuracy(loaded["links"], everyone)
    assert (right, wrong, split) == accuracy(streamed["links"], everyone)
    dup_pairs = sum(1 for rid in truth if "-D" in rid)
    assert wrong == 0
    assert right >= 0.9 * dup_pairs
    # Shielded children's refuge records went to a person, not to a new record.
    assert loaded["reviews"]["shielded_candidate"] > 0


async def test_the_same_child_twice_in_one_extract_is_one_record(
    load_env: dict[str, str], tmp_path: Path,
) -> None:
    first = update("la", "LA-1")
    again = update("la", "LA-2", given_name="Marigld", nhs_number=None)  # a typo, no NHS number
    other = update("la", "LA-3", nhs_number=nhs(2), given_name="Bramble", family_name="Ashdown",
                   date_of_birth="2012-07-21")
    write_jsonl(tmp_path / "x.jsonl", [first, other, again])
    out = load(load_env, "--source", "la", "--format", "jsonl", str(tmp_path / "x.jsonl"))
    assert "create:no_match 2" in out.stdout and "link:demographic_match 1" in out.stdout
    lines = jsonl(hub(load_env, "export").stdout)
    assert len(lines) == 2
    marigold = next(x for x in lines if x["child"]["family_name"] == "Quenby")
    assert {s["source_record_id"] for s in marigold["sources"]} == {"LA-1", "LA-2"}
    # Linked on its details alone, without an NHS number: her name as her record,
    # which her number anchors, has it (BatchState.apply); nothing else was new.
    assert marigold["version"] == 1 and marigold["child"]["given_name"] == "Marigold"
    url = load_env["HUB_DATABASE_URL"]
    assert await count(url, "SELECT count(*) FROM child_versions") == 2
    assert await count(url, "SELECT count(*) FROM provenance WHERE source_record_id = 'LA-2'"
                       " AND field = 'given_name'") == 0


async def test_records_meet_earlier_chunks_the_load_no_longer_holds(
    load_env: dict[str, str], tmp_path: Path,
) -> None:
    """Beyond --hold records a load keeps only the chunk being written and the one
    being decided; a record finds anything older in the index. Chunks of one record,
    none held: the fourth finds the first by demographic match, the fifth by its
    source link, the sixth is a repeat."""
    first = update("la", "LA-1")
    others = [update("la", f"LA-O{i}", nhs_number=nhs(10 + i), given_name=name,
                     family_name="Ashdown", date_of_birth=f"201{i}-07-21")
              for i, name in ((1, "Bramble"), (2, "Tansy"))]
    again = update("la", "LA-2", given_name="Marigld", nhs_number=None)  # a typo, no NHS number
    later = moved(update("la", "LA-1", version=2))
    write_jsonl(tmp_path / "x.jsonl", [first, *others, again, later, others[0]])
    out = load(load_env, "--source", "la", "--format", "jsonl", "--chunk", "1", "--hold", "0",
               str(tmp_path / "x.jsonl"))
    assert "create:no_match 3" in out.stdout, out.stdout
    assert "link:demographic_match 1" in out.stdout and "link:source_link 1" in out.stdout
    assert "let go of what it held" in out.stderr
    lines = jsonl(hub(load_env, "export").stdout)
    assert len(lines) == 3
    marigold = next(x for x in lines if x["child"]["family_name"] == "Quenby")
    assert {s["source_record_id"] for s in marigold["sources"]} == {"LA-1", "LA-2"}
    assert marigold["version"] == 2 and marigold["child"]["address"]["postcode"] == "B5 7QQ"
    assert marigold["child"]["given_name"] == "Marigold"  # anchored by her NHS number
    url = load_env["HUB_DATABASE_URL"]
    assert await count(url, "SELECT count(*) FROM processed_messages") == 5


async def test_a_rerun_writes_nothing(load_env: dict[str, str], tmp_path: Path) -> None:
    pop = generate_population(300, 4)
    extract, _ = with_duplicates(pop, 4)
    write_csv(extract, tmp_path / "la.csv")
    url = load_env["HUB_DATABASE_URL"]
    tables = ("children", "child_versions", "block_keys", "source_links", "provenance",
              "outbox", "processed_messages", "parked")
    load(load_env, "--source", "la", "--format", "csv", "--chunk", "100", str(tmp_path / "la.csv"))
    before = {t: await count(url, f"SELECT count(*) FROM {t}") for t in tables}
    decisions = await count(url, "SELECT count(*) FROM audit_log WHERE action LIKE 'decision.%'")
    out = load(load_env, "--source", "la", "--format", "csv", str(tmp_path / "la.csv"))
    assert f"{len(extract)} already processed; nothing new" in out.stdout
    assert {t: await count(url, f"SELECT count(*) FROM {t}") for t in tables} == before
    assert await count(
        url, "SELECT count(*) FROM audit_log WHERE action LIKE 'decision.%'") == decisions
    assert before["children"] < len(extract)  # the duplicates were merged


async def test_a_shielded_candidate_goes_to_a_person(
    load_env: dict[str, str], tmp_path: Path,
) -> None:
    write_jsonl(tmp_path / "la.jsonl", [update("la", "LA-1")])
    load(load_env, "--source", "la", "--format", "jsonl", str(tmp_path / "la.jsonl"))
    child_id = jsonl(hub(load_env, "export").stdout)[0]["child_id"]
    hub(load_env, "shield", child_id, "--authority", "383", "--by", "test")
    refuge = {"lines": ["1 Quiet Close"], "town": "York", "postcode": "YO1 7HH", "la": "816"}
    write_jsonl(tmp_path / "dwp.jsonl", [
        # The child at a refuge, without an NHS number and with a typo: a person decides.
        moved(update("dwp", "CB-1", nhs_number=None, given_name="Marigld"), **refuge),
    ])
    out = load(load_env, "--source", "dwp", "--format", "jsonl", str(tmp_path / "dwp.jsonl"))
    assert "review:shielded_candidate 1" in out.stdout
    reviews = jsonl(hub(load_env, "review", "list", "--json").stdout)
    assert [r["reason"] for r in reviews] == ["shielded_candidate"]
    assert reviews[0]["candidates"][0]["child_id"] == child_id
    url = load_env["HUB_DATABASE_URL"]
    assert await count(url, "SELECT count(*) FROM children") == 1
    # Nothing about the shielded child reached another council.
    assert await count(
        url, f"SELECT count(*) FROM outbox WHERE body->>'child_id' = '{child_id}'"
        " AND routing_key NOT LIKE 'la.383.%'") == 0
    # The refuge address is in no unshielded record.
    assert await count(url, "SELECT count(*) FROM children WHERE NOT shielded"
                       " AND record->'address'->>'postcode' = 'YO1 7HH'") == 0


async def test_the_refuge_address_is_never_written_into_an_open_record(
    load_env: dict[str, str], tmp_path: Path,
) -> None:
    refuge = {"lines": ["1 Quiet Close"], "town": "York", "postcode": "YO1 7HH", "la": "816"}
    write_jsonl(tmp_path / "la.jsonl", [moved(update("la", "LA-1"), **refuge)])
    load(load_env, "--source", "la", "--format", "jsonl", str(tmp_path / "la.jsonl"))
    child_id = jsonl(hub(load_env, "export").stdout)[0]["child_id"]
    hub(load_env, "shield", child_id, "--authority", "816", "--by", "test")
    sibling = moved(update("dwp", "CB-9", nhs_number=nhs(9), given_name="Tansy",
                           date_of_birth="2016-05-02"), **refuge)
    write_jsonl(tmp_path / "dwp.jsonl", [sibling])
    out = load(load_env, "--source", "dwp", "--format", "jsonl", str(tmp_path / "dwp.jsonl"))
    assert "review:shielded_address 1" in out.stdout
    assert await count(load_env["HUB_DATABASE_URL"], "SELECT count(*) FROM children") == 1


async def test_invalid_records_are_dead_lettered_once(
    load_env: dict[str, str], tmp_path: Path,
) -> None:
    bad_nhs = update("la", "LA-1", nhs_number="9990000001")
    bad_date = update("la", "LA-2", date_of_birth="2015-02-30")
    no_name = update("la", "LA-3", given_name=None, family_name=None)
    good = update("la", "LA-4")
    path = write_jsonl(tmp_path / "x.jsonl", [bad_nhs, bad_date, no_name, good])
    with path.open("a") as fh:
        fh.write("{not json\n")
    out = load(load_env, "--source", "la", "--format", "jsonl", str(path))
    assert "1 valid, 4 rejected" in out.stdout
    dead = jsonl(hub(load_env, "dlq", "list", "--json").stdout)
    assert sorted(d["reason"] for d in dead) == [
        "invalid_date_of_birth", "invalid_json", "invalid_nhs_number", "missing_name"]
    assert {d["source_record_id"] for d in dead} == {"LA-1", "LA-2", "LA-3", None}
    for d in dead:  # reasons and places, never the values
        assert "9990000001" not in d["error"] and "Marigold" not in d["error"]
    load(load_env, "--source", "la", "--format", "jsonl", str(path))
    assert len(jsonl(hub(load_env, "dlq", "list", "--json").stdout)) == 4
    assert len(jsonl(hub(load_env, "export").stdout)) == 1


async def test_a_load_waits_for_other_writers_and_they_wait_for_it(
    load_env: dict[str, str], tmp_path: Path,
) -> None:
    """LOAD_LOCK: a writer holding it shared (a pipeline batch) holds the load back."""
    write_jsonl(tmp_path / "la.jsonl", [update("la", "LA-1")])
    url = load_env["HUB_DATABASE_URL"]
    batch = await asyncpg.connect(url)
    tx = batch.transaction()
    await tx.start()
    await batch.execute("SELECT pg_advisory_xact_lock_shared($1)", LOAD_LOCK)
    proc = subprocess.Popen([*HUB, "load", "--source", "la", "--format", "jsonl",  # noqa: ASYNC220
                             str(tmp_path / "la.jsonl")], env=load_env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        await asyncio.sleep(3)
        assert proc.poll() is None  # waiting
        assert await count(url, "SELECT count(*) FROM children") == 0
    finally:
        await tx.rollback()
        await batch.close()
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    assert "waiting for running pipeline batches" in err
    assert await count(url, "SELECT count(*) FROM children") == 1


async def test_a_paused_source_is_not_loaded(load_env: dict[str, str], tmp_path: Path) -> None:
    write_jsonl(tmp_path / "la.jsonl", [update("la", "LA-1")])
    url = load_env["HUB_DATABASE_URL"]
    conn = await asyncpg.connect(url)
    try:
        await conn.execute("INSERT INTO sources (name, paused) VALUES ('la', true)")
    finally:
        await conn.close()
    out = load(load_env, "--source", "la", "--format", "jsonl", str(tmp_path / "la.jsonl"),
               check=False)
    assert out.returncode == 1 and "source la is paused" in out.stderr
    assert await count(url, "SELECT count(*) FROM children") == 0


def test_bad_usage_and_unreadable_files(load_env: dict[str, str], tmp_path: Path) -> None:
    out = load(load_env, "--source", "la", "--format", "xml", str(tmp_path / "x"), check=False)
    assert out.returncode == 2 and "unknown format" in out.stderr  # bad usage
    out = load(load_env, "--source", "la", "--format", "csv", str(tmp_path / "missing.csv"),
               check=False)
    assert out.returncode == 1 and "cannot read" in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1
    out = load(load_env, "--source", "la", check=False)
    assert out.returncode == 2


async def test_a_record_shielded_on_arrival_asks_its_authority_about_open_records(
    load_env: dict[str, str], tmp_path: Path,
) -> None:
    """A load shields a record restricted at origin by the council it arrives in; that
    council alone is asked, once, about the open records at her house and those that
    could be her (alert.shield_check, ids only), as a batch's would be."""
    refuge = {"lines": ["1 Quiet Close"], "town": "York", "postcode": "YO1 7HH", "la": "816"}
    sibling = moved(update("la", "LA-9", nhs_number=nhs(9), given_name="Tansy",
                           date_of_birth="2016-05-02"), **refuge)
    duplicate = moved(update("la", "LA-7", nhs_number=nhs(7), family_name="Stanway"), **refuge)
    her = moved(update("la", "LA-1"), **refuge)
    her["restricted"] = True
    write_jsonl(tmp_path / "la.jsonl", [sibling, duplicate, her])
    out = load(load_env, "--source", "la", "--format", "jsonl", str(tmp_path / "la.jsonl"))
    assert "create:no_match 3" in out.stdout, out.stdout
    url = load_env["HUB_DATABASE_URL"]
    conn = await asyncpg.connect(url)
    try:
        ids = {r["source_record_id"]: str(r["child_id"]) for r in await conn.fetch(
            "SELECT source_record_id, child_id FROM source_links")}
        assert await conn.fetchval("SELECT shielding_authority FROM children WHERE child_id ="
                                   " $1::uuid", ids["LA-1"]) == "816"
        alerts = [(r["routing_key"], json.loads(r["body"])) for r in await conn.fetch(
            "SELECT routing_key, body FROM outbox WHERE routing_key LIKE '%.alert.shield_check'")]
        assert len(alerts) == 1 and alerts[0][0] == "la.816.alert.shield_check"
        body = alerts[0][1]
        assert body["child_id"] == ids["LA-1"]
        assert sorted(body["open_at_same_house"]) == sorted([ids["LA-9"], ids["LA-7"]])
        assert body["open_could_be_her"] == [ids["LA-7"]]
    finally:
        await conn.close()


async def test_a_restricted_record_waiting_in_review_keeps_its_places_out_of_open_records(
    load_env: dict[str, str], tmp_path: Path,
) -> None:
    """A restricted record the load parks for a person (no NHS number, a mistyped
    name) protects its places as a shielded record would, for the rest of the load
    and for later ones: a brother there, and her own update from another source
    carrying her NHS number, go to a person, not into open records."""
    write_jsonl(tmp_path / "la.jsonl", [update("la", "LA-1")])  # open, 12 Orchard Row
    load(load_env, "--source", "la", "--format", "jsonl", str(tmp_path / "la.jsonl"))
    her = moved(update("pds", "P-1", nhs_number=None, given_name="Marygold"))
    her["restricted"] = True
    brother = moved(update("pds", "P-2", nhs_number=nhs(2), given_name="Peregrine",
                           date_of_birth="2016-05-01", sex="male"))
    write_jsonl(tmp_path / "pds.jsonl", [her, brother])
    load(load_env, "--source", "pds", "--format", "jsonl", str(tmp_path / "pds.jsonl"))
    write_jsonl(tmp_path / "dfe.jsonl", [moved(update("dfe", "S-1"))])
    load(load_env, "--source", "dfe", "--format", "jsonl", str(tmp_path / "dfe.jsonl"))
    url = load_env["HUB_DATABASE_URL"]
    assert await count(url, "SELECT count(*) FROM children") == 1
    assert await count(url, "SELECT count(*) FROM children WHERE record::text LIKE"
                            " '%Harbour%' OR shielded") == 0
    conn = await asyncpg.connect(url)
    try:
        reasons = {r["source_record_id"]: r["reason"] for r in await conn.fetch(
            "SELECT source_record_id, reason FROM parked WHERE kind = 'review'")}
    finally:
        await conn.close()
    assert reasons["P-2"] == reasons["S-1"] == "shielded_address", reasons
    assert set(reasons) == {"P-1", "P-2", "S-1"}
