"""hub_updates_total from update_counts (migration 0011): each flush appends its
batch's counts, a scrape sums and folds them. The counts must be what counting
every processed message by its decision's source gave (the query the metrics ran
before, kept here as the reference), whatever the folds and concurrent batches."""

from __future__ import annotations

import uuid

import asyncpg
import pytest

from hub import ingest, metrics
from hub.config import Thresholds
from hub.db import migrate
from hub.db.connect import connect
from tests.conftest import PG_ADMIN, _pg
from tests.factories import incoming, nhs, update

pytestmark = pytest.mark.integration

# What the metrics counted before migration 0011: every processed message, by the
# source named in its decision's audit record.
REFERENCE = """
SELECT coalesce(nullif(split_part(a.subject, '/', 1), 'None'), 'unknown') AS source,
       split_part(p.outcome, ':', 1) AS decision, count(*) AS n
FROM processed_messages p
LEFT JOIN audit_log a ON a.action LIKE 'decision.%' AND a.detail->>'message_id' = p.message_id
GROUP BY 1, 2"""


async def _reference(conn: asyncpg.Connection) -> dict[tuple[str, str], int]:
    return {(r["source"], r["decision"]): r["n"] for r in await conn.fetch(REFERENCE)}


async def _scraped(conn: asyncpg.Connection) -> dict[tuple[str, str], int]:
    snap = metrics.Snapshot()
    await metrics.gather_db(conn, snap)
    return snap.updates


async def _rows(conn: asyncpg.Connection) -> int:
    return await conn.fetchval("SELECT count(*) FROM update_counts")  # type: ignore[no-any-return]


def _batch(source: str, first: int, n: int) -> list[ingest.Incoming]:
    return [incoming(update(source, f"{source}-{i}", nhs_number=nhs(i), given_name=f"Ann{i:03d}"))
            for i in range(first, first + n)]


async def test_scraped_counts_are_the_processed_messages_by_source_and_decision(
        database_url: str) -> None:
    conn = await connect(database_url)
    try:
        first = _batch("la", 1, 3) + [ingest.Incoming("m-bad", "source.dwp", b"{not json")]
        await ingest.process(conn, first, Thresholds())
        # The same messages again (a redelivery) and two new ones: only the new count.
        again = first[:2] + _batch("dwp", 1, 2)
        await ingest.process(conn, again, Thresholds())
        scraped = await _scraped(conn)
        assert scraped == await _reference(conn)
        assert scraped[("la", "create")] == 3 and scraped[("dwp", "link")] == 2, scraped
        assert sum(scraped.values()) == 6  # 3 + 1 dead + 2, the repeats not again
    finally:
        await conn.close()


async def test_a_fold_keeps_every_count_and_misses_no_concurrent_batch(
        database_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(metrics, "FOLD_AT", 2)
    conn = await connect(database_url)
    other = await connect(database_url)
    try:
        for i in range(4):
            await ingest.process(conn, _batch("pds", 10 * i, 3), Thresholds())
        before = await _rows(conn)
        assert before == 4  # one row a batch
        # Another batch appends while the scrape folds, committing after it.
        tx = other.transaction()
        await tx.start()
        await ingest.process(other, _batch("ctf", 100, 2), Thresholds())
        scraped = await _scraped(conn)  # sums 4 rows (> 2), then folds them
        assert scraped == {("pds", "create"): 12}
        assert await _rows(conn) == 1
        await tx.commit()
        scraped = await _scraped(conn)
        assert scraped == {("pds", "create"): 12, ("ctf", "create"): 2}
        assert await _rows(conn) == 2  # not above FOLD_AT: left as it is
        assert scraped[("pds", "create")] == (await _reference(conn))[("pds", "create")]
    finally:
        await other.close()
        await conn.close()


async def test_the_migration_counts_what_was_processed_before_it() -> None:
    name = f"hub_test_counts_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(PG_ADMIN)
    await admin.execute(f'CREATE DATABASE "{name}"')
    conn = await connect(_pg(name))
    try:
        await conn.execute("CREATE TABLE schema_migrations ("
                           " name text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())")
        for migration, sql in migrate.migrations():
            if migration >= "0011":
                break
            await conn.execute(sql)
            await conn.execute("INSERT INTO schema_migrations (name) VALUES ($1)", migration)
        # Processed before: decisions with their audit records, and one without.
        await conn.execute("""
            INSERT INTO processed_messages (message_id, outcome)
            SELECT 'm' || i,
                   (ARRAY['link:nhs_number', 'create:no_match', 'dead:invalid_json'])[1 + i % 3]
            FROM generate_series(1, 30) i""")
        await conn.execute("""
            INSERT INTO audit_log (actor, action, subject, detail)
            SELECT 'hub', 'decision.x',
                   (ARRAY['la', 'dwp', 'None'])[1 + i % 2 + i % 5 / 4] || '/r' || i,
                   jsonb_build_object('message_id', 'm' || i)
            FROM generate_series(1, 29) i""")
        expected = await _reference(conn)
        assert ("unknown", "link") in expected and len(expected) >= 5, expected
        assert await migrate.apply(conn) == [m for m, _ in migrate.migrations() if m >= "0011"]
        assert await _scraped(conn) == expected
    finally:
        await conn.close()
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()
