"""The database side of matching: the active model, term frequencies, and training.

    model = await active_model(conn)        # DEFAULT_MODEL until one is trained
    tf = await term_frequencies(conn)       # name frequencies from the index itself
    model, summary = await train_and_store(conn)

Models live in match_models (migration 0002) as ``Model.to_dict()`` under their
version; at most one is active. Training (hub.match.train) samples the index:

* records: a random sample of children (``setseed`` + ``ORDER BY random()``);
* blocked pairs: each sampled child with the other children sharing one of its
  blocking keys (a few per key), i.e. the candidates it would be scored against.
  In a deduplicated index these are nearly all non-matches, so
* consecutive versions of a sampled child written by different sources (the
  record before and after another source's update was merged in) are added as
  further candidate pairs: the index's own evidence of what one child looks like
  from two sources. EM judges them like any other pair;
* labelled pairs: operators' decisions. A review item resolved by linking gives
  (its update, the linked child's record) = same child; not_a_match gives (the
  update of the review item, the rejected child's record) = not the same child.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import asyncpg

from hub.match.model import DEFAULT_MODEL, Model, TermFrequencies
from hub.match.train import Training, fit

Pair = tuple[Mapping[str, Any], Mapping[str, Any]]

#: Partners per blocking key of each sampled child (the key index gives the first few).
PARTNERS_PER_KEY = 5


def _json(value: Any) -> Any:
    """jsonb as Python (hub.db.connect installs a codec; tolerate text without it)."""
    return json.loads(value) if isinstance(value, str) else value


async def active_model(conn: asyncpg.Connection) -> Model:
    """The active model, or DEFAULT_MODEL when none has been trained and activated."""
    row = await conn.fetchrow("SELECT model FROM match_models WHERE active")
    if row is None:
        return DEFAULT_MODEL
    return _model(_json(row["model"]))


def _model(data: Mapping[str, Any]) -> Model:
    """Model.from_dict in the shipped field order (jsonb does not keep key order)."""
    model = Model.from_dict(data)
    order = {c.field: i for i, c in enumerate(DEFAULT_MODEL.comparisons)}
    comparisons = sorted(model.comparisons, key=lambda c: order.get(c.field, len(order)))
    return Model(model.version, model.prior, tuple(comparisons), model.description)


async def term_frequencies(conn: asyncpg.Connection, model: Model | None = None
                           ) -> TermFrequencies:
    """How common each given and family name is in the index (normalised as the
    scorer normalises them); with `model`, only the names whose frequency changes
    a score under it (TermFrequencies.for_model)."""
    counts = []
    for name in ("given_name", "family_name"):
        rows = await conn.fetch(
            f"SELECT record->>'{name}' AS name, count(*) AS n FROM children"
            f" WHERE record->>'{name}' IS NOT NULL GROUP BY 1"
        )
        counts.append({r["name"]: int(r["n"]) for r in rows})
    tf = TermFrequencies.from_counts(counts[0], counts[1])
    return tf if model is None else tf.for_model(model)


async def list_models(conn: asyncpg.Connection) -> list[dict[str, Any]]:
    """Stored models, newest first: version, trained_at, active, training summary."""
    rows = await conn.fetch(
        "SELECT version, trained_at, active, training FROM match_models"
        " ORDER BY trained_at DESC, version"
    )
    return [
        {"version": r["version"], "trained_at": r["trained_at"], "active": r["active"],
         "training": _json(r["training"])}
        for r in rows
    ]


async def store_model(
    conn: asyncpg.Connection, model: Model, training: Mapping[str, Any], activate: bool
) -> None:
    """Store a model under its version; when `activate`, it becomes the only active one."""
    async with conn.transaction():
        if activate:
            await conn.execute("UPDATE match_models SET active = false WHERE active")
        await conn.execute(
            "INSERT INTO match_models (version, model, active, training) VALUES ($1, $2, $3, $4)",
            model.version, model.to_dict(), activate, dict(training),
        )


async def activate_model(conn: asyncpg.Connection, version: str) -> None:
    """Make a stored model the active one (e.g. to roll back)."""
    async with conn.transaction():
        await conn.execute("UPDATE match_models SET active = false WHERE active")
        done = await conn.execute(
            "UPDATE match_models SET active = true WHERE version = $1", version
        )
        if done != "UPDATE 1":
            raise KeyError(f"no match model {version!r}")


def _version() -> str:
    return "trained-" + datetime.now(UTC).strftime("%Y%m%dT%H%M%S.%fZ")


def _seed_value(seed: int) -> float:
    """setseed takes a value in [-1, 1]."""
    return (seed % 20001 - 10000) / 10000.0


async def _sample(
    conn: asyncpg.Connection, sample: int, pairs: int, seed: int
) -> tuple[list[dict[str, Any]], list[Pair], int, int]:
    """Sampled records and candidate pairs (index pairs, then version pairs)."""
    async with conn.transaction():  # setseed and random() on the same connection
        await conn.execute("SELECT setseed($1)", _seed_value(seed))
        rows = await conn.fetch(
            "SELECT child_id, record FROM children ORDER BY random(), child_id LIMIT $1", sample
        )
    records: dict[Any, dict[str, Any]] = {r["child_id"]: _json(r["record"]) for r in rows}
    ids = list(records)
    partner_rows = await conn.fetch(
        """
        SELECT DISTINCT k.child_id AS a, p.child_id AS b
        FROM block_keys k
        CROSS JOIN LATERAL (
            SELECT o.child_id FROM block_keys o
            WHERE o.key = k.key AND o.child_id <> k.child_id
            ORDER BY o.child_id LIMIT $2
        ) p
        WHERE k.child_id = ANY($1::uuid[]) AND NOT starts_with(k.key, '!')
        ORDER BY 1, 2
        LIMIT $3
        """,
        ids, PARTNERS_PER_KEY, pairs,
    )
    missing = list({r["b"] for r in partner_rows} - records.keys())
    partners = dict(records)
    for r in await conn.fetch(
        "SELECT child_id, record FROM children WHERE child_id = ANY($1::uuid[])", missing
    ):
        partners[r["child_id"]] = _json(r["record"])
    # The same object for the same child: a sampled child's pairs form one group.
    blocked: list[Pair] = [(records[r["a"]], partners[r["b"]]) for r in partner_rows]
    index_pairs = len(blocked)
    version_rows = await conn.fetch(
        """
        SELECT v.record AS before, w.record AS after
        FROM child_versions v
        JOIN child_versions w ON w.child_id = v.child_id AND w.version = v.version + 1
        WHERE v.child_id = ANY($1::uuid[]) AND w.changed_by <> v.changed_by
        ORDER BY v.child_id, v.version
        LIMIT $2
        """,
        ids, max(pairs // 2, 0),
    )
    blocked.extend((_json(r["before"]), _json(r["after"])) for r in version_rows)
    return list(records.values()), blocked, index_pairs, len(version_rows)


async def _labelled(
    conn: asyncpg.Connection, limit: int
) -> list[tuple[Mapping[str, Any], Mapping[str, Any], bool]]:
    out: list[tuple[Mapping[str, Any], Mapping[str, Any], bool]] = []
    links = await conn.fetch(
        """
        SELECT p.update->'child' AS a, c.record AS b
        FROM parked p JOIN children c ON c.child_id::text = substr(p.resolution, 6)
        WHERE p.kind = 'review' AND p.resolution LIKE 'link:%' AND p.update ? 'child'
        ORDER BY p.resolved_at DESC, p.id
        LIMIT $1
        """,
        limit,
    )
    out.extend((_json(r["a"]), _json(r["b"]), True) for r in links)
    rejected = await conn.fetch(
        """
        SELECT DISTINCT ON (n.source, n.source_record_id, n.child_id)
               p.update->'child' AS a, c.record AS b
        FROM not_a_match n
        JOIN parked p ON p.kind = 'review' AND p.source = n.source
                     AND p.source_record_id = n.source_record_id AND p.update ? 'child'
        JOIN children c ON c.child_id = n.child_id
        ORDER BY n.source, n.source_record_id, n.child_id, p.received_at DESC
        LIMIT $1
        """,
        limit,
    )
    out.extend((_json(r["a"]), _json(r["b"]), False) for r in rejected)
    return out


async def train_and_store(
    conn: asyncpg.Connection,
    sample: int = 20000,
    pairs: int = 50000,
    seed: int = 0,
    activate: bool = True,
    base: Model = DEFAULT_MODEL,
) -> tuple[Model, dict[str, Any]]:
    """Train a model from the index, store it as "trained-<UTC timestamp>" and, when
    `activate`, make it the active model. Returns the model and a summary.

    Training starts from `base` (the shipped defaults, not the active model: a model
    does not drift by being retrained from its own estimates), whose prior, fixed
    adjustments and prior m it keeps."""
    records, blocked, index_pairs, version_pairs = await _sample(conn, sample, pairs, seed)
    labelled = await _labelled(conn, pairs)
    version = _version()
    training: Training = await asyncio.to_thread(
        fit, records, blocked, base, version, seed, labelled, u_pairs=pairs
    )
    summary = training.summary()
    summary.update(
        base=base.version, seed=seed, index_pairs=index_pairs, version_pairs=version_pairs,
        active=activate,
    )
    await store_model(conn, training.model, summary, activate)
    return training.model, summary
