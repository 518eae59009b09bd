"""Property: for any adversarial stream of updates, in any order and any batching,
no shielded child is duplicated and none of its protected data leaves the shield.

Runs the real pipeline code (hub.ingest.process, as the workers call it) against
a real PostgreSQL database; the outbox rows checked are exactly what the relay
publishes to the councils.
"""

from __future__ import annotations

import copy
import uuid
from typing import Any

import asyncpg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hub import operations as ops
from hub.broker.connection import message_id_for
from hub.config import Thresholds
from hub.db.connect import connect
from hub.ingest import Incoming, process
from hub.places import address_key
from hub.publishing import canonical_body
from tests.conftest import PG_ADMIN, _pg
from tests.factories import child, nhs

pytestmark = pytest.mark.integration

HOME = {"lines": ["12 Orchard Row"], "town": "Leeds", "postcode": "LS6 1AA", "la": "383"}
REFUGES = [
    {"lines": ["3 Harbour Lane"], "town": "Birmingham", "postcode": "B5 7QQ", "la": "330"},
    {"lines": ["9 Mill Court"], "town": "Leeds", "postcode": "LS9 8PP", "la": "383"},
    {"lines": ["1 Quay Street"], "town": "Liverpool", "postcode": "L1 0AA", "la": "341"},
]
TARGET = child(address=HOME)
SIBLING = child(nhs_number=nhs(61), given_name="Oswin", date_of_birth="2017-08-01",
                sex="male", address=HOME)
TWIN = child(nhs_number=nhs(62), given_name="Hollis", sex="male", address=HOME)
NEIGHBOUR = child(nhs_number=nhs(63), given_name="Juniper", family_name="Threlkeld",
                  date_of_birth="2013-05-02", address={**HOME, "lines": ["14 Orchard Row"]})


def _typo(name: str, i: int) -> str:
    i %= max(len(name) - 1, 1)
    return name[:i] + name[i + 1] + name[i] + name[i + 2:] if len(name) > 2 else name


@st.composite
def about_target(draw: st.DrawFn) -> dict[str, Any]:
    """An update about the shielded child, as a central feed might send it."""
    c = copy.deepcopy(TARGET)
    c["address"] = draw(st.sampled_from([None, HOME, *REFUGES]))
    if draw(st.booleans()):
        c["nhs_number"] = None
    mutation = draw(st.sampled_from(["none", "typo_given", "typo_family", "swap_names",
                                     "swap_dob", "drop_given", "new_surname", "no_sex"]))
    if mutation == "typo_given":
        c["given_name"] = _typo(c["given_name"], draw(st.integers(0, 6)))
    elif mutation == "typo_family":
        c["family_name"] = _typo(c["family_name"], draw(st.integers(0, 4)))
    elif mutation == "swap_names":
        c["given_name"], c["family_name"] = c["family_name"], c["given_name"]
    elif mutation == "swap_dob":
        c["date_of_birth"] = "2014-09-03"
    elif mutation == "drop_given":
        c["given_name"] = None
    elif mutation == "new_surname":
        c["family_name"], c["former_family_names"] = "Ashdown", ["Quenby"]
    elif mutation == "no_sex":
        c["sex"] = None
    if draw(st.booleans()):
        c["carers"] = [{"name": "Rowan Quenby", "relationship": "mother",
                        "phone": "07700 900999"}]
    return c


@st.composite
def streams(draw: st.DrawFn) -> list[tuple[dict[str, Any], bool]]:
    """(update, is_about_the_shielded_child) in arrival order, with replays."""
    out: list[tuple[dict[str, Any], bool]] = []
    for i in range(draw(st.integers(1, 8))):
        source = draw(st.sampled_from(["dwp", "pds", "dfe"]))
        rid = f"{source.upper()}-{draw(st.integers(0, 3))}"
        version = draw(st.integers(1, 4))
        if draw(st.integers(0, 3)) == 0:
            which = draw(st.sampled_from(["sibling", "twin", "neighbour"]))
            other = copy.deepcopy({"sibling": SIBLING, "twin": TWIN, "neighbour": NEIGHBOUR}[which])
            if which != "neighbour" and draw(st.booleans()):
                other["address"] = draw(st.sampled_from(REFUGES))  # the family moves together
            elif draw(st.booleans()):
                # An open record asking for the family's former home, protected since the
                # shield went up.
                other["address"] = HOME
            # One source record is about one child: ids are per child.
            out.append(({"source": source, "source_record_id": f"{which}-{rid}", "source_version":
                         version, "child": other}, False))
        else:
            out.append(({"source": source, "source_record_id": rid, "source_version": version,
                         "child": draw(about_target())}, True))
        if draw(st.integers(0, 4)) == 0:
            out.append(out[-1])  # replayed
        if i and draw(st.integers(0, 4)) == 0:
            out.insert(draw(st.integers(0, len(out) - 1)), out.pop())  # out of order
    return out


def _incoming(u: dict[str, Any]) -> Incoming:
    u = {k: v for k, v in u.items()}
    u["child"] = {k: v for k, v in u["child"].items() if v is not None}
    body = canonical_body(u)
    key = f"source.{u['source']}"
    return Incoming(message_id_for(key, body), key, body)


async def _run(stream: list[tuple[dict[str, Any], bool]], cuts: list[int], url: str) -> None:
    conn = await connect(url)
    t = Thresholds()
    # Each example runs in a transaction rolled back at the end: the same code
    # (its own transactions become savepoints) on a clean index every time.
    outer = conn.transaction()
    await outer.start()
    try:
        initial = [{"source": "la", "source_record_id": f"LA-{i}", "source_version": 1,
                    "child": c} for i, c in enumerate([TARGET, SIBLING, TWIN, NEIGHBOUR])]
        await process(conn, [_incoming(u) for u in initial], t)
        target_id = await conn.fetchval(
            "SELECT child_id::text FROM source_links WHERE source_record_id = 'LA-0'")
        await ops.shield(conn, target_id, "383", "la-officer", "refuge")
        for c in [SIBLING, TWIN]:  # the family is in the refuge together
            cid = await conn.fetchval(
                "SELECT child_id::text FROM children WHERE record->>'nhs_number' = $1",
                c["nhs_number"])
            await ops.shield(conn, cid, "383", "la-officer", "refuge")
        items = [_incoming(u) for u, _ in stream]
        start = 0
        for cut in [*sorted(set(cuts)), len(items)]:
            if cut > start:
                await process(conn, items[start:cut], t)
                start = cut

        about = {(u["source"], u["source_record_id"]) for u, is_target in stream if is_target}
        # 1. No duplicate: a record about the shielded child is linked to it or waits for a
        #    person; it never made or joined another record.
        links = {(r["source"], r["source_record_id"]): r["child_id"] for r in await conn.fetch(
            "SELECT source, source_record_id, child_id::text AS child_id FROM source_links")}
        for key in about:
            assert links.get(key, target_id) == target_id, key
        assert await conn.fetchval("SELECT count(*) FROM children") == 4
        # 2. Nothing about it reached any council but its own, and no move was announced.
        for r in await conn.fetch(
                "SELECT routing_key, body FROM outbox WHERE body->>'child_id' = $1", target_id):
            assert r["routing_key"].startswith("la.383."), r["routing_key"]
            assert "moved" not in r["routing_key"]
        # 3. No protected address of a shielded child is in an open record or in a
        #    notification to another council.
        protected = {r["address_key"] for r in await conn.fetch(
            "SELECT address_key FROM protected_addresses")}
        assert address_key(HOME) in protected
        for r in await conn.fetch("SELECT record FROM children WHERE NOT shielded"):
            assert address_key(r["record"].get("address")) not in protected
        for r in await conn.fetch("SELECT routing_key, body FROM outbox"
                                  " WHERE routing_key NOT LIKE 'la.383.%'"):
            text = str(r["body"])
            for addr in [HOME, *REFUGES]:
                if address_key(addr) in protected:
                    assert addr["postcode"] not in text, r["routing_key"]
            assert "07700 900999" not in text
    finally:
        await outer.rollback()
        await conn.close()


@pytest.fixture(scope="module")
async def prop_db(template_db: str):  # type: ignore[no-untyped-def]
    name = f"hub_prop_{uuid.uuid4().hex[:10]}"
    admin = await asyncpg.connect(PG_ADMIN)
    await admin.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template_db}"')
    yield _pg(name)
    await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    await admin.close()


@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(stream=streams(), cuts=st.lists(st.integers(0, 20), max_size=4))
async def test_no_stream_duplicates_or_exposes_a_shielded_child(
    prop_db: str, stream: list[tuple[dict[str, Any], bool]], cuts: list[int]
) -> None:
    await _run(stream, cuts, prop_db)
