"""A batch's writes flushed as arrays (hub/db/writes.py): every table gets what the
batch made, JSON intact (lists too), in the batch's order, and the relay is told."""

from __future__ import annotations

import asyncio
import json

import pytest

from hub import ingest, operations
from hub.config import Thresholds
from hub.db.connect import connect
from tests.factories import incoming, moved, nhs, update

pytestmark = pytest.mark.integration



async def test_a_batch_flushes_every_table_in_order(database_url: str) -> None:
    conn = await connect(database_url)
    try:
        first = [incoming(update("la", "LA-1", nhs_number=nhs(1))),
                 incoming(update("la", "LA-2", nhs_number=nhs(2), given_name="Tamsin",
                              date_of_birth="2012-07-21"))]
        out = await ingest.process(conn, first, Thresholds())
        assert [o.action for o in out] == ["create", "create"]
        shielded = out[0].child_id
        assert shielded is not None
        await operations.shield(conn, shielded, "383", "op", "refuge")

        listener = await connect(database_url)
        heard: list[str] = []
        await listener.add_listener("hub_outbox", lambda *a: heard.append(a[-1]))
        # One batch: a review with candidates (the shielded child, no NHS number),
        # a link with a move, a dead letter, a create.
        second = [
            incoming(moved(update("dwp", "CB-1", nhs_number=None), la="383")),
            # (not to the address the first says the shielded child is at now: that
            # would go to a person, rule 6, while the first waits)
            incoming(moved(update("dwp", "CB-2", nhs_number=nhs(2), given_name="Tamsin",
                               date_of_birth="2012-07-21"), lines=["5 Kiln Lane"],
                           postcode="B6 4AA")),
            ingest.Incoming("m-bad", "source.dwp", b'{"not": "an update"'),
            incoming(moved(update("pds", "P-9", nhs_number=nhs(9), given_name="Ottilie",
                               family_name="Brackwater", date_of_birth="2016-01-30"),
                        lines=["7 Ash Close"], town="Leeds", postcode="LS9 9ZZ", la="383")),
        ]
        out = await ingest.process(conn, second, Thresholds())
        assert [(o.action, o.reason) for o in out] == [
            ("review", "shielded_candidate"), ("link", "nhs_number"),
            ("dead", "invalid_json"), ("create", "no_match")]
        for _ in range(50):
            if heard:
                break
            await asyncio.sleep(0.05)
        await listener.close()
        assert heard, "the relay's channel was not notified at commit"

        review = await conn.fetchrow(
            "SELECT candidates, update, source_version FROM parked WHERE kind = 'review'")
        assert [c["child_id"] for c in review["candidates"]] == [shielded]
        assert review["update"]["source_record_id"] == "CB-1"
        assert review["source_version"] == 1
        # It may be her update: its places wait with it, under her authority.
        pending = await conn.fetch("SELECT address_key, authority FROM pending_places")
        assert ("B57QQ|3 harbour lane", "383") in {tuple(r) for r in pending}, pending
        dead = await conn.fetchrow("SELECT raw, update, reason FROM parked WHERE kind = 'dead'")
        assert (dead["raw"], dead["update"], dead["reason"]) == (
            '{"not": "an update"', None, "invalid_json")

        moved_id = out[1].child_id
        record, version = await conn.fetchrow(
            "SELECT record, version FROM children WHERE child_id = $1", moved_id)
        assert version == 2 and record["address"]["postcode"] == "B6 4AA"
        history = await conn.fetch(
            "SELECT version, record, message_id FROM child_versions WHERE child_id = $1"
            " ORDER BY version", moved_id)
        assert [h["version"] for h in history] == [1, 2]
        assert history[-1]["record"] == record and history[-1]["message_id"] == "m-dwp-CB-2-1"
        link = await conn.fetchrow(
            "SELECT child_id::text, last_version, linked_by FROM source_links"
            " WHERE source = 'dwp' AND source_record_id = 'CB-2'")
        assert tuple(link) == (moved_id, 1, "auto")
        # A record as its source created it is one row naming every field ('*'); a
        # later update adds a row for each field it changed.
        provenance = {(r["field"], r["source"], r["source_record_id"]) for r in await conn.fetch(
            "SELECT field, source, source_record_id FROM provenance WHERE child_id = $1",
            moved_id)}
        assert ("*", "la", "LA-2") in provenance and ("address", "dwp", "CB-2") in provenance
        assert all(f == "*" or s == "dwp" for f, s, _ in provenance)
        assert "given_name" not in {f for f, _, _ in provenance}  # unchanged by CB-2
        assert await conn.fetchval(
            "SELECT count(*) FROM provenance WHERE child_id = $1", out[3].child_id) == 1
        # The view operators read resolves it field by field.
        by_field = {r["field"]: (r["source"], r["source_record_id"]) for r in await conn.fetch(
            "SELECT field, source, source_record_id FROM field_provenance WHERE child_id = $1",
            moved_id)}
        assert by_field["address"] == ("dwp", "CB-2")
        assert by_field["given_name"] == by_field["date_of_birth"] == ("la", "LA-2")

        # Audit rows and notifications keep the batch's order.
        actions = [r["detail"]["message_id"] for r in await conn.fetch(
            "SELECT detail FROM audit_log WHERE action LIKE 'decision.%' ORDER BY id")]
        assert actions[-4:] == ["m-dwp-CB-1-1", "m-dwp-CB-2-1", "m-bad", "m-pds-P-9-1"]
        notes = await conn.fetch("SELECT routing_key, body FROM outbox ORDER BY id")
        last = [(n["routing_key"], n["body"]["event"]) for n in notes[-3:]]
        assert last == [("la.383.child.moved_out", "child.moved_out"),
                        ("la.330.child.moved_in", "child.moved_in"),
                        ("la.383.child.created", "child.created")]
        assert all(isinstance(n["body"], dict) and json.dumps(n["body"]) for n in notes)
        outcomes = {r["message_id"]: r["outcome"] for r in await conn.fetch(
            "SELECT message_id, outcome FROM processed_messages")}
        assert outcomes["m-bad"] == "dead:invalid_json"
        assert outcomes["m-dwp-CB-1-1"] == "review:shielded_candidate"
    finally:
        await conn.close()
