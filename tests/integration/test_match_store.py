"""Match models in Postgres: the active model, term frequencies, train and store."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import asyncpg
import pytest

from hub.db.connect import connect
from hub.match import DEFAULT_MODEL, Model, index_keys
from hub.match_store import (
    activate_model,
    active_model,
    list_models,
    term_frequencies,
    train_and_store,
)
from hub.synth.population import generate_population

pytestmark = pytest.mark.integration


@pytest.fixture
async def conn(database_url: str) -> AsyncIterator[asyncpg.Connection]:
    c = await connect(database_url)
    yield c
    await c.close()


async def _populate(conn: asyncpg.Connection, n: int = 2500) -> list[uuid.UUID]:
    pop = generate_population(n, seed=5)
    ids = [uuid.uuid5(uuid.NAMESPACE_URL, p.person_id) for p in pop.children]
    children = [(cid, 1, p.to_child()) for cid, p in zip(ids, pop.children, strict=True)]
    await conn.executemany(
        "INSERT INTO children (child_id, version, record) VALUES ($1, $2, $3)", children
    )
    await conn.executemany(
        "INSERT INTO block_keys (key, child_id) VALUES ($1, $2)",
        [(key, cid) for cid, _, rec in children for key in index_keys(rec)],
    )
    return ids


async def test_default_model_before_training(conn: asyncpg.Connection) -> None:
    assert await active_model(conn) is DEFAULT_MODEL
    assert await list_models(conn) == []


async def test_train_and_store_activates_the_new_model(conn: asyncpg.Connection) -> None:
    await _populate(conn)
    model, summary = await train_and_store(conn, sample=2000, pairs=5000, seed=1)
    assert model.version.startswith("trained-")
    assert summary["version"] == model.version
    assert summary["records"] == 2000
    # compound blocking keys: in a deduplicated index only siblings and twins share keys
    assert summary["pairs"] > 100
    assert summary["labelled"] == 0
    assert summary["iterations"] >= 1
    assert 0.0 <= summary["lambda"] < 0.05  # a deduplicated index holds no matches
    assert model.prior == DEFAULT_MODEL.prior
    assert model.level("date_of_birth", "exact").u < 0.01

    active = await active_model(conn)
    assert active.version == model.version
    assert active == model
    row = await conn.fetchrow("SELECT training, active FROM match_models WHERE version = $1",
                              model.version)
    assert row["active"] is True
    assert row["training"]["version"] == model.version


async def test_training_twice_leaves_one_active_model(conn: asyncpg.Connection) -> None:
    await _populate(conn, 1500)
    first, _ = await train_and_store(conn, sample=1000, pairs=3000, seed=1)
    second, _ = await train_and_store(conn, sample=1000, pairs=3000, seed=2)
    assert first.version != second.version
    rows = await conn.fetch("SELECT version FROM match_models WHERE active")
    assert [r["version"] for r in rows] == [second.version]
    assert (await active_model(conn)).version == second.version
    assert len(await list_models(conn)) == 2

    await activate_model(conn, first.version)
    assert (await active_model(conn)).version == first.version
    with pytest.raises(KeyError):
        await activate_model(conn, "no-such-model")
    assert (await active_model(conn)).version == first.version

    # The database itself refuses a second active model.
    with pytest.raises(asyncpg.UniqueViolationError):
        await conn.execute(
            "INSERT INTO match_models (version, model, active) VALUES ('x', $1, true)",
            DEFAULT_MODEL.to_dict(),
        )


async def test_train_without_activating(conn: asyncpg.Connection) -> None:
    await _populate(conn, 1000)
    model, summary = await train_and_store(conn, sample=800, pairs=2000, activate=False)
    assert summary["active"] is False
    assert await active_model(conn) is DEFAULT_MODEL
    stored = await conn.fetchval("SELECT model FROM match_models WHERE version = $1",
                                 model.version)
    assert Model.from_dict(stored).to_dict()["comparisons"] == model.to_dict()["comparisons"]


async def test_labelled_pairs_from_operators(conn: asyncpg.Connection) -> None:
    ids = await _populate(conn, 1000)
    records = {r["child_id"]: r["record"] for r in await conn.fetch(
        "SELECT child_id, record FROM children")}
    a, b = ids[0], ids[1]
    update = {"source": "pds", "source_record_id": "PDS-1", "source_version": 1,
              "kind": "upsert", "child": dict(records[a], given_name="Typo" + "x")}
    await conn.execute(
        "INSERT INTO parked (id, kind, reason, source, source_record_id, update, status,"
        " resolution) VALUES ($1, 'review', 'possible_match', 'pds', 'PDS-1', $2,"
        " 'resolved', $3)",
        uuid.uuid4(), update, f"link:{a}",
    )
    await conn.execute(
        "INSERT INTO not_a_match (source, source_record_id, child_id, decided_by)"
        " VALUES ('pds', 'PDS-1', $1, 'op')", b,
    )
    _, summary = await train_and_store(conn, sample=800, pairs=2000)
    assert summary["labelled"] == 2


async def test_version_pairs_are_candidates(conn: asyncpg.Connection) -> None:
    ids = await _populate(conn, 1000)
    rows = await conn.fetch("SELECT child_id, record FROM children LIMIT 50")
    await conn.executemany(
        "INSERT INTO child_versions (child_id, version, record, changed_by)"
        " VALUES ($1, $2, $3, $4)",
        [(r["child_id"], 1, r["record"], "la") for r in rows]
        + [(r["child_id"], 2, dict(r["record"], given_name=r["record"]["given_name"] + "e"), "pds")
           for r in rows],
    )
    _, summary = await train_and_store(conn, sample=len(ids), pairs=2000)
    assert summary["version_pairs"] == 50


async def test_term_frequencies_from_the_index(conn: asyncpg.Connection) -> None:
    await _populate(conn, 1500)
    rows = [(f"C{i}", "Smith" if i < 40 else f"Zyx{i}", "Ava") for i in range(42)]
    await conn.executemany(
        "INSERT INTO children (child_id, version, record) VALUES ($1, 1, $2)",
        [(uuid.uuid4(), {"given_name": g, "family_name": f, "date_of_birth": "2015-01-01"})
         for _, f, g in rows],
    )
    tf = await term_frequencies(conn)
    assert tf.family["smith"] >= 40
    assert tf.family.get("zyx40") == 1
    assert tf.family_u("smith", 0.002) > tf.family_u("zyx40", 0.002)
    assert tf.given["ava"] >= 42
    assert tf.family_total == 1542
